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

import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["read_only_mounts_available", "server_prefix", "wrap_read_only"]

_probe: bool | None = None


def read_only_mounts_available() -> bool:
    """Whether ``unshare -m`` + a read-only bind mount works here (root, or user namespaces).

    Probed once per process (a ``unshare -m true``, about 2 ms), then cached.
    """
    global _probe
    if _probe is None:
        ok = False
        if shutil.which("unshare") and shutil.which("mount"):
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
        lines.append('set +e; "$@"; status=$?; exit "$status"')
        return ["unshare", "-m", "-p", "--fork", "--mount-proc", "--propagation", "private", "bash", "-c",
                "\n".join(lines), "openaml-ro", *argv]
    lines.append('exec "$@"')
    return ["unshare", "-m", "--propagation", "private", "bash", "-c", "\n".join(lines), "openaml-ro", *argv]
