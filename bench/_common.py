"""Shared helpers of the benchmarks: a throwaway workspace + server, statistics, one table.

Every benchmark measures openaml against a peer *in the same run*, interleaved, and reports
medians: this machine is small (2 cores) and shared, so absolute numbers move between runs while
ratios measured side by side hold.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "REPO", "PYTHON", "OPENAML", "Server", "openaml_server", "free_port", "wait_http",
    "median", "percentile", "summary", "Row", "print_table", "save_results", "parse_args",
    "machine", "iso_ts", "stop_process", "rotate", "progress", "settle",
]

REPO = Path(__file__).resolve().parents[1]
_VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(_VENV_BIN / "python") if (_VENV_BIN / "python").exists() else sys.executable
OPENAML = str(_VENV_BIN / "openaml") if (_VENV_BIN / "openaml").exists() else "openaml"
RESULTS = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen[Any] | None = None,
              log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200 (raises with the log tail when ``proc`` dies or time runs out)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {_tail(log)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s: {_tail(log)}")


def settle(pids: Sequence[int], *, below: float = 0.3, timeout: float = 90.0, window: float = 1.0) -> float:
    """Wait until the process trees of ``pids`` together use less than ``below`` of a core.

    A server that has just answered its first request may still be booting helpers (``mlflow
    server`` starts a job runner with several consumer processes): measuring then would charge
    its start-up to the first round. Returns the seconds waited (``timeout`` at most).
    """
    import psutil

    def cpu() -> float:
        total = 0.0
        for pid in pids:
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
        return total

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        c0, w0 = cpu(), time.monotonic()
        time.sleep(window)
        if (cpu() - c0) / (time.monotonic() - w0) < below:
            break
    return time.monotonic() - t0


def stop_process(proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    """SIGTERM the process group started by us, then SIGKILL it after ``timeout``."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _tail(log: Path | None, n: int = 15) -> str:
    if log is None or not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


@dataclass
class Server:
    """A running openaml server of a throwaway workspace."""

    url: str
    path: Path
    proc: subprocess.Popen[Any]
    env: dict[str, str]
    tmp: Path
    log: Path

    @property
    def pid(self) -> int:
        return int(json.loads((self.path / "server.json").read_text())["pid"])

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``openaml <args> --workspace <url>`` (the real console script)."""
        p = subprocess.run([OPENAML, *args, "--workspace", self.url], env=self.env, cwd=self.tmp,
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"openaml {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p


@contextmanager
def openaml_server(name: str = "bench", keep: bool = False,
                   extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """Create a workspace in a temporary folder, serve it on an OS-assigned port, stop and delete it after.

    ``OPENAML_HOME`` points into the temporary folder so the user's workspace index is untouched;
    ``extra_env`` is added to the environment of the server and of the CLI calls (to compare a
    setting, or another source tree through ``PYTHONPATH``).
    """
    tmp = Path(tempfile.mkdtemp(prefix=f"openaml-bench-{name}-"))
    env = {**os.environ, "OPENAML_HOME": str(tmp / "home"), "COLUMNS": "200", **(extra_env or {})}
    env.pop("OPENAML_WORKSPACE", None)
    ws = tmp / "ws"
    subprocess.run([OPENAML, "workspace", "create", "-n", name, "--path", str(ws)], env=env, check=True,
                   capture_output=True)
    log = tmp / "server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([PYTHON, "-m", "openaml", "server", "--workspace", str(ws), "--port", "0"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        info: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"openaml server exited with {proc.returncode}: {_tail(log)}")
            f = ws / "server.json"
            if f.exists():
                try:
                    info = json.loads(f.read_text())
                except ValueError:
                    info = {}
                if info.get("pid") == proc.pid:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"openaml server did not start in 120 s: {_tail(log)}")
        wait_http(info["url"] + "/health", proc=proc, log=log)
        yield Server(url=info["url"], path=ws, proc=proc, env=env, tmp=tmp, log=log)
    finally:
        stop_process(proc)
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------- statistics
def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def percentile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100]."""
    if not xs:
        return math.nan
    s = sorted(xs)
    k = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(xs: Sequence[float]) -> dict[str, float]:
    return {"n": len(xs), "median": median(xs), "p10": percentile(xs, 10), "p90": percentile(xs, 90),
            "min": min(xs) if xs else math.nan, "max": max(xs) if xs else math.nan}


def rotate(items: Sequence[Any], i: int) -> list[Any]:
    """``items`` rotated by ``i``: interleaved peers take turns going first."""
    k = i % len(items)
    return list(items[k:]) + list(items[:k])


# ---------------------------------------------------------------------- output
@dataclass
class Row:
    """One line of a result table. ``ok`` is None for rows without a target (breakdowns)."""

    measure: str
    openaml: float | str | None
    peer: float | str | None = None
    ratio: float | str | None = None
    target: str = ""
    limit: float | str | None = None
    ok: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        a = abs(v)
        return f"{v:.0f}" if a >= 1000 else f"{v:.1f}" if a >= 100 else f"{v:.2f}" if a >= 1 else f"{v:.3f}"
    return str(v)


def print_table(title: str, rows: list[Row], *, peer: str, limit: str, notes: Sequence[str] = ()) -> None:
    """Print one plain-text table (stdout) with a header naming the peer and the limit."""
    head = ["measure", "openaml", "peer", "ratio", "target", "limit", "met"]
    body = [[r.measure, _fmt(r.openaml), _fmt(r.peer), _fmt(r.ratio), r.target, _fmt(r.limit),
             "" if r.ok is None else _fmt(r.ok)] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = "  ".join("-" * w for w in widths)
    print()
    print(title)
    print(f"  peer:  {peer}")
    print(f"  limit: {limit}")
    print(f"  machine: {machine()['summary']}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print(line)
    for b in body:
        print("  ".join((c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(b, widths, strict=True))))
    print(line)
    for n in notes:
        print(f"  {n}")
    sys.stdout.flush()


def machine() -> dict[str, Any]:
    cpus = os.cpu_count() or 0
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = math.nan
    py = platform.python_version()
    return {"cpus": cpus, "python": py, "platform": platform.platform(), "load1": load,
            "summary": f"{cpus} cores, Python {py}, load {load:.1f} at start"}


def save_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>-<timestamp>.json`` (git-ignored) and ``<name>-latest.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    data = {"benchmark": name, "at": stamp, "machine": machine(), **payload}
    text = json.dumps(data, indent=2, default=_json_default)
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(text)
    (RESULTS / f"{name}-latest.json").write_text(text)
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, Row):
        return o.__dict__
    if isinstance(o, Path):
        return str(o)
    return str(o)


def parse_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smoke run (< 1 min): fewer repetitions")
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    if extra is not None:
        extra(p)
    return p.parse_args()


def iso_ts(s: str | None) -> float:
    """Seconds since the epoch of an ISO-8601 timestamp from the API (``Z`` or offset; naive = UTC)."""
    if not s:
        return math.nan
    d = datetime.fromisoformat(str(s).replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.timestamp()


def progress(msg: str) -> None:
    """Progress goes to stderr so stdout holds only the table."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()



def wait_bytecode(workspace: Path, timeout: float = 300.0) -> float:
    """Wait until every environment of ``workspace`` has its bytecode compiled (the ``.compiled``
    marker of :func:`openaml.environments._layer._precompile`, started in the background by the
    first job), so that a warm measurement is not one that shares the CPU with that compile. Returns
    the seconds waited; raises TimeoutError past ``timeout``."""
    t0 = time.monotonic()
    while True:
        caches = list((workspace / "envs").glob(".*.pycache"))
        if all((c / ".compiled").is_file() for c in caches):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"bytecode compile of {caches} not done in {timeout:.0f} s")
        time.sleep(0.5)

def runner_state(workspace: Path, job_name: str) -> dict[str, Any]:
    """What a job's runner last reported (its state: phase times ``start_time``/``end_time`` in
    epoch seconds, exit code ...), as the server keeps it on the job's row (``runtime["runner"]``);
    {} when the job or its report is missing."""
    from openaml._settings import Settings
    from openaml.store import MetadataStore

    store = MetadataStore(Settings(workspace=workspace).metadata_url).start()
    try:
        return dict(store.get_job(job_name)["runtime"].get("runner") or {})
    except Exception:  # noqa: BLE001 - a bench reading a job that is not there
        return {}
    finally:
        store.close()
