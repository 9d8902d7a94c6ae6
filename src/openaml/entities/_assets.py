"""Versioned assets: data assets and models (spec section 7)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from openaml.entities._base import Entity, stringify_values

__all__ = ["Data", "Model"]

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$"


class _Asset(Entity):
    name: str | None = Field(default=None, pattern=_NAME_PATTERN)
    version: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    # server-populated
    id: str | None = None
    creation_context: dict[str, Any] | None = None
    archived: bool = False

    @field_validator("version", mode="before")
    @classmethod
    def _version_to_str(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("version must be a string or an integer")
        v = str(v) if isinstance(v, int) else v
        if isinstance(v, str) and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}", v):
            raise ValueError(f"version {v!r} is invalid: use letters, digits, '.', '_' or '-', starting with a "
                             "letter or digit (e.g. 1, 2, 2024.1)")
        return v

    @field_validator("tags", "properties", mode="before")
    @classmethod
    def _tags_to_str(cls, v: Any) -> Any:
        return stringify_values(v)


class Data(_Asset):
    """A data asset: ``uri_file``, ``uri_folder`` (default) or ``mltable``.

    ``path`` is a local path (uploaded into the default datastore on create), an
    ``azureml://datastores/<ds>/paths/<p>`` URI, an ``azureml://jobs/<job>/outputs/<o>`` URI,
    or a remote URL kept as is. Versions are immutable (Azure ML behaviour).
    """

    type: Literal["uri_file", "uri_folder", "mltable"] = "uri_folder"
    path: str | None = None
    datastore: str | None = None
    auto_delete_setting: dict[str, Any] | None = None


class Model(_Asset):
    """A model: ``custom_model`` (default), ``mlflow_model`` or ``triton_model``.

    Stored in the MLflow model registry of the workspace, so that models registered from
    user code through MLflow and models created here are one list (Azure ML behaviour).
    """

    type: Literal["custom_model", "mlflow_model", "triton_model"] = "custom_model"
    path: str | None = None
    flavors: dict[str, Any] | None = None
    stage: str | None = None
    datastore: str | None = None
    job_name: str | None = None
