"""What a job must not see of its workspace (issue 10: "nothing secret in files other users can read").

A job runs as the same OS user as the server, so file permissions alone cannot keep it from the
workspace's secrets: ``server.token`` (the owner's token), ``secret.key`` (the key of the secrets
encrypted in ``openaml.db``), the databases (``openaml.db``, ``mlflow.db`` and their ``-wal``/``-shm``
files), other jobs' folders (their logs and outputs), MLflow's artifact store, the server log and
``$OPENAML_HOME/credentials.json`` (saved client tokens). The runner hides them in the job's own mount
namespace (the one it already makes with ``unshare -m`` for read-only inputs), by an allow list
rather than a deny list, so that a file the server creates later (a new ``-wal``) is hidden too:

* the workspace folder becomes an empty read-only ``tmpfs`` holding copies of ``workspace.json`` and
  ``server.json`` (neither holds a secret);
* into it are bound back only what a job uses: its own job folder (working directory, virtualenv
  layer, staged inputs and outputs), the only writable one; ``envs/`` (the shared environments and
  their bytecode) and ``datastores/`` (the data its inputs resolve to), both read-only, so that no job
  plants a ``.pth`` or ``.pyc`` that the next job would run, nor changes registered data (the runner,
  outside the namespace, places outputs after the command);
* every folder of the workspace's local datastores (``read_only``, wherever it lies) is read-only;
* every *other* workspace of the user (those in ``$OPENAML_HOME/workspaces.json`` and the folders of
  ``$OPENAML_HOME/workspaces/``) becomes an empty read-only ``tmpfs``;
* ``$OPENAML_HOME/credentials.json`` and the server's secret files outside the workspace
  (:func:`server_secret_files`: the ``--token-file``, the TLS key, SQLite databases configured
  elsewhere) are covered by an empty, mode-000, read-only file.

Code snapshots need not be visible to a job (the runner copies the job's code into its working
directory): ``code/`` is hidden. A deployment worker sees its code snapshot and model read-only
(``keep`` without ``writable``), its own folder writable but for the laid-out model in it.
The folders are bound back through file descriptors opened before the ``tmpfs`` covers them
(``mount --bind /proc/self/fd/N``), since their paths then lead into the ``tmpfs``.

The read-only input mounts are made before the hiding (a model input's source is in ``mlartifacts/``,
hidden next); the recursive binds keep them, read-only. The server process and the runner are not
in the namespace: they see the workspace as it is.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openaml._settings import Settings

__all__ = ["hide_script", "hide_lines", "other_workspaces", "server_secret_files", "worker_sockets_root",
           "NOT_HIDDEN_WARNING", "NOT_HIDDEN_DEPLOYMENT"]

#: files of the workspace folder a job still sees (copies): names and ids, no secret
VISIBLE_FILES = ("workspace.json", "server.json")
#: folders of the workspace folder bound back into the job's view (besides its own job folder)
VISIBLE_DIRS = ("envs", "datastores")

NOT_HIDDEN_WARNING = (
    "the workspace's secrets are NOT hidden from this job: mount namespaces (unshare -m) are unavailable "
    "here, so the job's code can read server.token, secret.key, the databases and "
    "$OPENAML_HOME/credentials.json like any process of this OS user (see docs/guide/security.md)")


NOT_HIDDEN_DEPLOYMENT = (
    "the workspace's secrets are NOT hidden from this deployment's workers: mount namespaces (unshare -m) are "
    "unavailable here, so its scoring code can read server.token, secret.key, the databases and "
    "$OPENAML_HOME/credentials.json like any process of this OS user (see docs/guide/security.md)")


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def other_workspaces(workspace: Path, home: Path) -> list[Path]:
    """The user's other workspace folders that exist and can be covered without covering ``workspace``
    (neither it nor one of its parents, nor a folder inside it, which is hidden with it)."""
    found: set[Path] = set()
    try:
        index = json.loads((home / "workspaces.json").read_text(encoding="utf-8"))
        found.update(Path(p) for p in dict(index).values())
    except (OSError, ValueError, TypeError):
        pass
    try:
        found.update(p for p in (home / "workspaces").iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        pass
    out = []
    for p in sorted(found):
        try:
            p = p.resolve()
        except OSError:
            continue
        if p.is_dir() and not _within(workspace, p) and not _within(p, workspace):
            out.append(p)
    return sorted(set(out))


def server_secret_files(settings: Settings) -> list[str]:
    """Absolute paths of the server's secret files that may lie outside its workspace: the file given
    to ``--token-file``, the TLS private key, and SQLite databases given by ``--database-url`` or
    ``--tracking-url`` (with their ``-wal``, ``-shm`` and ``-journal`` files). Those that do not
    exist when a job starts are skipped by :func:`hide_script`."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    files = [p for p in (settings.token_file, settings.ssl_keyfile) if p]
    for url in (settings.database_url, settings.tracking_url):
        try:
            parsed = make_url(url) if url else None
        except ArgumentError:
            continue
        if parsed is not None and parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
            db = Path(str(parsed.database))
            files += [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))]
    return [str(Path(p).expanduser().resolve()) for p in files]


def hide_script(workspace: Path, job_dir: Path, home: Path, files: list[str] | None = None,
                read_only: list[str] | None = None) -> list[str]:
    """Shell lines (for ``bash`` run by root in a fresh mount namespace, ``set -e``) that hide what a job
    must not see (module docstring). ``workspace``, ``job_dir`` (inside ``workspace/jobs``) and ``home``
    (``$OPENAML_HOME``) are absolute, resolved paths; ``files`` are more files to cover with an empty
    one (:func:`server_secret_files`; those in the workspace are hidden with it); ``read_only``: the
    folders of the workspace's local datastores (made read-only where the job sees them). Of the
    workspace, only ``job_dir`` stays writable: ``envs/`` and ``datastores/`` come back read-only."""
    keep = [job_dir] + [workspace / d for d in VISIBLE_DIRS if (workspace / d).is_dir()]
    return hide_lines(workspace, keep, home, files, writable=[job_dir],
                      read_only=[Path(p) for p in read_only or []])


def worker_sockets_root() -> Path:
    """The folder of deployment workers' sockets whose run folder has too long a path for a unix socket
    (``<tmp>/openaml-<uid>``, :func:`openaml.serving._supervisor._socket_dir`)."""
    import os
    import tempfile

    return Path(tempfile.gettempdir()) / f"openaml-{os.getuid()}"


def hide_lines(workspace: Path, keep: list[Path], home: Path, files: list[str] | None = None,
               sockets: Path | None = None, *, writable: list[Path] | None = None,
               read_only: list[Path] | None = None) -> list[str]:
    """Shell lines (for ``bash`` run by root in a fresh mount namespace, ``set -e``) that leave of the
    workspace folder only ``keep`` (absolute, resolved folders or files inside it; the module docstring
    says what else is hidden): a job's (:func:`hide_script`) or a deployment worker's view. Only the
    ``keep`` paths listed in ``writable`` are bound back read-write; the others are read-only, even
    when they lie inside a writable one (a deployment's laid-out model inside its folder).
    ``read_only``: more absolute folders made read-only in place where they exist (local datastores'
    folders; those inside the workspace are read-only when kept, hidden otherwise; one that is the
    workspace or holds it is left to the hiding, which covers the workspace anyway). ``sockets``: the
    worker's own socket folder under :func:`worker_sockets_root`, the only one of that root left
    visible (the other workers' sockets, which answer without a key, are hidden from jobs and other
    deployments alike)."""
    q = shlex.quote
    ws = q(str(workspace))
    lines: list[str] = []
    rw = {p for p in writable or []}
    for other in other_workspaces(workspace, home):
        lines.append(f"mount -t tmpfs -o ro,mode=0500,size=4k openaml-hidden {q(str(other))}")
    keep = [p for p in dict.fromkeys(keep) if _within(p, workspace) and p != workspace and p.exists()]
    nested = [p for p in keep if any(o != p and _within(p, o) for o in keep)]
    keep = [p for p in keep if p not in nested]  # a folder brings its content
    root = worker_sockets_root().resolve()
    if root.is_dir() and not _within(workspace, root):
        own = [sockets] if sockets is not None and sockets.parent == root and sockets.is_dir() else []
        lines += _cover(root, own, mode="0700", size="4k", read_only=True)
    # the kept folders are mount points of their own: read-only unless writable
    lines += _cover(workspace, keep, mode="0700", size="1m", copies=VISIBLE_FILES,
                    read_only_keep=[p for p in keep if p not in rw])
    inner = [p for p in [*nested, *(read_only or [])] if p not in rw and p.exists()
             and any(_within(p, o) for o in keep if o in rw)]  # read-only inside a writable folder
    for p in dict.fromkeys(inner):
        lines.append(f"mount --rbind -o ro {q(str(p))} {q(str(p))}")
    mask = q(str(workspace / ".hidden"))
    lines.append(f": > {mask}; chmod 000 {mask}")
    lines.append(f"mount -o remount,ro {ws}")
    covered = [home / "credentials.json"] + [Path(f) for f in files or []]
    for f in dict.fromkeys(covered):
        if not _within(f, workspace):
            c = q(str(f))
            lines.append(f"if [ -f {c} ]; then mount --bind -o ro {mask} {c}; fi")
    # after the hiding: a recursive bind carries the covers made above (and a socket folder bound back
    # read-write stays so), only its top mount becomes read-only
    for folder in dict.fromkeys(read_only or []):
        if not _within(folder, workspace) and not _within(workspace, folder):
            f = q(str(folder))
            lines.append(f"if [ -d {f} ]; then mount --rbind -o ro {f} {f}; fi")
    lines.append('cd -- "$PWD"')  # the working directory through the new mounts
    return lines


def _cover(folder: Path, keep: list[Path], *, mode: str, size: str, copies: tuple[str, ...] = (),
           read_only: bool = False, read_only_keep: list[Path] | None = None) -> list[str]:
    """Lines putting an empty ``tmpfs`` over ``folder`` with ``keep`` (inside it) bound back, and copies of
    its files named in ``copies``. The kept paths are bound back through file descriptors opened before
    the ``tmpfs`` covers them (their paths then lead into it); those in ``read_only_keep`` read-only
    (``mount --rbind -o ro``: libmount binds, then remounts the top read-only, in one process; util-linux
    2.27+). ``read_only``: the ``tmpfs`` itself is made read-only after."""
    q = shlex.quote
    fds = list(range(3, 3 + len(keep)))
    old = 3 + len(keep)
    opened = " ".join([*(f"{fd}<{q(str(p))}" for fd, p in zip(fds, keep, strict=True)), f"{old}<{q(str(folder))}"])
    lines = [f"exec {opened}", f"mount -t tmpfs -o mode={mode},size={size} openaml-hidden {q(str(folder))}"]
    # mount points: one mkdir for the folders, shell built-ins for the files and copies (each external
    # command costs a process start, and workers and jobs start through these lines)
    dirs = [q(str(p)) for p in keep if p.is_dir()]
    if dirs:
        lines.append("mkdir -p " + " ".join(dirs))
    for p in keep:
        if not p.is_dir():
            if p.parent != folder:
                lines.append(f"mkdir -p {q(str(p.parent))}")
            lines.append(f": > {q(str(p))}")
    ro = set(read_only_keep or [])
    for fd, p in zip(fds, keep, strict=True):
        flags = "--rbind -o ro" if p in ro else "--rbind"
        lines.append(f"mount --no-canonicalize {flags} /proc/self/fd/{fd} {q(str(p))}")
    for name in copies:
        src, dst = f"/proc/self/fd/{old}/{name}", q(str(folder / name))
        lines.append(f"if [ -f {src} ]; then IFS= read -r -d '' text < {src} || true; "
                     f"printf '%s' \"$text\" > {dst}; fi")
    lines.append("exec " + " ".join(f"{fd}<&-" for fd in [*fds, old]))
    if read_only:
        lines.append(f"mount -o remount,ro {q(str(folder))}")
    return lines
