"""The datastore port: one narrow interface over an fsspec filesystem, the rest built once above it.

A datastore is a root (a folder, a bucket prefix, a container) holding files addressed by paths
relative to that root, as ``azureml://datastores/<name>/paths/<path>`` addresses them (spec 1.2).
A backend says which fsspec filesystem and which root it uses and how a relative path becomes a
path of that filesystem (:meth:`DatastorePort._real`); transfers, listings, folder recursion and
errors are written here once, so S3 or Azure Blob is one more small class (issue 12).

Contract (``tests/contracts/test_datastore_contract.py`` runs it on every registered backend):

* paths are relative to the datastore root, posix-style; ``""`` is the root. A path with NUL,
  ``..``, an absolute path, or (local folders) a symlink that points out is refused with
  :class:`~openaml.errors.PathEscapeError` naming the ``azureml://`` URI;
* a path that does not exist raises :class:`~openaml.errors.NotFoundError` naming the URI;
* ``get``/``put`` copy files and folders (recursively), chunk by chunk: memory stays bounded by
  :data:`CHUNK` whatever the file size; links inside folders are skipped (never followed);
* ``local_path`` is the only way to a path of this machine's filesystem; backends without one
  refuse it with :class:`~openaml.errors.UnsupportedError`.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, ClassVar

from fsspec import AbstractFileSystem

from openaml.datastores._paths import relative_parts, safe_join
from openaml.errors import NotFoundError, UnsupportedError, ValidationError

__all__ = ["CHUNK", "DatastorePort"]

#: bytes per read/write in transfers (1 MiB)
CHUNK = 1 << 20


class DatastorePort(ABC):
    """A datastore's files, addressed by paths relative to its root.

    Parameters
    ----------
    name : str
        The datastore's name (as in ``azureml://datastores/<name>/...``).
    definition : mapping
        Its stored definition without secrets (``type`` and the backend's fields), as
        :meth:`spec` returns it; enough to open the same datastore in another process (the runner).
    base : path, optional
        The folder relative local paths of the definition are taken from (the workspace folder).
    """

    #: the ``type`` of the datastores this class serves (the registry key)
    type: ClassVar[str]
    #: whether :meth:`local_path` can answer (the files are on this machine's filesystem)
    has_local_path: ClassVar[bool] = False

    def __init__(self, name: str, definition: Mapping[str, Any], *,
                 base: str | os.PathLike[str] | None = None) -> None:
        self.name = name
        self.definition = dict(definition)

    @property
    def credentials(self) -> dict[str, Any]:
        """The secret part of the definition (kept out of :meth:`spec`); empty where there is none."""
        return {}

    def describe(self) -> str:
        """Where the datastore points, for a message (no secrets)."""
        return f"datastore {self.name!r}"

    def check_definition(self) -> None:
        """Refuse a definition no client can use (an endpoint that is not a URL), without a request;
        a folder needs nothing. Called when the datastore is registered, checked or not.

        Raises:
            ValidationError: naming the datastore, the field, the value and what a valid one looks like.
        """
        return None

    def probe(self) -> str | None:
        """Prove that the datastore can be reached (called when it is registered); a folder needs nothing.

        Returns None, or a warning to pass on (the object stores return None or raise).

        Raises:
            ValidationError: it could not be proved (refused, unreachable, malformed credentials),
                naming the datastore, the field and the error.
        """
        return None

    # ------------------------------------------------------------------ the backend's part
    @property
    @abstractmethod
    def fs(self) -> AbstractFileSystem:
        """The fsspec filesystem holding the files."""

    @property
    @abstractmethod
    def root(self) -> str:
        """The datastore root as a path of :attr:`fs` (no trailing slash)."""

    def _real(self, path: str) -> str:
        """The :attr:`fs` path of a relative path (checked: see the module's contract)."""
        parts = relative_parts(path, what=f"path of {self.uri(path)}")
        return posixpath.join(self.root, *parts) if parts else self.root

    # ------------------------------------------------------------------ naming
    def normalize(self, path: str) -> str:
        """The checked form of a relative path: posix, without empty, ``.`` or trailing parts.

        Raises:
            PathEscapeError: the path leaves the datastore (naming its URI).
        """
        self._real(path)
        return "/".join(relative_parts(path))

    def spec(self) -> dict[str, Any]:
        """``{"name", "type", ...}``: the non-secret definition that reopens this datastore."""
        return {**self.definition, "name": self.name, "type": self.type}

    def uri(self, path: str = "") -> str:
        """``azureml://datastores/<name>/paths/<path>`` of a relative path (not checked)."""
        return f"azureml://datastores/{self.name}/paths/{path}"

    def url(self, path: str = "") -> str:
        """The backend's own URL of a path (``file:///...``, ``s3://bucket/...``).

        Raises:
            PathEscapeError: the path leaves the datastore.
        """
        return str(self.fs.unstrip_protocol(self._real(path)))

    def local_path(self, path: str = "") -> Path:
        """The path of this machine's filesystem holding ``path`` (for mounting into a local job).

        Only backends whose files are local answer; the others raise, so that nothing silently
        copies a remote datastore where a mount was asked for.

        Raises:
            UnsupportedError: this backend has no local path (naming the datastore and its type).
            PathEscapeError: the path leaves the datastore.
        """
        raise UnsupportedError(f"datastore {self.name!r} (type {self.type}) has no local path on this machine: "
                               f"{self.uri(path)} can be read with get/open, not mounted")

    # ------------------------------------------------------------------ queries
    def exists(self, path: str = "") -> bool:
        """Whether the file or folder exists. Raises PathEscapeError for a path leaving the datastore."""
        return bool(self.fs.exists(self._real(path)))

    def info(self, path: str = "") -> dict[str, Any]:
        """``{"name": <relative path>, "type": "file" | "directory", "size": <bytes, files>}``.

        Raises:
            NotFoundError: nothing at ``path``. PathEscapeError: the path leaves the datastore.
        """
        real = self._real(path)
        try:
            raw = self.fs.info(real)
        except FileNotFoundError:
            raise NotFoundError(f"{self.uri(path)} does not exist") from None
        return self._entry(raw, real)

    def isdir(self, path: str = "") -> bool:
        """Whether ``path`` is a folder (False when missing)."""
        return bool(self.fs.isdir(self._real(path)))

    def isfile(self, path: str = "") -> bool:
        """Whether ``path`` is a file (False when missing)."""
        return bool(self.fs.isfile(self._real(path)))

    def ls(self, path: str = "") -> list[dict[str, Any]]:
        """The entries directly inside a folder, sorted by name (as :meth:`info` gives them).

        Raises:
            NotFoundError: no such folder. ValidationError: ``path`` is a file.
        """
        real = self._real(path)
        if not self.fs.isdir(real):
            if self.fs.exists(real):
                raise ValidationError(f"{self.uri(path)} is a file, not a folder")
            raise NotFoundError(f"{self.uri(path)} does not exist")
        entries = [self._entry(e, e["name"]) for e in self.fs.ls(real, detail=True) if not e.get("islink")]
        return sorted(entries, key=lambda e: e["name"])

    def walk(self, path: str = "") -> Iterator[tuple[str, int]]:
        """Every file under a folder as ``(path relative to that folder, size in bytes)``, sorted;
        a file gives itself as ``("", size)``. Links are skipped.

        Raises:
            NotFoundError: nothing at ``path``.
        """
        real = self._real(path)
        if self.fs.isfile(real):
            yield "", int(self.fs.size(real) or 0)
            return
        if not self.fs.isdir(real):
            raise NotFoundError(f"{self.uri(path)} does not exist")
        found = self.fs.find(real, detail=True, withdirs=False)
        base = self.fs._strip_protocol(real).rstrip("/")
        for name in sorted(found):
            entry = found[name]
            if entry.get("islink") or entry.get("type") != "file":
                continue
            rel = posixpath.relpath(self.fs._strip_protocol(name), base)
            yield rel, int(entry.get("size") or 0)

    def _entry(self, raw: dict[str, Any], real: str) -> dict[str, Any]:
        root = self.fs._strip_protocol(self.root).rstrip("/")
        name = self.fs._strip_protocol(raw.get("name") or real).rstrip("/")
        rel = "" if name == root else posixpath.relpath(name, root)
        kind = "directory" if raw.get("type") == "directory" else "file"
        return {"name": rel, "type": kind, "size": int(raw.get("size") or 0) if kind == "file" else 0}

    # ------------------------------------------------------------------ transfers
    def open(self, path: str, mode: str = "rb") -> IO[Any]:
        """A file object (``rb``, ``wb``, ``ab``, text modes too); writing creates the parent folders.

        Raises:
            NotFoundError: reading a missing file. ValidationError: ``path`` is a folder or the root.
            PathEscapeError: the path leaves the datastore.
        """
        real = self._real(path)
        if not relative_parts(path) or self.fs.isdir(real):
            raise ValidationError(f"{self.uri(path)} is a folder; open needs a file path")
        if any(m in mode for m in "wax"):
            self.fs.makedirs(posixpath.dirname(real), exist_ok=True)
        try:
            return self.fs.open(real, mode)  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise NotFoundError(f"{self.uri(path)} does not exist") from None

    def read_range(self, path: str, start: int, length: int) -> bytes:
        """Bytes ``start`` to ``start + length`` of the file at ``path`` (fewer at its end, ``b""``
        from its end on), in one request: a copy replaced meanwhile is read as it is now, where a
        file object from :meth:`open` on an object store refuses to read on once its copy changed
        (s3fs's ``FileExpired``: the ETag it opened no longer holds).

        Raises:
            NotFoundError: no file at ``path``. PathEscapeError: the path leaves the datastore.
        """
        real = self._real(path)
        try:
            size = int(self.fs.info(real).get("size") or 0)
            if start >= size or length <= 0:
                return b""
            return bytes(self.fs.cat_file(real, start=start, end=min(size, start + length)))
        except FileNotFoundError:
            raise NotFoundError(f"{self.uri(path)} does not exist") from None

    def get(self, path: str, local_dest: str | os.PathLike[str]) -> int:
        """Copy a file to the local file ``local_dest``, or a folder's files under the local folder
        ``local_dest`` (created), streaming. Returns the number of files copied.

        Raises:
            NotFoundError: nothing at ``path``. PathEscapeError: the path leaves the datastore.
        """
        dest = Path(local_dest)
        count = 0
        for rel, _size in self.walk(path):
            target = dest if rel == "" else safe_join(dest, rel, what=f"file of {self.uri(path)}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with self.open(posixpath.join(path, rel) if rel else path, "rb") as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            count += 1
        if count == 0 and self.isdir(path):
            dest.mkdir(parents=True, exist_ok=True)
        return count

    def put(self, local_src: str | os.PathLike[str], path: str, *, move: bool = False) -> int:
        """Copy a local file to ``path``, or a local folder's files under ``path`` (merged with what
        is there), streaming; links in the folder are skipped. With ``move=True`` the source may be
        consumed (a local backend renames it into place when it can). Returns the number of files.

        Raises:
            NotFoundError: ``local_src`` does not exist. PathEscapeError: the path leaves the datastore.
        """
        src = Path(local_src)
        if not src.exists():
            raise NotFoundError(f"{src} does not exist (nothing to put at {self.uri(path)})")
        if src.is_file():
            self._put_file(src, path)
            return 1
        self._real(path)
        count = 0
        for rel in _local_files(src):
            self._put_file(src / rel, posixpath.join(path, rel) if path else rel)
            count += 1
        if count == 0:
            self.fs.makedirs(self._real(path), exist_ok=True)
        return count

    def _put_file(self, src: Path, path: str) -> None:
        with open(src, "rb") as fh, self.open(path, "wb") as out:
            shutil.copyfileobj(fh, out, CHUNK)

    def rm(self, path: str, recursive: bool = False) -> None:
        """Delete a file, or a folder with ``recursive=True``. The root itself cannot be deleted.

        Raises:
            NotFoundError: nothing at ``path``. ValidationError: a folder without ``recursive``,
            or the root. PathEscapeError: the path leaves the datastore.
        """
        real = self._real(path)
        if not relative_parts(path):
            raise ValidationError(f"{self.uri(path)} is the root of datastore {self.name!r}; it cannot be deleted")
        if self.fs.isdir(real):
            if not recursive:
                raise ValidationError(f"{self.uri(path)} is a folder; delete it with recursive=True")
            self.fs.rm(real, recursive=True)
        elif self.fs.exists(real):
            self.fs.rm_file(real)
        else:
            raise NotFoundError(f"{self.uri(path)} does not exist")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, root={self.root!r})"


def _local_files(folder: Path) -> Iterator[str]:
    """Relative posix paths of the regular files under ``folder`` (links neither listed nor followed)."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        for f in sorted(filenames):
            full = os.path.join(dirpath, f)
            if not os.path.islink(full) and os.path.isfile(full):
                yield Path(full).relative_to(folder).as_posix()
