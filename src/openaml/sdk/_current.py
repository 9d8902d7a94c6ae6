"""The ``MLClient`` that ``azureml://`` URIs resolve through in this process.

Every new ``MLClient`` registers itself here; the ``azureml://`` fsspec filesystem
(:mod:`openaml.sdk._fsspec`, found by fsspec through its ``fsspec.specs`` entry point) reads it. Kept
apart from that module so that making a client does not import fsspec (~0.1 s of CLI start-up).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

__all__ = ["register_client", "current_client"]

_lock = threading.Lock()
_current: weakref.ref[Any] | None = None


def register_client(client: Any) -> None:
    """Make ``client`` the workspace that ``azureml://`` URIs resolve through in this process."""
    global _current
    with _lock:
        _current = weakref.ref(client)


def current_client() -> Any:
    """The most recently registered client still alive, or None."""
    with _lock:
        ref = _current
    return ref() if ref is not None else None
