"""Tracking: 10,000 metrics logged with the mlflow client to openaml vs a standalone ``mlflow server``.

Target (foundation issue): metrics/second to openaml (``<url>/mlflow``) divided by metrics/second
to a standalone ``mlflow server`` on the same machine, same SQLite backend kind: >= 1.0.

Peers, all started by this script:

* openaml:    ``openaml server`` of a throwaway workspace (one process; MLflow mounted in-process);
* standalone: ``mlflow server --host 127.0.0.1 --port <free> --backend-store-uri sqlite:///...
              --default-artifact-root ...`` with its default workers (uvicorn, 4 processes);
* limit:      the same calls on MLflow's ``SqlAlchemyStore`` in this process (SQLite, no HTTP):
              what any server on this store could at best reach.

Workloads, into one run per peer:

* ``log_metric``: ``MlflowClient().log_metric(run_id, key, value, step=i)`` sequentially;
* ``log_batch``:  ``log_batch`` with 1,000 metrics per call;
* ``threads``:    4 threads calling ``log_metric`` concurrently (the issue's 4 x 2,500).

The work is split into rounds; in each round every peer does its share of every workload (200
``log_metric`` calls, one ``log_batch`` call), the peer order rotating, so slow periods of this
shared machine hit all peers alike. Reported: the median over rounds of metrics/second, and the
median of the per-round ratios openaml/standalone. Rounds stop at 10,000 metrics per workload
(``--metrics``) or when the next round would end past the time budget (``--budget-s``: 270 s
from the start, server start-up included; at least 2 rounds): on a busy 2-core machine one
``log_metric`` call costs 20-50 ms, so the full 10,000 sequential calls would take 4-8 minutes
per peer. Give ``--budget-s 100000`` for the full count; the rates do not depend on it.

Run: ``.venv/bin/python bench/tracking.py [--quick]``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    PYTHON,
    Row,
    free_port,
    median,
    openaml_server,
    parse_args,
    print_table,
    progress,
    rotate,
    save_results,
    settle,
    stop_process,
    wait_http,
)

TARGET = 1.0
BATCH = 1000
THREADS = 4
WARMUP = 40  # calls per workload and peer before measuring (reaches each of the standalone's workers)
MIN_ROUNDS = 2
STANDALONE_WORKERS = 4  # mlflow server's default (`mlflow server --help`: --workers, default 4)


@contextmanager
def standalone_mlflow(tmp: Path, workers: int | None = None) -> Iterator[Callable[[], tuple[str, int]]]:
    """Start ``mlflow server`` (SQLite in ``tmp``) on a free port; yields ``ready()`` -> (URL, pid).

    Starting returns at once, so it boots while the openaml server boots (both take tens of
    seconds on a busy 2-core machine). Its default also starts MLflow's job runner (huey
    consumer processes); the whole process group is stopped at exit.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    mlflow_bin = str(Path(PYTHON).parent / "mlflow")
    cmd = [mlflow_bin, "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}", "--default-artifact-root", str(tmp / "art")]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    log = tmp / "mlflow-server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def ready() -> tuple[str, int]:
        wait_http(url + "/health", timeout=300, proc=proc, log=log)
        return url, proc.pid

    try:
        yield ready
    finally:
        huey = _huey_store(proc.pid)
        stop_process(proc)
        if huey is not None:  # mlflow server leaves its job queue's folder behind (in /dev/shm)
            shutil.rmtree(huey, ignore_errors=True)


def _huey_store(pid: int) -> Path | None:
    """The job-queue folder ``mlflow server`` made for its workers (``_MLFLOW_HUEY_STORAGE_PATH``)."""
    import psutil

    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return None
    for p in procs:
        try:
            path = p.environ().get("_MLFLOW_HUEY_STORAGE_PATH")
        except psutil.Error:
            continue
        if path and Path(path).name.startswith("tmp"):
            return Path(path)
    return None


class HttpPeer:
    """A tracking server reached with the real mlflow client."""

    def __init__(self, name: str, uri: str) -> None:
        from mlflow.tracking import MlflowClient

        self.name = name
        self.client = MlflowClient(tracking_uri=uri)
        exp = self.client.create_experiment(f"bench-{name}-{time.time_ns()}")
        self.run_id = self.client.create_run(exp).info.run_id

    def log_metric(self, key: str, value: float, step: int) -> None:
        self.client.log_metric(self.run_id, key, value, step=step)

    def log_batch(self, metrics: list[Any]) -> None:
        self.client.log_batch(self.run_id, metrics=metrics)

    def count(self, key: str) -> int:
        return len(self.client.get_metric_history(self.run_id, key))


class StorePeer:
    """MLflow's SQLite store called in-process: the ceiling for any server on it."""

    def __init__(self, tmp: Path) -> None:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        self.name = "limit"
        self.store = SqlAlchemyStore(f"sqlite:///{tmp / 'limit.db'}", str(tmp / "limit-art"))
        exp = self.store.create_experiment(f"bench-limit-{time.time_ns()}")
        self.run_id = self.store.create_run(exp, "bench", int(time.time() * 1000), [], "limit").info.run_id

    def log_metric(self, key: str, value: float, step: int) -> None:
        from mlflow.entities import Metric

        self.store.log_metric(self.run_id, Metric(key, value, int(time.time() * 1000), step))

    def log_batch(self, metrics: list[Any]) -> None:
        self.store.log_batch(self.run_id, metrics=metrics, params=[], tags=[])

    def count(self, key: str) -> int:
        return len(self.store.get_metric_history(self.run_id, key))


def _seq(peer: Any, n: int, base: int) -> None:
    for i in range(base, base + n):
        peer.log_metric("seq", float(i), i)


def _batch(peer: Any, n: int, base: int) -> None:
    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    for start in range(base, base + n, BATCH):
        peer.log_batch([Metric("batch", float(i), ts, i) for i in range(start, min(start + BATCH, base + n))])


def _threads(peer: Any, n: int, base: int) -> None:
    per = n // THREADS
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(base + t * per, base + (t + 1) * per):
                peer.log_metric(f"thread{t}", float(i), i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    ts = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


WORKLOADS: dict[str, Callable[[Any, int, int], None]] = {"log_metric": _seq, "log_batch": _batch, "threads": _threads}
KEYS = {"log_metric": ["seq"], "log_batch": ["batch"], "threads": [f"thread{t}" for t in range(THREADS)]}


def _stored(workload: str, n: int) -> int:
    """Metrics that ``n`` requested calls of ``workload`` store (threads split n evenly)."""
    return n // THREADS * THREADS if workload == "threads" else n


def _paired_ratio(a: list[float], b: list[float]) -> float:
    return median([x / y for x, y in zip(a, b, strict=True)])


def main() -> int:
    def extra(p: Any) -> None:
        p.add_argument("--metrics", type=int, default=10_000, help="metrics per workload and peer (default 10000)")
        p.add_argument("--per-round", type=int, default=None,
                       help="log_metric calls per peer and workload in one round (default 200; quick 50)")
        p.add_argument("--budget-s", type=float, default=None,
                       help="start no round that would end later than this many seconds after the script "
                            "started (default 270; quick 45); at least 2 rounds run")
        p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset of workloads")
        p.add_argument("--no-limit", action="store_true", help="skip the in-process store peer")
        p.add_argument("--standalone-workers", type=int, default=None,
                       help="--workers for mlflow server (default: its own default, 4)")
        p.add_argument("--one-worker-peer", action="store_true",
                       help="also measure a standalone mlflow server with --workers 1 (one process, like openaml)")

    t_script = time.perf_counter()
    args = parse_args(__doc__.splitlines()[0], extra)
    per_round = args.per_round or (50 if args.quick else 200)
    budget = args.budget_s if args.budget_s is not None else (45.0 if args.quick else 270.0)
    warmup = 8 if args.quick else WARMUP
    max_rounds = 1 if args.quick else max(1, -(-args.metrics // per_round))
    batches = max(1, args.metrics // BATCH)  # log_batch: one call of BATCH metrics per round, up to this many
    workloads = [w for w in args.workloads.split(",") if w]
    workers = args.standalone_workers or STANDALONE_WORKERS
    tmp = Path(tempfile.mkdtemp(prefix="openaml-bench-tracking-"))
    try:
        return _run(args, tmp, t_script, per_round, budget, warmup, max_rounds, batches, workloads, workers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: Any, tmp: Path, t_script: float, per_round: int, budget: float, warmup: int, max_rounds: int,
         batches: int, workloads: list[str], workers: int) -> int:

    with contextlib.ExitStack() as stack:
        # the client's mlflow import (seconds on a busy machine) overlaps the servers' start-up
        importer = threading.Thread(target=lambda: __import__("mlflow.tracking"), daemon=True)
        importer.start()
        sa_ready = stack.enter_context(standalone_mlflow(tmp / "sa", args.standalone_workers))
        one_ready = stack.enter_context(standalone_mlflow(tmp / "sa1", 1)) if args.one_worker_peer else None
        progress("starting the servers")
        srv = stack.enter_context(openaml_server("tracking"))
        progress(f"openaml ready after {time.perf_counter() - t_script:.0f} s")
        sa_url, sa_pid = sa_ready()
        importer.join()
        server_pids = [srv.pid, sa_pid]
        peers: dict[str, Any] = {"openaml": HttpPeer("openaml", srv.url + "/mlflow"),
                                 "standalone": HttpPeer("standalone", sa_url)}
        if one_ready is not None:
            one_url, one_pid = one_ready()
            server_pids.append(one_pid)
            peers["standalone-1w"] = HttpPeer("standalone-1w", one_url)
        if not (args.no_limit or args.quick):
            peers["limit"] = StorePeer(tmp)
        progress(f"after {time.perf_counter() - t_script:.0f} s: "
                 f"openaml {srv.url} (pid {srv.pid}); standalone mlflow {sa_url} ({workers} workers); "
                 f"peers: {', '.join(peers)}")
        for p in peers.values():  # warm-up: connections, first-request imports in every worker, SQLite pages
            _seq(p, warmup, -1000)
            _batch(p, warmup, -1000)
            _threads(p, warmup, -1000)
        waited = settle(server_pids, timeout=20 if args.quick else 90)
        progress(f"servers settled (idle) after {waited:.0f} s")
        rates: dict[str, dict[str, list[float]]] = {w: {p: [] for p in peers} for w in workloads}
        done: dict[str, int] = {w: 0 for w in workloads}
        t_bench = time.perf_counter()
        r = 0
        round_s = 0.0
        while r < max_rounds and (r < MIN_ROUNDS or time.perf_counter() - t_script + round_s < budget):
            t_round = time.perf_counter()
            for w in workloads:
                n = BATCH if w == "log_batch" else per_round
                if w == "log_batch" and r >= batches:
                    continue
                for pname in rotate(list(peers), r):
                    t0 = time.perf_counter()
                    WORKLOADS[w](peers[pname], n, r * n)
                    rates[w][pname].append(_stored(w, n) / (time.perf_counter() - t0))
                done[w] += _stored(w, n)
            progress(f"round {r + 1}/{max_rounds}: " + "; ".join(
                f"{w} " + " ".join(f"{p} {rates[w][p][-1]:.0f}/s" for p in peers) for w in workloads
                if rates[w]["openaml"]))
            r += 1
            round_s = time.perf_counter() - t_round
        bench_s = time.perf_counter() - t_bench
        for w in workloads:  # every metric arrived
            for pname, p in peers.items():
                got = sum(p.count(k) for k in KEYS[w])
                expected = done[w] + _stored(w, warmup)
                if got != expected:
                    raise RuntimeError(f"{pname}/{w}: {got} metrics stored, expected {expected}")

    rows = []
    labels = {"log_metric": "log_metric, sequential", "log_batch": f"log_batch, {BATCH} per call",
              "threads": f"log_metric, {THREADS} threads"}
    for w in workloads:
        o, s = median(rates[w]["openaml"]), median(rates[w]["standalone"])
        ratio = _paired_ratio(rates[w]["openaml"], rates[w]["standalone"])
        lim = median(rates[w]["limit"]) if "limit" in peers else None
        rows.append(Row(f"{labels[w]} (metrics/s, n={done[w]})", o, s, ratio, f">= {TARGET}", lim, ratio >= TARGET))
        if "standalone-1w" in peers:
            s1 = median(rates[w]["standalone-1w"])
            rows.append(Row("  same, vs standalone --workers 1", o, s1,
                            _paired_ratio(rates[w]["openaml"], rates[w]["standalone-1w"]), "(info)", lim))
    notes = [f"{r} round(s) of {per_round} calls (log_batch: 1 call of {BATCH}) per peer and workload after "
             f"{warmup} warm-up calls, peer order rotating; {bench_s:.0f} s measured, "
             f"{time.perf_counter() - t_script:.0f} s in all (budget {budget:.0f} s; "
             f"--metrics {args.metrics} caps it).",
             "openaml/peer/limit = median of per-round rates; ratio = median of the per-round ratios "
             "openaml/standalone (each round's pair ran back to back).",
             f"standalone: mlflow server with {workers} uvicorn workers, SQLite; openaml: 1 process, "
             "MLflow mounted at /mlflow, SQLite.",
             "limit = SqlAlchemyStore on SQLite called in-process (no HTTP); not measured with --quick."]
    if args.quick:
        notes.append("--quick is a smoke run, not a measurement: one short round, and the standalone server may "
                     "still be booting its job runner.")
    print_table("tracking: mlflow client logging metrics, openaml vs standalone mlflow server", rows,
                peer=f"standalone `mlflow server` ({workers} workers, SQLite)",
                limit="MLflow SqlAlchemyStore in-process (SQLite, no HTTP)", notes=notes)
    if not args.no_save:
        save_results("tracking", {"metrics_done": done, "rounds": r, "per_round": per_round,
                                  "standalone_workers": workers, "rows": rows, "rates": rates})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
