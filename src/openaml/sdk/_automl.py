"""Submitting an AutoML job from the SDK/CLI: field checks, then local MLTable folders uploaded
(``training_data``/``validation_data``/``test_data`` given as local paths), as azure-ai-ml does."""

from __future__ import annotations

import warnings
from typing import Any

from openaml.entities._automl import AutoMLJob, automl_problems
from openaml.errors import ValidationError

__all__ = ["prepare_automl"]

_LOCAL_MARKERS = ("azureml:", "azureml://", "openaml-code:", "runs:/", "http://", "https://", "wasbs://",
                  "abfss://", "adl://", "s3://", "gs://", "/subscriptions/")


def prepare_automl(ops: Any, job: AutoMLJob, *, progress: bool = False) -> dict[str, Any]:
    """The wire spec of ``job`` with local data folders uploaded.

    Raises:
        ValidationError: every field problem (:func:`automl_problems`), or a local data path that
            does not exist (field and resolved path named).
    """
    from openaml.sdk._jobs import _default_experiment
    from openaml.sdk._upload import upload_path

    src = job._source or "automl job"
    problems, notes = automl_problems(job)
    if problems:
        raise ValidationError(f"{src}: " + "; ".join(problems), details={"file": src, "problems": problems})
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=4)
    data = job.model_dump(mode="json", exclude_none=True)
    for key in ("training_data", "validation_data", "test_data"):
        inp = data.get(key)
        path = inp.get("path") if isinstance(inp, dict) else None
        if isinstance(inp, dict) and path and not str(path).startswith(_LOCAL_MARKERS):
            local = (job.base_path / str(path)).resolve()
            if not local.exists():
                raise ValidationError(f"{src}: field '{key}.path': {path!r} does not exist (resolved to {local})",
                                      details={"file": src, "field": f"{key}.path", "value": path})
            inp["path"] = upload_path(ops._t, local, progress=progress)["uri"]
    if not job.experiment_name:
        data["experiment_name"] = _default_experiment(job)
    return data
