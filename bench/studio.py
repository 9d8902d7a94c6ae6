"""Studio at scale: the job list with many jobs, a 1,000,000-point metric chart, 100 runs compared.

Targets (issue 15): the job list's first page under 200 ms server time and under 1 s to interactive
in the browser with 100,000 jobs; a run with 1,000,000 metric points charted in under 1 s; comparing
100 runs under 2 s.

The workspace is filled directly through the metadata store and MLflow's tracking store (no job
runs: only their records), then served by a real ``openaml server``. Server time is the median
wall time of ``GET`` over loopback (httpx, the HTML page); browser time is Chromium's (Playwright,
Debian's ``/usr/bin/chromium``) ``domInteractive`` and ``loadEventEnd`` of the same page.

"first view" rows are a page's first GET on a server (the 1,000,000-point chart's never viewed before:
its one scan in SQL). "after restart" rows stop the server and start a new process on the same port,
then time the first request: the job list (server), the chart (server; and a browser that had the
studio open before the restart, ``loadEventEnd``). The chart's target (< 1 s) is its rendering.

Run: ``.venv/bin/python bench/studio.py`` (small: 10,000 jobs, 100,000 points) or
``.venv/bin/python bench/studio.py --jobs 100000 --points 1000000`` (the issue's sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, Row, median, print_table, save_results, stop_process  # noqa: E402

CHROMIUM = os.environ.get("OPENAML_CHROMIUM") or "/usr/bin/chromium"


def fill(ws: Path, jobs: int, points: int, runs: int) -> dict[str, str]:
    """Insert ``jobs`` job records, one run with ``points`` metric points and ``runs`` runs to compare."""
    from mlflow.entities import Metric, Param
    from sqlalchemy import insert

    from openaml._settings import Settings
    from openaml.server._app import build_context
    from openaml.store._tables import JobRow

    ctx = build_context(Settings(workspace=ws))
    now = datetime.now(UTC)
    statuses = ("Completed", "Failed", "Canceled", "Completed", "Completed")
    batch: list[dict[str, Any]] = []
    with ctx.store._write() as s:
        for i in range(jobs):
            created = now - timedelta(seconds=jobs - i)
            batch.append({"name": f"bench_job_{i:07d}", "type": "command", "status": statuses[i % 5],
                          "experiment_name": f"exp-{i % 20}", "display_name": f"job {i}", "compute": "local",
                          "parent_name": None, "spec": {"type": "command", "command": "python t.py",
                                                         "tags": {"team": f"t{i % 7}"}},
                          "runtime": {}, "status_history": [], "created_at": created, "start_time": created,
                          "end_time": created + timedelta(seconds=30), "archived": False})
            if len(batch) == 5000:
                s.execute(insert(JobRow), batch)
                batch = []
        if batch:
            s.execute(insert(JobRow), batch)

    def job_with_run(name: str, experiment: str) -> None:
        run = ctx.tracking.create_run(name, experiment, run_name=name)
        ctx.store.create_job(name=name, type_="command", status="Completed", experiment_name=experiment,
                             compute="local", spec={"type": "command", "command": "python t.py"}, display_name=name,
                             runtime={"artifact_uri": run["artifact_uri"], "experiment_id": run["experiment_id"]})

    big = "bench_big_metric"
    job_with_run(big, "bench-big")
    t = int(time.time() * 1000)
    # the big series goes straight into MLflow's metrics table (log_batch would take ~20 min for 1,000,000)
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    with ctx.tracking.store.ManagedSessionMaker(read_only=False) as session:
        for start in range(0, points - 1, 50_000):
            session.execute(insert(SqlMetric), [
                {"key": "loss", "value": 1.0 / (i + 1) + (0.5 if i % 99_991 == 0 else 0.0), "timestamp": t, "step": i,
                 "is_nan": False, "run_uuid": big} for i in range(start, min(points - 1, start + 50_000))])
    # the last point through MLflow, which records it as the metric's latest (``latest_metrics``)
    ctx.tracking.store.log_batch(big, metrics=[Metric("loss", 1.0 / points, t, points - 1)], params=[], tags=[])
    for r in range(runs):
        name = f"bench_cmp_{r:03d}"
        job_with_run(name, "bench-compare")
        ctx.tracking.store.log_batch(
            name, params=[Param("lr", str(0.01 * (r % 10))), Param("depth", str(r % 5)), Param("seed", "1")],
            metrics=[Metric(k, (r + 1) / (i + 1), t, i) for k in ("loss", "acc") for i in range(100)], tags=[])
    ctx.store.close()
    return {"big": big, "compare": "bench-compare"}


def serve(ws: Path, env: dict[str, str], port: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    log = open(ws.parent / "server.log", "ab")
    proc = subprocess.Popen([PYTHON, "-m", "openaml", "server", "--workspace", str(ws), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        f = ws / "server.json"
        if f.exists():
            try:
                info = json.loads(f.read_text())
            except ValueError:
                info = {}
            if info.get("pid") == proc.pid:
                return proc, info["url"]
        if proc.poll() is not None:
            raise RuntimeError("server exited; see " + str(ws.parent / "server.log"))
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def server_ms(url: str, repeat: int) -> tuple[float, float]:
    """(the first GET's ms: cold caches, the median of the next ``repeat``)."""
    import httpx

    times = []
    with httpx.Client(timeout=120, headers={"Accept": "text/html"}) as c:
        t0 = time.perf_counter()
        c.get(url).raise_for_status()
        cold = (time.perf_counter() - t0) * 1000
        for _ in range(repeat):
            t0 = time.perf_counter()
            c.get(url).raise_for_status()
            times.append((time.perf_counter() - t0) * 1000)
    return cold, median(times)


def browser_ms(url: str, repeat: int) -> tuple[float, float]:
    """Median (domInteractive, loadEventEnd) in ms from navigation start, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    inter, load = [], []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                  "--disable-background-networking",
                                                                  "--disable-component-update", "--disable-sync",
                                                                  "--no-first-run"])
        page = b.new_page()
        page.goto(url)
        for _ in range(repeat):
            page.goto(url, wait_until="load")
            nav = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
            d = json.loads(nav)
            inter.append(d["domInteractive"])
            load.append(d["loadEventEnd"])
        b.close()
    return median(inter), median(load)


def _restart(ws: Path, env: dict[str, str], proc: subprocess.Popen[bytes], url: str
             ) -> tuple[subprocess.Popen[bytes], str]:
    """Stop the server and start a new process on the same port (the same origin for the browser)."""
    from urllib.parse import urlsplit

    stop_process(proc)
    (ws / "server.json").unlink(missing_ok=True)
    return serve(ws, env, port=urlsplit(url).port or 0)


def after_restart(ws: Path, env: dict[str, str], proc: subprocess.Popen[bytes], url: str, path: str, *,
                  browser: bool) -> tuple[subprocess.Popen[bytes], str, float]:
    """Restart the server (``openaml server``: a new process, nothing cached in memory) and time the
    first request of ``path`` on it: the server's ms (httpx), or, ``browser``, the ``loadEventEnd`` of
    a Chromium that had the studio open before the restart (the page rendered: the chart is inline
    SVG drawn by the server). Returns the new server, its URL and the ms."""
    if not browser:
        proc, url = _restart(ws, env, proc, url)
        import httpx

        with httpx.Client(timeout=120, headers={"Accept": "text/html"}) as c:
            t0 = time.perf_counter()
            c.get(url + path).raise_for_status()
            return proc, url, (time.perf_counter() - t0) * 1000
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                  "--disable-background-networking",
                                                                  "--disable-component-update", "--disable-sync",
                                                                  "--no-first-run"])
        page = b.new_page()
        page.goto(url + "/jobs", wait_until="load")  # the studio open in the browser before the restart
        proc, url = _restart(ws, env, proc, url)
        page.goto(url + path, wait_until="load")
        d = json.loads(page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])"))
        b.close()
    return proc, url, d["loadEventEnd"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=10_000, help="job records (the issue's target: 100000)")
    ap.add_argument("--points", type=int, default=100_000, help="metric points of one run (target: 1000000)")
    ap.add_argument("--runs", type=int, default=100, help="runs compared side by side")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the workspace (printed)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="openaml-bench-studio-"))
    env = {**os.environ, "OPENAML_HOME": str(tmp / "home")}
    env.pop("OPENAML_WORKSPACE", None)
    ws = tmp / "ws"
    subprocess.run([PYTHON, "-m", "openaml", "workspace", "create", "-n", "bench", "--path", str(ws)], env=env,
                   check=True, capture_output=True)
    t0 = time.monotonic()
    os.environ["OPENAML_HOME"] = env["OPENAML_HOME"]
    names = fill(ws, args.jobs, args.points, args.runs)
    fill_s = time.monotonic() - t0
    proc, url = serve(ws, env)
    rows: list[Row] = []
    try:
        pages = [("job list, first page", "/jobs", 200.0, 1000.0),
                 ("job list, page 100 sorted by name", "/jobs?sort=name&order=asc&page=100", 200.0, 1000.0),
                 ("job list, filtered (status+experiment+tag)",
                  "/jobs?status=Failed&experiment=exp-3&tag=team%3Dt2", 200.0, 1000.0),
                 (f"job page, {args.points:,}-point metric chart", f"/jobs/{names['big']}", 1000.0, 1000.0),
                 (f"experiment, {args.runs} runs compared", f"/experiments/{names['compare']}", 2000.0, 2000.0)]
        have_browser = Path(CHROMIUM).exists()
        for label, path, server_target, browser_target in pages:
            cold, ms = server_ms(url + path, args.repeat)
            rows.append(Row(f"{label}: server ms, first view", cold))
            rows.append(Row(f"{label}: server ms", ms, target=f"< {server_target:.0f}", ok=ms < server_target))
            if have_browser:
                inter, load = browser_ms(url + path, args.repeat)
                rows.append(Row(f"{label}: browser interactive ms", inter, target=f"< {browser_target:.0f}",
                                ok=inter < browser_target))
                rows.append(Row(f"{label}: browser load ms", load))
        # the first request after a server start (a new process: no query plan, template or series cached)
        chart = f"/jobs/{names['big']}"
        proc, url, ms = after_restart(ws, env, proc, url, "/jobs", browser=False)
        rows.append(Row("job list, first page, first request after restart: server ms", ms, target="< 200",
                        ok=ms < 200))
        proc, url, ms = after_restart(ws, env, proc, url, chart, browser=False)
        rows.append(Row(f"job page, {args.points:,}-point chart, first view after restart: server ms", ms,
                        target="< 1000", ok=ms < 1000))
        if have_browser:
            proc, url, ms = after_restart(ws, env, proc, url, chart, browser=True)
            rows.append(Row(f"job page, {args.points:,}-point chart, first view after restart: browser load ms",
                            ms, target="< 1000", ok=ms < 1000))
    finally:
        stop_process(proc)
    print_table(f"studio at scale: {args.jobs:,} jobs, {args.points:,} metric points, {args.runs} runs "
                f"(filled in {fill_s:.0f} s)", rows, peer="none (targets of issue 15)",
                limit="-", notes=["server ms: median GET over loopback; browser: Chromium navigation timing"])
    save_results("studio", {"args": vars(args), "rows": [r.__dict__ for r in rows]})
    if args.keep:
        print(f"workspace kept: {ws}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
