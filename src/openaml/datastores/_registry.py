"""Datastore backends by ``type``, imported on first use (optional ones need their extras)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from openaml.datastores._base import DatastorePort
from openaml.errors import UnsupportedError, ValidationError

__all__ = ["BACKENDS", "backend_class", "open_datastore", "supported_types"]

#: datastore ``type`` -> ``"module:Class"`` of its :class:`DatastorePort`; a new backend is one line
BACKENDS: dict[str, str] = {
    "local": "openaml.datastores._local:LocalDatastore",
    "s3": "openaml.datastores._s3:S3DatastorePort",
    "azure_blob": "openaml.datastores._azure_blob:AzureBlobDatastorePort",
}


def supported_types() -> list[str]:
    """The datastore types whose files can be read and written here."""
    return sorted(BACKENDS)


def backend_class(type_: str, *, name: str = "?") -> type[DatastorePort]:
    """The port class serving datastores of ``type_``.

    Raises:
        UnsupportedError: no backend for that type (naming the datastore, its type and the
            supported types; such datastores are kept as metadata only).
    """
    target = BACKENDS.get(type_)
    if target is None:
        raise UnsupportedError(
            f"datastore {name!r} is of type {type_}, which this installation keeps as metadata only; its files "
            f"cannot be read here (supported datastore types: {', '.join(supported_types())}). Use a local datastore.",
            details={"datastore": name, "type": type_, "supported": supported_types()})
    module, _, cls = target.partition(":")
    try:
        found = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise UnsupportedError(f"datastore {name!r} of type {type_} needs a package that is not installed: {exc}",
                               details={"datastore": name, "type": type_}) from None
    return found  # type: ignore[no-any-return]


def open_datastore(definition: Mapping[str, Any], *, base: str | os.PathLike[str] | None = None) -> DatastorePort:
    """The port of a datastore from its definition (``name``, ``type`` and the type's fields).

    ``base`` is the folder relative local paths are taken from (the workspace folder).

    Raises:
        UnsupportedError: a type without a backend. ValidationError: no name, or a field the
            backend needs is missing.
    """
    name = definition.get("name")
    if not name:
        raise ValidationError("a datastore definition needs 'name'")
    type_ = str(definition.get("type") or "local")
    cls = backend_class(type_, name=str(name))
    fields = {k: v for k, v in definition.items() if k not in ("name", "type")}
    return cls(str(name), fields, base=base)
