"""Pipeline jobs (azure-ai-ml ``PipelineJob``): the ``pipeline`` job kind, compile and controller.

The pipeline is a parent job (``type: pipeline``); each step a child command job named
``<pipeline>-<node>`` (deterministic, so the controller is idempotent and resumes after a server
restart without re-running finished steps). The controller :meth:`PipelineKind.advance` runs at
start, whenever a step ends (the job core's ``on_child_terminal``) and at server start (``reconcile``):

- a node whose upstream steps all completed is started at once (the scheduler then runs it when
  its compute has a free slot), its inputs bound to ``azureml://jobs/<child>/outputs/<name>``;
- a deterministic node whose fingerprint (component, code, environment, input contents,
  parameters, output settings) matches a step that completed *by running* is reused: its child
  job is created Completed with the earlier outputs, unless ``settings.force_rerun``;
- every step records why it ran or was reused (``properties["openaml.reason"]``); a step that
  ran says what changed since the last successful run of the same node of the same experiment;
- a failed step stops new steps (``continue_on_step_failure: false``, the default) or only its
  downstream steps (``true``); the pipeline ends Failed, or Canceled when a step was canceled.

Azure ML semantics reproduced: spec section 4 ("Semantics").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import pydantic

from openaml.constants import TERMINAL_JOB_STATUSES, JobStatus
from openaml.entities._base import validation_error_from_pydantic
from openaml.entities._pipeline import PipelineJob
from openaml.errors import NotFoundError, OpenAMLError
from openaml.records import JobRecord
from openaml.services._job_resolve import ResolveErrors, component_problems, resolve_inputs, resolve_outputs
from openaml.services._pipeline_graph import compile_pipeline
from openaml.services.kinds import JobKind, JobPlan
from openaml.store import utcnow

__all__ = ["PipelineKind"]

log = logging.getLogger("openaml.pipelines")

SKIPPED = "Skipped"
NOT_RUN = "NotStarted"


class PipelineKind(JobKind):
    type = "pipeline"
    runs_on_compute = False  # the steps run; the pipeline holds no slot (its compute column stays empty)

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        self._lock = threading.RLock()
        self._hash_cache: dict[tuple[str, int, int], str] = {}

    @property
    def jobs(self) -> Any:
        return self.ctx.services["jobs"]

    # ------------------------------------------------------------------ validation, start, restart
    def validate(self, spec: dict[str, Any], *, source: str | None, name: str) -> JobPlan:
        """Validate and compile (:meth:`compile`); the plan's runtime holds the compiled graph.

        Raises:
            ValidationError: every problem found, each naming the node and field, before anything runs.
        """
        job, data, plan = self.compile(spec, source=source, name=name)
        data.pop("warnings", None)
        if plan.get("warnings"):
            data["warnings"] = plan["warnings"]
        data["steps"] = {n: {"job": None, "status": NOT_RUN, "depends_on": plan["nodes"][n]["depends_on"]}
                         for n in plan["order"]}
        return JobPlan(data=data, experiment=job.experiment_name or "Default", compute="",
                       display_name=job.display_name, tags={**job.tags},
                       runtime={"plan": plan, "steps": {}, "outputs": {}}, entity=job)

    def start(self, row: dict[str, Any]) -> None:
        """The pipeline runs and starts every step whose upstream steps are done (none: the first ones)."""
        self.ctx.store.transition_job(row["name"], JobStatus.RUNNING, from_statuses=[JobStatus.NOT_STARTED],
                                      start_time=utcnow())
        self.ctx.tracking.set_run_running(row["name"])
        self.advance(row["name"])

    def on_tick(self, row: dict[str, Any]) -> None:
        """On a workspace several servers serve: advance (a step canceled on a standby server ends
        there, and only the leader drives the pipeline); one server hears every step's end."""
        work = self.ctx.services.get("background")
        if work is not None and work.shared:
            self.advance(row["name"])

    def reconcile(self, row: dict[str, Any]) -> None:
        """Resume a pipeline left running by a previous server (finished steps are not rerun)."""
        if row["status"] in (JobStatus.RUNNING, JobStatus.CANCEL_REQUESTED):
            self.advance(row["name"])

    def compile(self, spec: dict[str, Any], *, source: str | None = None,
                name: str | None = None) -> tuple[PipelineJob, dict[str, Any], dict[str, Any]]:
        """Validate a pipeline job and compile its plan without starting anything (used by submit and
        by schedules, which check their pipeline at create). ``name``: the pipeline job's name, when
        known (its steps, ``<name>-<node>``, may write their outputs under ``azureml/<name>/``).

        Returns:
            (the validated job, its JSON dump, the plan: ``nodes``, ``order``, ``outputs``).

        Raises:
            ValidationError: every problem found, each naming the node and field.
        """
        try:
            job = PipelineJob.model_validate(spec)
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=source, lines=None, kind="pipeline job") from None
        data = job.model_dump(mode="json", exclude_none=True)
        errors = ResolveErrors()
        plan = compile_pipeline(data, self.ctx.services["components"].resolve_reference, errors)
        settings = data.get("settings") or {}
        default_compute = settings.get("default_compute") or job.compute
        envs = self.ctx.services["environments"]
        for node, nd in plan["nodes"].items():
            comp = nd["component"]
            problems = component_problems(comp)
            if comp.get("type") == "parallel":
                from openaml.services._parallel_nodes import parallel_node_problems

                problems += parallel_node_problems(self.ctx, comp)
            for field, message in problems:
                errors.add(f"jobs.{node}.{field}" if comp.get("inline") else f"jobs.{node}.component.{field}", message)
            env = comp.get("environment") or settings.get("default_environment")
            if env is not None:
                try:
                    envs.resolve_for_job(env)
                except OpenAMLError as exc:
                    errors.add(f"jobs.{node}.environment", exc.message)
            self._check_paths(node, nd, errors, name)
            compute = nd["compute"] or default_compute
            try:
                nd["compute"] = self.ctx.services["computes"].canonical_name(compute)
            except NotFoundError as exc:
                errors.add(f"jobs.{node}.compute", exc.message)
        errors.raise_if_any(source)
        plan["warnings"] = errors.warnings
        return job, data, plan

    def _check_paths(self, node: str, nd: dict[str, Any], errors: ResolveErrors, pipeline: str | None) -> None:
        """A step's data inputs and outputs get the checks of a command job's (paths that leave their
        datastore through ``..`` or a link, inputs that do not exist or are of the wrong kind, an output
        path that is an existing file or another job's output folder, an output version that exists),
        at submission. ``pipeline``: the pipeline's name when known (its step is ``<pipeline>-<node>``)."""
        inputs = {k: {"type": src.get("type") or "uri_folder", "path": src["path"], "mode": src.get("mode")}
                  for k, src in (nd.get("inputs") or {}).items()
                  if src.get("kind") == "data" and src.get("path") and "${{" not in str(src["path"])}
        outputs = {k: o for k, o in (nd.get("outputs") or {}).items()
                   if o.get("path") and "${{" not in str(o["path"]).replace("${{name}}", "")}
        found = ResolveErrors()
        resolve_inputs(self.ctx, inputs, found)
        resolve_outputs(self.ctx, f"{pipeline}-{node}" if pipeline else f"{node}-check", outputs, found, parent=pipeline)
        for field, message in found.items:
            errors.add(f"jobs.{node}.{field}", message)

    def extend_view(self, row: dict[str, Any], spec: JobRecord) -> JobRecord:
        """``job show`` of a pipeline: every step with its live status, duration (s), whether it was
        reused and why it ran or was reused. Nodes of pipeline components are ``<node>-<inner node>``."""
        children = {c["name"]: c for c in self.ctx.store.list_jobs(parent_name=row["name"], include_archived=True)}
        steps = dict(spec.get("steps") or {})
        for node, step in steps.items():
            step = dict(step)
            child = children.get(step.get("job") or f"{row['name']}-{node}")
            if child is not None:
                step["job"] = child["name"]
                step["status"] = child["status"]
                props = child["spec"].get("properties") or {}
                step["reused"] = props.get("azureml.isreused") == "true"
                step["reason"] = props.get("openaml.reason") or step.get("reason")
                if child["start_time"]:
                    end = child["end_time"] or utcnow()
                    step["duration_s"] = round((end - child["start_time"]).total_seconds(), 2)
                if child["error"]:
                    step["error"] = child["error"]
            steps[node] = step
        spec["steps"] = steps
        return spec

    # ------------------------------------------------------------------ controller
    def on_terminal(self, row: dict[str, Any]) -> None:
        """The pipeline ended: cancel the steps still active; a step that never started ends too."""
        self._cancel_children(row)
        self._close_unstarted(row)

    def _close_unstarted(self, row: dict[str, Any]) -> None:
        """Give the steps that never started a terminal status with the reason (not ``NotStarted``):
        ``Canceled`` when the pipeline was canceled, else ``Skipped``."""
        plan = (row.get("runtime") or {}).get("plan")
        if not plan:
            return
        with self._lock:
            fresh = self.ctx.store.get_job(row["name"])
            steps: dict[str, Any] = dict(fresh["runtime"].get("steps") or {})
            started = {c["name"] for c in self.ctx.store.list_jobs(parent_name=row["name"], include_archived=True)}
            canceled = fresh["status"] == JobStatus.CANCELED
            changed = False
            for node in plan["order"]:
                step = steps.get(node) or {}
                if f"{row['name']}-{node}" in started or step.get("status", NOT_RUN) != NOT_RUN:
                    continue
                steps[node] = {**step, "status": JobStatus.CANCELED if canceled else SKIPPED,
                               "reason": step.get("reason") or (
                                   "not run: the pipeline was canceled" if canceled
                                   else f"not run: the pipeline ended {fresh['status']}")}
                changed = True
            if changed:
                self._save_steps(row["name"], steps)

    def on_child_terminal(self, prow: dict[str, Any], row: dict[str, Any]) -> None:
        """A step ended: adopt a sweep node's best trial, cache a completed step for reuse, advance."""
        parent = prow["name"]
        node = row["name"][len(parent) + 1:]
        step = (prow["runtime"].get("steps") or {}).get(node) or {}
        if row["type"] == "sweep" and row["status"] == JobStatus.COMPLETED:
            self._adopt_best_trial(row)
            self._bind_pipeline_outputs(parent, node, row["name"])
        if row["status"] == JobStatus.COMPLETED and step.get("reuse_key") and not step.get("reused"):
            self.ctx.store.add_step_cache(reuse_key=step["reuse_key"], identity=step["identity"],
                                          job_name=row["name"], fingerprint=step["fingerprint"])
        self.advance(parent)

    def _cancel_children(self, row: dict[str, Any]) -> None:
        """Cancel the steps still active, saying how their pipeline ended (review m14)."""
        how = {JobStatus.CANCELED: "was canceled", JobStatus.FAILED: "failed"}.get(row["status"], "ended")
        self.core.cancel_children(row["name"], reason=f"canceled because its pipeline {row['name']} {how}")

    def advance(self, name: str) -> None:
        """Start every ready step, reuse what can be reused, finish the pipeline when all is done."""
        with self._lock:
            for _ in range(1000):  # each pass may complete reused steps that unblock others
                if not self._advance_once(name):
                    return

    def _advance_once(self, name: str) -> bool:
        row = self.ctx.store.get_job(name)
        if row["status"] in TERMINAL_JOB_STATUSES:
            self._cancel_children(row)
            return False
        rt = row["runtime"]
        plan = rt["plan"]
        settings = row["spec"].get("settings") or {}
        steps: dict[str, Any] = dict(rt.get("steps") or {})
        children = {c["name"]: c for c in self.ctx.store.list_jobs(parent_name=name, include_archived=True)}
        status: dict[str, str] = {}
        for node in plan["order"]:
            child = children.get(f"{name}-{node}")
            status[node] = child["status"] if child else (steps.get(node) or {}).get("status", NOT_RUN)
        failed = [n for n, s in status.items() if s in (JobStatus.FAILED, JobStatus.CANCELED)]
        stop_new = row["status"] == JobStatus.CANCEL_REQUESTED or (failed and not settings.get("continue_on_step_failure"))
        changed = False
        for node in plan["order"]:
            if status[node] != NOT_RUN:
                continue
            deps = plan["nodes"][node]["depends_on"]
            bad = [d for d in deps if status[d] in (JobStatus.FAILED, JobStatus.CANCELED, SKIPPED)]
            if bad and row["status"] == JobStatus.CANCEL_REQUESTED:
                # a step that will never run ends with its pipeline (Azure shows it Canceled), not NotStarted
                steps[node] = {**steps.get(node, {}), "status": JobStatus.CANCELED,
                               "reason": "not run: the pipeline was canceled"}
                status[node] = JobStatus.CANCELED
                changed = True
                continue
            if bad:
                steps[node] = {**steps.get(node, {}), "status": SKIPPED,
                               "reason": f"not run: upstream step {bad[0]} ended {status[bad[0]]}"}
                status[node] = SKIPPED
                changed = True
                continue
            if stop_new or any(status[d] != JobStatus.COMPLETED for d in deps):
                continue
            steps[node] = self._start_step(row, node, settings)
            status[node] = steps[node].get("status") or JobStatus.QUEUED
            changed = True
        if changed:
            self._save_steps(name, steps)
        active = [n for n, s in status.items() if s not in (*TERMINAL_JOB_STATUSES, SKIPPED, NOT_RUN)]
        waiting = [n for n, s in status.items() if s == NOT_RUN]
        if not active and (not waiting or stop_new):
            if stop_new and waiting:
                first = failed[0] if failed else None
                for n in waiting:  # never to run: a terminal status, not NotStarted (review minor)
                    steps[n] = {**steps.get(n, {}), "status": SKIPPED if first else JobStatus.CANCELED,
                                "reason": f"not run: step {first} failed and continue_on_step_failure is false"
                                if first else "not run: the pipeline was canceled"}
                self._save_steps(name, steps)
            self._finish(row, status, children)
            return False
        return changed and any(s.get("reused") for s in steps.values())

    def _save_steps(self, name: str, steps: dict[str, Any]) -> None:
        public = {n: {k: v for k, v in s.items() if k not in ("fingerprint", "reuse_key", "identity")}
                  for n, s in steps.items()}
        row = self.ctx.store.get_job(name)
        spec_steps = dict(row["spec"].get("steps") or {})
        for n, s in public.items():
            spec_steps[n] = {**spec_steps.get(n, {}), **s}
        self.ctx.store.update_job(name, runtime_update={"steps": steps}, spec_update={"steps": spec_steps})

    def _finish(self, row: dict[str, Any], status: dict[str, str], children: dict[str, Any]) -> None:
        name = row["name"]
        values = list(status.values())
        if row["status"] == JobStatus.CANCEL_REQUESTED or JobStatus.CANCELED in values:
            final, error = JobStatus.CANCELED, "canceled" if row["status"] == JobStatus.CANCEL_REQUESTED else \
                "a step was canceled: " + ", ".join(n for n, s in status.items() if s == JobStatus.CANCELED)
        elif all(s == JobStatus.COMPLETED for s in values):
            final, error = JobStatus.COMPLETED, None
        else:
            bad = [n for n, s in status.items() if s == JobStatus.FAILED]
            saved = self.ctx.store.get_job(name)["runtime"].get("steps") or {}  # a step that failed to start
            details = []
            for n in bad:
                child = children.get(f"{name}-{n}")
                err = child["error"] if child else saved.get(n, {}).get("error")
                details.append(f"{n}: {err}")
            final, error = JobStatus.FAILED, "step(s) failed: " + "; ".join(details)
        self.core.finish(name, final, error=error)

    # ------------------------------------------------------------------ steps
    def _start_step(self, row: dict[str, Any], node: str, settings: dict[str, Any]) -> dict[str, Any]:
        name = row["name"]
        plan = row["runtime"]["plan"]
        nd = plan["nodes"][node]
        comp = nd["component"]
        child = f"{name}-{node}"
        inputs: dict[str, Any] = {}
        for in_name, src in nd["inputs"].items():
            if src["kind"] == "literal":
                inputs[in_name] = {"type": src["type"], "value": src["value"]}
            elif src["kind"] == "data":
                inputs[in_name] = {k: v for k, v in {"type": src["type"], "path": src["path"],
                                                     "mode": src.get("mode")}.items() if v is not None}
            else:
                inputs[in_name] = {k: v for k, v in {
                    "type": src["type"], "path": f"azureml://jobs/{name}-{src['node']}/outputs/{src['output']}",
                    "mode": src.get("mode")}.items() if v is not None}
        for in_name, decl in (comp.get("inputs") or {}).items():  # declared but unset optional inputs
            if in_name not in inputs and decl.get("type") not in ("binding",):
                typ = decl.get("type") or "uri_folder"
                inputs[in_name] = {"type": typ, "optional": True}
        outputs: dict[str, Any] = {}
        for out_name, o in nd["outputs"].items():
            entry = {k: v for k, v in o.items() if v is not None}
            if not entry.get("path") and settings.get("default_datastore"):
                entry["datastore"] = settings["default_datastore"]
            outputs[out_name] = entry
        fp = self._fingerprint(row, node, comp, inputs, outputs)
        key = _digest({k: v for k, v in fp.items() if k != "code_files"})
        identity = f"{row['experiment_name']}:{node}"
        step: dict[str, Any] = {"job": child, "reuse_key": key, "identity": identity, "fingerprint": fp,
                                "depends_on": nd["depends_on"]}
        reason = None
        if nd.get("sweep"):
            step.pop("reuse_key")
            return self._start_sweep(row, node, nd, comp, inputs, outputs, step)
        if nd.get("automl"):
            step.pop("reuse_key")
            return self._start_automl(row, node, nd, inputs, outputs, step)
        if settings.get("force_rerun"):
            reason = "ran: settings.force_rerun is true"
        elif not comp.get("is_deterministic", True):
            reason = "ran: the component is not deterministic (is_deterministic: false)"
        else:
            earlier = self._reusable(key)
            if earlier is not None:
                return self._reuse(row, node, child, earlier, step)
            reason = self._why_ran(identity, fp)
        spec: dict[str, Any] = {
            "type": "command", "name": child, "command": comp.get("command"), "parent_job_name": name,
            "experiment_name": row["experiment_name"], "display_name": nd.get("display_name") or node,
            "inputs": inputs, "outputs": outputs, "compute": nd["compute"],
            "environment_variables": nd.get("environment_variables") or {},
            "properties": {"azureml.isreused": "false", "openaml.reason": reason, "openaml.pipeline_node": node},
            "tags": {"openaml.pipeline": name, "openaml.node": node},
        }
        env = comp.get("environment") or settings.get("default_environment")
        for key_, value in (("code", comp.get("code")), ("environment", env), ("limits", nd.get("limits")),
                            ("resources", nd.get("resources") or comp.get("resources")),
                            ("distribution", nd.get("distribution"))):
            if value:
                spec[key_] = value
        if comp.get("type") == "parallel":  # a parallel node: a parallel job (openaml.parallel)
            from openaml.services._parallel_nodes import parallel_child_spec

            spec = parallel_child_spec(spec, comp, env)
        step.update(reused=False, reason=reason)
        try:
            created = self.core.submit(spec)
        except OpenAMLError as exc:
            step.update(status=JobStatus.FAILED, error=exc.message, job=None)
            return step
        step["status"] = created["status"]
        self._bind_pipeline_outputs(name, node, child)
        if self.ctx.store.get_job(name)["status"] in (*TERMINAL_JOB_STATUSES, JobStatus.CANCEL_REQUESTED):
            self.jobs.cancel(child, reason=f"pipeline {name} is ending")  # canceled while this step started
        return step

    def _start_sweep(self, row: dict[str, Any], node: str, nd: dict[str, Any], comp: dict[str, Any],
                     inputs: dict[str, Any], outputs: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        """A ``type: sweep`` node: a sweep job (sweep service) whose trials run the component with the
        search-space inputs sampled; its outputs become the best trial's when it completes (Azure ML)."""
        name = row["name"]
        child = f"{name}-{node}"
        sw = nd["sweep"]
        space = sw.get("search_space") or {}
        command = comp["command"]
        for key in space:
            command = re.sub(r"\$\{\{\s*inputs\." + re.escape(key) + r"\s*\}\}", "${{search_space." + key + "}}",
                             command)
        trial: dict[str, Any] = {"command": command}
        env = comp.get("environment") or (row["spec"].get("settings") or {}).get("default_environment")
        for key, value in (("code", comp.get("code")), ("environment", env),
                           ("environment_variables", nd.get("environment_variables")),
                           ("resources", nd.get("resources") or comp.get("resources")),
                           ("distribution", nd.get("distribution"))):
            if value:
                trial[key] = value
        reason = "ran: sweep nodes run every time (their trials are sampled)"
        spec: dict[str, Any] = {
            "type": "sweep", "name": child, "trial": trial, "experiment_name": row["experiment_name"],
            "display_name": nd.get("display_name") or node, "compute": nd["compute"],
            "inputs": {k: v for k, v in inputs.items() if k not in space and not v.get("optional")},
            "outputs": {k: {x: y for x, y in o.items() if x not in ("path", "datastore")} for k, o in outputs.items()},
            "properties": {"azureml.isreused": "false", "openaml.reason": reason, "openaml.pipeline_node": node},
            "tags": {"openaml.pipeline": name, "openaml.node": node},
            **{k: v for k, v in sw.items()},
        }
        step.update(reused=False, reason=reason, sweep=True)
        try:
            created = self.core.submit(spec, parent_name=name)
        except OpenAMLError as exc:
            step.update(status=JobStatus.FAILED, error=exc.message, job=None)
            return step
        step["status"] = created["status"]
        return step

    def _start_automl(self, row: dict[str, Any], node: str, nd: dict[str, Any], inputs: dict[str, Any],
                      outputs: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        """A ``type: automl`` node: an AutoML job (child of the pipeline, its trials its children) whose
        ``best_model`` output is the best trial's MLflow model (:mod:`openaml.services._pipeline_automl`)."""
        from openaml.services._pipeline_automl import automl_node_spec

        reason = "ran: automl nodes run every time (their search is not repeatable)"
        spec = automl_node_spec(row, node, nd, inputs, outputs, reason)
        if not spec.get("compute") and (row["spec"].get("settings") or {}).get("default_compute"):
            spec["compute"] = row["spec"]["settings"]["default_compute"]
        step.update(reused=False, reason=reason, automl=True)
        try:
            created = self.core.submit(spec, parent_name=row["name"])
        except OpenAMLError as exc:
            step.update(status=JobStatus.FAILED, error=exc.message, job=None)
            return step
        step["status"] = created["status"]
        self._bind_pipeline_outputs(row["name"], node, spec["name"])
        return step

    def _adopt_best_trial(self, row: dict[str, Any]) -> None:
        """A completed sweep node's outputs are its best trial's (``best_child_run_id``)."""
        best = (row["runtime"].get("best") or {}).get("child")
        if not best:
            return
        outs = self.ctx.store.get_job(best)["runtime"].get("outputs") or {}
        self.ctx.store.update_job(row["name"], runtime_update={"outputs": outs, "best_trial_outputs_of": best})

    def _bind_pipeline_outputs(self, name: str, node: str, child: str) -> None:
        row = self.ctx.store.get_job(name)
        outs = {}
        child_outs = self.ctx.store.get_job(child)["runtime"].get("outputs") or {}
        for y, src in row["runtime"]["plan"]["outputs"].items():
            if src["node"] == node and src["output"] in child_outs:
                outs[y] = child_outs[src["output"]]
        if outs:
            self.ctx.store.update_job(name, runtime_update={"outputs": {**(row["runtime"].get("outputs") or {}),
                                                                        **outs}})

    def _reusable(self, key: str) -> dict[str, Any] | None:
        for entry in self.ctx.store.find_step_cache(reuse_key=key, limit=5):
            try:
                job = self.ctx.store.get_job(entry["job_name"])
            except NotFoundError:
                continue
            outs = job["runtime"].get("outputs") or {}
            if job["status"] == JobStatus.COMPLETED and all(Path(o["local_path"]).exists() for o in outs.values()):
                return job
        return None

    def _reuse(self, row: dict[str, Any], node: str, child: str, earlier: dict[str, Any],
               step: dict[str, Any]) -> dict[str, Any]:
        name = row["name"]
        src_pipeline = earlier["parent_name"] or earlier["name"]
        reason = f"reused: same component, code, environment, inputs and parameters as {earlier['name']} " \
                 f"(pipeline {src_pipeline})"
        spec = {"type": "command", "name": child, "command": earlier["spec"].get("command"),
                "display_name": node, "experiment_name": row["experiment_name"], "parent_job_name": name,
                "properties": {"azureml.isreused": "true", "azureml.reusedrunid": earlier["name"],
                               "openaml.reason": reason, "openaml.pipeline_node": node},
                "outputs": earlier["spec"].get("outputs") or {}, "inputs": earlier["spec"].get("inputs") or {},
                "tags": {"openaml.pipeline": name, "openaml.node": node}}
        runtime = {"outputs": earlier["runtime"].get("outputs") or {}, "reused_from": earlier["name"]}
        self.core.record_done("command", child, JobPlan(
            data=spec, experiment=row["experiment_name"], compute=earlier["compute"], display_name=node,
            tags={"azureml.isreused": "true"}, runtime=runtime, parent_name=name, parent_run_id=name))
        self._bind_pipeline_outputs(name, node, child)
        step.update(status=JobStatus.COMPLETED, reused=True, reason=reason, reused_from=earlier["name"])
        return step

    def _why_ran(self, identity: str, fp: dict[str, Any]) -> str:
        last = self.ctx.store.find_step_cache(identity=identity, limit=1)
        if not last:
            return "ran: no earlier successful run of this step"
        old = last[0]["fingerprint"]
        changes: list[str] = []
        if old.get("component") != fp["component"]:
            changes.append("the component (command or ports) changed")
        if old.get("code") != fp["code"]:
            of, nf = old.get("code_files") or {}, fp.get("code_files") or {}
            files = sorted(k for k in set(of) | set(nf) if of.get(k) != nf.get(k))
            changes.append("code changed: " + (", ".join(files[:5]) + (" ..." if len(files) > 5 else "")
                                               if files else "snapshot differs"))
        if old.get("environment") != fp["environment"]:
            changes.append("the environment changed")
        for k in sorted(set(old.get("params") or {}) | set(fp["params"])):
            a, b = (old.get("params") or {}).get(k), fp["params"].get(k)
            if a != b:
                changes.append(f"parameter {k!r} changed: {a!r} -> {b!r}")
        for k in sorted(set(old.get("inputs") or {}) | set(fp["inputs"])):
            if (old.get("inputs") or {}).get(k) != fp["inputs"].get(k):
                changes.append(f"input {k!r} changed (content)")
        if old.get("outputs") != fp["outputs"]:
            changes.append("output settings changed")
        if not changes:
            return f"ran: the earlier run {last[0]['job_name']} is gone or its outputs were deleted"
        return f"ran: since {last[0]['job_name']}: " + "; ".join(changes)

    # ------------------------------------------------------------------ fingerprints
    def _fingerprint(self, row: dict[str, Any], node: str, comp: dict[str, Any], inputs: dict[str, Any],
                     outputs: dict[str, Any]) -> dict[str, Any]:
        component = _digest({"command": comp.get("command"), "inputs": comp.get("inputs"),
                             "outputs": comp.get("outputs"), "distribution": comp.get("distribution"),
                             **({"parallel": comp["parallel"]} if comp.get("parallel") else {})})
        code = comp.get("code")
        code_files: dict[str, str] = {}
        code_hash = ""
        if code:
            code_dir = self._code_dir(code)
            if code_dir is not None:
                code_files = self._tree_hashes(code_dir)
                code_hash = _digest(code_files)
            else:
                code_hash = code
        env = comp.get("environment")
        env_fp: Any = env
        if isinstance(env, str):
            try:
                env_fp = self.ctx.services["environments"].resolve_for_job(env)
            except Exception:  # noqa: BLE001 - an unresolvable env fails at submission with its message
                env_fp = env
        params = {k: v["value"] for k, v in inputs.items() if "value" in v}
        data: dict[str, str] = {}
        for k, v in inputs.items():
            if v.get("path"):
                data[k] = self._content_hash(v["path"])
        return {"component": component, "code": code_hash, "code_files": code_files,
                "environment": _digest(env_fp), "params": params, "inputs": data,
                "outputs": _digest({k: {x: y for x, y in o.items() if x != "datastore"} for k, o in outputs.items()})}

    def _code_dir(self, code: str) -> Path | None:
        if code.startswith("openaml-code:"):
            p = self.ctx.layout.code / code.split(":", 1)[1]
            return p if p.is_dir() else None
        try:
            return Path(self.ctx.services["datastores"].resolve(code))
        except Exception:  # noqa: BLE001
            return None

    def _content_hash(self, uri: str) -> str:
        try:
            local = Path(self.ctx.services["datastores"].resolve(uri))
        except Exception:  # noqa: BLE001 - asset refs and remote URLs: identity by reference
            try:
                asset = self.ctx.services["data"].resolve_reference(uri)
                local = Path(self.ctx.services["datastores"].resolve(asset["path"]))
            except Exception:  # noqa: BLE001
                return "uri:" + uri
        if not local.exists():
            return "missing:" + uri
        if local.is_file():
            return self._file_hash(local)
        return _digest(self._tree_hashes(local))

    def _tree_hashes(self, root: Path) -> dict[str, str]:
        out: dict[str, str] = {}
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for f in sorted(filenames):
                full = Path(dirpath) / f
                if full.is_file():
                    out[full.relative_to(root).as_posix()] = self._file_hash(full)
        return out

    def _file_hash(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        cached = self._hash_cache.get(key)
        if cached is None:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            cached = h.hexdigest()
            if len(self._hash_cache) > 100_000:
                self._hash_cache.clear()
            self._hash_cache[key] = cached
        return cached


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
