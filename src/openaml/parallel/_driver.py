"""The parallel job's driver and its workers: one standalone script, run with the job's own Python.

It runs on the job's Python, 3.7 or later (curated environments go back to 3.7). The server
copies this file into the job's code snapshot as ``_openaml_parallel_driver.py``; the
runner runs ``python _openaml_parallel_driver.py --config <base64 json> --input-data <path>
[--append-row-to <path>] -- <program_arguments>`` in the job's environment (never the server's
interpreter). It imports nothing but the standard library (pandas/pyarrow only for tabular
inputs, from the job's environment).

Engine (docs/guide/batch.md, "Engine rules"):

- Plan: the input is cut into mini-batches, numbered from 0 in a stable order: a folder's files
  sorted by relative path, ``mini_batch_size`` files each; a tabular input (csv/parquet file or
  MLTable) cut into chunks of about ``mini_batch_size`` bytes at row boundaries, file by file; a
  partitioned MLTable one mini-batch per value of ``partition_keys``.
- Workers: ``instance_count x max_concurrency_per_instance`` processes of this script
  (``--worker``), each importing the entry script and running ``init()`` once, then ``run()`` per
  mini-batch. A mini-batch whose ``run()`` raises, or overruns ``retry_settings.timeout`` (its
  worker is killed and replaced), or whose worker dies, is tried again up to ``max_retries`` times,
  then counted failed with all its items.
- Thresholds: the job fails (at once, the rest not run) when failed items exceed
  ``error_threshold`` or failed mini-batches exceed ``mini_batch_error_threshold`` (-1: never).
  Items are files (folders) or rows (tabular); a ``run()`` returning fewer rows than items counts
  the difference as failed items; more rows are all kept; both are said in the log.
- Output (``append_row_to``): the rows ``run()`` returned, one line each, mini-batch 0 first.
  ``logs/mini_batch_rows.csv`` says which lines came from which input.
- Journal: each mini-batch's rows are written to ``.openaml_parallel/rows/<index>.txt`` (written to a
  temporary name, then renamed) and its end appended to ``.openaml_parallel/journal.jsonl`` (one
  flushed and fsynced line). A driver started again in the same folder skips the mini-batches the
  journal names, and the output is assembled from the row files at the end: no mini-batch runs
  twice after it ended, no row appears twice.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import importlib.util
import inspect
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

STATE_DIR = ".openaml_parallel"
PRS_FLAGS_USED = ("--append_row_file_name",)
INTERNAL_PREFIX = "--openaml_"  # the built-in batch scoring driver's own flags (never the user's)


# ====================================================================== plan
def _list_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    out = [p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def _csv_chunks(path: Path, size: int, header: bool) -> list[dict[str, Any]]:
    import mmap

    if path.stat().st_size == 0:
        return []
    with open(path, "rb") as fh:
        data: Any = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)  # not read into memory
    start = 0
    head = ""
    if header:
        nl = data.find(b"\n")
        start = len(data) if nl < 0 else nl + 1
        head = data[:start].decode("utf-8", errors="replace")
    out = []
    row0 = 0  # the chunk's first row in its file (rows after the header, by line)
    while start < len(data):
        end = min(len(data), start + size)
        if end < len(data):
            nl = data.find(b"\n", end - 1)
            end = len(data) if nl < 0 else nl + 1
        chunk = data[start:end]
        rows = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        if chunk.strip():
            out.append({"kind": "csv", "file": str(path), "start": start, "end": end, "header": head, "n": max(rows, 1),
                        "row0": row0, "source": f"{path.name}[{start}:{end}]"})
        row0 += rows
        start = end
    data.close()
    return out


def plan_mini_batches(cfg: dict[str, Any], input_path: Path) -> list[dict[str, Any]]:
    """The mini-batches of the job, in their stable order (index = position)."""
    tab = cfg.get("tabular")
    if not tab:
        files = _list_files(input_path)
        n = int(cfg["mini_batch_size"])
        base = input_path if input_path.is_dir() else input_path.parent
        return [{"kind": "files", "items": [str(p) for p in files[i:i + n]], "n": len(files[i:i + n]),
                 "source": ";".join(p.relative_to(base).as_posix() for p in files[i:i + n])}
                for i in range(0, len(files), n)]
    root = input_path if input_path.is_dir() else input_path.parent
    files = [root / f for f in tab["files"]] if tab.get("files") else [input_path]
    fmt = tab.get("format", "csv")
    if cfg.get("partition_keys"):
        import pandas as pd

        keys = list(cfg["partition_keys"])
        frame = pd.concat([_read_table(f, fmt, tab, columns=keys) for f in files], ignore_index=True)
        groups = frame.groupby(keys, sort=True, dropna=False).size()
        out = []
        for values, count in groups.items():
            vals = values if isinstance(values, tuple) else (values,)
            kv = {k: _plain(v) for k, v in zip(keys, vals)}  # noqa: B905 - the job's Python may be 3.7
            out.append({"kind": "partition", "files": [str(f) for f in files], "format": fmt, "tab": tab,
                        "partition": kv, "n": int(count), "source": json.dumps(kv, sort_keys=True)})
        return out
    size = int(cfg["mini_batch_size"])
    out = []
    for f in files:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(str(f)).metadata
            rows, nbytes = meta.num_rows, max(1, f.stat().st_size)
            per = max(1, int(size * rows / nbytes))
            for s in range(0, rows, per):
                e = min(rows, s + per)
                out.append({"kind": "parquet", "file": str(f), "start": s, "end": e, "n": e - s, "row0": s,
                            "source": f"{f.name}[rows {s}:{e}]"})
        else:
            out.extend(_csv_chunks(f, size, header=tab.get("header", True)))
    return out


def _plain(v: Any) -> Any:
    try:
        return v.item()  # numpy scalars
    except AttributeError:
        return v


def _read_table(path: Path | str, fmt: str, tab: dict[str, Any], columns: list[str] | None = None) -> Any:
    import pandas as pd

    if fmt == "parquet":
        return pd.read_parquet(path, columns=columns)
    return pd.read_csv(path, sep=tab.get("delimiter", ","), header=0 if tab.get("header", True) else None,
                       usecols=columns, encoding=tab.get("encoding", "utf-8"))


# ====================================================================== worker
class MiniBatchContext:
    """What ``run(mini_batch, mini_batch_context)`` gets (Azure's ``MiniBatchContext``)."""

    def __init__(self, index: int, partition_key_value: dict[str, Any] | None) -> None:
        self.minibatch_index = index
        self.partition_key_value = partition_key_value or {}


def _rows_of(result: Any) -> list[str]:
    """The lines ``append_row`` writes for ``run()``'s result: a DataFrame's rows as space-separated
    values (as Azure's PRS), a list/tuple/Series/array's elements one per line."""
    if result is None:
        return []
    mod = type(result).__module__
    if mod.startswith("pandas") and hasattr(result, "to_csv") and hasattr(result, "columns"):
        try:
            text = result.to_csv(sep=" ", header=False, index=False, lineterminator="\n")
        except TypeError:  # pandas < 1.5 (older curated environments)
            text = result.to_csv(sep=" ", header=False, index=False, line_terminator="\n")
        return text.splitlines()
    if isinstance(result, (str, bytes)):
        return [result.decode() if isinstance(result, bytes) else result]
    if hasattr(result, "tolist") and not isinstance(result, (list, tuple)):
        result = result.tolist()
    return [str(x) for x in result]


class _TableCache:
    def __init__(self) -> None:
        self.key: Any = None
        self.frame: Any = None

    def get(self, key: Any, load: Any) -> Any:
        if self.key != key:
            self.frame, self.key = load(), key
        return self.frame


def _load_mini_batch(task: dict[str, Any], cache: _TableCache) -> Any:
    kind = task["kind"]
    if kind == "files":
        return list(task["items"])
    import io

    import pandas as pd

    tab = task.get("tab") or {}
    if kind == "csv":
        with open(task["file"], "rb") as fh:
            fh.seek(task["start"])
            body = fh.read(task["end"] - task["start"])
        head = task.get("header") or ""
        return _with_source(pd.read_csv(io.BytesIO(head.encode() + body), sep=tab.get("delimiter", ","),
                                        header=0 if head else None), task)
    if kind == "parquet":
        frame = cache.get(task["file"], lambda: pd.read_parquet(task["file"]))
        return _with_source(frame.iloc[task["start"]:task["end"]].reset_index(drop=True), task)
    frame = cache.get(tuple(task["files"]), lambda: pd.concat(
        [_read_table(f, task["format"], tab) for f in task["files"]], ignore_index=True))
    mask = pd.Series(True, index=frame.index)
    for k, v in task["partition"].items():
        mask &= frame[k].isna() if v is None or v != v else frame[k] == v
    return frame[mask].reset_index(drop=True)


def _with_source(frame: Any, task: dict[str, Any]) -> Any:
    """A tabular mini-batch names the file its rows came from and its first row's index there in
    ``frame.attrs["source_file"]`` / ``["source_row"]`` (the built-in MLflow batch driver writes them
    in its ``file`` and ``row`` columns); pandas < 1.0 has no ``attrs``."""
    try:
        frame.attrs["source_file"] = os.path.basename(task["file"])
        frame.attrs["source_row"] = int(task.get("row0", 0))
    except AttributeError:
        pass
    return frame


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a killed driver leaves no worker behind)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    except Exception:  # noqa: BLE001, S110 - not Linux
        pass


def _worker_setup(cfg: dict[str, Any]) -> Path:
    """What every worker sees: logging at ``logging_level``, the entry script's folder and the
    working folder on ``sys.path``, ``sys.argv = [entry_script, *program_arguments]``."""
    import logging

    logging.basicConfig(level=getattr(logging, cfg.get("logging_level", "INFO"), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    script = Path(cfg["entry_script"]).resolve()
    if str(script.parent) not in sys.path:
        sys.path.insert(0, str(script.parent))
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    sys.argv = [str(script), *cfg.get("program_arguments", [])]
    return script


def _import_entry(script: Path) -> Any:
    """The entry script as a module (imported once per process: a worker forked from the zygote
    finds it imported already)."""
    module = sys.modules.get(script.stem)
    if module is not None and getattr(module, "__file__", None) == str(script):
        return module
    spec = importlib.util.spec_from_file_location(script.stem, script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[script.stem] = module
    spec.loader.exec_module(module)
    return module


def worker_main(fd_in: int, fd_out: int, worker_id: int) -> int:
    """One worker: import the entry script, ``init()`` once, then one ``run()`` per task line."""
    _die_with_parent()
    reader = os.fdopen(fd_in, "r", encoding="utf-8")
    writer = os.fdopen(fd_out, "w", encoding="utf-8", buffering=1)
    cfg = json.loads(reader.readline())
    script = _worker_setup(cfg)
    rows_dir = Path(cfg["rows_dir"])
    before = set(sys.modules)
    try:
        module = _import_entry(script)
        if hasattr(module, "init"):
            module.init()
        run = module.run
        takes_context = len(inspect.signature(run).parameters) >= 2
    except BaseException:  # noqa: BLE001
        writer.write(json.dumps({"init_error": traceback.format_exc()}) + "\n")
        return 1
    # the library modules the entry script and init() imported: the next job's zygote imports them
    # first (not the job's own modules: its code runs in the worker, as on Azure)
    local = (str(script.parent) + os.sep, str(Path.cwd()) + os.sep)
    learned = sorted(m for m in set(sys.modules) - before if not m.startswith("_") and m != script.stem
                     and not str(getattr(sys.modules.get(m), "__file__", None) or "").startswith(local))
    writer.write(json.dumps({"ready": True, "pid": os.getpid(), "imported": learned[:5000]}) + "\n")
    cache = _TableCache()
    for line in reader:
        task = json.loads(line)
        t0 = time.monotonic()
        try:
            batch = _load_mini_batch(task, cache)
            n_in = len(batch)
            if takes_context:
                result = run(batch, MiniBatchContext(task["index"], task.get("partition")))
            else:
                result = run(batch)
            rows = _rows_of(result)
            if cfg.get("append_row"):
                final = rows_dir / f"{task['index']:08d}.txt"
                tmp = rows_dir / f".{task['index']:08d}.{os.getpid()}.tmp"
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.write("".join(r + "\n" for r in rows))
                os.replace(tmp, final)
            msg = {"index": task["index"], "ok": True, "n_in": n_in, "n_out": len(rows),
                   "seconds": time.monotonic() - t0}
        except BaseException:  # noqa: BLE001 - any error of run() is the mini-batch's failure
            msg = {"index": task["index"], "ok": False, "error": traceback.format_exc(),
                   "seconds": time.monotonic() - t0}
        writer.write(json.dumps(msg) + "\n")
    return 0


# ====================================================================== zygote
# modules after whose import a fork is unsafe (threads or runtimes that do not survive it): with one
# of them imported by the entry script, workers start as fresh processes instead
_FORK_UNSAFE = ("tensorflow", "jax", "ray", "grpc", "pyspark", "cupy")


def _send(sock: Any, msg: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    import array
    import socket

    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
    sock.sendmsg([json.dumps(msg).encode()], anc)


def _recv(sock: Any) -> tuple[dict[str, Any] | None, list[int]]:
    import array
    import socket

    fds = array.array("i")
    data, anc, _flags, _addr = sock.recvmsg(1 << 20, socket.CMSG_LEN(4 * fds.itemsize))
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(raw[:len(raw) - (len(raw) % fds.itemsize)])
    return (json.loads(data) if data else None), list(fds)


def zygote_main(fd: int) -> int:
    """The zygote: imports the entry script (and the modules earlier jobs' ``init()`` imported) once,
    then forks each worker on request (``{"fork": id, "log": path}`` with the worker's two pipe ends),
    so that a worker starts in milliseconds with those imports done; it reports each child's pid and
    exit status. With a fork-unsafe module imported (or no ``fork``) it says ``no_fork`` and exits:
    the driver then starts workers as fresh processes."""
    import socket

    _die_with_parent()
    sock = socket.socket(fileno=fd)
    cfg, _ = _recv(sock)
    if cfg is None:
        return 0
    status: dict[str, Any] = {"zygote": "ready"}
    try:
        script = _worker_setup(cfg)
        _import_entry(script)
        for name in cfg.get("preload") or []:
            if str(name).split(".")[0] in _FORK_UNSAFE:
                continue  # init() imports it in each worker, after the fork
            try:
                importlib.import_module(name)
            except BaseException:  # noqa: BLE001, S112 - a hint only: the worker imports what it needs
                continue
        unsafe = [m for m in _FORK_UNSAFE if m in sys.modules]
        if unsafe or not hasattr(os, "fork"):
            status = {"zygote": "no_fork", "why": f"{', '.join(unsafe) or 'os.fork'} (fork-unsafe) imported"}
    except BaseException:  # noqa: BLE001 - the worker reports the error as init()'s
        status = {"zygote": "no_fork", "why": traceback.format_exc().strip().splitlines()[-1]}
    sys.stdout.flush()
    sys.stderr.flush()
    _send(sock, status)
    if status["zygote"] != "ready":
        return 0

    def _reap(_signum: int, _frame: Any) -> None:
        while True:
            try:
                pid, code = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            _send(sock, {"exit": pid, "code": -os.WTERMSIG(code) if os.WIFSIGNALED(code) else os.WEXITSTATUS(code)})

    signal.signal(signal.SIGCHLD, _reap)
    while True:
        try:
            req, fds = _recv(sock)
        except OSError:
            return 0
        if req is None:  # the driver is gone
            return 0
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                sock.close()
                os.setsid()
                log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.close(log)
                code = worker_main(fds[0], fds[1], int(req["fork"]))
            except BaseException:  # noqa: BLE001
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        for f in fds:
            os.close(f)
        _send(sock, {"forked": req["fork"], "pid": pid})


def _preload_file(cfg: dict[str, Any], work: Path) -> Path:
    """Where the modules learned from earlier jobs of this entry script on this Python are kept (a
    hint for the zygote: a missing or stale file costs time only)."""
    script = (work / cfg["entry_script"]).resolve()
    try:
        body = script.read_bytes()
    except OSError:
        body = b""
    key = hashlib.sha256(body + b"\0" + sys.executable.encode()).hexdigest()[:32]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "openaml" / "parallel-preload" / f"{key}.json"


class _Zygote:
    """The driver's side of the zygote: started with the job, forks workers once it is ready."""

    def __init__(self, driver: Driver) -> None:
        import socket

        self.ready = False
        self.failed: str | None = None
        self.pids: dict[int, int] = {}
        self.codes: dict[int, int] = {}
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log = open(driver.logs / "user" / "stdout" / "zygote.txt", "ab", buffering=0)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--zygote", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # a session of its own, as every worker's: its own CPU share (autogroup)
        log.close()
        theirs.close()
        try:
            learned = json.loads(driver.preload_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            learned = []
        preload: list[str] = []
        size = 0
        for name in sorted((str(m) for m in learned), key=lambda m: (m.count("."), m)) if isinstance(learned, list) else []:
            size += len(name) + 4
            if size > 64 * 1024:  # one message (a socket buffer); packages first, then their modules
                break
            preload.append(name)
        _send(self.sock, {**driver.worker_cfg, "preload": preload})
        self.q = driver.q
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                msg, _ = _recv(self.sock)
            except (OSError, ValueError):
                msg = None
            if msg is None:
                self.q.put((None, {"zygote": "gone"}))
                return
            if "forked" in msg:
                self.pids[int(msg["forked"])] = int(msg["pid"])
            elif "exit" in msg:
                self.codes[int(msg["exit"])] = int(msg["code"])
            else:
                self.q.put((None, msg))

    def fork(self, worker: _Worker, r_task: int, w_res: int, log: Path) -> None:
        _send(self.sock, {"fork": worker.id, "log": str(log)}, (r_task, w_res))

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass


# ====================================================================== driver
class _Worker:
    """A worker process: forked by the zygote when it is ready (``forked``), else a fresh process
    of this script (``--worker``); tasks go down one pipe, results come up another."""

    def __init__(self, wid: int, driver: Driver) -> None:
        self.id = wid
        self.ready = False
        self.task: dict[str, Any] | None = None
        self.started = 0.0
        self.dead = False
        self.zygote: _Zygote | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        r_task, w_task = os.pipe()
        r_res, w_res = os.pipe()
        logfile = driver.logs / "user" / "stdout" / f"worker_{wid}.txt"
        if driver.zygote is not None and driver.zygote.ready:
            try:
                driver.zygote.fork(self, r_task, w_res, logfile)
                self.zygote = driver.zygote
            except OSError:  # the zygote is gone: this and later workers start as fresh processes
                driver.zygote.ready = False
        if self.zygote is None:
            log = open(logfile, "ab", buffering=0)  # noqa: SIM115
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker", str(r_task), str(w_res), str(wid)],
                pass_fds=(r_task, w_res), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
            log.close()
        os.close(r_task)
        os.close(w_res)
        self.out = os.fdopen(w_task, "w", encoding="utf-8", buffering=1)
        self.out.write(json.dumps(driver.worker_cfg) + "\n")
        self.q = driver.q
        threading.Thread(target=self._read, args=(os.fdopen(r_res, "r", encoding="utf-8"),), daemon=True).start()

    def _read(self, fh: Any) -> None:
        for line in fh:
            try:
                self.q.put((self, json.loads(line)))
            except ValueError:
                continue
        self.q.put((self, {"eof": True}))

    def send(self, task: dict[str, Any]) -> None:
        self.task = task
        self.started = time.monotonic()
        self.out.write(json.dumps(task) + "\n")

    def pid(self, wait: float = 0.0) -> int | None:
        """The worker's pid (a forked one's as the zygote reported it, waiting up to ``wait`` s)."""
        if self.proc is not None:
            return self.proc.pid
        assert self.zygote is not None
        end = time.monotonic() + wait
        while self.id not in self.zygote.pids and time.monotonic() < end:
            time.sleep(0.01)
        return self.zygote.pids.get(self.id)

    def exit_code(self) -> int | None:
        """The exit status once it ended (a forked worker's as the zygote reaped it; None if unknown)."""
        if self.proc is not None:
            return self.proc.wait()
        pid = self.pid(wait=2.0)
        assert self.zygote is not None
        end = time.monotonic() + 2.0
        while pid is not None and pid not in self.zygote.codes and time.monotonic() < end:
            time.sleep(0.01)
        return self.zygote.codes.get(pid) if pid is not None else None

    def kill(self) -> None:
        self.dead = True
        pid = self.pid(wait=2.0)
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        try:
            self.out.close()
        except OSError:
            pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


class Driver:
    def __init__(self, cfg: dict[str, Any], input_path: Path, append_row_to: str | None, program_args: list[str]) -> None:
        self.cfg = cfg
        self.input_path = input_path
        self.program_args = program_args
        self.work = Path.cwd()
        self.state = self.work / STATE_DIR
        self.logs = self.work / "logs"
        for d in (self.state / "rows", self.logs / "user" / "stdout", self.logs / "user" / "error", self.logs / "sys"):
            d.mkdir(parents=True, exist_ok=True)
        self.output_file: Path | None = None
        if append_row_to:
            name = _prs_arg(program_args, "--append_row_file_name") or cfg.get("output_file_name") or "parallel_run_step.txt"
            if os.path.basename(name) != name or name in (".", ".."):  # refused at submission; never written elsewhere
                raise SystemExit(f"--append_row_file_name {name!r} is not a plain file name")
            target = Path(append_row_to)
            self.output_file = target if cfg.get("append_row_type") == "uri_file" else target / name
        self.workers_n = max(1, int(cfg.get("instance_count", 1))) * max(1, int(cfg.get("max_concurrency", 1)))
        self.max_retries = int(cfg.get("max_retries", 3))
        self.timeout = float(cfg.get("timeout", 60))
        self.error_threshold = int(cfg.get("error_threshold", -1))
        self.mb_threshold = int(cfg.get("mini_batch_error_threshold", -1))
        self.q: queue.Queue[tuple[_Worker | None, dict[str, Any]]] = queue.Queue()
        self.worker_cfg = {"entry_script": str((self.work / cfg["entry_script"]).resolve()),
                           "program_arguments": program_args, "rows_dir": str(self.state / "rows"),
                           "append_row": self.output_file is not None, "logging_level": cfg.get("logging_level", "INFO")}
        self.done: dict[int, dict[str, Any]] = {}
        self.failed: dict[int, dict[str, Any]] = {}
        self.attempts: collections.Counter[int] = collections.Counter()
        self.errors: dict[int, list[str]] = collections.defaultdict(list)
        self.stop_reason: str | None = None
        self.t0 = time.monotonic()
        self.ready_at: float | None = None
        self.unit = "rows" if cfg.get("tabular") else "files"  # what an item is
        self._failed_items = 0
        self._journal_fh: Any = None
        self.zygote: _Zygote | None = None
        self.preload_file = _preload_file(cfg, self.work)
        self._learned = False
        self._dirty = False
        self._synced = 0.0
        self.rows_this_run = 0

    # ---------------------------------------------------------------- journal
    def _load_journal(self, plan_id: str) -> None:
        marker = self.state / "plan_id"
        journal = self.state / "journal.jsonl"
        if marker.exists() and marker.read_text().strip() != plan_id:
            print("[openaml] parallel: the input or settings changed since the journal was written; starting over",
                  flush=True)
            if journal.exists():  # (no missing_ok: the job's Python may be 3.7)
                journal.unlink()
            for f in (self.state / "rows").iterdir():
                f.unlink()
        tmp = self.state / "plan_id.tmp"
        tmp.write_text(plan_id)
        os.replace(tmp, marker)
        if not journal.exists():
            return
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line torn by a kill: that mini-batch runs again
            if rec.get("status") == "done" and (not self.output_file or self._rows_file(rec["index"]).exists()):
                self._record(self.done, rec)
            elif rec.get("status") == "failed":
                self._record(self.failed, rec)

    def _journal(self, rec: dict[str, Any]) -> None:
        """Append one record: written and flushed at once (a killed driver loses nothing), fsynced by
        :meth:`_sync` at most a second later (an OS crash loses at most that second: those
        mini-batches run again, their rows files are replaced, no row doubles)."""
        if self._journal_fh is None:
            self._journal_fh = open(self.state / "journal.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._journal_fh.write(json.dumps(rec) + "\n")
        self._journal_fh.flush()
        self._dirty = True

    def _sync(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._journal_fh is not None and self._dirty and (force or now - self._synced >= 1.0):
            os.fsync(self._journal_fh.fileno())
            self._dirty, self._synced = False, now

    def _rows_file(self, index: int) -> Path:
        return self.state / "rows" / f"{index:08d}.txt"

    # ---------------------------------------------------------------- counts
    def failed_items(self) -> int:
        return self._failed_items

    def _record(self, table: dict[int, dict[str, Any]], rec: dict[str, Any]) -> None:
        table[rec["index"]] = rec
        self._failed_items += int(rec.get("failed_items", 0))

    def _check_thresholds(self) -> None:
        if self.stop_reason:
            return
        if self.mb_threshold >= 0 and len(self.failed) > self.mb_threshold:
            self.stop_reason = (f"{len(self.failed)} mini-batches failed, more than mini_batch_error_threshold "
                                f"{self.mb_threshold}")
        elif self.error_threshold >= 0 and self.failed_items() > self.error_threshold:
            self.stop_reason = f"{self.failed_items()} items failed, more than error_threshold {self.error_threshold}"

    def progress(self, total: int, running: int, final: bool = False) -> str:
        elapsed = max(1e-6, time.monotonic() - self.t0)
        rows = sum(r.get("n_in", 0) for r in self.done.values())
        line = (f"[openaml] parallel: mini-batches {len(self.done)}/{total} done, {len(self.failed)} failed, "
                f"{running} running; {self.unit} {rows} done, {self.failed_items()} failed; "
                f"{self.rows_this_run / elapsed:.1f} {self.unit}/s")
        overview = {"total_mini_batches": total, "completed_mini_batches": len(self.done),
                    "failed_mini_batches": len(self.failed), "running_mini_batches": running,
                    "processed_items": rows, "failed_items": self.failed_items(),
                    "items_per_second": round(self.rows_this_run / elapsed, 2), "elapsed_seconds": round(elapsed, 3),
                    "workers": self.workers_n, "first_worker_ready_seconds": round(self.ready_at or 0.0, 3),
                    "final": final}
        _write_atomic(self.logs / "job_progress_overview.txt",
                      "".join(f"{k}: {v}\n" for k, v in overview.items()))
        return line

    # ---------------------------------------------------------------- run
    def run(self) -> int:
        # the workers start (and run init()) while the input is planned: forked by the zygote once it
        # has imported the entry script, else (no fork) fresh processes at once on a fresh start
        if _can_fork():
            try:
                self.zygote = _Zygote(self)
            except OSError as exc:  # workers start as fresh processes
                print(f"[openaml] parallel: workers start as fresh processes: {exc}", flush=True)
                self.zygote = None
        fresh = not (self.state / "journal.jsonl").exists()
        early = [_Worker(i, self) for i in range(self.workers_n)] if fresh and self.zygote is None else []
        try:
            plan = plan_mini_batches(self.cfg, self.input_path)
        except BaseException:
            for w in early:
                w.kill()
            if self.zygote is not None:
                self.zygote.close()
            raise
        for i, t in enumerate(plan):
            t["index"] = i
        plan_id = hashlib.sha256(json.dumps([self.cfg, [t["source"] for t in plan]], sort_keys=True,
                                            default=str).encode()).hexdigest()
        self._load_journal(plan_id)
        total = len(plan)
        print(f"[openaml] parallel: {total} mini-batches of {self.input_path} ("
              f"{'files' if not self.cfg.get('tabular') else 'rows'}), {self.workers_n} workers "
              f"(instance_count x max_concurrency_per_instance), max_retries {self.max_retries}, "
              f"timeout {self.timeout:g} s", flush=True)
        for note in self.cfg.get("notes") or []:
            print(f"[openaml] parallel: {note}", flush=True)
        if self.done or self.failed:
            print(f"[openaml] parallel: resuming: {len(self.done)} mini-batches done and {len(self.failed)} failed "
                  "in an earlier run are not run again", flush=True)
        ignored = [a for a in self.program_args if a.startswith("--") and a not in PRS_FLAGS_USED
                   and not a.startswith(INTERNAL_PREFIX)]
        if ignored:
            print(f"[openaml] parallel: program_arguments {' '.join(ignored)} are passed to the entry script's "
                  "sys.argv; the engine does not use them", flush=True)
        pending = collections.deque(t for t in plan if t["index"] not in self.done and t["index"] not in self.failed)
        self._check_thresholds()
        need = min(self.workers_n, len(pending)) if not self.stop_reason else 0
        for w in early[need:]:
            w.kill()
        if self.zygote is not None and need == 0:
            self.zygote.close()
            self.zygote = None
        workers: list[_Worker] = early[:need]
        if self.zygote is None:
            workers += [_Worker(i, self) for i in range(len(early), need)]
        next_id = max(len(early), len(workers))
        last_print = 0.0
        init_failures = 0
        try:
            while (pending or any(w.task for w in workers)) and not self.stop_reason:
                for w in workers:
                    if w.ready and w.task is None and not w.dead and pending:
                        w.send(pending.popleft())
                try:
                    item: tuple[_Worker | None, dict[str, Any]] | None = self.q.get(timeout=0.2)
                except queue.Empty:
                    item = None
                if item is not None and item[0] is None:  # the zygote: ready (fork the workers) or not
                    zmsg = item[1]
                    if self.zygote is not None and zmsg.get("zygote") == "ready":
                        self.zygote.ready = True
                    elif self.zygote is not None:
                        if zmsg.get("why"):
                            print(f"[openaml] parallel: workers start as fresh processes: {zmsg['why']}", flush=True)
                        self.zygote.ready = False
                    while len(workers) < need:
                        workers.append(_Worker(next_id, self))
                        next_id += 1
                    item = None
                if item is not None and item[0] is not None and not item[0].dead:
                    w, msg = item[0], item[1]
                    if msg.get("ready"):
                        w.ready = True
                        self._learn(msg.get("imported"))
                        if self.ready_at is None:
                            self.ready_at = time.monotonic() - self.t0
                    elif "init_error" in msg:
                        init_failures += 1
                        _write_atomic(self.logs / "user" / "error" / "init_error.txt", msg["init_error"])
                        print(f"[openaml] parallel: init() of worker {w.id} failed:\n{msg['init_error']}", flush=True)
                        self.stop_reason = "init() of the entry script failed (logs/user/error/init_error.txt)"
                    elif "index" in msg:
                        self._result(w, msg, pending)
                    elif msg.get("eof"):
                        code = w.exit_code()
                        if w.task is not None:
                            self._attempt_failed(w.task, f"the worker process exited (code {code}) during run()",
                                                 pending)
                        elif not w.ready:
                            init_failures += 1
                        w.dead = True
                        if init_failures >= 3:
                            self.stop_reason = f"workers exited before init() ended (code {code})"
                        elif pending or any(x.task for x in workers):
                            workers[workers.index(w)] = _Worker(next_id, self)
                            next_id += 1
                now = time.monotonic()
                for i, x in enumerate(workers):
                    if x.task is not None and not x.dead and now - x.started > self.timeout:
                        task = x.task
                        x.kill()
                        self._attempt_failed(task, f"run() exceeded retry_settings.timeout ({self.timeout:g} s); "
                                             "its worker was killed", pending)
                        workers[i] = _Worker(next_id, self)
                        next_id += 1
                self._sync()
                if now - last_print >= 2.0:
                    last_print = now
                    print(self.progress(total, sum(1 for x in workers if x.task)), flush=True)
        finally:
            for w in workers:
                w.kill()
            if self.zygote is not None:
                self.zygote.close()
            self._sync(force=True)
        print(self.progress(total, 0, final=True), flush=True)
        return self._finish(plan)

    def _learn(self, imported: Any) -> None:
        """Keep what the first ready worker imported (with what earlier jobs learned) for the next
        job's zygote; a file that cannot be written costs the next job time only."""
        if self._learned or not isinstance(imported, list):
            return
        self._learned = True
        try:
            known = json.loads(self.preload_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = []
        merged = sorted(set(known if isinstance(known, list) else []) | {str(m) for m in imported})[:8000]
        if merged == known:
            return
        try:
            self.preload_file.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.preload_file, json.dumps(merged))
        except OSError:
            pass

    def _result(self, w: _Worker, msg: dict[str, Any], pending: collections.deque[dict[str, Any]]) -> None:
        task = w.task
        w.task = None
        if task is None or task["index"] != msg["index"]:
            return
        if not msg["ok"]:
            self._attempt_failed(task, msg["error"], pending)
            return
        n_in, n_out = int(msg["n_in"]), int(msg["n_out"])
        rec = {"index": task["index"], "status": "done", "n_in": n_in, "n_out": n_out,
               "failed_items": max(0, n_in - n_out) if self.output_file else 0,
               "attempts": self.attempts[task["index"]] + 1, "seconds": round(msg["seconds"], 4)}
        # a file input's run() returns any number of rows per file (Azure: one or more per item); said
        # only when it returned fewer rows than files (those count failed); a table's rows are said both ways
        if self.output_file and (n_out < n_in or (n_out > n_in and self.unit == "rows")):
            print(f"[openaml] parallel: warning: mini-batch {task['index']} ({task['source']}): run() returned "
                  f"{n_out} rows for {n_in} items; all {n_out} rows are kept" +
                  (f", {n_in - n_out} items counted failed" if n_out < n_in else ""), flush=True)
        self._journal(rec)
        self._record(self.done, rec)
        self.rows_this_run += n_in
        self._check_thresholds()

    def _attempt_failed(self, task: dict[str, Any], error: str, pending: collections.deque[dict[str, Any]]) -> None:
        idx = task["index"]
        self.attempts[idx] += 1
        n = self.attempts[idx]
        self.errors[idx].append(error)
        with open(self.logs / "user" / "error" / f"mini_batch_{idx:06d}.txt", "a", encoding="utf-8") as fh:
            fh.write(f"mini-batch {idx}: {task['source']}\nattempt {n} of {self.max_retries + 1} failed:\n{error}\n\n")
        last = error.strip().splitlines()[-1] if error.strip() else error
        if n <= self.max_retries:
            print(f"[openaml] parallel: mini-batch {idx} attempt {n} failed ({last}); retrying", flush=True)
            pending.appendleft(task)
            return
        print(f"[openaml] parallel: mini-batch {idx} failed after {n} attempts ({last}); "
              f"see logs/user/error/mini_batch_{idx:06d}.txt", flush=True)
        rec = {"index": idx, "status": "failed", "n_in": task["n"], "failed_items": task["n"], "attempts": n,
               "error": last, "source": task["source"]}
        self._journal(rec)
        self._record(self.failed, rec)
        self._check_thresholds()

    def _finish(self, plan: list[dict[str, Any]]) -> int:
        lines = [f"mini-batch {i} ({plan[i]['source']}): {r.get('error')}" for i, r in sorted(self.failed.items())]
        _write_atomic(self.logs / "job_error.txt", "".join(x + "\n" for x in lines))
        status = "Failed" if self.stop_reason else "Completed"
        summary = (f"{status}: {len(self.done)} of {len(plan)} mini-batches completed, {len(self.failed)} failed, "
                   f"{self.failed_items()} items failed" + (f"; {self.stop_reason}" if self.stop_reason else ""))
        _write_atomic(self.logs / "job_result.txt", summary + "\n")
        if self.stop_reason:
            _say_error(f"{self.stop_reason} ({len(self.done)} of {len(plan)} mini-batches completed; "
                       "logs/job_error.txt lists the failed ones)")
            print(f"[openaml] parallel job failed: {self.stop_reason}", flush=True)
            for x in lines[:20]:
                print(f"[openaml]   {x}", flush=True)
            return 1
        if self.output_file is not None:
            self.output_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.output_file.with_name(f".{self.output_file.name}.tmp")
            first = 1
            mapping = ["mini_batch,first_line,lines,source\n"]
            with open(tmp, "wb") as out:
                for i in sorted(self.done):
                    rows = self._rows_file(i)
                    data = rows.read_bytes() if rows.exists() else b""
                    out.write(data)
                    count = data.count(b"\n")
                    mapping.append(f"{i},{first},{count},{json.dumps(plan[i]['source'])}\n")
                    first += count
            os.replace(tmp, self.output_file)
            _write_atomic(self.logs / "mini_batch_rows.csv", "".join(mapping))
            print(f"[openaml] parallel: {first - 1} rows written to {self.output_file.name}", flush=True)
        print(f"[openaml] parallel: {summary}", flush=True)
        return 0


def _can_fork() -> bool:
    """Workers are forked from a zygote on Linux (``OPENAML_PARALLEL_FORK=0``: fresh processes)."""
    import socket

    return (sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(socket, "SOCK_SEQPACKET")
            and os.environ.get("OPENAML_PARALLEL_FORK", "1") != "0")


def _prs_arg(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def _say_error(text: str) -> None:
    """The job's error, for the runner (``$OPENAML_ERROR_FILE``; nothing when run by hand)."""
    path = os.environ.get("OPENAML_ERROR_FILE")
    if path:
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError:
            pass


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--worker":
        return worker_main(int(argv[1]), int(argv[2]), int(argv[3]))
    if argv and argv[0] == "--zygote":
        return zygote_main(int(argv[1]))
    if "--" in argv:
        cut = argv.index("--")
        argv, program = argv[:cut], argv[cut + 1:]
    else:
        program = []
    parser = argparse.ArgumentParser(prog="openaml parallel driver")
    parser.add_argument("--config", required=True)
    parser.add_argument("--input-data", required=True)
    parser.add_argument("--append-row-to")
    args = parser.parse_args(argv)
    cfg = json.loads(base64.b64decode(args.config))
    program = shlex.split(" ".join(shlex.quote(a) for a in program))
    driver = Driver(cfg, Path(args.input_data), args.append_row_to, program)

    def _term(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _term)
    return driver.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
