"""Shared base for entities: pydantic models that validate like azure-ai-ml's schemas.

Unknown fields are errors (as in most Azure ML v2 schemas); ``$schema`` is accepted and
ignored. Validation errors name the file, line, field path, value and what is allowed.
"""

from __future__ import annotations

import collections.abc
import difflib
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, PrivateAttr

from openaml._yaml import LineMap, apply_set_overrides, format_loc, load_yaml_with_lines, override_sources
from openaml.errors import ValidationError

__all__ = ["Entity", "load_entity", "validation_error_from_pydantic", "stringify_values", "strip_azureml_prefix",
           "check_env_var_names"]

T = TypeVar("T", bound="Entity")


def stringify_values(v: Any) -> Any:
    """Tags and properties: every value a string (YAML gives ints and bools), None as ''."""
    if isinstance(v, dict):
        return {str(k): "" if x is None else str(x) for k, x in v.items()}
    return v


def check_env_var_names(v: Any) -> Any:
    """Refuse ``environment_variables`` names a process cannot be given or a shell cannot read:
    empty, or with ``=``, whitespace or control characters (POSIX: a name is ``[A-Za-z_][A-Za-z0-9_]*``
    for the shell; ``-`` and ``.`` are let through, as Docker and Azure ML pass them).

    Raises:
        ValueError: naming the variable (pydantic turns it into the field's validation error).
    """
    if isinstance(v, dict):
        for k in v:
            name = str(k)
            if not name or "=" in name or any(c.isspace() or not c.isprintable() for c in name):
                raise ValueError(f"environment variable name {name!r} is invalid: a name has no spaces, '=' or "
                                 "control characters (e.g. MY_SETTING)")
    return v


def strip_azureml_prefix(v: Any) -> Any:
    """``azureml:cpu-cluster`` -> ``cpu-cluster`` (compute references)."""
    if isinstance(v, str) and v.startswith("azureml:"):
        return v[len("azureml:"):]
    return v


class Entity(BaseModel):
    """Typed value object shared by server, SDK and CLI."""

    # defer_build: each model builds its validator on first use, not at import (CLI start-up)
    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True, defer_build=True)

    _base_path: Path | None = PrivateAttr(default=None)
    _source: str | None = PrivateAttr(default=None)
    _lines: dict[tuple[Any, ...], int] | None = PrivateAttr(default=None)

    # read-only fields filled by the server; ignored when a user sends them back
    _server_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def base_path(self) -> Path:
        """Folder that relative paths in this entity are resolved against (the YAML's folder)."""
        return self._base_path or Path.cwd()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)

    def _to_dict(self) -> dict[str, Any]:  # azure-ai-ml spelling
        return self.to_dict()

    def __str__(self) -> str:
        from openaml._yaml import dump_yaml

        return dump_yaml(self.to_dict())


def _members(tp: Any) -> list[Any]:
    """The types a value of annotation ``tp`` may be (Optional, Annotated and unions unwrapped)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _members(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(tp) for m in _members(a)]
    return [tp]


def _step(tp: Any, key: Any) -> list[Any]:
    """The annotations found one location step below ``tp`` (a field, a dict value, a list item, or a
    tagged-union member named by its ``type``)."""
    out: list[Any] = []
    for t in _members(tp):
        origin = typing.get_origin(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            field = t.model_fields.get(key) if isinstance(key, str) else None
            if field is None and isinstance(key, str):
                field = next((f for f in t.model_fields.values() if f.alias == key), None)
            if field is not None:
                out.append(field.annotation)
            elif "type" in t.model_fields and t.model_fields["type"].default == key:
                out.append(t)  # a tagged union's member, named by its discriminator value
        elif origin in (dict, collections.abc.Mapping):
            out.append(typing.get_args(t)[-1] if typing.get_args(t) else Any)
        elif origin in (list, tuple, set) and isinstance(key, int):
            out.append(typing.get_args(t)[0] if typing.get_args(t) else Any)
    return out


def allowed_fields(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """The field names a model accepts at ``loc`` (the location of an unknown field, itself excluded);
    empty when the location cannot be followed through the annotations."""
    current: list[Any] = [model]
    for key in loc[:-1]:
        current = [n for t in current for n in _step(t, key)]
    names: set[str] = set()
    for t in current:
        for m in _members(t):
            if isinstance(m, type) and issubclass(m, BaseModel):
                server = set(getattr(m, "_server_fields", ()) or ())  # read-only: never the user's to set
                names.update(f.alias or k for k, f in m.model_fields.items() if not k.startswith("_") and k not in server)
    return sorted(names)


def validation_error_from_pydantic(
    exc: pydantic.ValidationError, *, source: str | None, lines: LineMap | None, kind: str,
    model: Any = None, overrides: dict[tuple[Any, ...], str] | None = None,
) -> ValidationError:
    """One ValidationError naming file, line, field and value for every problem pydantic found.

    With ``model`` (the class validated), an unknown field's message lists the fields allowed there and
    the closest one ("did you mean ..."). With ``overrides`` (:func:`~openaml._yaml.override_sources`), a
    problem in a value that a ``--set`` gave is reported on that ``--set``, not on a line of the file.
    """
    parts = []
    first: dict[str, Any] = {}
    for err in exc.errors():
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith(("function-", "tagged-"))))
        # a value a --set gave (the longest matching override) is named by it, not by a line of the file
        by = next((label for path, label in sorted((overrides or {}).items(), key=lambda kv: -len(kv[0]))
                   if loc[:len(path)] == path), None)
        line = None
        if lines and by is None:
            probe = loc
            while probe and probe not in lines:
                probe = probe[:-1]
            line = lines.get(probe)
        where = by or (source or kind) + (f", line {line}" if line else "")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = allowed_fields(model, loc) if model is not None else []
            if allowed:
                guess = difflib.get_close_matches(str(loc[-1]) if loc else "", allowed, n=1)
                msg = (f"unknown field{f'; did you mean {guess[0]!r}?' if guess else ''} "
                       f"(allowed here: {', '.join(allowed)})")
            else:
                msg = f"unknown field (allowed fields are listed in the {kind} schema)"
        value = err.get("input")
        shown = repr(value) if not isinstance(value, dict) else "{...}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        parts.append(f"{where}: field '{format_loc(loc)}': {msg} (got {shown})")
        if not first:
            first = {"file": source, "line": line, "field": format_loc(loc), "value": shown, "kind": kind}
            if by is not None:
                first["option"] = by
    return ValidationError("; ".join(parts), details=first)


def load_entity(
    cls: type[T],
    source: str | Path | None = None,
    *,
    data: dict[str, Any] | None = None,
    params_override: list[Any] | None = None,
    relative_origin: str | Path | None = None,
    kind: str | None = None,
    override_labels: dict[str, str] | None = None,
) -> T:
    """Load ``cls`` from a YAML file (``source``) or a dict, applying ``--set`` overrides.

    ``override_labels``: how a command names the override of a field (``{"max_instances":
    "--max-instances 0"}`` for a flag), for its errors; ``--set a.b=x`` otherwise.

    Raises:
        ValidationError: YAML syntax error, unknown field, wrong type (file, line and field named).
    """
    lines: LineMap = {}
    src: str | None = None
    if source is not None:
        data, lines = load_yaml_with_lines(source)
        src = str(source)
        base = Path(source).resolve().parent
    else:
        base = Path(relative_origin).resolve() if relative_origin else Path.cwd()
    data = dict(data or {})
    data.pop("$schema", None)
    apply_set_overrides(data, params_override)
    try:
        obj = cls.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error_from_pydantic(exc, source=src, lines=lines, kind=kind or cls.__name__,
                                             model=cls, overrides={**override_sources(params_override), **{
                                                 tuple(k.split(".")): v for k, v in (override_labels or {}).items()}}
                                             ) from None
    obj._base_path = base
    obj._source = src
    obj._lines = lines or None
    return obj


def annotate_lines(message: str, lines: LineMap | None) -> str:
    """Insert ``line N`` before each ``field 'a.b'`` of ``message`` whose line is known."""
    if not lines:
        return message
    import re

    def repl(m: re.Match[str]) -> str:
        path = tuple(int(p) if p.isdigit() else p for p in m.group(2).split("."))
        probe = path
        while probe and probe not in lines:
            probe = probe[:-1]
        if not probe:
            return m.group(0)
        return f"{m.group(1)}line {lines[probe]}: field '{m.group(2)}'"

    return re.sub(r"(^|: |; )field '([^']+)'", repl, message)
