"""Which backend runs a compute: a table keyed by compute type, imported on first use.

``COMPUTE_TYPES`` maps the ``type`` of a compute (as a user's YAML names it) to a backend name;
``BACKENDS`` maps a backend name to ``"module:Class"``, imported only when a job first needs it,
so an optional backend (Ray) costs nothing until a compute of its type runs a job. Azure's types
that mean "machines that run jobs" (``amlcompute``, ``computeinstance``) run as local processes,
as they always did here.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from openaml.compute._base import ComputeBackend, JobHandle
from openaml.errors import ValidationError

__all__ = ["BACKENDS", "COMPUTE_TYPES", "BackendRegistry", "compute_types", "register_backend"]

#: backend name -> "module:Class" (a :class:`ComputeBackend` subclass made with no arguments)
BACKENDS: dict[str, str] = {
    "local": "openaml.compute._local:LocalBackend",
    "ray": "openaml.compute._ray:RayBackend",  # needs the `ray` extra (pip install 'openaml[ray]')
}
#: compute type (a compute YAML's ``type``) -> backend name
COMPUTE_TYPES: dict[str, str] = {
    "local": "local",
    "amlcompute": "local",
    "computeinstance": "local",
    "ray": "ray",
}


def register_backend(name: str, target: str, compute_types: tuple[str, ...] = ()) -> None:
    """Add a backend (``target`` = ``"module:Class"``) and the compute types it runs."""
    BACKENDS[name] = target
    for t in compute_types:
        COMPUTE_TYPES[t] = name


def compute_types() -> list[str]:
    """The compute types a job can run on, sorted."""
    return sorted(COMPUTE_TYPES)


class BackendRegistry:
    """Backend instances by name, made on first use (one per backend per server)."""

    def __init__(self) -> None:
        self._made: dict[str, ComputeBackend] = {}
        self._lock = threading.Lock()

    def backend(self, name: str) -> ComputeBackend:
        """The backend called ``name``.

        Raises:
            ValidationError: no such backend (naming the known ones), or it cannot be imported
                (an optional dependency missing: the import error says which).
        """
        with self._lock:
            made = self._made.get(name)
            if made is not None:
                return made
            target = BACKENDS.get(name)
            if target is None:
                raise ValidationError(f"compute backend {name!r} is unknown; known backends: {', '.join(sorted(BACKENDS))}")
            module, _, cls_name = target.partition(":")
            try:
                cls = getattr(importlib.import_module(module), cls_name)
            except (ImportError, AttributeError) as exc:
                raise ValidationError(f"compute backend {name!r} ({target}) cannot be loaded: {exc}") from None
            made = cls()
            self._made[name] = made
            return made

    def for_compute(self, compute: dict[str, Any]) -> ComputeBackend:
        """The backend that runs jobs on ``compute`` (a compute record with ``name`` and ``type``).

        Raises:
            ValidationError: its type has no backend (naming the compute, its type and the known types).
        """
        kind = str(compute.get("type") or "")
        name = COMPUTE_TYPES.get(kind)
        if name is None:
            raise ValidationError(
                f"compute {compute.get('name')!r} has type {kind!r}, which no compute backend runs; known types: "
                f"{', '.join(compute_types())}", details={"compute": compute.get("name"), "type": kind})
        return self.backend(name)

    def for_handle(self, handle: JobHandle) -> ComputeBackend:
        """The backend that made ``handle``. Raises ValidationError as :meth:`backend`."""
        return self.backend(handle.backend)
