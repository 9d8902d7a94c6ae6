"""Sweep jobs (azure-ai-ml ``SweepJob``): the ``sweep`` job kind, validation and controller.

A sweep is a parent job row (``type: sweep``, Running while trials run); each trial is an
ordinary child command job (``parent_name`` = the sweep, its MLflow run nested under the
sweep's run, sampled values logged as params, ``${{search_space.x}}`` rendered into its command
and ``x`` also given as a literal input). Trials queue for compute slots like any command job.

The controller is the job core's (:mod:`openaml.services._job_core`): :meth:`SweepKind.start` runs
the first pass, :meth:`SweepKind.on_tick` the next ones (every ``JobCore.tick_interval`` and at once
after a trial ended). Each pass, for a Running sweep, it: records the
result of trials that ended (last finite value of the primary metric; NaN/inf ignored; a trial
without it is marked and excluded) and tells the sampler; ends the sweep at its ``timeout``
(running trials canceled, best so far kept); applies the early-termination policy to running
trials (:mod:`._sweep_policies`); starts trials up to ``max_concurrent_trials`` until
``max_total_trials`` (or the grid) is used up; and, when nothing is left, completes the sweep
with the best trial (tag ``best_child_run_id``, best metric and params on the sweep's run) or
fails it saying which metrics the trials did log. All state is in the job rows and MLflow, so a
restarted server rebuilds it (the sampler is re-told the finished trials) and goes on.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import dataclass, field
from typing import Any

import pydantic

from openaml._templates import EXPR, format_literal
from openaml.constants import TERMINAL_JOB_STATUSES, JobStatus
from openaml.entities._base import validation_error_from_pydantic
from openaml.entities._sweep import SweepJob, is_component_reference, sweep_problems, trial_from_component
from openaml.errors import ConflictError, NotFoundError, OpenAMLError, ValidationError
from openaml.records import JobRecord, SweepTrialRecord
from openaml.services._job_resolve import ResolveErrors, check_command, resolve_code, resolve_inputs, resolve_outputs
from openaml.services._sweep_policies import evaluate_policy
from openaml.services._sweep_sampling import SweepSampler
from openaml.services.kinds import JobPlan
from openaml.services.kinds._controlled import ControlledKind
from openaml.store import utcnow

__all__ = ["SweepKind"]

log = logging.getLogger("openaml.sweep")

_SERVER_FIELDS = ("status", "id", "creation_context", "studio_url", "created_at", "start_time", "end_time", "error",
                  "exit_code", "log_tail", "output_uris", "status_history", "services", "warnings")


@dataclass
class _State:
    job: SweepJob
    sampler: SweepSampler
    told: set[str] = field(default_factory=set)
    evaluated: dict[str, int] = field(default_factory=dict)
    final_hist: dict[str, list[float]] = field(default_factory=dict)
    stopping: str | None = None


def _trial_record(child: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """(index, values, raw) of a trial: from its runtime, else from the properties written with
    its row at submission, else (old rows) from its name."""
    rt = child["runtime"]
    props = (child["spec"] or {}).get("properties") or {}
    index = rt.get("sweep_index")
    if index is None and props.get("openaml.sweep_index") is not None:
        index = int(props["openaml.sweep_index"])
    if index is None:
        try:
            index = int(child["name"].rsplit("_", 1)[1])
        except (IndexError, ValueError):
            index = -1
    values = rt.get("sweep_values")
    if values is None:
        values = json.loads(props.get("openaml.sweep_values") or "{}")
    raw = rt.get("sweep_raw")
    if raw is None:
        raw = json.loads(props.get("openaml.sweep_raw") or "{}")
    return int(index), values, raw


def _literal_input(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "boolean", "value": value}
    if isinstance(value, int):
        return {"type": "integer", "value": value}
    if isinstance(value, float):
        return {"type": "number", "value": value}
    if isinstance(value, (dict, list)):
        return {"type": "string", "value": json.dumps(value)}
    return {"type": "string", "value": "" if value is None else str(value)}


class SweepKind(ControlledKind):
    type = "sweep"
    runs_on_compute = False  # the trials run; the sweep holds no slot

    label = "sweep"

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self._states: dict[str, _State] = {}

    @property
    def jobs(self) -> Any:
        return self.ctx.services["jobs"]

    # ------------------------------------------------------------------ validation and start
    def validate(self, spec: dict[str, Any], *, source: str | None, name: str) -> JobPlan:
        """Raises ValidationError with every problem found (Azure's sampling/limit rules, the search
        space, the trial command's expressions, inputs, code, environment, compute)."""
        spec = {k: v for k, v in spec.items() if k not in _SERVER_FIELDS}
        if isinstance(spec.get("trial"), str):
            spec = self._resolve_component_trial(spec, source)
        try:
            job = SweepJob.model_validate(spec)
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=source, lines=None, kind="sweep job") from None
        problems, notes = sweep_problems(job)
        errors = ResolveErrors()
        for p in problems:
            errors.items.append(("", p.removeprefix("field ")))
        compute = self.core.compute_name(job.compute, errors)
        data = job.model_dump(mode="json", exclude_none=True)
        inputs_raw = data.get("inputs", {})
        trial = job.trial
        if isinstance(trial, str):  # a component reference is inlined above; anything else is not a trial
            raise ValidationError(f"{source + ': ' if source else ''}field 'trial': {trial!r} is not a command "
                                  "trial; give an inline command or azureml:<component>:<version>",
                                  details={"field": "trial", "value": trial})
        # a swept x is also the trial's input x (``_launch``): ${{inputs.x}} reads the sampled value
        swept = {k: _literal_input(0) for k in job.search_space if k not in inputs_raw}
        check_command(trial.command, {**inputs_raw, **swept}, data.get("outputs", {}), errors,
                      extra_roots=("search_space",))
        resolve_inputs(self.ctx, inputs_raw, errors)
        # a trial keeps an output path only with ${{name}} in it (_launch): checked as trial 0's
        kept = {k: o for k, o in (data.get("outputs") or {}).items() if "${{name}}" in str((o or {}).get("path"))}
        if kept:
            resolve_outputs(self.ctx, f"{name}_0", kept, errors, parent=name)
        resolve_code(self.ctx, trial.code, errors)
        self.core.runner_environment(data["trial"].get("environment"), errors)
        if errors.items:
            prefix = f"{source}: " if source else ""
            fields = {"command": "trial.command", "code": "trial.code", "environment": "trial.environment"}
            text = "; ".join(m if not f else f"field '{fields.get(f, f)}': {m}" for f, m in errors.items)
            raise ValidationError(prefix + text, details={"problems": [m for _, m in errors.items]})
        data["compute"] = compute
        if notes:
            data.setdefault("properties", {})["openaml.warnings"] = "; ".join(notes)
        return JobPlan(data=data, experiment=job.experiment_name or "Default", compute=compute,
                       display_name=job.display_name, tags={"openaml.compute": compute, **job.tags},
                       runtime={"warnings": notes}, entity=job)

    def start(self, row: dict[str, Any]) -> None:
        """The sweep runs (it holds no compute slot) and launches its first trials."""
        started = self.ctx.store.transition_job(row["name"], JobStatus.RUNNING, from_statuses=[JobStatus.NOT_STARTED],
                                                start_time=utcnow())
        self.ctx.tracking.set_run_running(row["name"])
        if started is not None:
            self.on_tick(started)

    def _resolve_component_trial(self, spec: dict[str, Any], source: str | None) -> dict[str, Any]:
        """``trial: azureml:<name>:<version>`` (or ``@latest``): the registered component becomes
        the inline trial; the sweep keeps the reference in ``properties['openaml.trial_component']``."""
        ref = spec["trial"].strip()
        prefix = f"{source}: " if source else ""
        if not is_component_reference(ref):
            raise ValidationError(f"{prefix}field 'trial': {ref!r} is a local file the server cannot read; submit the "
                                  "sweep with the openaml CLI or SDK (they inline the component), or register it and "
                                  "give azureml:<name>:<version>", details={"field": "trial", "value": ref})
        try:
            comp = self.ctx.services["components"].resolve_reference(ref)
        except (NotFoundError, ValidationError) as exc:
            raise ValidationError(f"{prefix}field 'trial': {exc.message}",
                                  details={"field": "trial", "value": ref}) from None
        trial, inputs, outputs, problems = trial_from_component(
            comp, spec.get("inputs") or {}, spec.get("outputs") or {}, spec.get("search_space") or {},
            component=f"component {comp['name']}:{comp['version']}")
        if problems:
            raise ValidationError(prefix + "; ".join(problems), details={"problems": problems})
        props = {**(spec.get("properties") or {}), "openaml.trial_component": f"azureml:{comp['name']}:{comp['version']}"}
        return {**spec, "trial": trial, "inputs": inputs, "outputs": outputs, "properties": props}

    # ------------------------------------------------------------------ controller
    def _state(self, row: dict[str, Any]) -> _State:
        st = self._states.get(row["name"])
        if st is None:
            spec = {k: v for k, v in row["spec"].items() if k not in _SERVER_FIELDS}
            job = SweepJob.model_validate(spec)
            sampler_job = job
            seed: Any = getattr(job.sampling_algorithm, "seed", None)
            done = len(self.ctx.store.list_jobs(parent_name=row["name"], include_archived=True)) if seed is not None else 0
            if done:
                # a server restarted mid-sweep: the sampler's random state was in the old process. The same
                # seed would draw the first points again, so go on with a seed derived from the seed and
                # the number of trials already created (finished trials are re-told to the sampler)
                sampler_job = job.model_copy(deep=True)
                setattr(sampler_job.sampling_algorithm, "seed", (int(seed) + 7919 * done) % (2**31 - 1))  # noqa: B010
            st = _State(job=job, sampler=SweepSampler(sampler_job))
            self._states[row["name"]] = st
            self._sampler_notes(row, st.sampler)
        return st

    def _sampler_notes(self, row: dict[str, Any], sampler: SweepSampler) -> None:
        """What the sampler uses, and its warnings (bayesian without torch), into the sweep's log."""
        self.log(row["name"], *sampler.log_lines)
        known = list(row["runtime"].get("warnings") or [])
        new = [n for n in sampler.notes if n not in known]
        if new:
            self.ctx.store.update_job(row["name"], runtime_update={"warnings": known + new})
            log.warning("sweep %s: %s", row["name"], "; ".join(new))

    def _raw_history(self, trial: str, metric: str) -> list[tuple[int, float]]:
        """(step, value) of every value the trial logged for ``metric``, ordered by step
        (stable: same-step values stay in logged order); NaN and infinities included."""
        try:
            hist = self.ctx.tracking.metric_history(trial, metric)
        except Exception:  # noqa: BLE001 - run gone
            return []
        out = []
        for step, v in sorted(hist, key=lambda sv: sv[0] or 0):
            if v is None:
                continue
            v = float(v)
            if abs(v) >= sys.float_info.max:  # MLflow's SQL store keeps +/-inf as the largest float
                v = math.copysign(math.inf, v)
            out.append((int(step or 0), v))
        return out

    def _history(self, trial: str, metric: str) -> list[float]:
        """The finite values, in report order: what the result and the policies use."""
        return [v for _, v in self._raw_history(trial, metric) if math.isfinite(v)]

    def _step(self, row: dict[str, Any]) -> None:
        name = row["name"]
        st = self._state(row)
        job = st.job
        assert job.objective is not None and job.limits is not None
        metric, goal = job.objective.primary_metric, job.objective.goal
        children = self.ctx.store.list_jobs(parent_name=name, include_archived=True, ascending=True)
        hist: dict[str, list[float]] = {}
        for c in children:
            cname = c["name"]
            if cname in st.final_hist:
                hist[cname] = st.final_hist[cname]
                continue
            terminal = c["status"] in TERMINAL_JOB_STATUSES
            if not terminal and job.early_termination is None:
                continue  # a running trial's metrics matter only to a policy: read them once, when it ends
            h = self._history(cname, metric)
            hist[cname] = h
            if terminal:
                st.final_hist[cname] = h
                if cname not in st.told:
                    self._record_result(c, h, st, metric)
        active = [c for c in children if c["status"] not in TERMINAL_JOB_STATUSES]
        # the sweep's own timeout (Azure: "the system cancels the sweep job, including all of its
        # trials"): cancel running trials, keep and record the best so far, end Canceled
        lim = job.limits
        started = row["start_time"] or row["created_at"]
        if st.stopping is None and row["runtime"].get("stopping"):
            st.stopping = row["runtime"]["stopping"]  # decided by a previous server
        if st.stopping is None and lim.timeout and (utcnow() - started).total_seconds() > lim.timeout:
            st.stopping = f"the sweep's limits.timeout ({lim.timeout} s) was reached"
            self.ctx.store.update_job(name, runtime_update={"stopping": st.stopping})
        if st.stopping is not None:
            for c in active:
                if c["status"] != JobStatus.CANCEL_REQUESTED:
                    self.jobs.cancel(c["name"], reason=st.stopping)
        # early termination (the intervals already judged survive a restart in the sweep's row)
        if st.stopping is None and job.early_termination is not None:
            running = [c["name"] for c in children if c["status"] == JobStatus.RUNNING]
            if not st.evaluated and row["runtime"].get("policy_evaluated"):
                st.evaluated.update(row["runtime"]["policy_evaluated"])
            before = dict(st.evaluated)
            decided = evaluate_policy(job.early_termination, goal, hist, running, st.evaluated)
            if st.evaluated != before:
                self.ctx.store.update_job(name, runtime_update={"policy_evaluated": dict(st.evaluated)})
            for trial, reason in decided.items():
                self.ctx.store.update_job(trial, runtime_update={"sweep_terminated": reason})
                try:
                    self.ctx.tracking.set_tags(trial, {"openaml.early_termination": reason})
                except Exception:  # noqa: BLE001
                    pass
                self.jobs.cancel(trial, reason=f"early termination: {reason}")
        # launch
        target = int(lim.max_total_trials or 0)
        if st.sampler.size is not None:
            target = min(target, st.sampler.size)
        concurrent = int(lim.max_concurrent_trials or target)
        created = len(children)
        n_active = len(active)
        # a cancel of the sweep cancels its trials first, then the sweep: trials ended by it mean
        # the sweep is being canceled, so start nothing new (no trial launched after a cancel)
        parent_cancel = f"parent job {name} was canceled"
        if any(c["error"] == parent_cancel or c["runtime"].get("cancel_reason") == parent_cancel for c in children):
            return
        while st.stopping is None and created < target and n_active < concurrent:
            if not self._launch(row, st, created):
                return
            created += 1
            n_active += 1
        if n_active == 0 and (created >= target or st.stopping):
            self._complete(row, st, metric, goal)

    def _record_result(self, child: dict[str, Any], h: list[float], st: _State, metric: str) -> None:
        cname = child["name"]
        rt = child["runtime"]
        index, values, raw = _trial_record(child)
        value = h[-1] if h else None
        pruned = bool(rt.get("sweep_terminated"))
        st.sampler.tell(index, raw, value, pruned=pruned, intermediate=list(enumerate(h)))
        st.told.add(cname)
        if "sweep_result" not in rt:
            notes = []
            bad = [(s, v) for s, v in self._raw_history(cname, metric) if not math.isfinite(v)]
            if bad:
                shown = ", ".join(f"{v} at step {s}" for s, v in bad[:5]) + (" ..." if len(bad) > 5 else "")
                notes.append(f"{len(bad)} non-finite value(s) of {metric!r} ignored ({shown})")
            if value is None:
                notes.append(f"excluded: the primary metric {metric!r} was not logged"
                             + (" as a finite number" if bad else ""))
            update: dict[str, Any] = {"sweep_result": {"value": value, "note": "; ".join(notes) or None,
                                                       "non_finite": len(bad)}}
            if "sweep_values" not in rt:  # submitted just before a server stopped: from the job's properties
                update.update(sweep_index=index, sweep_values=values, sweep_raw=raw)
                try:
                    self.ctx.tracking.log_params(cname, {k: (json.dumps(v) if isinstance(v, (dict, list)) else v)
                                                         for k, v in values.items()})
                except Exception:  # noqa: BLE001 - the trial's own code logged the same key
                    pass
            self.ctx.store.update_job(cname, runtime_update=update)
            shown = "no value" if value is None else f"{metric} = {value!r}"
            why = rt.get("sweep_terminated") or child["error"]
            self.log(child["parent_name"] or cname.rsplit("_", 1)[0],
                      f"trial {cname} {child['status']}: {shown}" + (f" ({why})" if why else "")
                      + (f"; {'; '.join(notes)}" if notes else ""))

    def _launch(self, row: dict[str, Any], st: _State, index: int) -> bool:
        name = row["name"]
        job = st.job
        spec = row["spec"]
        values, raw = st.sampler.suggest(index)
        child = f"{name}_{index}"

        def sub(m: Any) -> str:
            root, _, rest = m.group(1).partition(".")
            if root == "search_space" and rest in values:
                v = values[rest]
                return json.dumps(v) if isinstance(v, (dict, list)) else format_literal(v)
            return str(m.group(0))

        trial = spec["trial"]
        inputs = dict(spec.get("inputs") or {})
        for k, v in values.items():
            inputs[k] = _literal_input(v)
        outputs = {k: {kk: vv for kk, vv in (o or {}).items() if kk != "path" or "${{name}}" in str(vv)}
                   for k, o in (spec.get("outputs") or {}).items()}
        child_spec: dict[str, Any] = {
            "type": "command", "name": child, "command": EXPR.sub(sub, trial["command"]),
            "inputs": inputs, "outputs": outputs, "compute": row["compute"],
            "experiment_name": row["experiment_name"], "parent_job_name": name,
            "display_name": f"{row['display_name'] or name}_{index}",
            "tags": {"openaml.sweep": name, "openaml.trial_index": str(index)},
            # stored with the job row in one write: a server stopped right after the submission
            # still knows which point this trial runs (restart safety)
            "properties": {"openaml.sweep_index": str(index), "openaml.sweep_values": json.dumps(values),
                           "openaml.sweep_raw": json.dumps(raw)},
        }
        for key in ("code", "environment", "environment_variables", "resources", "distribution", "queue_settings"):
            if trial.get(key) is not None:
                child_spec[key] = trial[key]
        if job.limits and job.limits.trial_timeout:
            child_spec["limits"] = {"timeout": job.limits.trial_timeout}
        try:
            self.core.submit(child_spec)
        except ConflictError:
            return True  # created by a previous pass or server; counted from the rows
        except OpenAMLError as exc:
            self._finish(row, JobStatus.FAILED, error=f"trial {index} could not be submitted: {exc.message}")
            return False
        self.ctx.store.update_job(child, runtime_update={"sweep_index": index, "sweep_values": values,
                                                         "sweep_raw": raw})
        self.log(name, f"trial {child} submitted: " + " ".join(f"{k}={v!r}" for k, v in values.items()))
        try:
            self.ctx.tracking.log_params(child, {k: (json.dumps(v) if isinstance(v, (dict, list)) else v)
                                                 for k, v in values.items()})
        except Exception:  # noqa: BLE001 - the trial's own code logged the same key first
            log.warning("sweep %s: could not log params of %s", name, child)
        if self.ctx.store.get_job(name)["status"] in TERMINAL_JOB_STATUSES:
            self.jobs.cancel(child, reason=f"parent job {name} ended")
            return False
        return True

    # ------------------------------------------------------------------ results
    def trials(self, name: str, *, metric: str | None = None, goal: str = "maximize") -> list[SweepTrialRecord]:
        """Trials of a sweep, best first (trials without the metric last, then by index)."""
        rows = self.ctx.store.list_jobs(parent_name=name, include_archived=True, ascending=True)
        out: list[SweepTrialRecord] = []
        for c in rows:
            rt = c["runtime"]
            res = rt.get("sweep_result") or {}
            value = res.get("value") if "value" in res else None
            if not res and metric:
                h = self._history(c["name"], metric)
                value = h[-1] if h else None
            dur = None
            if c["start_time"]:
                end = c["end_time"] or utcnow()
                dur = round((end - c["start_time"]).total_seconds(), 2)
            index, values, _ = _trial_record(c)
            out.append({"name": c["name"], "index": index, "status": c["status"],
                        "params": values, "metric": value, "duration_s": dur,
                        "terminated": rt.get("sweep_terminated"), "note": res.get("note"), "error": c["error"]})
        sign = -1.0 if goal == "maximize" else 1.0
        out.sort(key=lambda t: (t["metric"] is None, sign * (t["metric"] or 0.0), t["index"] or 0))
        return out

    def extend_view(self, row: dict[str, Any], spec: JobRecord) -> JobRecord:
        """``job show`` of a sweep: the trials (params, metric, status, duration), best first."""
        obj = spec.get("objective") or {}
        trials = self.trials(row["name"], metric=obj.get("primary_metric"), goal=obj.get("goal", "maximize"))
        spec["trials"] = trials
        best = row["runtime"].get("best")
        if best:
            spec["best_child_run_id"] = best["child"]
            spec.setdefault("properties", {})["best_child_run_id"] = best["child"]
        counts: dict[str, int] = {}
        for t in trials:
            counts[t["status"]] = counts.get(t["status"], 0) + 1
        spec["trial_counts"] = counts
        if row["runtime"].get("warnings"):  # clamped limits, bayesian without torch
            spec["warnings"] = list(row["runtime"]["warnings"])
        return spec

    def _complete(self, row: dict[str, Any], st: _State, metric: str, goal: str) -> None:
        name = row["name"]
        children = self.ctx.store.list_jobs(parent_name=name, include_archived=True, ascending=True)
        hists = [(c, st.final_hist.get(c["name"]) or []) for c in children]
        scored = [(c, h[-1]) for c, h in hists if h]
        failed = sum(1 for c in children if c["status"] == JobStatus.FAILED)
        if not scored:
            logged: set[str] = set()
            for c in children:
                logged.update(self.ctx.tracking.run_summary(c["name"])["metrics"])
            error = (f"the primary metric {metric!r} was never logged by any of the {len(children)} trials"
                     f" (or only as NaN/inf); metrics the trials logged: {', '.join(sorted(logged)) or 'none'}")
            if failed:
                first = next(c for c in children if c["status"] == JobStatus.FAILED)
                error += (f"; {failed} trials failed (e.g. {first['name']}: {first['error']}; its log: "
                          f"openaml job stream -n {first['name']})")
            if st.stopping:  # the timeout ended it before any trial reported: Canceled, as Azure does
                self._finish(row, JobStatus.CANCELED, error=f"{st.stopping}; {error}")
                return
            self._finish(row, JobStatus.FAILED, error=error)
            return
        best_child, best_value = (max if goal == "maximize" else min)(scored, key=lambda cv: cv[1])
        values = _trial_record(best_child)[1]
        best = {"child": best_child["name"], "value": best_value, "params": values}
        try:
            self.ctx.tracking.set_tags(name, {"best_child_run_id": best_child["name"],
                                              f"best_{metric}": repr(best_value), "best_metric": metric})
            self.ctx.tracking.log_params(name, {k: (json.dumps(v) if isinstance(v, (dict, list)) else v)
                                                for k, v in values.items()})
        except Exception:  # noqa: BLE001
            log.exception("sweep %s: recording the best trial on its run failed", name)
        self.ctx.store.update_job(name, runtime_update={"best": best, "end_reason": st.stopping or "completed"},
                                  spec_update={"properties": {**(row["spec"].get("properties") or {}),
                                                              "best_child_run_id": best_child["name"]}})
        if st.stopping:
            self._finish(row, JobStatus.CANCELED,
                         error=f"{st.stopping}; best so far: {best_child['name']} ({metric} = {best_value!r})")
        else:
            self._finish(row, JobStatus.COMPLETED, error=None)

    def _finish(self, row: dict[str, Any], status: str, *, error: str | None) -> None:
        name = row["name"]
        done = self.core.finish(name, status, error=error, from_statuses=(JobStatus.RUNNING,))
        if done is None:
            return
        best = (done["runtime"] or {}).get("best")
        self.log(name, f"sweep {status}" + (f": best trial {best['child']} ({best['value']!r})" if best else "")
                 + (f"; {error}" if error else ""))
