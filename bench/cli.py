"""Start-up latency of the CLI and the SDK: short commands against a running server.

Targets (core issue, item 8), wall time of one process from start to exit, server warm:

* ``openaml job list`` and ``openaml model show``: under 0.35 s on an idle machine (the load
  average is printed beside the figures; on a loaded machine compare the ratio to ``python -c pass``);
* ``openaml job create -f trivial.yml --stream`` (``python -c pass`` as the job): its wall time minus
  that of ``python -c pass`` under 0.8 s (the job's own run included);
* ``python -c "import openaml"`` and ``python -c "from openaml import MLClient"``: under 0.25 s.

Measured interleaved (the order rotates every repetition), medians of N. The workspace is named
the way users name it (``OPENAML_WORKSPACE=<folder>``), so each CLI call reads ``server.json`` and
checks the server's health first, as the acceptance check does.

``--before SRC`` measures another source tree in the same run (the same venv, ``PYTHONPATH=SRC``):
``git archive <rev> src | tar -x -C /tmp/before && .venv/bin/python bench/cli.py --before /tmp/before/src``.

Run: ``.venv/bin/python bench/cli.py [--quick] [--n N] [--before SRC]``.
"""

from __future__ import annotations

import os
import resource
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
    machine,
    median,
    openaml_server,
    parse_args,
    print_table,
    progress,
    rotate,
    save_results,
    summary,
)

TRIVIAL_YML = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: python -c pass
environment: azureml:AzureML-sklearn-1.5@latest
experiment_name: bench-cli
"""
TARGETS = {"job list": 0.35, "job list -o json": 0.35, "model show": 0.35, "import openaml": 0.25,
           "from openaml import MLClient": 0.25}
TARGET_STREAM_EXTRA = 0.8


def _wall(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall time and CPU time (user + system, the process and its children) of one run, seconds."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return dt, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> None:
    def extra(p: Any) -> None:
        p.add_argument("--before", metavar="SRC", help="another source tree to measure in the same run (PYTHONPATH)")
        p.add_argument("--n", type=int, default=None, metavar="N",
                       help="repetitions per command (default 9, 3 with --quick); more on a loaded machine")

    args = parse_args(__doc__.splitlines()[0], extra)
    n = args.n or (3 if args.quick else 9)
    load_at_start = machine()["load1"]
    with openaml_server("bench-cli") as srv:
        env = {**srv.env, "OPENAML_WORKSPACE": str(srv.path)}
        yml = srv.tmp / "trivial.yml"
        yml.write_text(TRIVIAL_YML)
        model_dir = srv.tmp / "model"
        model_dir.mkdir()
        (model_dir / "model.pkl").write_bytes(b"0")
        progress("seeding: one model, five jobs (the first builds the environment)")
        subprocess.run([OPENAML, "model", "create", "-n", "bench-model", "-v", "1", "--path", str(model_dir)],
                       env=env, cwd=srv.tmp, check=True, capture_output=True)
        for _ in range(5):
            subprocess.run([OPENAML, "job", "create", "-f", str(yml), "--stream"], env=env, cwd=srv.tmp,
                           check=True, capture_output=True, timeout=600)
        trees: dict[str, dict[str, str]] = {"after": env}
        for src in (str(Path(__file__).resolve().parents[1] / "src"), *([args.before] if args.before else [])):
            # both trees from bytecode (as scripts/install.sh leaves the checkout), also where
            # PYTHONDONTWRITEBYTECODE is set
            subprocess.run([PYTHON, "-m", "compileall", "-q", "-j", "0", src], check=True, capture_output=True)
        if args.before:
            trees = {"before": {**env, "PYTHONPATH": str(Path(args.before).resolve())}, "after": env}
        commands: dict[str, list[str]] = {
            "python -c pass": [PYTHON, "-c", "pass"],
            "import openaml": [PYTHON, "-c", "import openaml"],
            "from openaml import MLClient": [PYTHON, "-c", "from openaml import MLClient"],
            "job list": [OPENAML, "job", "list"],
            "job list -o json": [OPENAML, "job", "list", "-o", "json"],
            "model show": [OPENAML, "model", "show", "-n", "bench-model", "-v", "1"],
            "job create --stream": [OPENAML, "job", "create", "-f", str(yml), "--stream"],
        }
        cases = [(tree, name) for tree in trees for name in commands if not (tree == "before" and name == "python -c pass")]
        times: dict[tuple[str, str], list[float]] = {c: [] for c in cases}
        cpu: dict[tuple[str, str], list[float]] = {c: [] for c in cases}
        for tree, name in cases:  # one warm-up each
            _wall(commands[name], trees[tree], srv.tmp)
        loads: list[float] = []  # the 1-min load average as each repetition starts (all rows share it: interleaved)
        for i in range(n):
            loads.append(os.getloadavg()[0])
            progress(f"repetition {i + 1}/{n} (load {loads[-1]:.2f})")
            for tree, name in rotate(cases, i):
                wall, used = _wall(commands[name], trees[tree], srv.tmp)
                times[(tree, name)].append(wall)
                cpu[(tree, name)].append(used)
    bare = median(times[("after", "python -c pass")])
    rows: list[Row] = []
    for tree, name in cases:
        m = median(times[(tree, name)])
        label = f"{name} [{tree}]" if args.before else name
        if name == "python -c pass":
            rows.append(Row(label, m, bare, 1.0, limit=bare))
        elif name == "job create --stream":
            rows.append(Row(label + " (minus bare)", m - bare, bare, m / bare, f"< {TARGET_STREAM_EXTRA} s over bare",
                            bare, ok=(m - bare) < TARGET_STREAM_EXTRA))
        else:
            t = TARGETS[name]
            rows.append(Row(label, m, bare, m / bare, f"< {t} s idle", bare, ok=m < t))
    cpu_rows = [Row(f"{name} [{tree}]" if args.before else name, median(cpu[(tree, name)]),
                    median(cpu[("after", "python -c pass")]),
                    median(cpu[(tree, name)]) / median(cpu[("after", "python -c pass")]))
                for tree, name in cases]
    load_now = os.getloadavg()[0]
    print_table(f"CLI and SDK start-up, wall time per process, median of {n} (seconds)", rows,
                peer="python -c pass (same interpreter)", limit="python -c pass",
                notes=[f"load average (1 min): {load_at_start:.2f} at start, {load_now:.2f} at end, median "
                       f"{median(loads):.2f} over the repetitions (min {min(loads):.2f}, max {max(loads):.2f}); "
                       "targets are for an idle machine: on a loaded one compare the ratios",
                       "workspace given as a folder (OPENAML_WORKSPACE): each call reads server.json and checks /health"])
    print_table(f"The same runs: CPU time (user + system) per process, median of {n} (seconds; moves less with "
                "the load than wall time; the server's share of a request is not in it)", cpu_rows,
                peer="python -c pass", limit="python -c pass")
    if not args.no_save:
        payload: dict[str, Any] = {"n": n, "load_end": load_now, "loads": loads,
                                   "rows": rows, "cpu_rows": cpu_rows,
                                   "raw": {f"{t}|{c}": summary(v) for (t, c), v in times.items()},
                                   "raw_cpu": {f"{t}|{c}": summary(v) for (t, c), v in cpu.items()}}
        progress(f"saved {save_results('cli', payload)}")


if __name__ == "__main__":
    main()
