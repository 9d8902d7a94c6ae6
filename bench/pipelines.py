"""Pipelines: per-step overhead of a chain and a fan-out, the all-reused rerun, a 2-slot fan-out.

Issue 5 benchmarks, one table:

* **chain10**: ten inline steps ``python -c pass``, each reading the previous step's output
  (``settings.force_rerun: true``, so every repetition runs them); submitted with the SDK and
  waited for. Peer and limit: the same ten commands run one after another as subprocesses.
* **fan10**: ten independent ``python -c pass`` steps on compute ``local`` (slots = CPU count).
  Peer and limit: the same ten commands as subprocesses, as many at a time as ``local`` has slots.
* Overhead per step, two ways: (pipeline wall - peer wall) / 10, and, as the issue words it,
  (pipeline wall - the steps' own time) / 10, where the steps' own time is the commands' run time
  recorded by the runner (its reported state): summed for the chain, summed / slots for the fan-out.
* **titanic rerun**: examples/titanic/pipeline/pipeline.yml run once for real (not measured),
  then rerun unchanged, every step reused: seconds from submit to Completed with the CLI
  (``job create --stream``, process start to exit) and with the SDK (``create_or_update`` +
  ``wait``), split into client side (start-up, YAML, code and data hashing, POST) and server side
  (created -> Completed). Target < 3 s. No fair peer (nothing else on this machine reuses
  Azure ML steps); the limit row is the CLI's own start-up and a trivial API call.
* **fan10 on 2 slots**: ten steps of ``time.sleep(1)`` on a compute with ``max_instances: 2``:
  wall vs the ideal (sum of the steps' own time / 2), and the peer: the same ten commands run as
  subprocesses two at a time.

Pipelines, peers and limits are interleaved, the order rotating every repetition; medians.

Run: ``.venv/bin/python bench/pipelines.py [--quick]`` (~3-6 min; quick ~2 min: the Titanic
pipeline's one real run dominates on a busy machine).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    OPENAML,
    PYTHON,
    REPO,
    Row,
    iso_ts,
    median,
    openaml_server,
    parse_args,
    print_table,
    progress,
    rotate,
    runner_state,
    save_results,
    summary,
)

ENV = "azureml:AzureML-sklearn-1.5@latest"
N = 10
TRIVIAL = "python -c pass"
SLEEP = 'python -c "import time; time.sleep(1)"'
TARGET_REUSE_S = 3.0
TITANIC = REPO / "examples" / "titanic"
POOL_YML = """\
$schema: https://azuremlschemas.azureedge.net/latest/amlCompute.schema.json
name: two-slot
type: amlcompute
min_instances: 0
max_instances: 2
"""


def chain_yaml(n: int) -> str:
    lines = ["type: pipeline", "experiment_name: bench-chain", "settings:", "  force_rerun: true", "jobs:"]
    for i in range(n):
        lines += [f"  s{i}:", f"    command: {TRIVIAL}" + (" ${{inputs.prev}}" if i else ""),
                  f"    environment: {ENV}", "    outputs:", "      out: {type: uri_folder}"]
        if i:
            lines += ["    inputs:", f"      prev: ${{{{parent.jobs.s{i - 1}.outputs.out}}}}"]
    return "\n".join(lines) + "\n"


def fan_yaml(n: int, command: str, compute: str, experiment: str) -> str:
    lines = ["type: pipeline", f"experiment_name: {experiment}", "settings:", "  force_rerun: true",
             f"  default_compute: azureml:{compute}", "jobs:"]
    for i in range(n):
        lines += [f"  s{i}:", f"    command: {json.dumps(command)}", f"    environment: {ENV}"]
    return "\n".join(lines) + "\n"


def run_bare(command: str, n: int, parallel: int) -> float:
    """Wall seconds of ``n`` runs of ``command`` (bash -c, as the runner does), ``parallel`` at a time."""
    def one(_: int) -> None:
        subprocess.run(["bash", "-c", command.replace("python", PYTHON, 1)], check=True)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - t0


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    reps = 2 if args.quick else 5
    with openaml_server("pipelines") as srv:
        from openaml import MLClient, load_job

        ml = MLClient(workspace=srv.url)
        slots = int(ml.compute.get("local").max_instances)
        (srv.tmp / "pool.yml").write_text(POOL_YML)
        srv.cli("compute", "create", "--file", str(srv.tmp / "pool.yml"))
        files = {"chain": srv.tmp / "chain.yml", "fan": srv.tmp / "fan.yml", "fan2": srv.tmp / "fan2.yml"}
        files["chain"].write_text(chain_yaml(N))
        files["fan"].write_text(fan_yaml(N, TRIVIAL, "local", "bench-fan"))
        files["fan2"].write_text(fan_yaml(N, SLEEP, "two-slot", "bench-fan2"))
        example = srv.tmp / "titanic"
        shutil.copytree(TITANIC / "pipeline", example / "pipeline")
        shutil.copytree(TITANIC / "data", example / "data")
        titanic_yml = example / "pipeline" / "pipeline.yml"

        def step_times(name: str) -> dict[str, dict[str, float]]:
            """node -> epoch seconds of created, Preparing, command start/end (runner) and Completed."""
            out: dict[str, dict[str, float]] = {}
            for child in ml.jobs.list(parent_job_name=name):
                raw = ml.jobs.get_raw(child.name)
                hist = {h["status"]: iso_ts(h["time"]) for h in raw.get("status_history") or []}
                st = runner_state(srv.path, child.name)
                out[child.name[len(name) + 1:]] = {
                    "created": iso_ts(raw["created_at"]), "preparing": hist["Preparing"],
                    "cmd_start": float(st["start_time"]), "cmd_end": float(st["end_time"]),
                    "completed": hist["Completed"]}
            return out

        def run_pipeline(kind: str) -> dict[str, Any]:
            job = load_job(files[kind])
            t0 = time.perf_counter()
            created = ml.jobs.create_or_update(job)
            final = ml.jobs.wait(created.name, poll=0.05)
            wall = time.perf_counter() - t0
            assert final.status == "Completed", ml.jobs.get_raw(created.name)
            raw = ml.jobs.get_raw(created.name)
            steps = step_times(created.name)
            assert len(steps) == N, (created.name, steps)
            own = [t["cmd_end"] - t["cmd_start"] for t in steps.values()]
            rec: dict[str, Any] = {"wall": wall, "server": iso_ts(raw["end_time"]) - iso_ts(raw["created_at"]),
                                   "own_sum": sum(own), "name": created.name}
            if kind == "chain":  # where a step's time goes, per step (median over the ten)
                order = [steps[f"s{i}"] for i in range(N)]
                rec["phases"] = {
                    "prev_completed_to_created": median([b["created"] - a["completed"]
                                                         for a, b in zip(order, order[1:], strict=False)]),
                    "created_to_preparing": median([t["preparing"] - t["created"] for t in order]),
                    "preparing_to_command": median([t["cmd_start"] - t["preparing"] for t in order]),
                    "command": median([t["cmd_end"] - t["cmd_start"] for t in order]),
                    "command_end_to_completed": median([t["completed"] - t["cmd_end"] for t in order]),
                }
            return rec

        def titanic_cli() -> dict[str, Any]:
            t_start = time.time()
            t0 = time.perf_counter()
            p = subprocess.run([OPENAML, "job", "create", "--file", str(titanic_yml), "--stream",
                                "--workspace", srv.url], env=srv.env, cwd=srv.tmp, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            t_end = time.time()
            assert p.returncode == 0 and "Status: Completed" in p.stdout, f"{p.stdout}\n{p.stderr}"
            m = re.search(r"^RunId: (\S+)", p.stdout, re.MULTILINE)
            assert m, p.stdout
            return _reuse_record(ml, m.group(1), wall, t_start, t_end)

        def titanic_sdk() -> dict[str, Any]:
            t_start = time.time()
            t0 = time.perf_counter()
            created = ml.jobs.create_or_update(load_job(titanic_yml))
            t_submit = time.perf_counter() - t0
            ml.jobs.wait(created.name, poll=0.05)
            wall = time.perf_counter() - t0
            rec = _reuse_record(ml, created.name, wall, t_start, time.time())
            rec["submit_call"] = t_submit
            return rec

        def cli_floor() -> dict[str, Any]:
            t0 = time.perf_counter()
            p = subprocess.run([OPENAML, "compute", "show", "-n", "local", "--workspace", srv.url], env=srv.env,
                               cwd=srv.tmp, capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
            return {"wall": time.perf_counter() - t0}

        progress(f"server {srv.url}; local compute has {slots} slots; Titanic pipeline: one real run (not measured)")
        t_real = time.perf_counter()
        real = titanic_sdk()
        real_s = time.perf_counter() - t_real
        progress(f"Titanic real run {real['name']}: {real_s:.1f} s")
        kinds = {
            "chain": lambda: run_pipeline("chain"),
            "chain_bare": lambda: {"wall": run_bare(TRIVIAL, N, 1)},
            "fan": lambda: run_pipeline("fan"),
            "fan_bare": lambda: {"wall": run_bare(TRIVIAL, N, slots)},
            "fan2": lambda: run_pipeline("fan2"),
            "fan2_bare": lambda: {"wall": run_bare(SLEEP, N, 2)},
            "titanic_cli": titanic_cli,
            "titanic_sdk": titanic_sdk,
            "cli_floor": cli_floor,
        }
        for k in ("chain", "fan", "fan2", "chain_bare"):  # warm-up: first runs fill caches (code, env)
            kinds[k]()
        results: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
        t_bench = time.perf_counter()
        for i in range(reps):
            for k in rotate(list(kinds), i):
                results[k].append(kinds[k]())
            progress(f"rep {i + 1}/{reps}: chain {results['chain'][-1]['wall']:.2f}s "
                     f"(bare {results['chain_bare'][-1]['wall']:.2f}s), fan {results['fan'][-1]['wall']:.2f}s, "
                     f"fan2 {results['fan2'][-1]['wall']:.2f}s, titanic rerun cli "
                     f"{results['titanic_cli'][-1]['wall']:.2f}s / sdk {results['titanic_sdk'][-1]['wall']:.2f}s")
        bench_s = time.perf_counter() - t_bench
        ml.close()
    not_reused = [r["name"] for k in ("titanic_cli", "titanic_sdk") for r in results[k] if not all(r["reused"].values())]

    def med(kind: str, key: str = "wall") -> float:
        return median([r[key] for r in results[kind]])

    def phase(key: str) -> float:
        return median([r["phases"][key] for r in results["chain"]])

    def paired(a: str, b: str, f: Any) -> float:
        return median([f(x, y) for x, y in zip(results[a], results[b], strict=True)])

    chain_over_peer = paired("chain", "chain_bare", lambda p, b: (p["wall"] - b["wall"]) / N)
    chain_over_own = median([(r["wall"] - r["own_sum"]) / N for r in results["chain"]])
    fan_over_peer = paired("fan", "fan_bare", lambda p, b: (p["wall"] - b["wall"]) / N)
    fan_over_own = median([(r["wall"] - r["own_sum"] / slots) / N for r in results["fan"]])
    fan2_ideal = median([r["own_sum"] / 2 for r in results["fan2"]])
    reuse_cli, reuse_sdk = med("titanic_cli"), med("titanic_sdk")
    rows = [
        Row(f"chain of {N} trivial steps, wall (s)", med("chain"), med("chain_bare"),
            med("chain") / med("chain_bare"), "report", med("chain_bare")),
        Row("  overhead per step vs peer, paired (s)", chain_over_peer),
        Row("  overhead per step, (wall - steps' own time)/10 (s)", chain_over_own),
        Row("  server side, created -> Completed (s)", med("chain", "server")),
        Row("  per step: upstream Completed -> step created (s)", phase("prev_completed_to_created")),
        Row("  per step: created -> Preparing (queue, dispatch) (s)", phase("created_to_preparing")),
        Row("  per step: Preparing -> command start (runner) (s)", phase("preparing_to_command")),
        Row("  per step: the command itself (s)", phase("command"), med("chain_bare") / N),
        Row("  per step: command end -> Completed (s)", phase("command_end_to_completed")),
        Row(f"fan-out of {N} trivial steps on local ({slots} slots), wall (s)", med("fan"), med("fan_bare"),
            med("fan") / med("fan_bare"), "report", med("fan_bare")),
        Row("  overhead per step vs peer, paired (s)", fan_over_peer),
        Row(f"  overhead per step, (wall - own/{slots})/10 (s)", fan_over_own),
        Row("Titanic rerun, all reused, CLI submit -> Completed (s)", reuse_cli, None, None,
            f"< {TARGET_REUSE_S:g} s", med("cli_floor"), reuse_cli < TARGET_REUSE_S),
        Row("  CLI start -> pipeline row created (s)", med("titanic_cli", "client")),
        Row("  server: created -> Completed (s)", med("titanic_cli", "server")),
        Row("  Completed -> CLI exit (s)", med("titanic_cli", "tail")),
        Row("Titanic rerun, all reused, SDK submit -> Completed (s)", reuse_sdk, None, None,
            f"< {TARGET_REUSE_S:g} s", None, reuse_sdk < TARGET_REUSE_S),
        Row("  create_or_update call (hash code + data, POST) (s)", med("titanic_sdk", "submit_call")),
        Row("  server: created -> Completed (s)", med("titanic_sdk", "server")),
        Row(f"fan-out of {N} x sleep(1) on 2 slots, wall (s)", med("fan2"), med("fan2_bare"),
            med("fan2") / med("fan2_bare"), "report vs ideal", fan2_ideal),
        Row("  wall / ideal (sum of own time / 2)", med("fan2") / fan2_ideal, med("fan2_bare") / fan2_ideal),
    ]
    notes = [
        f"N={reps} interleaved repetitions after one warm-up of each pipeline; {bench_s:.0f} s measured; "
        f"the Titanic pipeline's real run (not measured) took {real_s:.0f} s.",
        f"peers: the same commands as subprocesses (chain: one at a time; fan-out: {slots} at a time; "
        "2-slot fan-out: 2 at a time); limit column: the peer, or for the reuse rows `openaml compute show` "
        "(CLI start-up + one API call), or for the 2-slot fan-out the ideal.",
        "steps' own time: command start to end as the runner reports it.",
        "every Titanic rerun reused all its steps" if not not_reused else
        f"NOT all steps reused in: {', '.join(not_reused)}",
    ]
    print_table("pipelines: step overhead, reuse latency, 2-slot fan-out", rows,
                peer="the same step commands as plain subprocesses",
                limit="the bare sequence / CLI start-up + one call / sum/2", notes=notes)
    if not args.no_save:
        save_results("pipelines", {"reps": reps, "slots": slots, "rows": rows, "titanic_real_run_s": real_s,
                                   "walls": {k: summary([r["wall"] for r in v]) for k, v in results.items()},
                                   "raw": results})
    return 0


def _reuse_record(ml: Any, name: str, wall: float, t_start: float, t_end: float) -> dict[str, Any]:
    raw = ml.jobs.get_raw(name)
    assert raw["status"] == "Completed", raw
    steps = raw.get("steps") or {}
    reused = {n: s.get("reused") for n, s in steps.items()}
    created, ended = iso_ts(raw["created_at"]), iso_ts(raw["end_time"])
    return {"wall": wall, "name": name, "reused": reused, "client": created - t_start, "server": ended - created,
            "tail": t_end - ended}


if __name__ == "__main__":
    sys.exit(main())
