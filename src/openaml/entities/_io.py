"""Job and component inputs and outputs (spec 2.1, 2.2)."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails

from openaml.constants import DATA_TYPES, INPUT_MODES, MODEL_TYPES, OUTPUT_MODES, PRIMITIVE_TYPES
from openaml.entities._base import Entity

__all__ = ["Input", "Output", "InputType", "legacy_path_type", "normalize_inputs", "normalize_outputs", "numeric"]

InputType = Literal[
    "uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model", "triton_model",
    "string", "number", "integer", "boolean",
]


class Input(Entity):
    """``Input(type="uri_folder", path=None, mode=None, ...)`` as in azure-ai-ml.

    Data and model inputs carry a ``path``; primitive inputs (``string``, ``number``,
    ``integer``, ``boolean``) carry ``default`` (on components) or a literal value.
    """

    type: InputType = "uri_folder"
    path: str | None = None
    mode: Literal["ro_mount", "download", "direct", "eval_mount", "eval_download", "rw_mount", "mount"] | None = None
    default: Any = None
    optional: bool | None = None
    description: str | None = None
    min: float | None = None
    max: float | None = None
    enum: list[Any] | None = None
    value: Any = None
    datastore: str | None = None
    path_on_compute: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            raise TypeError("Input takes keyword arguments only, e.g. Input(type='uri_file', path='...')")
        super().__init__(**kwargs)

    @model_validator(mode="before")
    @classmethod
    def _legacy_path(cls, v: Any) -> Any:
        return legacy_path_type(v)

    @model_validator(mode="after")
    def _check(self) -> "Input":
        if self.type in ("number", "integer"):
            # YAML 1.1 reads 1e-3 as a string; Azure ML accepts numeric strings for number inputs
            self.default = numeric(self.default, self.type)
            self.value = numeric(self.value, self.type)
        return self

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: Any, info: ValidationInfo) -> Any:
        # a field check (not the model's), so that the error names inputs.<name>.mode
        typ = info.data.get("type")
        if v is not None and typ in DATA_TYPES + MODEL_TYPES:
            allowed = INPUT_MODES if typ == "mltable" else ("ro_mount", "download", "direct")
            if v not in allowed:
                raise ValueError(f"mode {v!r} is not allowed for a {typ} input; allowed: {', '.join(allowed)}"
                                 + ("" if typ == "mltable" else " (eval_mount and eval_download are for mltable "
                                    "inputs; rw_mount and mount are output modes)"))
        return v

    @property
    def is_primitive(self) -> bool:
        return self.type in PRIMITIVE_TYPES


class Output(Entity):
    """``Output(type="uri_folder", path=None, mode=None, name=None, version=None)``.

    ``name``/``version`` register the output as a data asset (or a model for model types)
    when the job completes. The default ``path`` is
    ``azureml://datastores/workspaceblobstore/paths/azureml/<job>/<output>/``.
    """

    type: Literal["uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model", "triton_model"] = "uri_folder"
    path: str | None = None
    mode: Literal["rw_mount", "upload", "mount", "direct"] | None = None
    name: str | None = None
    version: str | None = None
    description: str | None = None
    datastore: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            raise TypeError("Output takes keyword arguments only, e.g. Output(type='uri_folder')")
        super().__init__(**kwargs)

    @model_validator(mode="before")
    @classmethod
    def _legacy_path(cls, v: Any) -> Any:
        return legacy_path_type(v)

    @model_validator(mode="after")
    def _check(self) -> "Output":
        if self.mode is not None and self.mode not in OUTPUT_MODES:
            raise ValueError(f"mode {self.mode!r} not allowed for an output; allowed: {', '.join(OUTPUT_MODES)}")
        return self


def legacy_path_type(v: Any) -> Any:
    """``type: path``, the older v2 port type (Azure's RAI component specs and samples declare their
    data inputs and outputs with it; the v2 port schema still accepts it as legacy), is a folder:
    read as ``uri_folder``, as Azure ML runs it. Anything else unchanged."""
    if isinstance(v, dict) and isinstance(v.get("type"), str) and v["type"].strip().lower() == "path":
        return {**v, "type": "uri_folder"}
    return v


def numeric(v: Any, typ: str) -> Any:
    """``"1e-3"`` -> ``0.001`` for a ``number`` input (``"5"`` -> ``5`` for ``integer``); anything
    else unchanged, so the type check still names a value that is not a number."""
    if not isinstance(v, str):
        return v
    text = v.strip()
    try:
        if typ == "integer":
            return int(text)
        f = float(text)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "e" not in text.lower() and "." not in text else f


def normalize_inputs(raw: dict[str, Any] | None) -> dict[str, Input]:
    """Turn YAML/SDK inputs into ``Input`` objects; bare scalars become literal inputs."""
    out: dict[str, Input] = {}
    problems: list[InitErrorDetails] = []
    for key, value in (raw or {}).items():
        if isinstance(value, Input):
            out[key] = value
        elif isinstance(value, dict) and ("type" in value or "path" in value or "value" in value or "default" in value):
            data = dict(value)
            if "type" not in data and "path" not in data:
                v = data.get("value", data.get("default"))
                data["type"] = _literal_type(v)
            _validate_named(Input, key, data, out, problems)
        elif isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = Input(type=_literal_type(value), value=value)
        else:
            raise ValueError(f"input {key!r}: expected a literal or a mapping with type/path, got {type(value).__name__}")
    if problems:
        raise pydantic.ValidationError.from_exception_data("Input", problems)
    return out


def _validate_named(cls: Any, key: str, data: dict[str, Any], out: dict[str, Any],
                    problems: list[InitErrorDetails]) -> None:
    """``out[key] = cls.model_validate(data)``, or its errors appended to ``problems`` with the
    input's or output's name in their location (``inputs.<key>.path``, not ``inputs.path``), as
    pydantic gives for a dict of models; every port's problems are reported at once."""
    try:
        out[key] = cls.model_validate(data)
    except pydantic.ValidationError as exc:
        for e in exc.errors():
            item: InitErrorDetails = {"type": e["type"], "loc": (key, *e["loc"]), "input": e["input"]}  # type: ignore[typeddict-item]
            if e.get("ctx"):
                item["ctx"] = e["ctx"]
            problems.append(item)


def _literal_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    return "string"


def normalize_outputs(raw: dict[str, Any] | None) -> dict[str, Output]:
    out: dict[str, Output] = {}
    problems: list[InitErrorDetails] = []
    for key, value in (raw or {}).items():
        if isinstance(value, Output):
            out[key] = value
        elif value is None:
            out[key] = Output()
        elif isinstance(value, dict):
            _validate_named(Output, key, value, out, problems)
        else:
            raise ValueError(f"output {key!r}: expected a mapping, got {value!r}")
    if problems:
        raise pydantic.ValidationError.from_exception_data("Output", problems)
    return out
