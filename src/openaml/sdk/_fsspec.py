"""The ``azureml://`` fsspec protocol: datastore URIs readable from the user's own Python.

``ml_client.data.get(name, version).path`` is an ``azureml://datastores/<ds>/paths/<p>`` URI (or the
long ``azureml://subscriptions/<s>/resourcegroups/<rg>/workspaces/<w>/datastores/<ds>/paths/<p>``
form). Azure makes such URIs readable by pandas and fsspec through the ``azureml-fsspec`` package;
openaml registers this filesystem under the same protocol (entry point ``fsspec.specs``), so
``pandas.read_csv("azureml://datastores/workspaceblobstore/paths/x.csv")`` and
``fsspec.open("azureml://...")`` work on the workspace's machine.

Which workspace: the ``workspace`` storage option (a folder, index name or http URL), else the most
recently created ``MLClient`` of this process, else the workspace ``MLClient()`` would find. A long
form names its workspace: a local workspace of that name is used, else the same fallbacks. A
local datastore resolves to its folder; an ``fsspec`` datastore to its URL; the Azure types are
metadata only here and raise ``UnsupportedError``.
"""

from __future__ import annotations

import posixpath
import re
import threading
from pathlib import Path
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from openaml.constants import DEFAULT_DATASTORE
from openaml.errors import NotFoundError, UnsupportedError, ValidationError
from openaml.sdk._current import current_client, register_client

__all__ = ["AzureMLFileSystem", "register_client", "resolve_uri"]

_URI = re.compile(
    r"^(?P<prefix>(?:subscriptions/[^/]+/resource[gG]roups/[^/]+/(?:providers/Microsoft\.MachineLearningServices/)?"
    r"workspaces/(?P<ws>[^/]+)/)?datastores/(?P<ds>[^/]+)/paths)(?:/(?P<path>.*))?$",
    re.IGNORECASE,
)

_lock = threading.Lock()
_clients: dict[str, Any] = {}  # workspace value -> MLClient made by this module
_roots: dict[tuple[str, str], tuple[AbstractFileSystem, str]] = {}  # (client id, datastore) -> (fs, root)


def _client(workspace: str | None, ws_name: str | None) -> Any:
    from openaml.sdk._client import MLClient

    if workspace is None:
        c = current_client()
        if c is not None and (ws_name is None or ws_name == c.workspace_name):
            return c
    key = workspace or ws_name or ""
    with _lock:
        c = _clients.get(key)
    if c is None:
        try:
            c = MLClient(workspace=workspace or ws_name) if (workspace or ws_name) else MLClient()
        except NotFoundError:
            if workspace is not None or ws_name is None:
                raise
            # the long form's workspace name is not a local one (e.g. an Azure name in ported code):
            # this process's client, else the default workspace
            current = current_client()
            c = current if current is not None else MLClient()
        with _lock:
            _clients[key] = c
    return c


def _strip(path: str) -> str:
    path = str(path)
    if path.startswith("azureml://"):
        path = path[len("azureml://"):]
    return path.rstrip("/")


def resolve_uri(uri: str, *, workspace: str | None = None) -> tuple[AbstractFileSystem, str]:
    """The filesystem and path behind an ``azureml://`` datastore URI.

    Returns:
        (fs, path): a ``LocalFileSystem`` and an absolute path for local datastores, or the
        datastore's own fsspec filesystem and path for ``fsspec`` datastores.

    Raises:
        ValidationError: not a datastore URI. NotFoundError: unknown datastore.
        UnsupportedError: an Azure datastore (metadata only here). PathEscapeError: ``..``.
    """
    from openaml.datastores import safe_join

    m = _URI.match(_strip(uri))
    if m is None:
        raise ValidationError(f"{uri!r} is not an azureml://datastores/<name>/paths/<path> URI")
    fs, root = _datastore_root(m.group("ds"), workspace, m.group("ws"))
    rel = m.group("path") or ""
    if isinstance(fs, LocalFileSystem):
        return fs, str(safe_join(root, rel, what=f"path of {uri}"))
    if ".." in rel.split("/"):
        raise ValidationError(f"path of {uri!r} contains '..'")
    return fs, posixpath.join(root, rel) if rel else root


def _datastore_root(ds: str, workspace: str | None, ws_name: str | None) -> tuple[AbstractFileSystem, str]:
    client = _client(workspace, ws_name)
    key = (str(id(client)), ds)
    with _lock:
        hit = _roots.get(key)
    if hit is not None:
        return hit
    local = client._target.path
    if ds == DEFAULT_DATASTORE and local is not None:
        from openaml.workspace import WorkspaceLayout

        out: tuple[AbstractFileSystem, str] = (LocalFileSystem(auto_mkdir=True),
                                               str(WorkspaceLayout(Path(local)).default_datastore))
    else:
        d = client._transport.get(f"/datastores/{ds}")
        if d.get("local_path"):
            out = (LocalFileSystem(auto_mkdir=True), str(d["local_path"]))
        elif d.get("type") == "fsspec" and d.get("url"):
            fs, root = url_to_fs(d["url"])
            out = (fs, root.rstrip("/"))
        else:
            raise UnsupportedError(f"datastore {ds!r} is of type {d.get('type')}, kept as metadata only here; "
                                   "its files cannot be read on this machine. Use a local or fsspec datastore.")
    with _lock:
        _roots[key] = out
    return out


class AzureMLFileSystem(AbstractFileSystem):
    """fsspec filesystem for ``azureml://datastores/<ds>/paths/<p>`` (read and write).

    Storage option ``workspace``: the workspace to resolve through (folder, index name or URL).
    Names returned by ``ls``/``find``/``info`` are ``datastores/<ds>/paths/<p>`` (fsspec strips the
    protocol), so they round-trip through every method.
    """

    protocol = "azureml"
    root_marker = ""

    def __init__(self, workspace: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workspace = workspace

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return _strip(path)

    def _real(self, path: str) -> tuple[AbstractFileSystem, str, str, str]:
        """(fs, real path, azureml prefix, real root) of a stripped or full path."""
        stripped = _strip(path)
        m = _URI.match(stripped)
        if m is None:
            raise ValidationError(f"{path!r} is not an azureml://datastores/<name>/paths/<path> URI")
        fs, real = resolve_uri("azureml://" + stripped, workspace=self.workspace)
        _, root = _datastore_root(m.group("ds"), self.workspace, m.group("ws"))
        return fs, real, m.group("prefix"), root

    def local_path(self, path: str) -> str | None:
        """The local file or folder behind ``path``, or None when its datastore is not local."""
        fs, real, _, _ = self._real(path)
        return real if isinstance(fs, LocalFileSystem) else None

    @staticmethod
    def _back(fs: AbstractFileSystem, name: str, prefix: str, root: str) -> str:
        name = fs._strip_protocol(name)
        root = fs._strip_protocol(root)
        rel = posixpath.relpath(name, root) if name != root else ""
        return prefix if rel in ("", ".") else f"{prefix}/{rel}"

    def _map(self, entry: dict[str, Any], fs: AbstractFileSystem, prefix: str, root: str) -> dict[str, Any]:
        return {**entry, "name": self._back(fs, entry["name"], prefix, root)}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        fs, real, prefix, root = self._real(path)
        entries = [self._map(e, fs, prefix, root) for e in fs.ls(real, detail=True, **kwargs)]
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        fs, real, prefix, root = self._real(path)
        return self._map(fs.info(real, **kwargs), fs, prefix, root)

    def _open(self, path: str, mode: str = "rb", block_size: Any = None, autocommit: bool = True,
              cache_options: Any = None, **kwargs: Any) -> Any:
        fs, real, _, _ = self._real(path)
        return fs._open(real, mode=mode, block_size=block_size, autocommit=autocommit,
                        cache_options=cache_options, **kwargs)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        fs, real, _, _ = self._real(path)
        fs.mkdir(real, create_parents=create_parents, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        fs, real, _, _ = self._real(path)
        fs.makedirs(real, exist_ok=exist_ok)

    def rmdir(self, path: str) -> None:
        fs, real, _, _ = self._real(path)
        fs.rmdir(real)

    def rm_file(self, path: str) -> None:
        fs, real, _, _ = self._real(path)
        fs.rm_file(real)

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def created(self, path: str) -> Any:
        fs, real, _, _ = self._real(path)
        return fs.created(real)

    def modified(self, path: str) -> Any:
        fs, real, _, _ = self._real(path)
        return fs.modified(real)
