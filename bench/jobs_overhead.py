"""Overhead of a trivial job: ``openaml job create --stream`` vs the bare command.

Target (foundation issue): a trivial job (``python -c pass``) submitted with ``openaml job create
--stream``, warm (server running, environment cached), costs under 1.5 s more than running the
command directly.

Measured, interleaved (the order rotates every repetition), N repetitions after warm-ups:

* bare:   ``python -c pass`` as a subprocess (the peer);
* limit:  a Python process that runs ``python -c pass`` as its child: the least any launcher
          that is itself a Python process (a CLI) can cost;
* cli:    ``openaml job create -f trivial.yml --stream`` from process start to exit;
* sdk:    ``MLClient.jobs.create_or_update(command(...))`` + ``jobs.wait`` in this process
          (no CLI start-up);
* import: ``python -c "import openaml.cli, openaml._load, openaml.sdk"`` (the CLI's import cost,
          and its interpreter teardown: exit after those imports).

The job's ``status_history`` (server clock = this clock, same machine) and the runner's
state (kept on the job's row) split the CLI's wall time into phases.

Run: ``.venv/bin/python bench/jobs_overhead.py [--quick]``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    OPENAML,
    PYTHON,
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
    wait_bytecode,
)

TARGET_EXTRA_S = 1.5
ENV = "AzureML-sklearn-1.5@latest"
TRIVIAL_YML = f"""\
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: python -c pass
environment: azureml:{ENV}
experiment_name: bench-overhead
"""
IMPORTS = "import openaml.cli, openaml._load, openaml.sdk"


def _wall(argv: list[str], **kw: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    return time.perf_counter() - t0, p


def _phases(raw: dict[str, Any], state: dict[str, Any], t_start: float, t_end: float) -> dict[str, float]:
    """Phase durations (s) of one job from the API record and the runner's reported state."""
    hist = {h["status"]: iso_ts(h["time"]) for h in raw.get("status_history") or []}
    created = iso_ts(raw["created_at"])
    queued = hist.get("Queued", created)
    preparing = hist.get("Preparing", iso_ts(raw.get("start_time")))
    completed = hist.get("Completed", iso_ts(raw.get("end_time")))
    cmd_start = float(state.get("start_time") or preparing)
    runner_end = float(state.get("end_time") or completed)
    return {
        "client_to_created": created - t_start,
        "created_to_queued": queued - created,
        "queued_to_preparing": preparing - queued,
        "runner_startup": cmd_start - preparing,
        "command_and_finalize": runner_end - cmd_start,
        "runner_end_to_completed": completed - runner_end,
        "completed_to_client_done": t_end - completed,
    }


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    reps, warm = (2, 1) if args.quick else (15, 2)
    with openaml_server("overhead") as srv:
        from openaml import MLClient, command

        yml = srv.tmp / "trivial.yml"
        yml.write_text(TRIVIAL_YML)
        ml = MLClient(workspace=srv.url)
        env = srv.env

        def state_of(name: str) -> dict[str, Any]:
            return runner_state(srv.path, name)

        def run_bare() -> dict[str, Any]:
            w, p = _wall([PYTHON, "-c", "pass"], env=env)
            assert p.returncode == 0
            return {"wall": w}

        def run_limit() -> dict[str, Any]:
            w, p = _wall([PYTHON, "-c", "import subprocess, sys; subprocess.run([sys.executable, '-c', 'pass'])"],
                         env=env)
            assert p.returncode == 0
            return {"wall": w}

        def run_import() -> dict[str, Any]:
            code = f"{IMPORTS}\nimport time\nprint(time.time())"
            w, p = _wall([PYTHON, "-c", code], env=env)
            t_exit = time.time()
            assert p.returncode == 0, p.stderr
            return {"wall": w, "teardown": t_exit - float(p.stdout.split()[-1])}

        def run_cli() -> dict[str, Any]:
            t_start = time.time()
            w, p = _wall([OPENAML, "job", "create", "-f", str(yml), "--stream", "--workspace", srv.url],
                         env=env, cwd=srv.tmp)
            t_end = time.time()
            if p.returncode != 0:
                raise RuntimeError(f"openaml job create failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
            m = re.search(r"RunId: (\S+)", p.stdout)
            assert m, p.stdout
            name = m.group(1)
            raw = ml.jobs.get_raw(name)
            assert raw["status"] == "Completed", raw
            return {"wall": w, "name": name, "phases": _phases(raw, state_of(name), t_start, t_end)}

        def run_sdk() -> dict[str, Any]:
            t_start = time.time()
            t0 = time.perf_counter()
            job = ml.jobs.create_or_update(command(command="python -c pass", environment=ENV,
                                                   experiment_name="bench-overhead"))
            t_submit = time.perf_counter() - t0
            final = ml.jobs.wait(job.name)
            w = time.perf_counter() - t0
            t_end = time.time()
            assert final.status == "Completed", final
            raw = ml.jobs.get_raw(job.name)
            ph = _phases(raw, state_of(job.name), t_start, t_end)
            ph["submit_call"] = t_submit
            return {"wall": w, "name": job.name, "phases": ph}

        kinds = {"bare": run_bare, "limit": run_limit, "import": run_import, "cli": run_cli, "sdk": run_sdk}
        progress(f"server {srv.url}; {warm} warm-up round(s), then {reps} interleaved repetitions")
        for i in range(warm):
            for k in rotate(list(kinds), i):
                kinds[k]()
        waited = wait_bytecode(srv.path)
        if waited > 1:
            progress(f"waited {waited:.0f} s for the environment's bytecode compile (warm = compiled)")
        results: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
        t_bench = time.perf_counter()
        for i in range(reps):
            for k in rotate(list(kinds), i):
                results[k].append(kinds[k]())
            progress(f"rep {i + 1}/{reps}: bare {results['bare'][-1]['wall']:.3f}s, "
                     f"cli {results['cli'][-1]['wall']:.2f}s, sdk {results['sdk'][-1]['wall']:.2f}s")
        bench_s = time.perf_counter() - t_bench
        importtime = _import_profile(srv, yml, env)
        ml.close()

    walls = {k: [r["wall"] for r in v] for k, v in results.items()}
    bare, lim = median(walls["bare"]), median(walls["limit"])
    cli_extra = [c - b for c, b in zip(walls["cli"], walls["bare"], strict=True)]
    sdk_extra = [s - b for s, b in zip(walls["sdk"], walls["bare"], strict=True)]

    teardown = median([r["teardown"] for r in results["import"]])

    def ph(kind: str, key: str) -> float:
        return median([r["phases"][key] for r in results[kind] if key in r["phases"]])

    target = f"< {TARGET_EXTRA_S} s extra"
    rows = [
        Row("CLI job create --stream, wall (s)", median(walls["cli"]), bare, median(walls["cli"]) / bare,
            target, lim, median(cli_extra) < TARGET_EXTRA_S),
        Row("  extra over bare, paired per rep (s)", median(cli_extra), 0.0, None, f"< {TARGET_EXTRA_S}",
            lim - bare, median(cli_extra) < TARGET_EXTRA_S),
        Row("SDK create_or_update + wait, wall (s)", median(walls["sdk"]), bare, median(walls["sdk"]) / bare,
            target, bare, median(sdk_extra) < TARGET_EXTRA_S),
        Row("  extra over bare, paired per rep (s)", median(sdk_extra), 0.0, None, f"< {TARGET_EXTRA_S}",
            0.0, median(sdk_extra) < TARGET_EXTRA_S),
        Row("CLI phases (median s):", None),
        Row("  1 CLI start -> job row created", ph("cli", "client_to_created")),
        Row("    of which interpreter + imports", median(walls["import"]) - teardown, bare, None, "", bare),
        Row("  2 created -> Queued (submit tail)", ph("cli", "created_to_queued")),
        Row("  3 Queued -> Preparing (dispatch)", ph("cli", "queued_to_preparing")),
        Row("  4 Preparing -> command start (runner)", ph("cli", "runner_startup"), bare, None, "", bare),
        Row("  5 command + finalize (runner)", ph("cli", "command_and_finalize"), bare, None, "", bare),
        Row("  6 runner end -> Completed (monitor)", ph("cli", "runner_end_to_completed")),
        Row("  7 Completed -> CLI exit (stream lag + exit)", ph("cli", "completed_to_client_done")),
        Row("    of which interpreter teardown", teardown),
        Row("SDK phases (median s):", None),
        Row("  submit HTTP call (create_or_update)", ph("sdk", "submit_call")),
        Row("  3 Queued -> Preparing (dispatch)", ph("sdk", "queued_to_preparing")),
        Row("  4 Preparing -> command start (runner)", ph("sdk", "runner_startup"), bare, None, "", bare),
        Row("  6 runner end -> Completed (monitor)", ph("sdk", "runner_end_to_completed")),
        Row("  7 Completed -> wait() returns (poll 0.2 s)", ph("sdk", "completed_to_client_done")),
    ]
    notes = [
        f"N={reps} interleaved repetitions after {warm} warm-up round(s); {bench_s:.0f} s measured.",
        "peer = bare `python -c pass` subprocess; limit = a Python process running it as a child "
        "(rows 'of which'/4/5: limit column = bare).",
        "phases use the server's status_history and the runner's reported state (same clock).",
        f"CLI import time by package (-X importtime, self times summed, total {sum(t for _, t in importtime):.2f} s): "
        + ", ".join(f"{m} {t:.2f}" for m, t in importtime[:8]),
    ]
    print_table("jobs_overhead: trivial job vs bare command (warm server, cached environment)", rows,
                peer="bare `python -c pass` (subprocess)", limit="python launching `python -c pass` as a child",
                notes=notes)
    if not args.no_save:
        save_results("jobs_overhead", {
            "reps": reps, "warmups": warm, "rows": rows, "walls": {k: summary(v) for k, v in walls.items()},
            "raw": results, "cli_importtime_top": importtime,
        })
    return 0


def _import_profile(srv: Any, yml: Path, env: dict[str, str]) -> list[tuple[str, float]]:
    """Import time per top-level package (self times summed) in one real ``openaml job create`` (no stream)."""
    p = subprocess.run([PYTHON, "-X", "importtime", "-m", "openaml", "job", "create", "-f", str(yml),
                        "--workspace", srv.url], env=env, cwd=srv.tmp, capture_output=True, text=True)
    per_pkg: dict[str, float] = {}
    for line in p.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+\d+\s+\|\s*(\S+)", line)
        if m:  # self time, attributed to the module's top-level package
            top = m.group(2).split(".")[0]
            per_pkg[top] = per_pkg.get(top, 0.0) + int(m.group(1)) / 1e6
    try:  # the job it submitted must end before the server is stopped
        from openaml import MLClient

        name = json.loads(p.stdout)["name"]
        c = MLClient(workspace=srv.url)
        c.jobs.wait(name)
        c.close()
    except Exception:  # noqa: BLE001 - diagnostics only
        pass
    return sorted(per_pkg.items(), key=lambda kv: -kv[1])


if __name__ == "__main__":
    raise SystemExit(main())
