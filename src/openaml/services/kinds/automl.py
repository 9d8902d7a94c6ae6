"""AutoML jobs (azure-ai-ml ``ClassificationJob``/``RegressionJob``/``ForecastingJob``): the ``automl`` kind.

An AutoML job is a parent job (Running while its trials run; it holds no compute slot). Its
trials run in trial workers (:mod:`openaml.services.kinds._automl_workers`): one child command job
per ``max_concurrent_trials`` that runs ``python -m openaml.automl._worker`` in the job's
environment (``environment_id``, default: the default environment, which carries flaml,
lightgbm, xgboost-cpu, scikit-learn) on the job's compute, loads the data and the libraries once
and runs FLAML's search over its share of the algorithms, one trial after the other. Every trial
is still a child job (``parent_name`` = the AutoML job, MLflow run nested under its run) with its
own status, times, metrics, params, log and model files (:mod:`openaml.automl._trial`), recorded
from what its worker reports. The ensembles run in the ensemble workers as they end their search,
one each while another may take the next (:meth:`WorkerPool._worker_ensembles`; the search keeps
:func:`reserve_s` of the timeout for them), or, when no worker waits for them, as one-trial child command jobs
(``python -m openaml.automl._trial``).

Validation reads the training data (the MLTable) before anything is stored and refuses what
cannot train (target column missing, one class, non-numeric regression target, duplicate
forecasting rows, a primary metric of another task, a timeout shorter than one trial...), with
pandas only. The guardrails (class balancing, missing values, high cardinality; forecasting: short
series, frequency) are computed by the first trial worker, which has the data and the
featurization's libraries loaded anyway, before its first trial (as Azure computes them in the
run's setup); the job records them from its report (or computes them itself at the end when no
worker reported them).

The controller pass (:meth:`AutoMLKind.on_tick`, also at once after a trial ended) starts the
workers, records the trials they started and ended, ends the search at ``limits.timeout_minutes``
(workers and running trials canceled, best so far kept, the job Completed as Azure completes a
timed-out AutoML run), at ``exit_score`` or by early termination (``enable_early_termination``:
after 20 trials, 10 in a row without improvement: the workers are asked to stop), stops a trial
over ``trial_timeout_minutes`` (its worker replaced); the ensemble trials
(``enable_vote_ensemble``/``enable_stack_ensemble``, default on, from the best 5); and, once
every worker and trial ended, completes with the best trial (ensembles included): tag ``automl_best_child_run_id`` plus ``best_score``,
``best_algorithm`` on the parent's run. State is in the job rows and MLflow, so a restarted
server records the finished trials and goes on with the search.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any, cast

import pydantic

from openaml.constants import TERMINAL_JOB_STATUSES, JobStatus
from openaml.entities._automl import DEFAULT_METRIC, AutoMLJob, automl_problems, canonical_metric, canonical_model
from openaml.entities._base import validation_error_from_pydantic
from openaml.errors import ConflictError, OpenAMLError, ValidationError
from openaml.records import JobRecord
from openaml.services._job_resolve import ResolveErrors, _port_of, resolve_inputs, resolve_outputs
from openaml.services.kinds import JobPlan
from openaml.services.kinds._automl_workers import WorkerPool, is_worker
from openaml.services.kinds._controlled import ControlledKind
from openaml.store import utcnow

__all__ = ["AutoMLKind"]

log = logging.getLogger("openaml.automl")

_SERVER_FIELDS = ("status", "id", "creation_context", "studio_url", "created_at", "start_time", "end_time", "error",
                  "exit_code", "log_tail", "output_uris", "status_history", "services", "warnings")
_DATA = ("training_data", "validation_data", "test_data")
# a trial's fixed cost here (process start, imports, model files) and a floor per cell, in seconds
_TRIAL_OVERHEAD_S = 8.0
_EARLY_AFTER, _EARLY_PATIENCE = 20, 10
_ENSEMBLE_SIZE = 5


def timeout_stop(stopping: str | None, elapsed: float, timeout_s: float, minutes: Any) -> str | None:
    """Why the workers are ended now when the search was already asked to stop for another reason
    (exit score, early termination): a worker's trial that runs past ``limits.timeout_minutes`` is
    ended then, as when the timeout itself ends the search; None: not yet (or nothing to add)."""
    if stopping is None or stopping.startswith("limits.timeout") or elapsed < timeout_s:
        return None
    return f"limits.timeout_minutes ({minutes} min) was reached"


def _loss(metric: str, value: float) -> float:
    from openaml.automl._metrics import loss_of

    return loss_of(metric, value)


class AutoMLKind(WorkerPool, ControlledKind):
    type = "automl"
    runs_on_compute = False  # the trials run; the AutoML job holds no slot

    label = "AutoML"

    @property
    def jobs(self) -> Any:
        return self.ctx.services["jobs"]

    # ------------------------------------------------------------------ validation
    def validate(self, spec: dict[str, Any], *, source: str | None, name: str) -> JobPlan:
        """Raises ValidationError naming every field (and column) with a problem, before anything is
        stored: the fields (:func:`automl_problems`), the compute, the data inputs, the training
        data itself (:func:`openaml.automl._data.data_problems`), the algorithms and the limits."""
        spec = {k: v for k, v in spec.items() if k not in _SERVER_FIELDS}
        try:
            job = AutoMLJob.model_validate(spec)
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=source, lines=None, kind="automl job") from None
        problems, notes = automl_problems(job)
        errors = ResolveErrors()
        for p in problems:
            errors.items.append(("", p.removeprefix("field ")))
        compute = self.core.compute_name(job.compute, errors)
        data = job.model_dump(mode="json", exclude_none=True)
        raw_inputs = {k: data[k] for k in _DATA if k in data}
        runner_inputs = resolve_inputs(self.ctx, raw_inputs, errors)
        if job.environment_id:
            self.core.runner_environment(job.environment_id, errors, field="environment_id")
        runtime: dict[str, Any] = {"warnings": list(notes)}
        # best_model (mlflow_model): the best trial's MLflow model, copied there when the job completes
        outs = {k: v for k, v in (data.get("outputs") or {}).items() if k == "best_model"}
        best_out = {**(outs.get("best_model") or {}), "type": "mlflow_model"}
        for k in data.get("outputs") or {}:
            if k != "best_model":
                errors.add(f"outputs.{k}", "an AutoML job has one output, best_model (mlflow_model)")
        runtime["outputs"] = resolve_outputs(self.ctx, name, {"best_model": best_out}, errors,
                                             parent=job.parent_job_name)
        if not errors.items and job.target_column_name:
            self._check_data(job, runner_inputs, errors, runtime)
        if errors.items:
            prefix = f"{source}: " if source else ""
            text = "; ".join(m if not f else f"field '{f}': {m}" for f, m in errors.items)
            raise ValidationError(prefix + text, details={"problems": [m for _, m in errors.items]})
        data["compute"] = compute
        data["primary_metric"] = runtime["metric"]
        for key in ("allowed_training_algorithms", "blocked_training_algorithms"):
            names = (data.get("training") or {}).get(key)
            if names:
                data["training"][key] = [canonical_model(job.task, n) for n in names]
        if notes:
            data.setdefault("properties", {})["openaml.warnings"] = "; ".join(notes)
        return JobPlan(data=data, experiment=job.experiment_name or "Default", compute=compute,
                       display_name=job.display_name, tags={"openaml.compute": compute, **job.tags},
                       runtime=runtime, entity=job)

    def _local_folder(self, runner_input: dict[str, Any]) -> str | None:
        try:
            port, rel = _port_of(self.ctx, runner_input)
        except Exception:  # noqa: BLE001
            return None
        return str(port.local_path(rel)) if port.has_local_path else None

    def _check_data(self, job: AutoMLJob, inputs: dict[str, Any], errors: ResolveErrors,
                    runtime: dict[str, Any]) -> None:
        from openaml.automl._data import data_problems, read_mltable
        from openaml.automl._learners import flaml_task, learners_for

        task = job.task
        target = str(job.target_column_name)
        folder = self._local_folder(inputs["training_data"])
        if folder is None:
            errors.add("training_data", "AutoML reads its training data before it runs; give an MLTable in a "
                                        "local datastore or an uploaded folder")
            return
        try:
            df = read_mltable(folder)
        except Exception as exc:  # noqa: BLE001 - unreadable data is the user's to fix: say what failed
            errors.add("training_data", f"cannot read the MLTable: {type(exc).__name__}: {exc}")
            return
        fc = job.forecasting.model_dump(exclude_none=True) if job.forecasting else {}
        for p in data_problems(df, task=task, target=target, weight=job.weight_column_name, forecasting=fc,
                               n_cross_validations=job.n_cross_validations, positive_label=job.positive_label):
            errors.items.append(("", p.removeprefix("field ")))
        for key in ("validation_data", "test_data"):
            if key in inputs and (vf := self._local_folder(inputs[key])):
                try:
                    vdf = read_mltable(vf)
                except Exception as exc:  # noqa: BLE001
                    errors.add(key, f"cannot read the MLTable: {type(exc).__name__}: {exc}")
                    continue
                missing = [c for c in df.columns if c not in vdf.columns and (key != "test_data" or c != target)]
                if missing:
                    errors.add(key, f"columns {missing} of training_data are missing (its columns: "
                                    f"{', '.join(map(str, vdf.columns))})")
        tr = job.training
        allowed = [canonical_model(task, a) or a for a in (tr.allowed_training_algorithms or [])] if tr else []
        blocked = [canonical_model(task, a) or a for a in (tr.blocked_training_algorithms or [])] if tr else []
        algorithms, problems = learners_for(task, allowed or None, blocked or None)
        errors.items.extend(("", p.removeprefix("field ")) for p in problems)
        metric = canonical_metric(task, job.primary_metric) if job.primary_metric else DEFAULT_METRIC[task]
        lim = job.limits
        cells = int(df.shape[0]) * int(df.shape[1])
        folds = 3
        if isinstance(job.n_cross_validations, int):
            folds = job.n_cross_validations
        floor_s = _TRIAL_OVERHEAD_S + cells * (folds + 1) / 2e6
        for f, minutes in (("limits.timeout_minutes", lim.timeout_minutes if lim else None),
                           ("limits.trial_timeout_minutes", lim.trial_timeout_minutes if lim else None)):
            if minutes is not None and minutes * 60 < floor_s:
                errors.add(f, f"{minutes} min is shorter than one trial on this data (about {floor_s:.0f} s for "
                              f"{df.shape[0]} rows x {df.shape[1]} columns); raise it")
        if errors.items:
            return
        y = df[target].dropna()
        n_classes = int(y.nunique()) if task == "classification" else 0
        ftask = flaml_task(task, n_classes)
        X = df[df[target].notna()].drop(columns=[target])
        if task == "forecasting":  # the lag features are built per trial: the frame's shape stands in for them
            X = X.select_dtypes("number")
        # FLAML's zero-shot configurations are computed by the trial workers, for the learners they refine
        runtime.update(metric=metric, algorithms=algorithms, ftask=ftask, n_classes=n_classes,
                       data_size=[int(X.shape[0]), int(X.shape[1])], training_folder=folder)

    # ------------------------------------------------------------------ start and controller
    def start(self, row: dict[str, Any]) -> None:
        """The AutoML job runs (it holds no compute slot) and launches its first trials."""
        started = self.ctx.store.transition_job(row["name"], JobStatus.RUNNING, from_statuses=[JobStatus.NOT_STARTED],
                                                start_time=utcnow())
        self.ctx.tracking.set_run_running(row["name"])
        rt = row["runtime"]
        try:
            self.ctx.tracking.set_tags(row["name"], {"automl_task": row["spec"]["task"],
                                                     "automl_primary_metric": rt.get("metric", "")})
        except Exception:  # noqa: BLE001
            pass
        if started is not None:
            self.on_tick(started)

    def _record_guardrails(self, row: dict[str, Any], items: list[dict[str, Any]]) -> None:
        """Keep the guardrails on the job (``job show``) and log one line each."""
        self.ctx.store.update_job(row["name"], runtime_update={"guardrails": items})
        row["runtime"]["guardrails"] = items
        for g in items:
            self.log(row["name"], f"guardrail {g['name']}: {g['status']}" + (f" ({g['details']})" if g.get("details")
                                                                              else ""))

    def _server_guardrails(self, row: dict[str, Any]) -> None:
        """The guardrails when no worker reported them (every worker ended first): computed here."""
        from openaml.automl._data import read_mltable
        from openaml.automl._guardrails import guardrails_of

        spec = row["spec"]
        try:
            folder = row["runtime"].get("training_folder")
            if not folder:
                return
            items = guardrails_of(read_mltable(folder), task=spec["task"], target=spec["target_column_name"],
                                  n_cross_validations=spec.get("n_cross_validations"),
                                  featurization=spec.get("featurization"), forecasting=spec.get("forecasting"))
        except Exception as exc:  # noqa: BLE001 - the job's result stands without them; the log says why
            log.exception("automl %s: guardrails failed", row["name"])
            self.log(row["name"], f"guardrails could not be computed: {type(exc).__name__}: {exc}")
            return
        self._record_guardrails(row, items)

    def _result(self, child: dict[str, Any], metric: str) -> float | None:
        res = child["runtime"].get("automl_result")
        if res is not None:
            return cast(float | None, res.get("value"))
        try:
            hist = self.ctx.tracking.metric_history(child["name"], metric)
        except Exception:  # noqa: BLE001
            hist = []
        vals = [float(v) for _, v in sorted(hist, key=lambda sv: sv[0] or 0) if v is not None and math.isfinite(v)]
        return vals[-1] if vals else None

    def _data_inputs(self, row: dict[str, Any]) -> dict[str, Any]:
        return {k: row["spec"][k] for k in _DATA if k in row["spec"]}

    def _children(self, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(workers, trials) of AutoML job ``name``, oldest first."""
        children = self.ctx.store.list_jobs(parent_name=name, include_archived=True, ascending=True)
        return [c for c in children if is_worker(c)], [c for c in children if not is_worker(c)]

    def _step(self, row: dict[str, Any]) -> None:
        name = row["name"]
        spec = row["spec"]
        rt = row["runtime"]
        metric = rt["metric"]
        lim = spec.get("limits") or {}
        if not rt.get("workers_started"):
            self.ctx.store.update_job(name, runtime_update={"workers_started": True})
            self._start_workers(row)
            return
        workers, children = self._children(name)
        if self._mirror(row, workers, children):
            workers, children = self._children(name)
        scores: list[float] = []
        for c in children:
            crt = c["runtime"]
            info = crt.get("automl") or json.loads(((c["spec"] or {}).get("properties") or {}).get("openaml.automl")
                                                   or "{}")
            terminal = c["status"] in TERMINAL_JOB_STATUSES
            value = self._result(c, metric) if terminal else None
            if terminal and "automl_result" not in crt:
                self.ctx.store.update_job(c["name"], runtime_update={"automl_result": {"value": value}})
                c["runtime"]["automl_result"] = {"value": value}
                shown = "no value" if value is None else f"{metric} = {value:.6g}"
                self.log(name, f"trial {c['name']} ({info.get('algorithm')}) {c['status']}: {shown}"
                         + (f" ({c['error']})" if c["error"] and value is None else ""))
            if value is not None:
                scores.append(_loss(metric, value))
        if rt.get("stopping") is None:
            self._share_peers(row, workers, children)
        stopping = rt.get("stopping")
        started = row["start_time"] or row["created_at"]
        elapsed = (utcnow() - started).total_seconds()
        timeout_s = int(lim.get("timeout_minutes") or 360) * 60
        if stopping is None:
            if elapsed >= timeout_s:
                stopping = f"limits.timeout_minutes ({lim.get('timeout_minutes') or 360} min) was reached"
            elif lim.get("exit_score") is not None and scores \
                    and min(scores) <= _loss(metric, float(lim["exit_score"])):
                stopping = f"limits.exit_score ({lim['exit_score']}) was reached"
            elif lim.get("enable_early_termination", True) and len(scores) >= _EARLY_AFTER:
                best_at = scores.index(min(scores))
                if len(scores) - 1 - best_at >= _EARLY_PATIENCE:
                    stopping = f"early termination: no improvement in the last {_EARLY_PATIENCE} trials"
            if stopping is not None:
                self.ctx.store.update_job(name, runtime_update={"stopping": stopping})
                self.log(name, f"search ends: {stopping}")
                if stopping.startswith("limits.timeout"):
                    self._stop_now(workers, children, stopping)
                else:
                    self._request_stop(workers, stopping)
        elif stopping.startswith("limits.timeout"):
            self._stop_now(workers, children, stopping)
        else:
            hard = timeout_stop(stopping, elapsed, timeout_s, lim.get("timeout_minutes") or 360)
            if hard:  # stopped early, a worker's trial still runs: the timeout still ends it
                self._stop_now(workers, children, hard)
        parent_cancel = f"parent job {name} was canceled"
        if any(c["error"] == parent_cancel or c["runtime"].get("cancel_reason") == parent_cancel for c in children):
            return
        self._follow(row, workers, children, stopping)
        workers, children = self._children(name)
        timed_out = (stopping or "").startswith("limits.timeout") or elapsed >= timeout_s
        if not timed_out:  # also after: a worker ending late hears there is none left
            self._worker_ensembles(row, workers, children, metric, self._members(children, metric),
                                   self._ensemble_kinds(row))
            workers, children = self._children(name)
            self._hurry(row, workers)  # row["runtime"] holds what _worker_ensembles just closed
        if any(c["status"] not in TERMINAL_JOB_STATUSES for c in (*workers, *children)):
            return
        if not timed_out and self._launch_ensembles(row, children, metric):
            return
        self._complete(row, children, metric, stopping, workers)

    def _trial_spec(self, row: dict[str, Any], index: int, settings: dict[str, Any], display: str,
                    info: dict[str, Any], timeout_s: int, members: list[str] | None = None) -> dict[str, Any]:
        """The child command job of one trial; an ensemble's ``members`` (trial names) are its inputs
        ``member_<i>`` (their ``outputs`` folders: a job's token reads its own run only)."""
        spec = row["spec"]
        name = row["name"]
        inputs = {k: spec[k] for k in _DATA if k in spec}
        args = " ".join(f"--{k} ${{{{inputs.{k}}}}}" for k in _DATA if k in spec)
        for i, m in enumerate(members or []):
            inputs[f"member_{i}"] = {"type": "uri_folder", "path": f"runs:/{m}/outputs"}
            args += f" --member ${{{{inputs.member_{i}}}}}"
        child: dict[str, Any] = {
            "type": "command", "name": f"{name}_{index}", "command": f"python -m openaml.automl._trial {args}",
            "inputs": inputs, "compute": row["compute"],
            "experiment_name": row["experiment_name"], "parent_job_name": name,
            "display_name": display, "limits": {"timeout": max(1, timeout_s)},
            "environment_variables": {"OMP_NUM_THREADS": str(settings["n_jobs"]),
                                      "OPENBLAS_NUM_THREADS": str(settings["n_jobs"]),
                                      **(spec.get("environment_variables") or {}),
                                      "OPENAML_AUTOML_TRIAL": json.dumps(settings)},
            "tags": {"openaml.automl": name, "openaml.trial_index": str(index),
                     "automl_algorithm": info["algorithm"]},
            "properties": {"openaml.automl": json.dumps(info)},
        }
        if spec.get("environment_id"):
            child["environment"] = spec["environment_id"]
        if spec.get("resources"):
            child["resources"] = spec["resources"]
        return child

    def _settings(self, row: dict[str, Any]) -> dict[str, Any]:
        spec, rt = row["spec"], row["runtime"]
        lim = spec.get("limits") or {}
        cores = lim.get("max_cores_per_trial")
        if cores in (None, -1):  # all cores, shared by the trials that run at once (more threads only contend)
            cores = max(1, (os.cpu_count() or 1) // int(lim.get("max_concurrent_trials") or 1))
        return {"task": spec["task"], "target": spec["target_column_name"], "metric": rt["metric"],
                "weight_column_name": spec.get("weight_column_name"),
                "cv_split_column_names": spec.get("cv_split_column_names"),
                "n_cross_validations": spec.get("n_cross_validations"),
                "validation_data_size": spec.get("validation_data_size"),
                "positive_label": spec.get("positive_label"), "featurization": spec.get("featurization"),
                "forecasting": spec.get("forecasting"),
                "explain": bool((spec.get("training") or {}).get("enable_model_explainability", True)),
                "n_jobs": int(cores)}

    def _submit(self, row: dict[str, Any], child: dict[str, Any], info: dict[str, Any]) -> bool:
        name = row["name"]
        try:
            self.core.submit(child)
        except ConflictError:
            return True  # created by a previous pass or server
        except OpenAMLError as exc:
            self._finish(row, JobStatus.FAILED, error=f"trial {child['name']} could not be submitted: {exc.message}")
            return False
        self.ctx.store.update_job(child["name"], runtime_update={"automl": info})
        if self.ctx.store.get_job(name)["status"] in TERMINAL_JOB_STATUSES:
            self.jobs.cancel(child["name"], reason=f"parent job {name} ended")
            return False
        return True

    def _ensemble_kinds(self, row: dict[str, Any]) -> list[str]:
        """``vote_ensemble``/``stack_ensemble`` as enabled (both by default, as in Azure)."""
        tr = row["spec"].get("training") or {}
        return [k for k, f in (("vote_ensemble", "enable_vote_ensemble"), ("stack_ensemble", "enable_stack_ensemble"))
                if tr.get(f, True)]

    def _members(self, children: list[dict[str, Any]], metric: str) -> list[str]:
        """The ensembles' members: the best completed search trials (at most 5), best first."""
        scored = [(c, self._result(c, metric)) for c in children if c["status"] == JobStatus.COMPLETED
                  and not (c["runtime"].get("automl") or {}).get("ensemble")]
        scored = [(c, v) for c, v in scored if v is not None]
        scored.sort(key=lambda cv: _loss(metric, cast(float, cv[1])))
        return [c["name"] for c, _ in scored[:_ENSEMBLE_SIZE]]

    def _launch_ensembles(self, row: dict[str, Any], children: list[dict[str, Any]], metric: str) -> bool:
        """Submit the vote/stack ensemble trials once (when enabled and 2+ trials scored); True if submitted."""
        name = row["name"]
        spec, rt = row["spec"], row["runtime"]
        if rt.get("ensembles_submitted"):
            return False
        tr = spec.get("training") or {}
        handed = {k for ks in (rt.get("ensembles_handed") or {}).values() for k in ks}
        kinds = [k for k in self._ensemble_kinds(row) if k not in handed]  # those no worker built
        members = self._members(children, metric)
        self.ctx.store.update_job(name, runtime_update={"ensembles_submitted": True})
        if len(members) < 2 or not kinds:
            return False
        lim = spec.get("limits") or {}
        elapsed = (utcnow() - (row["start_time"] or row["created_at"])).total_seconds()
        remaining = int(lim.get("timeout_minutes") or 360) * 60 - elapsed
        if remaining < 10:
            return False
        submitted = False
        index = len(children)
        for kind in kinds:
            algorithm = "VotingEnsemble" if kind == "vote_ensemble" else "StackEnsemble"
            settings = {**self._settings(row), "algorithm": algorithm, "learner": kind, "flaml_learner": kind,
                        "members": members, "stack": tr.get("stack_ensemble_settings") or {},
                        "time_limit_s": int(remaining)}
            info = {"index": index, "algorithm": algorithm, "learner": kind, "config": {"members": members},
                    "ensemble": True}
            child = self._trial_spec(row, index, settings, f"{algorithm}_{index}", info, int(remaining), members)
            if not self._submit(row, child, info):
                return submitted
            self.log(name, f"trial {child['name']} submitted: {algorithm} of {', '.join(members)}")
            submitted = True
            index += 1
        return submitted

    # ------------------------------------------------------------------ results
    def trials(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """Trials best first: name, index, algorithm, status, params (the hyperparameters), metric,
        duration_s, note, error (trials without the metric last, then by index)."""
        metric = row["runtime"].get("metric") or ""
        out = []
        for c in self._children(row["name"])[1]:
            info = c["runtime"].get("automl") or json.loads(((c["spec"] or {}).get("properties") or {})
                                                           .get("openaml.automl") or "{}")
            value = self._result(c, metric) if c["status"] in TERMINAL_JOB_STATUSES else None
            dur = None
            if c["start_time"]:
                dur = round(((c["end_time"] or utcnow()) - c["start_time"]).total_seconds(), 2)
            out.append({"name": c["name"], "index": info.get("index", -1), "algorithm": info.get("algorithm"),
                        "status": c["status"], "params": info.get("config") or {}, "metric": value,
                        "duration_s": dur, "terminated": None, "note": None, "error": c["error"]})
        out.sort(key=lambda t: (t["metric"] is None, _loss(metric, t["metric"]) if t["metric"] is not None else 0.0,
                                t["index"]))
        return out

    def extend_view(self, row: dict[str, Any], spec: JobRecord) -> JobRecord:
        """``job show`` of an AutoML job: trials best first, counts, guardrails, the best trial
        (``best_child_run_id``, score, algorithm) and its feature importance when explained."""
        view = cast(dict[str, Any], spec)
        rt = row["runtime"]
        trials = self.trials(row)
        view["trials"] = trials
        counts: dict[str, int] = {}
        for t in trials:
            counts[t["status"]] = counts.get(t["status"], 0) + 1
        view["trial_counts"] = counts
        view["guardrails"] = rt.get("guardrails") or []
        best = rt.get("best")
        if best:
            view["best_child_run_id"] = best["child"]
            view["best_score"] = best["value"]
            view["best_algorithm"] = best.get("algorithm")
            if best.get("feature_importance"):
                view["feature_importance"] = best["feature_importance"]
            view.setdefault("properties", {})["automl_best_child_run_id"] = best["child"]
        if rt.get("warnings"):
            view["warnings"] = list(rt["warnings"])
        return spec

    def _complete(self, row: dict[str, Any], children: list[dict[str, Any]], metric: str, stopping: str | None,
                  workers: list[dict[str, Any]] | None = None) -> None:
        name = row["name"]
        workers, children = self._children(name)
        scored = [(c, self._result(c, metric)) for c in children if c["status"] == JobStatus.COMPLETED]
        scored = [(c, v) for c, v in scored if v is not None]
        if not scored:
            failed = [c for c in children if c["status"] == JobStatus.FAILED]
            error = f"no trial logged the primary metric {metric!r} ({len(children)} trials"
            if failed:
                error += (f", {len(failed)} failed; e.g. {failed[0]['name']}: {failed[0]['error']}; its log: "
                          f"openaml job stream -n {failed[0]['name']}")
            error += ")" + (f"; {stopping}" if stopping else "")
            broken = [w for w in workers if w["status"] == JobStatus.FAILED]
            if broken:
                error += (f"; worker {broken[0]['name']} failed: {broken[0]['error']}; its log: "
                          f"openaml job stream -n {broken[0]['name']}")
            self._finish(row, JobStatus.FAILED, error=error)
            return
        if "guardrails" not in row["runtime"]:
            self._server_guardrails(row)
        best_child, best_value = min(scored, key=lambda cv: _loss(metric, cast(float, cv[1])))
        info = best_child["runtime"].get("automl") or {}
        summary = self.ctx.tracking.run_summary(best_child["name"])
        importance = None
        if summary["tags"].get("automl_feature_importance"):
            try:
                importance = json.loads(summary["tags"]["automl_feature_importance"])
            except ValueError:
                importance = None
        best = {"child": best_child["name"], "value": best_value, "algorithm": info.get("algorithm"),
                "feature_importance": importance}
        warnings = list(row["runtime"].get("warnings") or [])
        if importance is None and summary["tags"].get("automl_explanation_skipped"):  # never silently skipped
            warnings.append(f"training.enable_model_explainability: no feature importance for the best trial "
                            f"{best_child['name']}: {summary['tags']['automl_explanation_skipped']}")
            self.log(name, warnings[-1])
        try:
            self.ctx.tracking.set_tags(name, {"automl_best_child_run_id": best_child["name"],
                                              "best_child_run_id": best_child["name"],
                                              "automl_best_score": repr(best_value),
                                              "automl_best_algorithm": str(info.get("algorithm")),
                                              "automl_end_reason": stopping or "completed"})
            # the parent run carries the best child's metrics, as Azure's parent run does
            numeric = {k: float(v) for k, v in summary["metrics"].items()
                       if isinstance(v, (int, float)) and v == v and abs(v) != float("inf")}
            if numeric:
                self.ctx.tracking.log_metrics(name, numeric)
        except Exception:  # noqa: BLE001
            log.exception("automl %s: recording the best trial on its run failed", name)
        self._write_best_model(row, best_child["name"])
        self.ctx.store.update_job(name, runtime_update={"best": best, "end_reason": stopping or "completed",
                                                        "warnings": warnings},
                                  spec_update={"properties": {**(row["spec"].get("properties") or {}),
                                                              "automl_best_child_run_id": best_child["name"]}})
        self._finish(row, JobStatus.COMPLETED, error=None)

    def _write_best_model(self, row: dict[str, Any], child: str) -> None:
        """Copy the best trial's ``outputs/mlflow-model`` to the job's ``best_model`` output (what a
        pipeline's later step reads as ``${{parent.jobs.<node>.outputs.best_model}}``)."""
        out = ((row["runtime"] or {}).get("outputs") or {}).get("best_model")
        if not out or not out.get("datastore"):
            return
        try:
            local, _ = self.ctx.tracking.resolve_run_path(child, "outputs/mlflow-model")
            port = self.ctx.services["datastores"].port(out["datastore"]["name"])
            port.put(local, out["path"])
        except Exception as exc:  # noqa: BLE001 - the job's result stands; the log says what is missing
            log.exception("automl %s: writing best_model failed", row["name"])
            self.log(row["name"], f"output best_model was not written: {type(exc).__name__}: {exc}")

    def _finish(self, row: dict[str, Any], status: str, *, error: str | None) -> None:
        name = row["name"]
        done = self.core.finish(name, status, error=error, from_statuses=(JobStatus.RUNNING,))
        if done is None:
            return
        best = (done["runtime"] or {}).get("best")
        self.log(name, f"AutoML {status}" + (f": best trial {best['child']} {best['algorithm']} ({best['value']!r})"
                                             if best else "") + (f"; {error}" if error else ""))
