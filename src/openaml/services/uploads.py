"""Receiving uploads: a tar stream becomes a code snapshot or files of a datastore (through its port).

Content-addressed: the same files give the same hash, so re-uploading is free and a code
snapshot is stored once. Extraction is staged in ``uploads/`` and renamed into place, so a
broken upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from openaml.constants import UPLOAD_AREA
from openaml.datastores import DatastorePort, safe_extract_tar
from openaml.errors import ValidationError
from openaml.records import UploadRecord
from openaml.services._context import WorkspaceContext

__all__ = ["UploadService", "hash_tree", "clean_staging"]


def hash_tree(root: Path) -> str:
    """SHA-256 over sorted (relative path, content) pairs of every file under ``root``."""
    h = hashlib.sha256()
    if root.is_file():
        files = [(root.name, root)]
    else:
        files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())
    for rel, p in files:
        h.update(rel.encode() + b"\0")
        with open(p, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()



async def spool_stream(stream: AsyncIterator[bytes], path: Path) -> None:
    """Write an HTTP body to ``path`` in 4 MB batches by a worker thread, never on the event loop."""
    with open(path, "wb") as out:
        pending: list[bytes] = []
        size = 0
        async for chunk in stream:
            pending.append(chunk)
            size += len(chunk)
            if size >= 4 << 20:
                await anyio.to_thread.run_sync(out.writelines, pending)
                pending, size = [], 0
        if pending:
            await anyio.to_thread.run_sync(out.writelines, pending)

class UploadService:
    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx

    async def receive(self, stream: AsyncIterator[bytes], *, target: str, name: str, is_file: bool,
                      datastore: str | None = None) -> UploadRecord:
        """Stage the tar stream, then move it to its content-addressed home.

        Raises:
            ValidationError: unknown target, or a file upload whose archive holds not one file.
            PathEscapeError: an archive member that would leave the staging folder.
        """
        if target not in ("code", "datastore"):
            raise ValidationError(f"upload target {target!r} is invalid; use 'code' or 'datastore'")
        if "/" in name or "\\" in name or name in ("", ".", "..") or not name.isprintable():
            raise ValidationError(f"upload name {name!r} is invalid: use a file or folder name without "
                                  "slashes or control characters")
        layout = self.ctx.layout
        stage = layout.uploads / uuid.uuid4().hex
        stage.mkdir(parents=True)
        try:
            tar_path = stage.with_suffix(".tar")
            await spool_stream(stream, tar_path)
            # extraction and hashing are disk- and CPU-bound: off the event loop, so /health and
            # scoring keep answering during a large upload
            count, digest = await anyio.to_thread.run_sync(_extract_and_hash, tar_path, stage, is_file)
            if target == "code":
                dest = layout.code / digest
                if dest.exists():
                    await anyio.to_thread.run_sync(shutil.rmtree, stage)
                else:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(stage, dest)
                files = self.ctx.services.get("files")
                if files is not None and files.shared:  # the server that runs the job may be another one
                    await anyio.to_thread.run_sync(files.push, dest)
                return {"code_id": digest, "files": count}
            # ``azureml:<name>`` as azure-ai-ml writes a datastore reference (a data asset's ``datastore``)
            stores = self.ctx.services["datastores"]
            ds_name = stores.canonical_name(datastore) or stores.default_name()
            port = stores.port(ds_name)
            rel = f"{UPLOAD_AREA}/{digest}/{name}"
            # content-addressed: an existing folder holds the same files; else the staged files go
            # through the datastore's port (a local folder renames them into place in one step; an
            # object store has no rename, so a marker written after the last file says it is whole)
            place = f"{UPLOAD_AREA}/{digest}" if is_file else rel
            done = f"{UPLOAD_AREA}/{digest}{COMPLETE_SUFFIX}"
            whole = await anyio.to_thread.run_sync(
                lambda: port.exists(place) and (port.has_local_path or port.exists(done)))
            if not whole:
                src = next(stage.iterdir()) if is_file else stage  # a file upload holds one file
                await anyio.to_thread.run_sync(lambda: port.put(src, rel, move=True))
                if not port.has_local_path:
                    await anyio.to_thread.run_sync(lambda: _write_marker(port, done))
            return {"uri": f"azureml://datastores/{ds_name}/paths/{rel}", "files": count, "is_file": is_file}
        finally:
            if stage.exists():
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(stage, ignore_errors=True))
            stage.with_suffix(".tar").unlink(missing_ok=True)


#: beside ``LocalUpload/<hash>/`` on an object-store datastore: the upload of that content is whole
COMPLETE_SUFFIX = ".complete"


def _write_marker(port: DatastorePort, path: str) -> None:
    with port.open(path, "wb") as fh:
        fh.write(b"ok\n")


def _extract_and_hash(tar_path: Path, stage: Path, is_file: bool) -> tuple[int, str]:
    with open(tar_path, "rb") as fh:
        count = safe_extract_tar(fh, stage)
    tar_path.unlink()
    if is_file:
        files = list(stage.iterdir())
        if len(files) != 1 or not files[0].is_file():
            raise ValidationError("a file upload must hold exactly one file")
    # a file and a folder holding only that file have the same content hash: keep them apart
    digest = hashlib.sha256(f"{'file' if is_file else 'folder'}:{hash_tree(stage)}".encode()).hexdigest()
    return count, digest


def clean_staging(uploads: Path) -> int:
    """Remove what killed uploads left in ``uploads/`` (call with the workspace lock held, before serving).

    Returns the number of entries removed.
    """
    removed = 0
    if uploads.is_dir():
        for entry in uploads.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return removed
