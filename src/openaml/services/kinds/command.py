"""Command jobs (azure-ai-ml ``CommandJob``): one runner on a compute slot.

Validation resolves what the runner needs before anything is stored: the compute, the command's
``${{inputs.x}}``/``${{outputs.y}}`` references, inputs (data assets, ``azureml://`` paths,
models), outputs (their datastore paths), the code snapshot and the environment. Start queues the
job; the scheduler launches its runner when the compute has a free slot (``max_instances``).
"""

from __future__ import annotations

from typing import Any

import pydantic

from openaml.constants import JobStatus
from openaml.entities import CommandJob
from openaml.entities._base import validation_error_from_pydantic
from openaml.services._distribution import check_distribution
from openaml.services._job_resolve import ResolveErrors, check_command, resolve_code, resolve_inputs, resolve_outputs
from openaml.services.kinds import JobKind, JobPlan

__all__ = ["CommandKind"]


class CommandKind(JobKind):
    type = "command"
    runs_on_compute = True

    def validate(self, spec: dict[str, Any], *, source: str | None, name: str) -> JobPlan:
        """Raises ValidationError naming every field with a problem (compute, command, inputs,
        outputs, code, environment), before anything is stored."""
        try:
            job = CommandJob.model_validate(spec)
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=source, lines=None, kind="command job") from None
        errors = ResolveErrors()
        compute = self.core.compute_name(job.compute, errors)
        data = job.model_dump(mode="json", exclude_none=True)
        inputs_raw = data.get("inputs", {})
        outputs_raw = data.get("outputs", {})
        check_command(job.command, inputs_raw, outputs_raw, errors)
        runner_inputs = resolve_inputs(self.ctx, inputs_raw, errors)
        runner_outputs = resolve_outputs(self.ctx, name, outputs_raw, errors, parent=job.parent_job_name)
        code_dir = resolve_code(self.ctx, job.code, errors)
        env = self.core.runner_environment(data.get("environment"), errors)
        check_distribution(self.ctx, data, compute, errors)
        errors.raise_if_any(source)
        runtime: dict[str, Any] = {
            "inputs": runner_inputs, "outputs": runner_outputs, "code_dir": code_dir, "environment": env,
            "timeout": job.limits.timeout if job.limits else None,
        }
        if env.get("warnings"):  # environment deviations (Python asked vs used...): the job's warnings
            runtime["warnings"] = list(env["warnings"])
            data.setdefault("properties", {})["openaml.warnings"] = "; ".join(env["warnings"])
        data["compute"] = compute
        data.pop("services", None)
        if job.services:
            data["services"] = {k: v.model_dump(mode="json", exclude_none=True) for k, v in job.services.items()}
        return JobPlan(data=data, experiment=job.experiment_name or "Default", compute=compute,
                       display_name=job.display_name, tags={"openaml.compute": compute, **job.tags},
                       runtime=runtime, parent_name=job.parent_job_name, parent_run_id=job.parent_job_name,
                       entity=job)

    def start(self, row: dict[str, Any]) -> None:
        """Queue the job for its compute and wake the scheduler."""
        self.ctx.store.transition_job(row["name"], JobStatus.QUEUED, from_statuses=[JobStatus.NOT_STARTED])
        self.core.scheduler.wake()
