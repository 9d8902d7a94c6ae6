"""A worker: the entry script imported, ``init()`` once, then one ``run()`` per mini-batch read
from its task pipe, each result written up its result pipe (one JSON line each)."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .common import die_with_parent
from .plan import read_table

__all__ = ["MiniBatchContext", "ReturnShapeError", "worker_main", "worker_setup", "import_entry"]


class MiniBatchContext:
    """What ``run(mini_batch, mini_batch_context)`` gets (Azure's ``MiniBatchContext``)."""

    def __init__(self, index: int, partition_key_value: dict[str, Any] | None) -> None:
        self.minibatch_index = index
        self.partition_key_value = partition_key_value or {}


class ReturnShapeError(Exception):
    """``run()`` returned something ``append_row`` cannot write (deterministic: the mini-batch fails
    at once, without a retry)."""


ACCEPTED_RETURNS = "a list (one output line per element) or a pandas DataFrame (one line per row); also a tuple, " \
    "a pandas Series, a numpy array, a str (one line) or None (no line)"


def _one_line(text: str) -> str:
    """An element's text on one line: a line break inside it is written as the two characters
    ``\\n`` (``\\r`` for a carriage return), so that each element is exactly one output line."""
    if "\n" in text or "\r" in text:
        return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _rows_of(result: Any) -> list[str]:
    """The lines ``append_row`` writes for ``run()``'s result: a DataFrame's rows as space-separated
    values (as Azure's PRS), a list/tuple/Series/array's elements one per line (``str()`` of each),
    a str as one line, None as none; a line break inside a value is escaped (:func:`_one_line`).

    Raises:
        ReturnShapeError: any other type (a dict, a set, a number, a generator...): Azure's PRS takes
        a list or a DataFrame for ``append_row``; a dict is not iterated as rows.
    """
    if result is None:
        return []
    mod = type(result).__module__
    if mod.startswith("pandas") and hasattr(result, "to_csv") and hasattr(result, "columns"):
        frame = result
        text_cols = [c for c in frame.columns if str(frame[c].dtype).startswith(("object", "str", "category"))]
        if text_cols:
            frame = frame.copy()
            for c in text_cols:
                frame[c] = frame[c].map(lambda v: _one_line(v) if isinstance(v, str) else v)
        try:
            text = frame.to_csv(sep=" ", header=False, index=False, lineterminator="\n")
        except TypeError:  # pandas < 1.5 (older curated environments)
            text = frame.to_csv(sep=" ", header=False, index=False, line_terminator="\n")
        lines = text.split("\n")
        return lines[:-1] if lines and lines[-1] == "" else lines
    if isinstance(result, (str, bytes)):
        return [_one_line(result.decode() if isinstance(result, bytes) else result)]
    is_array = (mod.startswith("numpy") and hasattr(result, "tolist")) or (mod.startswith("pandas") and hasattr(result, "tolist"))
    if is_array:
        result = result.tolist()
        if not isinstance(result, list):  # a 0-d array: one value
            result = [result]
    if not isinstance(result, (list, tuple)):
        raise ReturnShapeError(f"run() returned {_type_name(result)}; return {ACCEPTED_RETURNS}")
    return [_one_line(str(x)) for x in result]


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"


def _summary(exc: BaseException) -> str:
    """The one line the job's log gives for an error: the exception's type and its message's first
    line (a multi-line message keeps its start; the full traceback is in the error file)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line if len(line) <= 400 else line[:400] + "..."


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
        [read_table(f, task["format"], tab) for f in task["files"]], ignore_index=True))
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


def worker_setup(cfg: dict[str, Any]) -> Path:
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


def import_entry(script: Path) -> Any:
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


def worker_main(fd_in: int, fd_out: int, worker_id: int, watch_fd: int | None = None) -> int:
    """One worker: import the entry script, ``init()`` once, then one ``run()`` per task line.
    ``watch_fd``: a pidfd of the driver (a worker of the warm pool, whose parent is gone at once):
    the worker ends when the driver does; else it dies with its parent (the driver or the zygote)."""
    if watch_fd is None:
        die_with_parent()
    else:
        _exit_with(watch_fd)
    reader = os.fdopen(fd_in, "r", encoding="utf-8")
    writer = os.fdopen(fd_out, "w", encoding="utf-8", buffering=1)
    writer.write(json.dumps({"pid": os.getpid()}) + "\n")  # its pid as the driver sees it (kill on timeout)
    cfg = json.loads(reader.readline())
    script = worker_setup(cfg)
    rows_dir = Path(cfg["rows_dir"])
    before = set(sys.modules)
    try:
        module = import_entry(script)
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
            rows: list[str] = []
            if cfg.get("append_row"):  # summary_only: the result is not written, any type is fine (Azure)
                rows = _rows_of(result)
                final = rows_dir / f"{task['index']:08d}.txt"
                tmp = rows_dir / f".{task['index']:08d}.{os.getpid()}.tmp"
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.write("".join(r + "\n" for r in rows))
                os.replace(tmp, final)
            msg = {"index": task["index"], "ok": True, "n_in": n_in, "n_out": len(rows) if cfg.get("append_row") else n_in,
                   "seconds": time.monotonic() - t0}
        except ReturnShapeError as exc:  # deterministic: not retried
            msg = {"index": task["index"], "ok": False, "error": str(exc), "summary": str(exc), "retry": False,
                   "seconds": time.monotonic() - t0}
        except BaseException as exc:  # noqa: BLE001 - any error of run() is the mini-batch's failure
            msg = {"index": task["index"], "ok": False, "error": traceback.format_exc(), "summary": _summary(exc),
                   "seconds": time.monotonic() - t0}
            if getattr(exc, "openaml_no_retry", False):  # an error its raiser knows is deterministic
                msg["retry"] = False
        writer.write(json.dumps(msg) + "\n")
    return 0




def _exit_with(pidfd: int) -> None:
    """End this process (``os._exit``) when the process of ``pidfd`` ends (a thread polls it)."""
    import select
    import threading

    def _watch() -> None:
        select.select([pidfd], [], [])
        os._exit(1)

    threading.Thread(target=_watch, name="openaml-driver-watch", daemon=True).start()
