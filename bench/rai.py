"""The housing RAI pipeline (issue 16): platform overhead per component vs the same calls in plain Python.

The housing classifier (RandomForest, 50 trees, scikit-learn flavor MLflow model) and the housing
train/test MLTables of examples/housing/rai are run through, in the same run:

- openaml: a pipeline job of the azureml registry's components (constructor + explanation + error
  analysis + counterfactual + gather) through a real ``openaml server``: each step's wall time
  from its record (``start_time`` to ``end_time``: the runner, the job's environment layer, the
  ``python -m openaml.rai`` process with its imports, inputs and outputs moved), and the pipeline
  end to end (submit to Completed);
- peer: the very same library calls (``openaml.rai`` functions on the same files), one after the
  other in one plain Python process, each timed alone; the process's own start and imports are
  reported on their own row (the peer pays them once, each step pays them again).

Target (issue 16): platform overhead under 10 % (ratio < 1.1). The dashboard page's time to
interactive in headless Chromium is the last rows (target under 2 s).
Per step, ``_timings.json`` (written by ``python -m openaml.rai``) splits the wall time: runner start,
imports, inputs and model load, the insight, outputs, runner end.

``.venv/bin/python bench/rai.py [--quick]`` (``--quick``: counterfactuals for 5 rows instead of 20).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, Row, iso_ts, openaml_server, parse_args, print_table, progress, save_results  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "housing" / "rai"
STEPS = ["create_rai_job", "explain_01", "error_analysis_01", "counterfactual_01", "gather_01"]

PLAIN = r"""
import json, sys, time
t0 = time.perf_counter()
from openaml.rai._constructor import construct
from openaml.rai._io import load_dashboard, write_insight
from openaml.rai import _insights, _whatif, _gather
t_imports = time.perf_counter() - t0
c0 = time.process_time()
root, rows = sys.argv[1], int(sys.argv[2])
out, times, cpu = root + "/plain", {}, {}
c = time.process_time()
t = time.perf_counter()
construct(title="Housing", task_type="classification", train_dataset=root + "/data/train",
          test_dataset=root + "/data/test", target_column_name="Sold_HigherThan_Median",
          output_path=out + "/c", model_input=root + "/model", model_info="housing-rf:1")
times["create_rai_job"] = time.perf_counter() - t
cpu["create_rai_job"], c = time.process_time() - c, time.process_time()
t = time.perf_counter()
write_insight(out + "/e", "explanation", _insights.explanation(load_dashboard(out + "/c")), filename="explanation")
times["explain_01"] = time.perf_counter() - t
cpu["explain_01"], c = time.process_time() - c, time.process_time()
t = time.perf_counter()
write_insight(out + "/ea", "error_analysis", _insights.error_analysis(load_dashboard(out + "/c"), max_depth=3,
              filter_features='["OverallQual", "GrLivArea"]'), filename="error_analysis")
times["error_analysis_01"] = time.perf_counter() - t
cpu["error_analysis_01"], c = time.process_time() - c, time.process_time()
t = time.perf_counter()
write_insight(out + "/cf", "counterfactual", _whatif.counterfactual(load_dashboard(out + "/c"), total_CFs=5,
              desired_class="opposite", max_rows=rows), filename="counterfactual")
times["counterfactual_01"] = time.perf_counter() - t
cpu["counterfactual_01"], c = time.process_time() - c, time.process_time()
t = time.perf_counter()
_gather.gather(out + "/c", [out + "/e", out + "/ea", out + "/cf"], out + "/g")
times["gather_01"] = time.perf_counter() - t
cpu["gather_01"], c = time.process_time() - c, time.process_time()
print(json.dumps({"imports": t_imports, "steps": times, "cpu": cpu, "imports_cpu": c0}))
"""


def _prepare(root: Path) -> None:
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier

    shutil.copytree(EXAMPLE / "data", root / "data")
    df = pd.read_parquet(root / "data" / "train" / "train.parquet")
    X, y = df.drop(columns=["Sold_HigherThan_Median"]), df["Sold_HigherThan_Median"]
    model = RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0).fit(X, y)
    mlflow.sklearn.save_model(model, str(root / "model"), signature=infer_signature(X, model.predict(X)),
                              serialization_format="cloudpickle")
    text = (EXAMPLE / "rai-pipeline.yml").read_text()
    (root / "rai-pipeline.yml").write_text(text)


PHASES = ["runner: job start_time to python start (< 0: stamped after the spawn)", "python start + imports",
          "inputs + model load", "the insight",
          "outputs written", "runner: python end to job end"]


def _phases(m: dict[str, float], start: float, end: float) -> dict[str, float]:
    """A step's wall split by its ``_timings.json`` marks (epoch seconds; see openaml.rai.__main__)."""
    p0, imp = m["process_start"], m.get("imports", m["process_start"])
    loaded = m.get("loaded", imp)
    computed = m.get("computed", m.get("written", loaded))
    written = m.get("written", computed)
    return dict(zip(PHASES, [p0 - start, imp - p0, loaded - imp, computed - loaded, written - computed,
                             end - m["end"]], strict=True))


def _dashboard_tti(url: str, repeat: int = 3) -> tuple[float, float] | None:
    """Median (domInteractive, loadEventEnd) in s of the pipeline's RAI dashboard page in headless
    Chromium (bench/studio.py's measure); None without playwright or Chromium."""
    import os
    from statistics import median

    chromium = os.environ.get("OPENAML_CHROMIUM") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path(chromium).exists():
        return None
    inter, load = [], []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = b.new_page()
        page.goto(url)
        for _ in range(repeat):
            page.goto(url, wait_until="load")
            d = json.loads(page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])"))
            inter.append(d["domInteractive"] / 1000)
            load.append(d["loadEventEnd"] / 1000)
        b.close()
    return median(inter), median(load)


def _overhead(measure: str, pipeline: float, plain: float) -> Row:
    """A row of the issue's figure: overhead = (pipeline wall - plain wall) / plain wall, target < 10 %."""
    over = (pipeline - plain) / plain if plain else float("nan")
    return Row(measure, pipeline, plain, f"{over * 100:+.1f} %", "< 10 %", None, over < 0.10)


def _warm_cpu(tmp: Path) -> tuple[float, float]:
    """(CPU seconds (user + system), seconds from start to ready) of the RAI warm processes of the
    bench's workspace: their imports and forks (each step's own CPU is in its ``_timings.json``), and
    how long the first step waited for them before its process started (before its ``start_time``:
    not in its wall row). (0.0, 0.0) when the steps ran cold."""
    import psutil

    cpu = wait = 0.0
    for meta_file in tmp.rglob("pools/rai-*/meta.json"):
        try:
            meta = json.loads(meta_file.read_text())
            t = psutil.Process(int(meta["pid"])).cpu_times()
            cpu += t.user + t.system
            wait += (meta_file.parent / "ready").stat().st_mtime - float(meta["created"])
        except (OSError, ValueError, KeyError, psutil.Error):
            continue
    return cpu, wait


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    load0 = os.getloadavg()[0]
    rows = 5 if args.quick else 20
    with openaml_server("rai") as srv:
        root = srv.tmp / "housing"
        root.mkdir()
        progress("training the housing model")
        _prepare(root)
        yml = root / "rai-pipeline.yml"
        yml.write_text(yml.read_text().replace("max_rows: 20", f"max_rows: {rows}"))
        srv.cli("model", "create", "--name", "housing-rf", "--version", "1", "--path", str(root / "model"),
                "--type", "mlflow_model")
        progress("plain Python: the same calls in one process")
        t = time.perf_counter()
        p = subprocess.run([PYTHON, "-c", PLAIN, str(root), str(rows)], capture_output=True, text=True, check=True)
        plain_wall = time.perf_counter() - t
        plain = json.loads(p.stdout.strip().splitlines()[-1])
        progress("openaml: the pipeline of registry components")
        t, submitted = time.perf_counter(), time.time()
        created = json.loads(srv.cli("job", "create", "--file", str(yml), "-o", "json").stdout)
        srv.cli("job", "stream", "--name", created["name"], check=False, timeout=1800)
        pipe_wall, seen_done = time.perf_counter() - t, time.time()
        from openaml import MLClient

        ml = MLClient(workspace=srv.url)
        raw = ml.jobs.get_raw(created["name"])
        if raw["status"] != "Completed":
            raise RuntimeError(f"the RAI pipeline ended {raw['status']}: {raw.get('error')}")
        step_wall, phases, step_cpu, spans = {}, {}, {}, []
        timing_files = list(srv.tmp.rglob("_timings.json"))
        for child in ml.jobs.list_raw(parent_job_name=created["name"]):
            step = child.get("display_name") or child["name"].split("-")[-1]
            start, end = iso_ts(child["start_time"]), iso_ts(child["end_time"])
            step_wall[step] = end - start
            marks = {h["status"]: iso_ts(h["time"]) for h in child.get("status_history") or [] if h.get("time")}
            spans.append((start, end, step, iso_ts(child["created_at"]) if child.get("created_at") else start, marks))
            mine = [f for f in timing_files if child["name"] in str(f)]
            if mine:
                m = json.loads(mine[0].read_text())
                phases[step] = _phases(m, start, end)
                step_cpu[step] = float(m.get("cpu_s", float("nan")))
        warm_cpu, warm_wait = _warm_cpu(srv.tmp)
        tti = _dashboard_tti(f"{srv.url}/jobs/{created['name']}/rai")
    rows_out = [Row("python start + openaml.rai imports (peer: once)", None, plain["imports"])]
    for s in STEPS:
        a, b = step_wall.get(s, float("nan")), plain["steps"][s]
        rows_out.append(_overhead(f"{s}: wall s", a, b))
    total_steps = sum(step_wall.get(s, 0.0) for s in STEPS) + warm_wait
    total_plain = sum(plain["steps"].values()) + plain["imports"]
    rows_out.append(Row("  the first step's wait for the warm process's imports (before its start_time)", warm_wait,
                        None))
    rows_out.append(_overhead("total: sum of the steps' wall s + that wait (peer: + its imports once)", total_steps,
                              total_plain))
    for s in STEPS:
        a, b = step_cpu.get(s, float("nan")), plain["cpu"][s]
        rows_out.append(_overhead(f"{s}: CPU s of its process (peer: of its calls)", a, b))
    cpu_a = sum(step_cpu.get(s, 0.0) for s in STEPS) + warm_cpu
    cpu_b = sum(plain["cpu"].values()) + plain["imports_cpu"]
    rows_out.append(Row("  the warm process's own CPU s (its imports, once; 0: steps ran cold)", warm_cpu, None))
    rows_out.append(_overhead("total: CPU s (openaml: + the warm process; peer: + its imports once)", cpu_a, cpu_b))
    for s in STEPS:
        for name, secs in phases.get(s, {}).items():
            rows_out.append(Row(f"  {s}: {name}", secs, None))
    rows_out.append(_overhead("end to end: submit to Completed vs the plain process", pipe_wall, plain_wall))
    if spans:  # where the end to end goes: before the first step, the steps (the graph's), after the last
        first, last = min(sp[0] for sp in spans), max(sp[1] for sp in spans)
        rows_out.append(Row("  end to end: submit to the first step's start (submission, warm process)",
                            first - submitted, None))
        rows_out.append(Row("  end to end: first step's start to the last step's end (the graph; steps "
                            "without a path between them run at once)", last - first, None))
        rows_out.append(Row("  end to end: last step's end to the client seeing Completed", seen_done - last, None))
        for a, b, step, made, marks in sorted(spans, key=lambda sp: sp[0]):
            seen = " ".join(f"{k[:4]} {v - first:.2f}" for k, v in sorted(marks.items(), key=lambda kv: kv[1]))
            rows_out.append(Row(f"    {step}: created {made - first:.2f}, {seen}; start_time / end_time",
                                f"{a - first:.2f} / {b - first:.2f}", None))
    if tti is None:
        rows_out.append(Row("dashboard page time to interactive in Chromium: s", "no chromium", None))
    else:
        rows_out.append(Row("dashboard page time to interactive in Chromium (domInteractive): s", tti[0], None, None,
                            "< 2", None, tti[0] < 2))
        rows_out.append(Row("dashboard page fully loaded in Chromium (loadEventEnd): s", tti[1], None, None,
                            "< 2", None, tti[1] < 2))
    print_table("RAI housing pipeline: registry components vs the same calls in plain Python", rows_out,
                peer="the same openaml.rai calls, one plain Python process", limit="-",
                notes=["overhead = (openaml - peer) / peer; each step forks from the RAI warm process (its imports "
                       "paid once, counted on their own row) unless it ran cold; CPU rows are load-independent",
                       f"load average (1 min) at the start / end: {load0:.2f} / {os.getloadavg()[0]:.2f}",
                       f"counterfactual rows: {rows}; steps' times from the job records (start_time to end_time)"])
    if not args.no_save:
        save_results("rai", {"rows": rows_out, "plain": plain, "plain_wall": plain_wall, "steps": step_wall,
                             "pipeline_wall": pipe_wall, "phases": phases})


if __name__ == "__main__":
    main()
