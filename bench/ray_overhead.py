"""Job start overhead on a Ray compute: an openaml job vs a bare ``ray job submit`` of the same command.

Starts a local Ray cluster on loopback (tests/ray/cluster.py: a head and one worker node, one CPU
each, every port free, stopped at the end) and a throwaway openaml server, creates a ``type: ray``
compute on it (runners on the worker node, as the bare jobs), and measures, interleaved (the order
rotating every repetition), N repetitions after one warm-up each:

* bare (peer): ``JobSubmissionClient.submit_job(entrypoint="python -c pass")`` on the worker node,
  then polling ``get_job_status`` every 50 ms until SUCCEEDED (what ``ray job submit --no-wait`` +
  a wait does, without the CLI's own start-up);
* openaml: ``MLClient.jobs.create_or_update(command(command="python -c pass", compute="ray-bench"))``
  + ``jobs.wait`` (submission to Completed, its outputs and logs reported);
* limit: the bare job's own run time as Ray reports it (``end_time - start_time``): what is left
  when submission and polling cost nothing.

Target: none set by the issue (a measurement); openaml's extra over the bare submission is its runner
(start-up, reports over HTTP, the job's token package upload) and the scheduler's dispatch.

Run: ``.venv/bin/python bench/ray_overhead.py [--quick]`` (needs ``pip install 'openaml[ray]'``;
~4 min here, most of it the cluster's start).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    Row,
    median,
    openaml_server,
    parse_args,
    print_table,
    progress,
    rotate,
    save_results,
    summary,
)

from tests.ray.cluster import LocalRayCluster  # noqa: E402

WORKER = {"worker": 1.0}


def bare(client: Any) -> tuple[float, float]:
    t0 = time.perf_counter()
    sid = client.submit_job(entrypoint="python -c pass", entrypoint_num_cpus=1, entrypoint_resources=WORKER)
    while (status := str(client.get_job_status(sid))) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if status != "SUCCEEDED":
        raise RuntimeError(f"bare ray job {sid} {status}: {client.get_job_logs(sid)[-2000:]}")
    info = client.get_job_info(sid)
    return wall, (info.end_time - info.start_time) / 1000.0


def openaml_job(ml: Any, compute: str = "ray-bench") -> float:
    from openaml import command

    t0 = time.perf_counter()
    job = ml.jobs.create_or_update(command(command="python -c pass", compute=compute, experiment_name="bench"))
    done = ml.jobs.wait(job.name, poll=0.05)
    wall = time.perf_counter() - t0
    if done.status != "Completed":
        raise RuntimeError(f"openaml job {job.name} {done.status}: {done.error}")
    return wall


def main() -> None:
    args = parse_args(__doc__.splitlines()[0],
                      lambda p: p.add_argument("--n", type=int, default=None, help="repetitions (default 10)"))
    n = args.n or (3 if args.quick else 10)
    from ray.job_submission import JobSubmissionClient

    from openaml import MLClient
    from openaml.entities import RayCompute, RayResources

    progress("starting a local Ray cluster (head + worker node)")
    t0 = time.perf_counter()
    cluster = LocalRayCluster().start()
    progress(f"cluster up in {time.perf_counter() - t0:.0f} s at {cluster.address}")
    try:
        with openaml_server("ray") as server, MLClient(workspace=server.url) as ml:
            ml.compute.begin_create_or_update(RayCompute(
                name="ray-bench", address=cluster.address, max_instances=1,
                resources=RayResources(num_cpus=1, custom=WORKER))).result()
            client = JobSubmissionClient(cluster.address)
            progress("warm-up")
            bare(client)
            openaml_job(ml)
            walls: dict[str, list[float]] = {"bare": [], "openaml": [], "limit": []}
            for i in range(n):
                for kind in rotate(["bare", "openaml"], i):
                    if kind == "bare":
                        wall, run = bare(client)
                        walls["bare"].append(wall)
                        walls["limit"].append(run)
                    else:
                        walls["openaml"].append(openaml_job(ml))
                progress(f"{i + 1}/{n}: bare {walls['bare'][-1]:.2f} s, openaml {walls['openaml'][-1]:.2f} s")
    finally:
        progress("stopping the Ray cluster")
        cluster.stop()
    b, o, lim = median(walls["bare"]), median(walls["openaml"]), median(walls["limit"])
    extra = [o - bb for o, bb in zip(walls["openaml"], walls["bare"], strict=True)]
    rows = [
        Row("submit to done, median (s)", o, b, o / b if b else None, "", lim),
        Row("openaml extra over bare, median of pairs (s)", median(extra), 0.0, None, "", None),
    ]
    print_table(f"Job start overhead on a local Ray cluster ({n} interleaved repetitions, `python -c pass`)", rows,
                peer="bare Ray job: JobSubmissionClient.submit_job + get_job_status polling (50 ms)",
                limit="the bare job's own run time as Ray reports it (end_time - start_time)",
                notes=["openaml: MLClient.jobs.create_or_update(command(compute='ray-bench')) to Completed "
                       "(scheduler dispatch, the token package upload, the runner's start-up, its reports)"])
    if not args.no_save:
        save_results("ray_overhead", {"n": n, "openaml": summary(walls["openaml"]), "bare": summary(walls["bare"]),
                                      "limit": summary(walls["limit"]), "raw": walls})


if __name__ == "__main__":
    main()
