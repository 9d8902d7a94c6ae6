"""The local folder datastore: ``workspaceblobstore`` and registered ``type: local`` datastores."""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from openaml.datastores._base import DatastorePort, _local_files
from openaml.datastores._paths import relative_parts, safe_join
from openaml.errors import NotFoundError, ValidationError

__all__ = ["LocalDatastore"]

log = logging.getLogger("openaml.datastores")


class LocalDatastore(DatastorePort):
    """A folder of this machine (fsspec ``LocalFileSystem``).

    Definition: ``path``, the folder; a relative ``path`` is relative to ``base`` (the workspace
    folder: ``workspaceblobstore`` is stored as ``datastores/workspaceblobstore``). Besides the
    checks of every backend, a path whose resolved location leaves the folder through a symlink is
    refused (:func:`~openaml.datastores.safe_join`).

    Raises (constructor):
        ValidationError: no ``path`` in the definition.
    """

    type = "local"
    has_local_path = True

    def __init__(self, name: str, definition: Mapping[str, Any], *, base: str | os.PathLike[str] | None = None) -> None:
        raw = definition.get("path")
        if not raw:
            raise ValidationError(f"local datastore {name!r} has no 'path' (the folder holding its files)")
        folder = Path(str(raw)).expanduser()
        if not folder.is_absolute():
            folder = Path(base or ".") / folder
        super().__init__(name, {**definition, "path": str(folder.resolve())})
        self._folder = folder.resolve()
        self._fs = LocalFileSystem(auto_mkdir=True)

    @property
    def fs(self) -> LocalFileSystem:
        return self._fs

    @property
    def root(self) -> str:
        return self._folder.as_posix()

    @property
    def folder(self) -> Path:
        """The datastore's folder."""
        return self._folder

    def _real(self, path: str) -> str:
        return safe_join(self._folder, path, what=f"path of {self.uri(path)}").as_posix()

    def local_path(self, path: str = "") -> Path:
        return safe_join(self._folder, path, what=f"path of {self.uri(path)}")

    def walk(self, path: str = "") -> Iterator[tuple[str, int]]:
        real = Path(self._real(path))
        if real.is_file() and not real.is_symlink():
            yield "", real.stat().st_size
            return
        if not real.is_dir():
            raise NotFoundError(f"{self.uri(path)} does not exist")
        for rel in _local_files(real):
            yield rel, (real / rel).stat().st_size

    def get(self, path: str, local_dest: str | os.PathLike[str]) -> int:
        """As :meth:`DatastorePort.get`, with what a read-only mount of the folder shows: empty
        folders are made, and a link that points inside the folder copied is kept as a link (its
        target made relative); a link pointing outside it is left out, with one warning line each
        on the ``openaml.datastores`` logger naming the link and its URI. Returns the number of
        regular files copied."""
        real = Path(self._real(path))
        if not real.is_dir() or real.is_symlink():
            return super().get(path, local_dest)
        dest = Path(local_dest)
        dest.mkdir(parents=True, exist_ok=True)
        top = real.resolve()
        count = 0
        for dirpath, dirnames, filenames in os.walk(real, followlinks=False):
            here = Path(dirpath)
            rel_dir = here.relative_to(real)
            for entry in sorted((*dirnames, *filenames)):
                full = here / entry
                target = dest / rel_dir / entry
                if full.is_symlink():
                    pointed = full.resolve()
                    if pointed != top and top not in pointed.parents or not pointed.exists():
                        uri = self.uri(posixpath.join(path, (rel_dir / entry).as_posix()))
                        log.warning("%s is a link to %s, outside the folder downloaded (or to nothing); left out",
                                    uri, os.readlink(full))
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(os.path.relpath(pointed, (top / rel_dir).resolve()), target)
                elif full.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                elif full.is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(full, target)
                    count += 1
            dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
        return count

    def put(self, local_src: str | os.PathLike[str], path: str, *, move: bool = False) -> int:
        src = Path(local_src)
        dest = self.local_path(path)
        # an upload staged on the same filesystem moves into place in one rename (all or nothing)
        if move and src.exists() and not dest.exists() and relative_parts(path) and _same_device(src, dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            count = 1 if src.is_file() else sum(1 for _ in _local_files(src))
            os.replace(src, dest)
            return count
        count = super().put(src, path, move=move)
        if move and src.is_dir():
            shutil.rmtree(src, ignore_errors=True)
        return count

    def _put_file(self, src: Path, path: str) -> None:
        dest = self.local_path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_dir():
            raise ValidationError(f"{self.uri(path)} is a folder; a file cannot replace it")
        shutil.copyfile(src, dest)  # the kernel copies (sendfile): no Python buffers

    def url(self, path: str = "") -> str:
        return Path(self._real(path)).as_uri()

    def __repr__(self) -> str:
        return f"LocalDatastore(name={self.name!r}, path={posixpath.normpath(self.root)!r})"


def _same_device(src: Path, dest: Path) -> bool:
    probe = dest.parent
    while not probe.exists():
        probe = probe.parent
    try:
        return os.stat(src).st_dev == os.stat(probe).st_dev
    except OSError:
        return False
