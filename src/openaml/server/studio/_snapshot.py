"""Studio pages of what a job ran with: its code snapshot (file tree and file view) and the build log
of its environment.

Azure ML studio's job page has a "Code" tab (the snapshot uploaded at submission, browsable file by
file) and the environment's "Build log". A path is joined under the snapshot with
:func:`openaml.datastores._paths.safe_join` (no ``..``, no absolute path, no link leaving it); a
binary file or one over :data:`MAX_VIEW_BYTES` is not shown inline (the page says why and offers
the download), and a download is served as an attachment that the browser never runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from openaml.errors import NotFoundError, OpenAMLError
from openaml.server.studio._common import bad_request, not_found, render

__all__ = ["router", "MAX_VIEW_BYTES", "MAX_TREE_FILES", "snapshot_tree", "read_text_file", "build_log"]

router = APIRouter(include_in_schema=False)

MAX_VIEW_BYTES = 1024 * 1024  # a file bigger than this is offered for download, not shown
MAX_TREE_FILES = 2000  # entries of the file tree (a bigger snapshot says how many were left out)
BUILD_LOG_TAIL = 256 * 1024  # bytes of an environment's build log shown (its end)


def snapshot_tree(root: Path, limit: int = MAX_TREE_FILES) -> tuple[list[dict[str, Any]], int]:
    """Every folder and file under ``root``, depth first and sorted (folders first):
    ``([{"path", "name", "depth", "dir", "size"}], total)``; at most ``limit`` entries are returned,
    ``total`` counts them all. Links are listed but not followed."""
    out: list[dict[str, Any]] = []
    total = 0

    def walk(folder: Path, depth: int) -> None:
        nonlocal total
        try:
            children = sorted(folder.iterdir(), key=lambda p: (not (p.is_dir() and not p.is_symlink()), p.name))
        except OSError:
            return
        for p in children:
            total += 1
            is_dir = p.is_dir() and not p.is_symlink()
            if len(out) < limit:
                out.append({"path": p.relative_to(root).as_posix(), "name": p.name, "depth": depth, "dir": is_dir,
                            "size": None if is_dir else _size(p)})
            if is_dir:
                walk(p, depth + 1)

    walk(root, 0)
    return out, total


def _size(p: Path) -> int | None:
    try:
        return p.stat().st_size
    except OSError:
        return None


def read_text_file(path: Path, limit: int = MAX_VIEW_BYTES) -> tuple[str | None, str | None]:
    """``(text, None)`` for a UTF-8 text file of at most ``limit`` bytes, else ``(None, why)``:
    too big (with its size), or binary (a NUL byte or bytes that are not UTF-8)."""
    size = path.stat().st_size
    if size > limit:
        return None, f"{size:,} bytes: too big to show here (the viewer shows files up to {limit:,} bytes)"
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        return None, f"a binary file ({size:,} bytes)"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, f"a binary file or not UTF-8 text ({size:,} bytes)"


#: jobs that run no command of their own: their trials or steps (child jobs) have the code and environment
_CONTROLLERS = {"sweep": "trials", "pipeline": "steps", "automl": "trials"}


def _controller_note(request: Request, row: dict[str, Any], what: str) -> tuple[str, str | None] | None:
    """For a sweep, pipeline or AutoML job: ``(note, link to a child's page of the same kind)``,
    instead of claiming the job ran without code or on the default environment; else None."""
    kind = _CONTROLLERS.get(str(row.get("type") or ""))
    if kind is None:
        return None
    children = request.app.state.ctx.store.list_jobs(parent_name=row["name"], ascending=True, limit=1)
    link = f"/jobs/{children[0]['name']}/{what}" if children else None
    return (f"a {row['type']} job runs no command of its own: each of its {kind} has its own {what}"
            + ("; the first one's is linked below" if link else " (none has started yet)"), link)


def _snapshot_root(request: Request, name: str) -> tuple[dict[str, Any], Path | None]:
    """The job's record and its code snapshot folder (None: the job ran without code). Raises
    NotFoundError for an unknown job."""
    row = request.app.state.ctx.store.get_job(name)
    code = (row.get("runtime") or {}).get("code_dir")
    root = Path(code) if code else None
    return row, (root if root is not None and root.is_dir() else None)


@router.get("/jobs/{name}/code", response_class=HTMLResponse)
@router.get("/jobs/{name}/code/{rel:path}", response_model=None)
def job_code(request: Request, name: str, rel: str = "") -> Response:
    """The job's code snapshot: the file tree, and ``rel``'s content when it is a text file
    (``?download=1``: the file itself, as an attachment)."""
    from openaml.datastores._paths import safe_join

    try:
        row, root = _snapshot_root(request, name)
    except NotFoundError:
        return not_found(request, f"job {name!r}", "/jobs", "all jobs")
    back = f"/jobs/{name}"
    controller = _controller_note(request, row, "code")
    if controller is not None:
        return render(request, "code.html", job=row, tree=[], total=0, rel="", text=None, why=None,
                      missing=controller[0], child_link=controller[1])
    if root is None:
        return render(request, "code.html", job=row, tree=[], total=0, rel="", text=None, why=None,
                      missing="this job has no code snapshot (it ran without `code:`)")
    try:
        target = safe_join(root, rel, what="file path") if rel else root
    except OpenAMLError as e:  # .., an absolute path, a link out of the snapshot
        return bad_request(request, f"Bad file path {rel!r}: {e.message}", f"{back}/code", "the code snapshot")
    if not target.exists():
        return not_found(request, f"{rel!r} in the code snapshot of job {name!r}", f"{back}/code", "the code snapshot")
    if target.is_file() and "download" in request.query_params:
        return FileResponse(target, media_type="application/octet-stream", filename=target.name,
                            headers={"x-content-type-options": "nosniff", "content-security-policy": "sandbox"})
    text = why = None
    if target.is_file():
        text, why = read_text_file(target)
    tree, total = snapshot_tree(root)
    return render(request, "code.html", job=row, tree=tree, total=total, rel=rel, text=text, why=why,
                  is_file=target.is_file(), missing=None)


def build_log(request: Request, runtime_env: dict[str, Any]) -> tuple[str | None, int, str]:
    """``(text, size, note)``: the end of the build log of a job's resolved environment
    (``<workspace>/envs/<spec_hash>/build.log``, written by every build, kept after a failure),
    its size in bytes, and a note when there is none (the default environment needs no build)."""
    from openaml.environments import env_path

    kind = runtime_env.get("kind")
    spec_hash = runtime_env.get("spec_hash")
    if kind == "base" or not spec_hash:
        return None, 0, ("the default environment: the job ran on a per-job layer over the server's packages, "
                         "nothing was built")
    path = env_path(str(spec_hash), request.app.state.ctx.layout.envs) / "build.log"
    if not path.is_file():
        return None, 0, "no build log yet (the environment has not been built on this server)"
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - BUILD_LOG_TAIL))
        text = fh.read().decode("utf-8", errors="replace")
    return text, size, ""


@router.get("/jobs/{name}/environment", response_class=HTMLResponse)
def job_environment(request: Request, name: str) -> HTMLResponse:
    """The environment the job resolved (source, kind, Python, warnings) and its build log."""
    try:
        row = request.app.state.ctx.store.get_job(name)
    except NotFoundError:
        return not_found(request, f"job {name!r}", "/jobs", "all jobs")
    controller = _controller_note(request, row, "environment")
    if controller is not None:
        return render(request, "job_environment.html", job=row, env={}, asked=None, log=None, size=0,
                      note=controller[0], child_link=controller[1])
    env = dict((row.get("runtime") or {}).get("environment") or {})
    text, size, note = build_log(request, env)
    shown = {k: env[k] for k in ("source", "kind", "spec_hash", "python", "python_used", "interpreter", "image", "pip",
                                 "warnings") if env.get(k) not in (None, "", [])}
    return render(request, "job_environment.html", job=row, env=shown, asked=row["spec"].get("environment"),
                  log=text, size=size, note=note)
