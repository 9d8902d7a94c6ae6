"""Distributed PyTorch (DDP, gloo, CPU): samples/s through an openaml job vs bare ``torchrun``.

Scale-out issue: "DDP on CPU (gloo), a small CNN on synthetic data: samples/s with 1, 2 and 4
processes on local compute vs the same script under bare torchrun (target: >= 0.95x)".

The script is the book's chapter 11 CNN of ``examples/distributed/src/train.py`` (synthetic 3x32x32
images, made at start-up; one torch thread per process). Per repetition and process count ``n``
(1, 2, 4), interleaved (the order rotates every repetition):

* openaml: a command job with ``distribution: {type: pytorch, process_count_per_instance: n}`` on
  a compute of 4 slots, submitted with the SDK and waited for;
* peer:    ``torchrun --standalone --nproc_per_node n train.py`` in a copy of the code folder;
* ray:     the same job on a ``type: ray`` compute of a local Ray cluster started by the bench
  (tests/ray/cluster.py: a head and a worker node on loopback, one CPU each): ``n`` processes as
  ``instance_count`` 1 (n = 1) or 2 instances on the two nodes (a placement group, ``spread``) of
  ``n/2`` processes each. Left out (with a note) when ray is not installed or ``--no-ray``.

* start overhead (the issue's "job start overhead on Ray vs a bare ``ray job submit``"): per
  repetition, ``python -c pass`` as an openaml job on a ``type: ray`` compute (submit to
  Completed) vs the same entrypoint submitted bare with ``JobSubmissionClient.submit_job`` and
  polled to SUCCEEDED (bench/ray_overhead.py's two functions; that bench has more detail).

A process count above the machine's cores (4 processes on 2 cores) is oversubscribed: the row
says so and is still measured, for both peers alike (they share the cores the same way).

samples/s is what the script itself reports (rank 0: the images trained on by all ranks per second
of its training loop, after start-up and process-group initialisation), so the ratio compares how
fast the training runs under each launcher. The job's wall time (submit to Completed) and
torchrun's (start to exit) are reported beside it, with no target: they include the interpreter
and torch start-up of every process (and, for the job, the runner and the scheduler).

Repetitions: 3 of 65536 samples (``--quick``: 2 of 4096), ``--reps N`` to choose. The training
loop then runs ~10 s per job: with 16384 samples (~3 s) the job's start-up (the runner's reports,
the server logging the run, the client's first polls) overlapped a third of it, and the 2-process
ratio (two ranks on two cores, each waiting on the slower) swung from 0.72 to 1.07 between pairs.

Run: ``.venv/bin/python bench/distributed.py [--quick] [--reps N] [--no-ray]`` (needs torch: ``bash
scripts/install.sh --with-torch``; ~15 min, quick ~5 min).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    PYTHON,
    Row,
    median,
    openaml_server,
    parse_args,
    print_table,
    progress,
    rotate,
    save_results,
)

SRC = Path(__file__).resolve().parent.parent / "examples" / "distributed" / "src"
TARGET = 0.95


def _throughput(text: str) -> float:
    for line in text.splitlines():
        if "THROUGHPUT {" in line:
            return float(json.loads(line.split("THROUGHPUT ", 1)[1])["samples_per_s"])
    raise RuntimeError(f"no THROUGHPUT line in:\n{text[-2000:]}")


def run_torchrun(n: int, args: list[str], work: Path, env: dict[str, str]) -> dict[str, Any]:
    torchrun = Path(PYTHON).parent / "torchrun"
    t0 = time.perf_counter()
    p = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", str(n), "train.py", *args],
                       cwd=work, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"torchrun failed ({p.returncode}):\n{p.stdout[-1500:]}\n{p.stderr[-1500:]}")
    return {"samples_per_s": _throughput(p.stdout), "wall": wall}


def run_openaml(ml: Any, n: int, args: list[str], compute: str = "four-slots", instances: int = 1) -> dict[str, Any]:
    from openaml import command
    from openaml.entities import PyTorchDistribution

    t0 = time.perf_counter()
    job = ml.jobs.create_or_update(command(
        code=str(SRC), command="python train.py " + " ".join(args), compute=compute, instance_count=instances,
        distribution=PyTorchDistribution(process_count_per_instance=n // instances),
        experiment_name="bench-distributed"))
    final = ml.jobs.wait(job.name, timeout=900)
    wall = time.perf_counter() - t0
    raw = ml.jobs.get_raw(job.name)
    if final.status != "Completed":
        raise RuntimeError(f"job {job.name} ended {final.status}: {raw.get('error')}\n{raw.get('log_tail')}")
    return {"samples_per_s": _throughput("\n".join(raw.get("log_tail") or [])), "wall": wall}


def start_pair(ml: Any, client: Any, i: int, starts: dict[str, list[float]], keep: bool = True) -> None:
    """One openaml job and one bare Ray job of ``python -c pass``, order rotating with ``i``."""
    from ray_overhead import bare, openaml_job

    for kind in rotate(["bare", "openaml"], i):
        wall = bare(client)[0] if kind == "bare" else openaml_job(ml, compute="ray-start")
        if keep:
            starts[kind].append(wall)
    if keep:
        progress(f"start overhead: bare {starts['bare'][-1]:.2f} s, openaml {starts['openaml'][-1]:.2f} s")


def cores() -> int:
    """The cores this process may run on (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def main() -> int:
    no_ray = "--no-ray" in sys.argv
    if no_ray:
        sys.argv.remove("--no-ray")
    def extra(p: Any) -> None:
        p.add_argument("--reps", type=int, default=None, help="repetitions (default 5; quick 2)")

    opts = parse_args(__doc__.splitlines()[0], extra)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("bench/distributed.py needs torch: bash scripts/install.sh --with-torch", file=sys.stderr)
        return 2
    reps, samples = (2, 4096) if opts.quick else (3, 65536)
    reps = opts.reps or reps
    ncores = cores()
    counts = [1, 2, 4]
    train_args = ["--epochs", "1", "--samples", str(samples), "--output-dir", "./outputs"]
    res: dict[int, dict[str, list[dict[str, Any]]]] = {n: {"openaml": [], "torchrun": [], "ray": []} for n in counts}
    starts: dict[str, list[float]] = {"bare": [], "openaml": []}
    kinds = ["openaml", "torchrun"]
    cluster = None
    # a SIGTERM (a timeout) unwinds as an exception, so the Ray cluster and the server are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not no_ray:
        from tests.ray.cluster import LocalRayCluster, ray_available

        if ray_available():
            progress("starting a local Ray cluster (head + worker, one CPU each)")
            cluster = LocalRayCluster().start()
            kinds.append("ray")
    try:
        return _measure(opts, reps, samples, counts, train_args, res, starts, kinds, cluster, ncores)
    finally:
        if cluster is not None:
            cluster.stop()


def _measure(opts: Any, reps: int, samples: int, counts: list[int], train_args: list[str],
             res: dict[int, dict[str, list[dict[str, Any]]]], starts: dict[str, list[float]], kinds: list[str],
             cluster: Any, ncores: int) -> int:
    with openaml_server("distributed") as srv:
        from openaml import MLClient
        from openaml.entities import AmlCompute, RayCompute, RayResources

        ml = MLClient(workspace=srv.url)
        ml.compute.begin_create_or_update(AmlCompute(name="four-slots", max_instances=4)).result()
        client = None
        if cluster is not None:
            from ray.job_submission import JobSubmissionClient
            from ray_overhead import WORKER

            ml.compute.begin_create_or_update(RayCompute(
                name="ray-bench", address=cluster.address, max_instances=4, placement="spread",
                resources=RayResources(num_cpus=1))).result()
            ml.compute.begin_create_or_update(RayCompute(  # the start overhead: runners on the worker node, as bare
                name="ray-start", address=cluster.address, max_instances=1,
                resources=RayResources(num_cpus=1, custom=WORKER))).result()
            client = JobSubmissionClient(cluster.address)
        work = srv.tmp / "src"
        shutil.copytree(SRC, work)
        env = {k: v for k, v in srv.env.items() if not k.startswith(("MLFLOW_", "OPENAML_TOKEN"))}
        try:
            progress(f"server {srv.url}; warm-up")
            run_openaml(ml, 1, ["--epochs", "1", "--samples", "256"])
            run_torchrun(1, ["--epochs", "1", "--samples", "256", "--output-dir", "./outputs"], work, env)
            if cluster is not None:
                run_openaml(ml, 1, ["--epochs", "1", "--samples", "256"], "ray-bench")
                start_pair(ml, client, 0, starts, keep=False)
            for i in range(reps):
                if client is not None:
                    start_pair(ml, client, i, starts)
                for n in counts:
                    for kind in rotate(kinds, i + n):
                        if kind == "openaml":
                            r = run_openaml(ml, n, train_args)
                        elif kind == "ray":
                            r = run_openaml(ml, n, train_args, "ray-bench", 1 if n == 1 else 2)
                        else:
                            r = run_torchrun(n, train_args, work, env)
                        res[n][kind].append(r)
                    progress(f"rep {i + 1}/{reps}, {n} process(es): " + ", ".join(
                        f"{k} {res[n][k][-1]['samples_per_s']:.0f}" for k in kinds) + " samples/s")
        finally:
            ml.close()

    rows: list[Row] = []
    for n in counts:
        ours = median([r["samples_per_s"] for r in res[n]["openaml"]])
        peer = median([r["samples_per_s"] for r in res[n]["torchrun"]])
        ratio = median([o["samples_per_s"] / t["samples_per_s"]
                        for o, t in zip(res[n]["openaml"], res[n]["torchrun"], strict=True)])
        over = f" (oversubscribed: {n} processes on {ncores} cores)" if n > ncores else ""
        rows.append(Row(f"{n} process(es): samples/s{over}", ours, peer, ratio, f">= {TARGET}x", None, ratio >= TARGET))
    for n in counts:
        if not res[n]["ray"]:
            continue
        ours = median([r["samples_per_s"] for r in res[n]["ray"]])
        peer = median([r["samples_per_s"] for r in res[n]["torchrun"]])
        ratio = median([o["samples_per_s"] / t["samples_per_s"]
                        for o, t in zip(res[n]["ray"], res[n]["torchrun"], strict=True)])
        where = "1 instance" if n == 1 else f"2 instances x {n // 2} on 2 Ray nodes"
        rows.append(Row(f"  {n} process(es) on the local Ray cluster ({where}): samples/s", ours, peer, ratio,
                        "(report)"))
    for n in counts:
        ours = median([r["wall"] for r in res[n]["openaml"]])
        peer = median([r["wall"] for r in res[n]["torchrun"]])
        rows.append(Row(f"  {n} process(es): wall, submit to end (s)", ours, peer, ours / peer, "(report)"))
    if starts["bare"]:
        o, b = median(starts["openaml"]), median(starts["bare"])
        rows.append(Row("job start overhead on Ray, `python -c pass` submit to done (s)", o, b, o / b if b else None,
                        "(report)"))
        rows.append(Row("  openaml extra over a bare Ray job, median of pairs (s)",
                        median([x - y for x, y in zip(starts["openaml"], starts["bare"], strict=True)]), 0.0, None,
                        "(report)"))
    notes = [f"{reps} repetition(s), order rotating; medians; ratio = median of back-to-back pairs.",
             f"this machine: {ncores} core(s); a row with more processes than cores is oversubscribed (measured all "
             "the same: both launchers share the cores alike, but the figure says little about scaling).",
             "start overhead rows: peer = bare JobSubmissionClient.submit_job + get_job_status polling (50 ms) of "
             "the same entrypoint on the same worker node; openaml = the job on a type: ray compute, submit to "
             "Completed (scheduler, token package, runner start-up, reports).",
             f"train.py --epochs 1 --samples {samples}: the chapter 11 CNN, gloo, 1 torch thread per process.",
             "samples/s: reported by rank 0 over its training loop (all ranks' images per second).",
             "Ray rows: the same job on a type: ray compute of a local cluster (head + worker node on this "
             "machine, one CPU each); " + ("measured." if cluster is not None else "not measured (no ray, or --no-ray).")]
    print_table("distributed: DDP on CPU (gloo), openaml pytorch distribution vs bare torchrun", rows,
                peer="torchrun --standalone --nproc_per_node n (same script, same machine)",
                limit="n/a (the peer is the bare launcher)", notes=notes)
    if not opts.no_save:
        save_results("distributed", {"reps": reps, "samples": samples, "cores": ncores, "rows": rows, "raw": res,
                                      "start_overhead": starts})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
