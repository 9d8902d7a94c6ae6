"""Throughput: 50 trivial jobs on a 2-slot compute, in jobs per minute.

Foundation issue: "50 trivial jobs on a 2-slot compute: jobs per minute" (reported, no target).

Per repetition, interleaved (the order alternates):

* openaml: a compute with ``max_instances: 2`` (created with ``openaml compute create --file``);
  50 ``python -c pass`` command jobs submitted from one SDK client as fast as it can, then waited
  for; wall = first submit to the last job seen terminal;
* limit:   the same 50 ``python -c pass`` run directly as subprocesses, 2 at a time (the most a
  2-slot pool can do on this machine).

Per-job overhead = (openaml wall - limit wall) / 50, as the issue defines it (wall seconds per
job; with 2 slots each job holds a slot about twice that long).

Run: ``.venv/bin/python bench/jobs_throughput.py [--quick]``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    PYTHON,
    Row,
    iso_ts,
    median,
    openaml_server,
    parse_args,
    print_table,
    progress,
    rotate,
    save_results,
)

ENV = "AzureML-sklearn-1.5@latest"
POOL_YML = """\
$schema: https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json
name: two-slot
type: amlcompute
size: STANDARD_DS3_v2
min_instances: 0
max_instances: 2
idle_time_before_scale_down: 120
tier: dedicated
"""


def run_limit(n: int, env: dict[str, str]) -> dict[str, Any]:
    def one(_: int) -> None:
        subprocess.run([PYTHON, "-c", "pass"], env=env, check=True)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, range(n)))
    return {"wall": time.perf_counter() - t0}


def run_openaml(ml: Any, n: int) -> dict[str, Any]:
    from openaml import command

    t_start = time.time()
    t0 = time.perf_counter()
    names = [ml.jobs.create_or_update(command(command="python -c pass", environment=ENV, compute="two-slot",
                                              experiment_name="bench-throughput")).name for _ in range(n)]
    submit = time.perf_counter() - t0
    for name in names:
        job = ml.jobs.wait(name, timeout=600)  # the SDK default poll (0.2 s), as a user waits
        if job.status != "Completed":
            raise RuntimeError(f"job {name} ended {job.status}: {ml.jobs.get_raw(name).get('error')}")
    wall = time.perf_counter() - t0
    raws = [ml.jobs.get_raw(name) for name in names]
    slot_s, queue_s = [], []
    for r in raws:
        hist = {h["status"]: iso_ts(h["time"]) for h in r["status_history"]}
        prep = hist.get("Preparing", iso_ts(r["start_time"]))
        done = hist.get("Completed", iso_ts(r["end_time"]))
        slot_s.append(done - prep)
        queue_s.append(prep - hist.get("Queued", iso_ts(r["created_at"])))
    server_wall = max(iso_ts(r["end_time"]) for r in raws) - t_start
    return {"wall": wall, "server_wall": server_wall, "submit": submit, "slot_s": median(slot_s),
            "queue_s": median(queue_s)}


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    n, reps = (10, 1) if args.quick else (50, 3)
    with openaml_server("throughput") as srv:
        from openaml import MLClient

        (srv.tmp / "pool.yml").write_text(POOL_YML)
        srv.cli("compute", "create", "--file", str(srv.tmp / "pool.yml"))
        ml = MLClient(workspace=srv.url)
        progress(f"server {srv.url}; warm-up")
        run_openaml(ml, 2)
        run_limit(2, srv.env)
        res: dict[str, list[dict[str, Any]]] = {"openaml": [], "limit": []}
        for i in range(reps):
            for kind in rotate(["openaml", "limit"], i):
                res[kind].append(run_openaml(ml, n) if kind == "openaml" else run_limit(n, srv.env))
            progress(f"rep {i + 1}/{reps}: openaml {res['openaml'][-1]['wall']:.1f}s, "
                     f"limit {res['limit'][-1]['wall']:.1f}s for {n} jobs")
        ml.close()

    wall = median([r["wall"] for r in res["openaml"]])
    ideal = median([r["wall"] for r in res["limit"]])
    jpm, jpm_limit = n / wall * 60, n / ideal * 60
    per_job = median([(o["wall"] - lim["wall"]) / n for o, lim in zip(res["openaml"], res["limit"], strict=True)])
    slot = median([r["slot_s"] for r in res["openaml"]])
    rows = [
        Row(f"{n} jobs on 2 slots, jobs/minute", jpm, jpm_limit, jpm / jpm_limit, "none set (report)", jpm_limit),
        Row(f"  wall for {n} jobs (s)", wall, ideal, wall / ideal, "", ideal),
        Row("  per-job overhead (wall - ideal)/n (s)", per_job, 0.0, None, "", 0.0),
        Row(f"  submit {n} jobs from one SDK client (s)", median([r["submit"] for r in res["openaml"]])),
        Row("  slot time per job, Preparing->Completed (s)", slot, ideal * 2 / n, None, "", ideal * 2 / n),
        Row("  idle slot gap per job, 2*wall/n - slot time (s)", 2 * wall / n - slot),
        Row("  median queue wait, Queued->Preparing (s)", median([r["queue_s"] for r in res["openaml"]])),
    ]
    notes = [f"{reps} repetition(s), order alternating; medians; {n} jobs each.",
             "peer = limit: the same commands as direct subprocesses, 2 at a time (ThreadPoolExecutor(2))."]
    print_table(f"jobs_throughput: {n} trivial jobs on a 2-slot compute", rows,
                peer="direct subprocesses, 2 at a time", limit="same as peer (no scheduler can beat it)",
                notes=notes)
    if not args.no_save:
        save_results("jobs_throughput", {"n": n, "reps": reps, "rows": rows, "raw": res})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
