"""What the engine's modules share: the state folder's name, the flags it reads, message framing
on the zygote's and the warm pool's sockets (one JSON object per packet, descriptors as
``SCM_RIGHTS``), atomic writes."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

STATE_DIR = ".openaml_parallel"
PRS_FLAGS_USED = ("--append_row_file_name", "--first_task_creation_timeout", "--allowed_failed_count",
                  "--allowed_failed_percent")
INTERNAL_PREFIX = "--openaml_"  # the built-in batch scoring driver's own flags (never the user's)
# modules after whose import a fork is unsafe (threads or runtimes that do not survive it): with one
# of them imported by the entry script, workers start as fresh processes instead
FORK_UNSAFE = ("tensorflow", "jax", "ray", "grpc", "pyspark", "cupy")


def send(sock: Any, msg: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    import array
    import socket

    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
    sock.sendmsg([json.dumps(msg).encode()], anc)


def recv(sock: Any) -> tuple[dict[str, Any] | None, list[int]]:
    import array
    import socket

    fds = array.array("i")
    data, anc, _flags, _addr = sock.recvmsg(1 << 20, socket.CMSG_LEN(8 * fds.itemsize))
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(raw[:len(raw) - (len(raw) % fds.itemsize)])
    return (json.loads(data) if data else None), list(fds)


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a killed driver leaves no worker behind)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    except Exception:  # noqa: BLE001, S110 - not Linux
        pass


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def entry_script() -> str:
    """The engine's entry script: the file run as ``__main__`` (``_openaml_parallel_driver.py``, a copy of
    :mod:`openaml.parallel._driver`), which fresh workers and the zygote run again."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                          "_openaml_parallel_driver.py")
    return os.path.abspath(path)
