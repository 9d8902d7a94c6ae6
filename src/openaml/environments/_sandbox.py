"""Read-only bind mounts of shared environments around a user process (jobs and deployment workers).

A job or a deployment worker runs user code in its own layer (:func:`openaml.environments.job_layer`)
over a shared environment: a cached curated/custom virtualenv, or the server's own packages (the
documented default environment). The layer takes ``pip install``; these helpers also make the shared
environment itself (and the server's virtualenv) read-only to the process, so that even user code
calling the shared environment's own pip, or writing into its ``site-packages``, cannot change what
the next job, deployment or the server gets. The process runs in its own mount namespace
(``unshare -m``, root or user namespaces); where that is unavailable the layer alone protects (it
covers ``pip install`` through the layer's interpreter, which is what ``sys.executable -m pip`` is).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["read_only_mounts_available", "server_prefix", "interpreter_roots", "wrap_read_only", "KEPT_CAPABILITIES"]

#: the capabilities a job's or worker's process keeps when it runs as root: Docker's default set for a
#: container (what an Azure ML job gets in its container) less ``mknod`` (no device containers here to
#: restrict what a made node opens) and ``setfcap``. Left out, above all: ``sys_admin`` (it could
#: unmount what hides the workspace's secrets, or its own ``/proc``) and ``sys_ptrace``.
KEPT_CAPABILITIES = ("chown", "dac_override", "fsetid", "fowner", "net_raw", "setgid", "setuid", "setpcap",
                     "net_bind_service", "sys_chroot", "kill", "audit_write")
#: prefixes of the system itself: never bound read-only whole (the interpreter's own folders on
#: ``sys.path`` are, see :func:`interpreter_roots`)
_SYSTEM_ROOTS = (Path("/"), Path("/usr"), Path("/usr/local"), Path("/opt"))

_probe: bool | None = None


def read_only_mounts_available() -> bool:
    """Whether ``unshare -m`` + a read-only bind mount works here (root, or user namespaces).

    Probed once per process (a ``unshare -m true``, about 2 ms), then cached.
    """
    global _probe
    if _probe is None:
        ok = False
        # setpriv: a root job's capabilities are dropped after the mounts (KEPT_CAPABILITIES); without it
        # the job could unmount what hides the secrets, so no namespace is better than a false promise
        needs = ("unshare", "mount") + (("setpriv",) if os.geteuid() == 0 else ())
        if all(shutil.which(t) for t in needs):
            try:
                done = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                                      capture_output=True, timeout=5, check=False)
                ok = done.returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
        _probe = ok
    return _probe


def server_prefix() -> Path | None:
    """The server's virtualenv (``sys.prefix``) when the server runs in one, else None.

    It is what user code in the default environment must not change; a system interpreter's prefix
    (``/usr``) is left alone.
    """
    return Path(sys.prefix) if sys.prefix != sys.base_prefix else None


def interpreter_roots(shared_bin: str | Path | None = None, *, keep_writable: Sequence[Path] = ()) -> list[Path]:
    """The folders whose code runs outside a job's namespace, or in the next job: read-only to a job or
    worker (issue 10: a job must not plant a ``.pth``, a module or a script that the runner, the
    server, the CLI or the next job would run).

    * this interpreter's (the server's and its runners') ``sys.prefix`` and ``sys.base_prefix``, and
      every folder on its ``sys.path`` (an editable install's source folder included);
    * with ``shared_bin`` (a shared environment's ``bin``): that environment and the prefix of the
      interpreter it was made from (``home`` of its ``pyvenv.cfg``).

    A system prefix (``/usr``, ``/usr/local``, ``/``) is never bound whole: only its Python folders on
    ``sys.path`` are. A folder that holds one of ``keep_writable`` (the job's own folder, the
    workspace) is left out: it cannot be made read-only without them. Nested folders are dropped (a
    bind brings its content). Returns resolved, existing folders."""
    found: list[Path] = []

    def add_prefix(prefix: Path) -> None:
        if prefix.resolve() not in [r.resolve() for r in _SYSTEM_ROOTS]:
            found.append(prefix)

    add_prefix(Path(sys.prefix))
    add_prefix(Path(sys.base_prefix))
    found.extend(Path(p) for p in sys.path if p and os.path.isabs(p))
    if shared_bin is not None:
        root = Path(shared_bin).parent
        found.append(root)
        try:
            cfg = (root / "pyvenv.cfg").read_text(encoding="utf-8")
        except OSError:
            cfg = ""
        for line in cfg.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                add_prefix(Path(value.strip()).parent)
    keep = [Path(k).resolve() for k in keep_writable]
    out: list[Path] = []
    for p in found:
        try:
            r = p.resolve()
        except OSError:
            continue
        if not r.is_dir() or any(k == r or r in k.parents for k in keep):
            continue
        out.append(r)
    out = sorted(set(out))
    return [p for p in out if not any(o != p and o in p.parents for o in out)]


def _drop_capabilities() -> str:
    """``setpriv`` arguments that leave a root process only :data:`KEPT_CAPABILITIES` (bounding,
    inheritable and ambient sets), or "" when not root (nothing to drop)."""
    if os.geteuid() != 0:
        return ""
    keep = ",".join(f"+{c}" for c in KEPT_CAPABILITIES)
    return f"setpriv --bounding-set=-all,{keep} --inh-caps=-all --ambient-caps=-all -- "


def wrap_read_only(argv: Sequence[str], binds: Sequence[tuple[str, str]], *, then: Sequence[str] = (),
                   pid_namespace: bool = False) -> list[str]:
    """``argv`` run in a private mount namespace where each ``(src, dst)`` of ``binds`` is a read-only
    bind mount of ``src`` at ``dst`` (``src == dst``: that folder made read-only in place); ``then``:
    more shell lines run (``set -e``) after the binds, before ``argv`` (a job's hiding of the
    workspace's secrets, :mod:`openaml.environments._hide`). ``pid_namespace``: also a PID namespace of its
    own with its own ``/proc`` (so ``/proc/<server pid>/root``, ``environ`` or ``fd`` cannot reach
    what the mount namespace hides); ``argv`` then runs as a child of the namespace's init (a
    ``bash`` that the kernel shields from signals sent from outside), so a ``killpg`` still reaches
    it with SIGTERM first; when it ends, whatever it left running in the namespace is killed.

    Run as root, ``argv`` keeps only :data:`KEPT_CAPABILITIES` (``setpriv``): without ``sys_admin`` it
    cannot unmount what the binds and ``then`` set up (or its own ``/proc``); the wrapper itself keeps
    them to make the mounts.

    The wrapper ``exec``s ``argv`` (same pid, same process group), so signals and process-group kills
    reach the user process. With no ``binds`` and no ``then`` it returns ``argv`` unchanged. Callers
    check :func:`read_only_mounts_available` before adding binds.
    """
    if not binds and not then:
        return list(argv)
    lines = ["set -e"]
    for src, dst in binds:
        lines.append(f"mount --bind -o ro {shlex.quote(src)} {shlex.quote(dst)}")  # util-linux 2.27+
    lines.extend(then)
    if pid_namespace:
        # not the last command of the script (bash would exec it as the namespace's init, whom the
        # kernel shields from a SIGTERM sent from outside): the exit status is passed on
        lines.append(f'set +e; {_drop_capabilities()}"$@"; status=$?; exit "$status"')
        return ["unshare", "-m", "-p", "--fork", "--mount-proc", "--propagation", "private", "bash", "-c",
                "\n".join(lines), "openaml-ro", *argv]
    lines.append(f'exec {_drop_capabilities()}"$@"')
    return ["unshare", "-m", "--propagation", "private", "bash", "-c", "\n".join(lines), "openaml-ro", *argv]
