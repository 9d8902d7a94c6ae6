"""Tar archives streamed chunk by chunk (downloads of job outputs, data and models).

``tarfile`` writes a whole member through one ``addfile`` call, so a generator around it would
hold a large file in memory; here each member's header comes from ``TarInfo.tobuf`` and its bytes
are read from the datastore port :data:`~openaml.datastores._base.CHUNK` at a time. Memory stays
bounded by one chunk whatever the archive's size.
"""

from __future__ import annotations

import posixpath
import tarfile
import time
from collections.abc import Iterator

from openaml.datastores._base import CHUNK, DatastorePort

__all__ = ["tar_stream"]

_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE


def tar_stream(port: DatastorePort, path: str, *, prefix: str | None = None,
               files: list[tuple[str, int]] | None = None) -> Iterator[bytes]:
    """A tar of the file or folder at ``path`` of ``port``, as chunks of at most about 1 MiB.

    Members: a folder's files by their path relative to it (under ``prefix/`` when given), a file
    as ``prefix`` (else its own name). Links are skipped; ``files`` (``(relative path, size)``
    pairs, as :meth:`~openaml.datastores.DatastorePort.walk` gives) replaces the listing. The archive is POSIX (pax headers carry
    long names), readable by ``tarfile`` and GNU tar.

    Raises (before the first chunk):
        NotFoundError: nothing at ``path``. PathEscapeError: the path leaves the datastore.
    """
    files = list(port.walk(path)) if files is None else files  # listing first: a missing path raises before any byte is sent
    return _chunks(port, path, files, prefix)


def _chunks(port: DatastorePort, path: str, files: list[tuple[str, int]], prefix: str | None) -> Iterator[bytes]:
    now = int(time.time())
    written = 0
    for rel, size in files:
        if rel == "":
            arcname = prefix or path.rstrip("/").rsplit("/", 1)[-1] or port.name
        else:
            arcname = f"{prefix}/{rel}" if prefix else rel
        info = tarfile.TarInfo(arcname)
        info.size = size
        info.mtime = now
        info.mode = 0o644
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        yield header
        written += len(header)
        sent = 0
        with port.open(posixpath.join(path, rel) if rel else path, "rb") as fh:
            while sent < size:
                chunk = fh.read(min(CHUNK, size - sent))
                if not chunk:
                    break
                sent += len(chunk)
                yield chunk
        if sent < size:  # the file shrank while being sent: the header promised ``size`` bytes
            yield bytes(size - sent)
        pad = -size % _BLOCK
        if pad:
            yield bytes(pad)
        written += size + pad
    end = 2 * _BLOCK
    end += -(written + end) % _RECORD
    yield bytes(end)
