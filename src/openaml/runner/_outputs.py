"""Checks on a job's declared outputs before any is put into its datastore.

A job whose outputs the server would refuse to register (an ``mlflow_model`` output without an
MLmodel file, an ``mltable`` output without a valid MLTable file, a model folder with a link
pointing outside it) fails before anything is published,
so that a failed job leaves no partial output (docs/guide/jobs.md; Azure ML registers a job's
named outputs only once the job has succeeded).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["output_problem"]

MODEL_TYPES = ("custom_model", "mlflow_model", "triton_model")


def output_problem(name: str, out: dict[str, Any], produced: Path) -> str | None:
    """Why output ``name`` (its runner spec ``out``, its files at ``produced``) cannot be
    published and registered, or None. Only outputs that register a model or an mltable are
    checked (other data outputs are registered by reference).

    Returns a message naming the output, e.g. ``output 'm' (mlflow_model) has no MLmodel file``.
    """
    if not out.get("register") or out.get("type") not in (*MODEL_TYPES, "mltable") or not produced.exists():
        return None
    if out["type"] == "mltable":  # registered as a data asset, which needs a valid MLTable file
        from openaml.datastores import validate_mltable_folder
        from openaml.errors import ValidationError

        try:
            validate_mltable_folder(produced, label=f"output {name!r}")
        except ValidationError as exc:
            return f"output {name!r} (type mltable, registered as {out['register'].get('name')}): {exc.message}"
        return None
    if out["type"] == "mlflow_model":
        mlmodel = produced / "MLmodel"
        if not produced.is_dir() or not mlmodel.is_file() or mlmodel.is_symlink():
            return (f"output {name!r} (type mlflow_model, registered as {out['register'].get('name')}) has no "
                    "MLmodel file; save the model with mlflow.<flavor>.save_model into ${{outputs." + name + "}}, "
                    "or declare the output as custom_model")
    if produced.is_dir():
        root = produced.resolve()
        for dirpath, dirnames, filenames in os.walk(produced):
            for entry in (*dirnames, *filenames):
                full = Path(dirpath) / entry
                if full.is_symlink():
                    target = full.resolve()
                    if target != root and root not in target.parents:
                        rel = full.relative_to(produced).as_posix()
                        return (f"output {name!r}: {rel!r} is a link to {os.readlink(full)}, outside the output's "
                                "folder; a registered model may only hold links inside its folder")
    return None
