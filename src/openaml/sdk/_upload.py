"""Uploading local files to the workspace: a tar stream to ``POST /api/v1/uploads``.

Code snapshots honour ``.amlignore`` (else ``.gitignore``) as Azure ML does, and add
``additional_includes``. Uploads show a rich progress bar when ``progress`` is true.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openaml.errors import ValidationError
from openaml.sdk._http import Transport

__all__ = ["upload_path", "iter_files", "upload_code"]

_ALWAYS_IGNORED = {".git", "__pycache__", ".ipynb_checkpoints", ".venv", ".amlignore", ".openaml"}


def _ignore_spec(root: Path) -> Any:
    import pathspec

    for name in (".amlignore", ".gitignore"):
        f = root / name
        if f.is_file():
            return pathspec.GitIgnoreSpec.from_lines(f.read_text(encoding="utf-8", errors="replace").splitlines())
    return None


def iter_files(root: Path, *, honour_ignore: bool, dropped: list[str] | None = None) -> Iterator[tuple[Path, str]]:
    """(absolute path, archive name) of every file under ``root``, sorted, ignore files honoured.
    A link to a file inside ``root`` comes as that file's content; the names of links left out
    (to folders, outside ``root``, or to nothing) are appended to ``dropped``."""
    spec = _ignore_spec(root) if honour_ignore else None
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        keep = []
        for d in sorted(dirnames):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if honour_ignore and (d in _ALWAYS_IGNORED or (spec and spec.match_file(rel + "/"))):
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                if dropped is not None:
                    dropped.append(rel)
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            rel = f"{rel_dir}/{f}" if rel_dir else f
            full = Path(dirpath) / f
            if honour_ignore and (f in _ALWAYS_IGNORED or (spec and spec.match_file(rel))):
                continue
            if full.is_symlink():
                target = full.resolve()
                if not target.is_file():
                    if dropped is not None:
                        dropped.append(rel)
                    continue
                try:
                    target.relative_to(root.resolve())
                except ValueError:
                    if dropped is not None:
                        dropped.append(rel)
                    continue  # a link leaving the folder is not followed (paths never escape)
            yield full, rel


def _build_tar(entries: list[tuple[Path, str]]) -> tuple[Any, int]:
    buf = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    total = 0
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for full, arc in entries:
            st = full.stat()
            info = tarfile.TarInfo(arc)
            info.size = st.st_size
            info.mode = 0o755 if st.st_mode & 0o111 else 0o644
            info.mtime = int(st.st_mtime)
            with open(full, "rb") as fh:
                tar.addfile(info, fh)
            total += st.st_size
    buf.seek(0)
    return buf, total


def _chunks(buf: Any, progress: Any, task: Any) -> Iterator[bytes]:
    while chunk := buf.read(1 << 20):
        if progress is not None:
            progress.update(task, advance=len(chunk))
        yield chunk


def upload_path(transport: Transport, local: str | Path, *, target: str = "datastore",
                honour_ignore: bool = False, extra: list[tuple[Path, str]] | None = None,
                progress: bool = False, datastore: str | None = None) -> dict[str, Any]:
    """Upload a local file or folder.

    Args:
        target: ``"datastore"`` (returns ``{"uri": azureml://datastores/...}``) or ``"code"``
            (returns ``{"code_id": <content hash>}``).

    Raises:
        ValidationError: the path does not exist.
    """
    p = Path(local).expanduser()
    if not p.exists():
        raise ValidationError(f"local path {str(local)!r} does not exist", details={"value": str(local)})
    p = p.resolve()
    if p.is_file():
        entries = [(p, p.name)]
        is_file = True
    else:
        dropped: list[str] = []
        entries = list(iter_files(p, honour_ignore=honour_ignore, dropped=dropped))
        is_file = False
        if dropped:  # said, not silently lost (a read-only mount of the folder would show them)
            import warnings

            shown = ", ".join(dropped[:5]) + (f" and {len(dropped) - 5} more" if len(dropped) > 5 else "")
            warnings.warn(f"{p}: {len(dropped)} link(s) left out of the upload (links to folders, to nothing or "
                          f"outside the folder are not uploaded; links to files inside it come as copies): {shown}",
                          UserWarning, stacklevel=3)
    entries.extend(extra or [])
    buf, total = _build_tar(entries)
    size = buf.seek(0, io.SEEK_END)
    buf.seek(0)
    params = {"target": target, "name": p.name, "is_file": is_file, "datastore": datastore}
    bar = None
    task = None
    if progress and size > (8 << 20):
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                       TransferSpeedColumn(), transient=True)
        task = bar.add_task(f"uploading {p.name}", total=size)
        bar.start()
    try:
        return transport.post("/uploads", params=params, content=_chunks(buf, bar, task),
                              headers={"content-type": "application/x-tar"})
    finally:
        if bar is not None:
            bar.stop()
        buf.close()


def upload_code(transport: Transport, code: str | Path, *, additional_includes: list[str] | None = None,
                base: Path | None = None, progress: bool = False) -> str:
    """Snapshot a code folder (or single file) and return its content hash (the code id)."""
    base = base or Path.cwd()
    extra: list[tuple[Path, str]] = []
    for inc in additional_includes or []:
        src = (base / inc).resolve()
        if not src.exists():
            raise ValidationError(f"additional_includes: {inc!r} does not exist (resolved to {src})",
                                  details={"field": "additional_includes", "value": inc})
        if src.is_file():
            extra.append((src, src.name))
        else:
            extra.extend((f, f"{src.name}/{rel}") for f, rel in iter_files(src, honour_ignore=True))
    result = upload_path(transport, code, target="code", honour_ignore=True, extra=extra, progress=progress)
    return str(result["code_id"])
