"""``mltable.load("azureml://datastores/...")`` in the user's own Python.

mltable does not read through fsspec: it hands ``azureml://subscriptions/...`` URIs to its Rust
reader, which calls Azure, and takes the short ``azureml://datastores/...`` form for a local path
(``os.path.abspath`` of it). So, once the SDK is imported, ``mltable.load`` is wrapped: an
``azureml://`` datastore URI of a local datastore of the workspace is replaced by its folder, which
mltable loads as any local MLTable folder; anything else goes to mltable unchanged. The wrapper is
installed when mltable is imported (or at once if it already is); mltable itself is not imported
by openaml.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
from typing import Any

__all__ = ["install_mltable_hook"]


def _local(uri: Any) -> Any:
    if not (isinstance(uri, str) and uri.startswith("azureml://") and "/datastores/" in "/" + uri[10:]):
        return uri
    from fsspec.implementations.local import LocalFileSystem

    from openaml.sdk._fsspec import resolve_uri

    fs, path = resolve_uri(uri)
    return path if isinstance(fs, LocalFileSystem) else uri


def _patch(module: Any) -> None:
    load = getattr(module, "load", None)
    if load is None or getattr(load, "_openaml", False):
        return

    @functools.wraps(load)
    def wrapped(uri: Any, *args: Any, **kwargs: Any) -> Any:
        return load(_local(uri), *args, **kwargs)

    wrapped._openaml = True  # type: ignore[attr-defined]
    module.load = wrapped
    top = sys.modules.get("mltable")
    if top is not None and getattr(top, "load", None) is load:
        top.load = wrapped  # type: ignore[attr-defined]


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "mltable.mltable":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        inner = spec.loader

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec: Any) -> Any:
                return inner.create_module(spec)

            def exec_module(self, module: Any) -> None:
                inner.exec_module(module)  # type: ignore[union-attr]
                _patch(module)

        spec.loader = _Loader()
        return spec


def install_mltable_hook() -> None:
    """Wrap ``mltable.load`` now if mltable is imported, else when it is. Idempotent."""
    if "mltable.mltable" in sys.modules:
        _patch(sys.modules["mltable.mltable"])
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
