"""The studio in a real browser: Playwright driving Debian's Chromium against a real server."""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshot

ASSETS = Path(__file__).resolve().parents[1] / "endpoints_assets"
ENV = "azureml:AzureML-sklearn-1.5@latest"


def _job(cli: Any, tmp: Path, script: str, **fields: str) -> str:
    (tmp / "src").mkdir(exist_ok=True)
    (tmp / "src" / "t.py").write_text(textwrap.dedent(script))
    extra = "".join(f"{k}: {v!r}\n".replace("'", '"') if k != "tags" else f"{k}: {v}\n" for k, v in fields.items())
    (tmp / "job.yml").write_text(f"type: command\ncode: src\ncommand: python t.py\nenvironment: {ENV}\n{extra}")
    return cli("job", "create", "--file", str(tmp / "job.yml"), "-o", "json", check=True).json()["name"]


@pytest.fixture(scope="module")
def done_job(cli: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("bjob")
    name = _job(cli, tmp, """\
        import mlflow, os
        print("<script>window.__pwned_log = 1</script> hello")
        os.makedirs("outputs/model", exist_ok=True)
        open("outputs/model/weights.txt", "w").write("0.5")
        with mlflow.start_run():
            mlflow.log_param("lr", 0.1)
            for i in range(200):
                mlflow.log_metric("loss", 1 / (i + 1), step=i)
                mlflow.log_metric("accuracy", 1 - 1 / (i + 2), step=i)
        """, display_name="<script>window.__pwned = 1</script>browser job", experiment_name="browser-tests")
    cli("job", "stream", "--name", name, timeout=300)
    return name


def test_job_page_shows_name_status_metrics_and_runs_no_user_script(page: Any, server: Any, done_job: str) -> None:
    page.goto(f"{server.url}/jobs/{done_job}")
    assert page.locator("#job-status").inner_text() == "Completed"
    assert "browser job" in page.locator("h1 .jobname").inner_text()
    assert "<script>" in page.locator("h1 .jobname").inner_text()  # shown as text
    assert page.locator("figure.chart[data-metric=loss] polyline").count() == 1
    assert "hello" in page.locator("#log-text").inner_text()
    assert page.evaluate("window.__pwned") is None and page.evaluate("window.__pwned_log") is None
    screenshot(page, "job")


def test_register_a_model_from_a_job_output(page: Any, server: Any, done_job: str) -> None:
    page.goto(f"{server.url}/jobs/{done_job}")
    page.select_option("#register-model select[name=output]", "artifacts")
    page.fill("#register-model input[name=path]", "outputs/model")
    page.fill("#register-model input[name=name]", "studio-model")
    page.click("#register-submit")
    page.wait_for_url("**/models/studio-model?version=*")
    assert page.locator("#producer").inner_text() == done_job  # the model's page links its job
    assert "weights.txt" in page.locator("#model-files").inner_text()


def test_each_list_page_renders(page: Any, server: Any, done_job: str) -> None:
    for path, shot in (("/", "home"), ("/jobs", "jobs"), ("/experiments/browser-tests", "experiment"),
                       ("/data", None), ("/datastores", None), ("/environments", None), ("/components", None),
                       ("/computes", None), ("/models", None), ("/schedules", None), ("/online-endpoints", None)):
        resp = page.goto(server.url + path)
        assert resp.status == 200, path
        assert page.locator("header.top .brand").inner_text() == "openaml studio"
        if shot:
            screenshot(page, shot)
    page.goto(f"{server.url}/jobs?experiment=browser-tests")
    assert page.locator(f"#jobs a[href='/jobs/{done_job}']").count() == 1
    resp = page.goto(f"{server.url}/jobs/nope_not_a_job")
    assert resp.status == 404
    page.click("text=Back to all jobs")
    assert page.url.endswith("/jobs")


def test_live_log_streaming_and_cancel(page: Any, server: Any, cli: Any, tmp_path: Path) -> None:
    name = _job(cli, tmp_path, """\
        import time
        for i in range(600):
            print(f"tick {i}", flush=True)
            time.sleep(0.3)
        """, display_name="live-logs")
    page.goto(f"{server.url}/jobs/{name}")
    deadline = time.monotonic() + 180
    while "Running" not in page.locator("#job-status").inner_text() and time.monotonic() < deadline:
        page.reload()
        time.sleep(1)
    page.wait_for_function("document.getElementById('log-text').textContent.includes('tick 5')", timeout=120_000)
    first = page.locator("#log-text").inner_text()
    page.wait_for_function("document.getElementById('log-text').textContent.includes('tick 12')", timeout=60_000)
    assert len(page.locator("#log-text").inner_text()) > len(first)  # it grew without a reload
    screenshot(page, "live-log")
    page.on("dialog", lambda d: d.accept())
    page.click("#cancel")
    page.wait_for_function("document.getElementById('log-state').textContent.includes('ended')", timeout=120_000)
    job = httpx.get(f"{server.url}/api/v1/jobs/{name}", timeout=30).json()
    assert job["status"] in ("Canceled", "CancelRequested")


@pytest.fixture(scope="module")
def endpoint(ml_client: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    from openaml.entities import CodeConfiguration, Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint, Model

    code = tmp_path_factory.mktemp("bcode")
    shutil.copy(ASSETS / "constant.py", code / "constant.py")
    model = tmp_path_factory.mktemp("bmodel")
    (model / "weights.txt").write_text("0.5")
    env = Environment(image="mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest")
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-studio", auth_mode="key"))
    for dep in ("blue", "green"):
        ml_client.online_deployments.begin_create_or_update(ManagedOnlineDeployment(
            name=dep, endpoint_name="ep-studio", model=Model(path=str(model)), environment=env,
            code_configuration=CodeConfiguration(code=str(code), scoring_script="constant.py"),
            instance_type="Standard_DS3_v2", instance_count=1)).result(timeout=180)
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name="ep-studio", traffic={"blue": 100}))
    return "ep-studio"


def test_endpoint_traffic_change_keys_and_test_tab(page: Any, server: Any, endpoint: str) -> None:
    page.goto(f"{server.url}/online-endpoints/{endpoint}")
    page.on("dialog", lambda d: d.accept())
    page.fill("input[name='traffic:blue']", "30")
    page.fill("input[name='traffic:green']", "70")
    page.click("#traffic-save")
    page.wait_for_function("document.getElementById('toast').textContent.includes('traffic updated')")
    ep = httpx.get(f"{server.url}/api/v1/online-endpoints/{endpoint}", timeout=30).json()
    assert ep["traffic"] == {"blue": 30, "green": 70}
    page.click("#show-keys")
    page.wait_for_function("!document.getElementById('keys-out').hidden")
    assert "primary:" in page.locator("#keys-out").inner_text()
    page.fill("#test-body", '{"data": [[1, 2]]}')
    page.select_option("select[name=deployment]", "green")
    page.click("#test-send")
    page.wait_for_function("document.getElementById('test-latency').textContent.includes('ms')", timeout=60_000)
    assert page.locator("#test-status").inner_text().startswith("200")
    assert "0.5" in page.locator("#test-response").inner_text()
    screenshot(page, "endpoint")
    # regression (studio review): a failing request left the last response on show
    page.fill("#test-body", "{not json")
    page.click("#test-send")
    page.wait_for_function("document.getElementById('test-status').textContent.includes('invalid JSON')")
    assert page.locator("#test-response").inner_text() == "" and page.locator("#test-latency").inner_text() == ""


def test_a_mirror_only_traffic_change_is_confirmed_as_one(page: Any, server: Any, endpoint: str) -> None:
    """Regression (studio review): the confirmation named only the live traffic, so changing the mirror
    traffic alone asked to "set" what was already set."""
    page.goto(f"{server.url}/online-endpoints/{endpoint}")
    asked: list[str] = []

    def answer(d: Any) -> None:
        asked.append(d.message)
        d.accept()

    page.on("dialog", answer)
    page.fill("input[name='traffic:blue']", "100")
    page.fill("input[name='traffic:green']", "0")  # mirrored traffic goes to a deployment without live traffic
    page.click("#traffic-save")
    page.wait_for_function("document.getElementById('toast').textContent.includes('traffic updated')")
    page.goto(f"{server.url}/online-endpoints/{endpoint}")
    page.fill("input[name='mirror:green']", "10")  # only the mirror traffic changes
    page.click("#traffic-save")
    page.wait_for_function("document.getElementById('toast').textContent.includes('traffic updated')")
    assert "mirror traffic to green 10%" in asked[-1] and "blue 100%" in asked[-1], asked
    ep = httpx.get(f"{server.url}/api/v1/online-endpoints/{endpoint}", timeout=30).json()
    assert ep["mirror_traffic"] == {"green": 10} and ep["traffic"].get("blue") == 100


def test_login_on_a_token_server(browser: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.test_studio import _start_with_token

    ws = tmp_path / "ws"
    subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", "tokb", "--path", str(ws)],
                   check=True, capture_output=True)
    token = "browser-login-token-0123456789abcdef"
    (tmp_path / "token").write_text(token)
    url, proc = _start_with_token(ws, tmp_path / "token")
    try:
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(url + "/jobs")
        assert "/login" in page.url
        screenshot(page, "login")
        page.fill("input[name=token]", "wrong-token-000000000000")
        page.click("button[type=submit]")
        assert "not valid" in page.content()
        page.fill("input[name=token]", token)
        page.click("button[type=submit]")
        page.wait_for_url(url + "/jobs")
        assert page.locator("h1").inner_text().startswith("Jobs")
        cookies = {c["name"]: c for c in ctx.cookies()}
        assert cookies["openaml_session"]["httpOnly"] and cookies["openaml_session"]["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # not readable by scripts
        ctx.close()
    finally:
        proc.terminate()
        proc.wait(30)


def test_pipeline_graph_updates_live_and_links_to_steps(page: Any, server: Any, cli: Any, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("import sys, time, pathlib\ntime.sleep(6)\n"
                                           "pathlib.Path(sys.argv[1], 'x.txt').write_text('1')\n")
    (tmp_path / "src" / "b.py").write_text("import sys\nprint(open(sys.argv[1] + '/x.txt').read())\n")
    (tmp_path / "p.yml").write_text(textwrap.dedent(f"""\
        type: pipeline
        display_name: studio-graph
        settings: {{default_compute: azureml:local}}
        jobs:
          first:
            type: command
            code: src
            command: python a.py ${{{{outputs.out}}}}
            environment: {ENV}
            outputs: {{out: {{type: uri_folder}}}}
          second:
            type: command
            code: src
            command: python b.py ${{{{inputs.data}}}}
            environment: {ENV}
            inputs: {{data: "${{{{parent.jobs.first.outputs.out}}}}"}}
        """))
    name = cli("job", "create", "--file", str(tmp_path / "p.yml"), "-o", "json", check=True).json()["name"]
    page.goto(f"{server.url}/jobs/{name}")
    assert page.locator("#graph a.node").count() == 2
    assert page.locator("#graph line").count() >= 1  # first -> second
    # the graph refreshes itself (htmx) until both nodes are Completed, without a reload
    page.wait_for_function("document.querySelectorAll('#graph a.node[data-status=Completed]').length == 2",
                           timeout=240_000)
    screenshot(page, "pipeline")
    page.click("#graph a.node[data-node=second]")
    page.wait_for_url("**/jobs/*second*")
    assert page.locator("#job-status").inner_text() == "Completed"


def test_sweep_trials_best_first_with_charts(page: Any, server: Any, cli: Any, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "t.py").write_text("import sys, mlflow\nx = float(sys.argv[1])\n"
                                           "mlflow.log_metric('score', x * 2)\n")
    (tmp_path / "s.yml").write_text(textwrap.dedent(f"""\
        type: sweep
        display_name: studio-sweep
        compute: azureml:local
        sampling_algorithm: grid
        search_space: {{x: {{type: choice, values: [0.1, 0.5, 0.3]}}}}
        objective: {{goal: maximize, primary_metric: score}}
        limits: {{max_total_trials: 3, max_concurrent_trials: 3}}
        trial:
          code: src
          command: python t.py ${{{{search_space.x}}}}
          environment: {ENV}
        """))
    name = cli("job", "create", "--file", str(tmp_path / "s.yml"), "-o", "json", check=True).json()["name"]
    cli("job", "stream", "--name", name, timeout=300)
    page.goto(f"{server.url}/jobs/{name}")
    rows = page.locator("#trials-table tbody tr")
    assert rows.count() == 3
    assert "best" in rows.nth(0).inner_text() and "0.5" in rows.nth(0).inner_text()  # best first, marked
    assert page.locator("#parallel polyline").count() == 3
    screenshot(page, "sweep")
    # regression (studio review): the trials could not be compared; "Compare trials" opens the compare view
    page.click("#compare-trials")
    page.wait_for_selector("#compare-children")
    heads = page.locator("#compare thead th").all_inner_texts()
    assert len([h for h in heads if h.strip()]) == 3  # one column per trial
    differs = page.locator("#compare tr.differs").all_inner_texts()
    assert any(t.startswith("x") and "0.5" in t and "0.1" in t for t in differs), differs
    assert "score" in page.locator("#compare").inner_text()


def _serve_on(ws: Path, port: int) -> Any:
    import json as _json
    import subprocess
    import sys

    log = open(ws.parent / "server.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "openaml", "server", "--workspace", str(ws), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        info = ws / "server.json"
        if info.exists() and _json.loads(info.read_text() or "{}").get("pid") == proc.pid:
            return proc
        assert proc.poll() is None, "the server exited"
        time.sleep(0.05)
    raise AssertionError("server did not start")


def test_log_stream_survives_a_server_restart(page: Any, tmp_path: Path) -> None:
    """The server restarting while a log streams: the page reconnects and continues, nothing repeated."""
    import socket
    import subprocess
    import sys

    ws = tmp_path / "ws"
    subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", "restart", "--path", str(ws)],
                   check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = _serve_on(ws, port)
    try:
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "t.py").write_text("import time\nfor i in range(80):\n"
                                               "    print(f'tick {i:03d}', flush=True)\n    time.sleep(0.5)\n")
        (tmp_path / "job.yml").write_text(f"type: command\ncode: src\ncommand: python t.py\nenvironment: {ENV}\n")
        created = subprocess.run([sys.executable, "-m", "openaml", "job", "create", "--file", str(tmp_path / "job.yml"),
                                  "-o", "json"], env={**__import__("os").environ, "OPENAML_WORKSPACE": url},
                                 capture_output=True, text=True, check=True)
        name = __import__("json").loads(created.stdout)["name"]
        page.goto(f"{url}/jobs/{name}")
        deadline = time.monotonic() + 240
        while page.locator("#log").get_attribute("data-live") != "yes" and time.monotonic() < deadline:
            page.reload()
            time.sleep(1)
        page.wait_for_function("document.getElementById('log-text').textContent.includes('tick 005')",
                               timeout=180_000)
        proc.terminate()
        proc.wait(30)
        proc = _serve_on(ws, port)
        page.wait_for_function("document.getElementById('log-text').textContent.includes('tick 079')",
                               timeout=180_000)
        text = page.locator("#log-text").inner_text()
        ticks = [line for line in text.splitlines() if line.startswith("tick ")]
        assert ticks == sorted(set(ticks)) and len(ticks) == 80  # continued from where it stopped, once each
    finally:
        proc.terminate()
        proc.wait(30)


def test_code_snapshot_and_environment_build_log(page: Any, server: Any, done_job: str) -> None:
    """The job page's Code tab: the tree, a file shown as text; its environment's build log."""
    page.goto(f"{server.url}/jobs/{done_job}")
    page.click("#code-link")
    page.wait_for_url(f"**/jobs/{done_job}/code")
    page.click("#code-tree a:text('t.py')")
    page.wait_for_url(f"**/jobs/{done_job}/code/t.py")
    text = page.locator("#code-text").inner_text()
    assert "mlflow.log_metric" in text and "<script>window.__pwned_log = 1</script>" in text  # text, not run
    assert page.evaluate("window.__pwned_log") is None
    screenshot(page, "code")
    page.goto(f"{server.url}/jobs/{done_job}")
    page.click("#env-link")
    page.wait_for_url(f"**/jobs/{done_job}/environment")
    assert "AzureML-sklearn-1.5" in page.locator("main").inner_text()
    assert page.locator("#build-log, #build-log-note").count() == 1


def test_component_where_used(page: Any, server: Any, cli: Any, tmp_path: Path) -> None:
    (tmp_path / "comp.yml").write_text("name: browser_where_used\nversion: '1'\ntype: command\ncommand: echo hi\n"
                                       f"environment: {ENV}\n")
    cli("component", "create", "--file", str(tmp_path / "comp.yml"), check=True)
    (tmp_path / "pipe.yml").write_text("type: pipeline\nsettings: {default_compute: local}\n"
                                       "jobs:\n  only:\n    component: azureml:browser_where_used:1\n")
    job = cli("job", "create", "--file", str(tmp_path / "pipe.yml"), "-o", "json", check=True).json()["name"]
    page.goto(f"{server.url}/components/browser_where_used?version=1")
    page.click(f"#used-by a[href='/jobs/{job}']")
    page.wait_for_url(f"**/jobs/{job}")
    cli("job", "cancel", "--name", job)


@pytest.fixture(scope="module")
def batch_endpoint(cli: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Batch endpoint ``bep-browser`` with MLflow-model deployments ``blue`` (default) and ``green``, and
    a data asset of CSVs to invoke it with."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    root = tmp_path_factory.mktemp("bbatch")
    lr = LinearRegression().fit(pd.DataFrame({"x": np.arange(10.0)}), np.arange(10.0) * 2 + 1)
    mlflow.sklearn.save_model(lr, str(root / "model"), input_example=pd.DataFrame({"x": [1.0]}))
    (root / "data").mkdir()
    pd.DataFrame({"x": [1.0, 2.0]}).to_csv(root / "data" / "part-0.csv", index=False)
    cli("data", "create", "--name", "bep-browser-data", "--type", "uri_folder", "--path", str(root / "data"), check=True)
    (root / "ep.yml").write_text("name: bep-browser\n")
    cli("batch-endpoint", "create", "--file", str(root / "ep.yml"), check=True)
    for dep in ("blue", "green"):
        (root / f"{dep}.yml").write_text(
            f"name: {dep}\nendpoint_name: bep-browser\ntype: model\n"
            f"model:\n  name: bep-browser-model\n  path: {root / 'model'}\n  type: mlflow_model\n"
            "compute: local\nresources: {instance_count: 1}\nsettings:\n  mini_batch_size: 1\n"
            "  output_action: append_row\n  output_file_name: predictions.csv\n")
        cli("batch-deployment", "create", "--file", str(root / f"{dep}.yml"),
            *(["--set-default"] if dep == "blue" else []), check=True)
    return "bep-browser"


def test_batch_endpoint_set_default_invoke_and_delete(page: Any, server: Any, batch_endpoint: str) -> None:
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{server.url}/batch-endpoints/{batch_endpoint}")
    assert page.locator("#default-deployment").inner_text() == "blue"
    page.click("tr[data-deployment=green] button.set-default")
    page.wait_for_function("document.getElementById('default-deployment').textContent === 'green'")
    screenshot(page, "batch-endpoint")
    # invoke from the data asset: the page goes to the new job, which the endpoint's Jobs tab lists
    page.select_option("#batch-invoke select[name=asset]", "bep-browser-data:1")
    page.click("#invoke-submit")
    page.wait_for_url("**/jobs/*")
    job = page.url.rsplit("/", 1)[1]
    page.goto(f"{server.url}/batch-endpoints/{batch_endpoint}")
    assert page.locator(f"#batch-jobs a[href='/jobs/{job}']").count() == 1
    assert "green" in page.locator("#batch-jobs").inner_text()
    httpx.post(f"{server.url}/api/v1/jobs/{job}/cancel", headers={"Origin": server.url}, json={}, timeout=30)
    # the deployment's page, then delete it: back to the endpoint, which no longer lists it
    page.click("a[href='/batch-endpoints/bep-browser/deployments/blue']")
    page.wait_for_url("**/deployments/blue")
    assert "predictions.csv" in page.locator("table.kv").inner_text()
    page.click("button.delete-api")
    page.wait_for_url(f"**/batch-endpoints/{batch_endpoint}")
    assert page.locator("tr[data-deployment=blue]").count() == 0
