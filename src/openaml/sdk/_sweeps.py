"""Submitting a sweep job from the SDK: its trial component file loaded, its checks, its uploads.

``jobs.create_or_update(sweep_job)`` calls :func:`prepare_sweep`; the trial's code and local
inputs are uploaded as a command job's are (azure-ai-ml behaviour).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from openaml._load import load_component
from openaml.entities._io import normalize_inputs, normalize_outputs
from openaml.entities._job import CommandJob
from openaml.entities._sweep import (
    _SEARCH_EXPR,
    SweepJob,
    TrialCommand,
    is_component_reference,
    sweep_problems,
    trial_from_component,
)
from openaml.errors import ValidationError

__all__ = ["prepare_sweep", "resolve_local_trial"]


def resolve_local_trial(job: SweepJob) -> None:
    """``trial: ./component.yml``: load the component (relative to this job's YAML) and make it
    the inline trial; ``azureml:`` references are left to the server, which resolves them.

    Raises:
        ValidationError: the file is missing or not a command component, or the sweep's
            inputs/search space do not fit the component's inputs (each problem named).
    """
    ref = job.trial
    if not isinstance(ref, str) or is_component_reference(ref):
        return
    src = job._source or "sweep job"
    path = Path(ref)
    if not path.is_absolute():
        path = Path(job._base_path or ".") / path
    if not path.is_file():
        raise ValidationError(f"{src}: field 'trial': component file {ref!r} not found (looked at {path}); give a "
                              "command component YAML, or azureml:<name>:<version> / azureml:<name>@latest",
                              details={"file": src, "field": "trial", "value": ref})
    comp = load_component(path)
    data = comp.model_dump(mode="json", exclude_none=True)
    code = data.get("code")
    if code and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", code):
        data["code"] = str((path.parent / code).resolve())  # relative to the component's own file
    trial, inputs, outputs, problems = trial_from_component(
        data, job.inputs, job.outputs, job.search_space, component=str(ref))
    if problems:
        raise ValidationError(f"{src}: " + "; ".join(problems), details={"file": src, "problems": problems})
    job.trial = TrialCommand.model_validate(trial)
    job.inputs = normalize_inputs(inputs)
    job.outputs = normalize_outputs(outputs)


def prepare_sweep(ops: Any, job: SweepJob, *, progress: bool = False) -> dict[str, Any]:
    """Validate, then upload the trial's code and local inputs as a command job would."""
    src = job._source or "sweep job"
    resolve_local_trial(job)
    # checked on a copy: the server clamps too and records the clamp in the job's warnings
    problems, notes = sweep_problems(job.model_copy(deep=True))
    if problems:
        raise ValidationError(f"{src}: " + "; ".join(problems), details={"file": src, "problems": problems})
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=3)
    data = job.model_dump(mode="json", exclude_none=True)
    # the search-space expressions are the sweep's; a stand-in lets the command-job preparation
    # (uploads, environment inlining, default experiment) run unchanged
    trial = job.trial if isinstance(job.trial, TrialCommand) else TrialCommand(command="echo")
    stand_in = _SEARCH_EXPR.sub("0", trial.command)
    for key in job.search_space:  # a swept x is also the trial's input x: ${{inputs.x}} reads it
        if key not in job.inputs:
            stand_in = re.sub(r"\$\{\{\s*inputs\." + re.escape(key) + r"\s*\}\}", "0", stand_in)
    tmp = CommandJob(command=stand_in, code=trial.code, environment=trial.environment,
                     inputs=job.inputs, outputs=job.outputs, experiment_name=job.experiment_name)
    tmp._base_path = job._base_path
    tmp._source = job._source
    try:
        prepared = ops._prepare_command(tmp, progress=progress)
    except ValidationError as exc:  # the stand-in's command is the sweep's trial.command
        exc.message = exc.message.replace("field 'command'", "field 'trial.command'")
        exc.args = (exc.message,)
        raise
    for key in ("code", "environment"):
        if key in prepared and isinstance(data["trial"], dict):
            data["trial"][key] = prepared[key]
    data["inputs"] = prepared.get("inputs", {})
    data["outputs"] = prepared.get("outputs", {})
    data["experiment_name"] = prepared.get("experiment_name")
    return data
