"""The studio's pages over HTTP against a real server (the browser tier is tests/browser)."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from openaml.server.studio._charts import downsample, line_chart

HTML = {"Accept": "text/html"}


def _page(url: str, path: str, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.get(url + path, headers=HTML, timeout=60, **kw)


@pytest.fixture(scope="module")
def hostile_job(cli, tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    """A finished job whose display name, tag, log line and output file name hold ``<script>``."""
    d = tmp_path_factory.mktemp("studio-job")
    (d / "src").mkdir()
    (d / "src" / "t.py").write_text(textwrap.dedent("""\
        import os, mlflow
        print("<script>alert('log')</script> a log line")
        os.makedirs("outputs", exist_ok=True)
        open("outputs/<script>f.txt", "w").write("hi")
        with mlflow.start_run():
            mlflow.log_metric("acc_metric_xyz", 0.4242)
            for i in range(50):
                mlflow.log_metric("loss", 1 / (i + 1), step=i)
        """))
    (d / "src" / "pkg").mkdir()
    (d / "src" / "pkg" / "<i>util.py").write_text("X = '<script>alert(1)</script>'\n")
    (d / "src" / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (d / "src" / "big.txt").write_text("x" * 1_100_000)
    (d / "job.yml").write_text(textwrap.dedent("""\
        type: command
        code: src
        command: python t.py
        display_name: "<script>alert('name')</script>"
        experiment_name: studio-tests
        tags:
          "<script>tag": "<img src=x onerror=alert(1)>"
        environment: azureml:AzureML-sklearn-1.5@latest
        """))
    name = cli("job", "create", "--file", str(d / "job.yml"), "-o", "json", check=True).json()["name"]
    cli("job", "stream", "--name", name, timeout=300)
    return name


def test_job_studio_url_is_the_studio_page_and_shows_name_status_metrics(server, cli, hostile_job):
    job = cli("job", "show", "--name", hostile_job, "-o", "json", check=True).json()
    assert job["status"] == "Completed"
    assert job["studio_url"] == f"{server.url}/jobs/{hostile_job}"
    assert job["services"]["Studio"]["endpoint"] == job["studio_url"]
    r = _page(server.url, f"/jobs/{hostile_job}")
    assert r.status_code == 200
    assert hostile_job in r.text and "Completed" in r.text and "acc_metric_xyz" in r.text
    assert "<polyline" in r.text  # a chart per metric (loss over 50 steps)


def test_user_text_is_escaped_everywhere(server, hostile_job):
    """Display name, tag, log line and output file name with <script> are shown as text."""
    page = _page(server.url, f"/jobs/{hostile_job}").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#39;log&#39;)&lt;/script&gt; a log line" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    listing = _page(server.url, "/jobs").text
    assert "<script>alert" not in listing and "&lt;script&gt;alert(&#39;name&#39;)" in listing
    files = _page(server.url, f"/jobs/{hostile_job}/files/artifacts").text
    # the artifact output holds the file under outputs/ (MLflow's artifact root of the run)
    tree = files + "".join(_page(server.url, f"/jobs/{hostile_job}/files/artifacts/{p}").text
                           for p in ("outputs",))
    assert "&lt;script&gt;f.txt" in tree and "<script>f.txt" not in tree


def test_metric_names_that_could_inject_are_refused_by_tracking(server, hostile_job):
    """MLflow refuses metric names with < or > (its name rule), so no metric name reaches a page as HTML."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(f"{server.url}/mlflow")
    with pytest.raises(MlflowException, match="Invalid value"):
        client.log_metric(hostile_job, "<script>m", 1.0)


def test_jobs_list_sorts_filters_and_pages_on_the_server(server, hostile_job):
    r = _page(server.url, "/jobs?experiment=studio-tests&status=Completed")
    assert r.status_code == 200 and hostile_job in r.text
    assert hostile_job not in _page(server.url, "/jobs?status=Failed&experiment=studio-tests").text
    assert hostile_job in _page(server.url, "/jobs?tag=%3Cscript%3Etag").text
    assert hostile_job not in _page(server.url, "/jobs?tag=nosuchtag").text
    assert hostile_job not in _page(server.url, "/jobs?since=2999-01-01").text
    # regression (studio review): From = To = the day the job was created includes it (To was exclusive)
    day = httpx.get(f"{server.url}/api/v1/jobs/{hostile_job}").json()["creation_context"]["created_at"][:10]
    assert hostile_job in _page(server.url, f"/jobs?since={day}&until={day}&experiment=studio-tests").text
    r = _page(server.url, "/jobs?sort=name&order=asc&per_page=1&page=1")
    assert "page 1 of" in r.text and r.text.count('<td><a href="/jobs/') == 1


def test_missing_things_get_a_404_page_with_a_link_back(server):
    for path, back in (("/jobs/no_such_job_x", "/jobs"), ("/models/nomodel", "/models"),
                       ("/online-endpoints/noep", "/online-endpoints"), ("/data/nodata", "/data"),
                       ("/experiments/noexp", "/experiments"), ("/environments/noenv", "/environments"),
                       ("/components/nocomp", "/components"), ("/computes/nocomp", "/computes"),
                       ("/datastores/nods", "/datastores")):
        r = _page(server.url, path)
        assert r.status_code == 404, path
        assert "Not found" in r.text and f'href="{back}"' in r.text, path


def test_every_list_page_renders(server, hostile_job):
    for path in ("/", "/jobs", "/experiments", "/experiments/studio-tests", "/data", "/datastores",
                 "/datastores/workspaceblobstore", "/environments", "/components", "/computes", "/computes/local",
                 "/models", "/schedules", "/online-endpoints", "/batch-endpoints"):
        r = _page(server.url, path)
        assert r.status_code == 200, (path, r.text[:500])
        assert "openaml studio" in r.text


def test_log_stream_sends_the_log_as_server_sent_events(server, hostile_job):
    with httpx.stream("GET", f"{server.url}/jobs/{hostile_job}/log/stream?offset=0", timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    assert any("a log line" in e.get("text", "") for e in events)
    assert "event: end" in body
    # a reconnecting browser sends Last-Event-ID: the stream continues from there (nothing repeated)
    last = max(int(line[4:]) for line in body.splitlines() if line.startswith("id: "))
    with httpx.stream("GET", f"{server.url}/jobs/{hostile_job}/log/stream", headers={"Last-Event-ID": str(last)},
                      timeout=60) as r:
        again = "".join(r.iter_text())
    assert "a log line" not in again and "event: end" in again


def test_a_huge_log_shows_its_tail_and_pages_back(server, hostile_job, tmp_path):
    """The page carries the last 64 KiB; earlier chunks come on request (never the whole file)."""
    from openaml.server.studio._jobs import LOG_CHUNK

    log = server.path / "jobs" / hostile_job / "user_logs" / "std_log.txt"
    original = log.read_bytes()
    try:
        with open(log, "ab") as fh:
            for i in range(300_000):  # ~ 9 MB
                fh.write(f"line {i:07d} of a big log\n".encode())
        page = _page(server.url, f"/jobs/{hostile_job}").text
        assert "line 0299999 of a big log" in page and "line 0000001 " not in page
        assert len(page) < 200_000
        size = log.stat().st_size
        chunk = httpx.get(f"{server.url}/jobs/{hostile_job}/log?before={size - LOG_CHUNK}", timeout=30).json()
        assert chunk["text"].startswith("line ") and chunk["start"] < size - LOG_CHUNK
        assert len(chunk["text"]) <= LOG_CHUNK
    finally:
        log.write_bytes(original)


def test_output_files_are_browsable_and_downloadable(server, hostile_job):
    r = _page(server.url, f"/jobs/{hostile_job}/files/artifacts/outputs/%3Cscript%3Ef.txt?download=1")
    assert r.status_code == 200 and r.content == b"hi"
    assert "attachment" in r.headers["content-disposition"]
    for bad in ("..%2F..%2Fsecret.key", "%2Fetc%2Fpasswd", "outputs/..%2F..%2F..%2Fsecret.key?download=1"):
        r = _page(server.url, f"/jobs/{hostile_job}/files/artifacts/{bad}")  # review 15, F4: the HTML 400 page
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html"), bad
        assert "Bad request" in r.text and f'href="/jobs/{hostile_job}"' in r.text and "root:" not in r.text


def test_rerun_submits_the_same_spec_as_a_new_job(server, ml_client, hostile_job):
    """Rerun is an API operation (POST /api/v1/jobs/{name}/rerun, typed in the OpenAPI document,
    write access), used by the SDK and the studio; the old studio route redirects there."""
    r = httpx.post(f"{server.url}/api/v1/jobs/{hostile_job}/rerun", headers={"Origin": server.url,
                                                                               "Content-Type": "application/json"},
                   content=b"{}", timeout=60)
    assert r.status_code == 200, r.text
    new = r.json()["name"]
    assert new != hostile_job and r.json()["status"]
    job = httpx.get(f"{server.url}/api/v1/jobs/{new}", timeout=30).json()
    assert job["display_name"] == "<script>alert('name')</script>" and job["command"] == "python t.py"
    httpx.post(f"{server.url}/api/v1/jobs/{new}/cancel", headers={"Origin": server.url}, json={}, timeout=30)
    op = httpx.get(f"{server.url}/openapi.json", timeout=30).json()["paths"]["/api/v1/jobs/{name}/rerun"]["post"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobOut")
    again = ml_client.jobs.rerun(hostile_job)
    assert again.name not in (hostile_job, new) and again.display_name == "<script>alert('name')</script>"
    ml_client.jobs.begin_cancel(again.name)
    old = httpx.post(f"{server.url}/jobs/{hostile_job}/rerun", headers={"Origin": server.url}, json={}, timeout=30)
    assert old.status_code == 307 and old.headers["location"] == f"/api/v1/jobs/{hostile_job}/rerun"
    assert httpx.post(f"{server.url}/api/v1/jobs/no_such_job_x/rerun", headers={"Origin": server.url}, json={},
                      timeout=30).status_code == 404


def test_a_cross_site_post_to_the_studio_is_refused(server, hostile_job):
    r = httpx.post(f"{server.url}/api/v1/jobs/{hostile_job}/rerun", headers={"Origin": "http://evil.example"},
                   timeout=30)
    assert r.status_code == 403
    # same origin but a body a plain HTML form could send: refused, as the API refuses it
    r = httpx.post(f"{server.url}/api/v1/jobs/{hostile_job}/rerun", headers={"Origin": server.url},
                   data={"a": "b"}, timeout=30)
    assert r.status_code == 415


def test_downsample_keeps_endpoints_minimum_and_maximum():
    pts = [(i, float(i % 100)) for i in range(1_000_000)]
    pts[777_777] = (777_777, 1e6)  # a spike
    pts[333_333] = (333_333, -1e6)  # a dip
    out = downsample(pts, 1000)
    assert len(out) <= 1000
    assert out[0] == pts[0] and out[-1] == pts[-1]
    ys = [y for _, y in out]
    assert max(ys) == 1e6 and min(ys) == -1e6
    assert [x for x, _ in out] == sorted(x for x, _ in out)
    c = line_chart({"run": pts}, max_points=1000)
    assert c["lines"][0]["n"] == 1_000_000 and c["lines"][0]["shown"] <= 1000


def test_downsample_leaves_small_series_and_drops_nan():
    assert downsample([(0, 1.0), (1, float("nan")), (2, 3.0)], 10) == [(0.0, 1.0), (2.0, 3.0)]


def test_login_on_a_token_server(tmp_path):
    """A browser without a session is sent to /login; the server's token or a user's sets an HttpOnly
    SameSite=Strict cookie; a Reader sees no actions and the API refuses them."""
    token = "studio-test-token-0123456789abcdef"
    ws = tmp_path / "ws"
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", "tok", "--path", str(ws)],
                   check=True, capture_output=True)
    (tmp_path / "token").write_text(token)
    handle = _start_with_token(ws, tmp_path / "token")
    try:
        url = handle[0]
        r = httpx.get(url + "/jobs", headers=HTML, follow_redirects=False, timeout=30)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        assert httpx.get(url + "/api/v1/jobs", timeout=30).status_code == 401  # the API still answers 401
        with httpx.Client(base_url=url, timeout=30, follow_redirects=True) as c:
            bad = c.post("/login", data={"token": "wrong-token-0000000000", "next": "/jobs"},
                         headers={"Origin": url})
            assert bad.status_code == 401 and "not valid" in bad.text
            ok = c.post("/login", data={"token": token, "next": "/jobs"}, headers={"Origin": url})
            assert ok.status_code == 200 and "Jobs" in ok.text  # followed the 303 to /jobs
            cookie = ok.history[0].headers["set-cookie"]
            assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
            reader = c.post("/api/v1/users", json={"name": "rita", "role": "Reader"}, headers={"Origin": url})
            assert reader.status_code in (200, 201), reader.text
            reader_token = reader.json()["token"]
            assert c.post("/login", data={"token": token, "next": "//evil.example/"}, headers={"Origin": url},
                          follow_redirects=False).headers["location"] == "/"
            # regression (studio review): logout ends the session on the server, so a copied cookie is refused
            session = c.cookies.get("openaml_session")
            assert session and c.get("/jobs", headers=HTML).status_code == 200
            assert 'action="/logout"' in c.get("/jobs", headers=HTML).text  # a session: sign out offered
            assert c.post("/logout", headers={"Origin": url}, follow_redirects=False).status_code == 303
            copied = httpx.get(url + "/jobs", headers=HTML, cookies={"openaml_session": session},
                               follow_redirects=False, timeout=30)
            assert copied.status_code == 303 and copied.headers["location"].startswith("/login")
        # regression (studio review): a ?token= is never carried into the login redirect (nor its form)
        to_login = httpx.get(url + f"/jobs?token={token}&status=Failed", headers=HTML, follow_redirects=False,
                             timeout=30)
        assert to_login.status_code == 303 and token not in to_login.headers["location"]
        assert "status%3DFailed" in to_login.headers["location"]
        # review 15, F16: the login page says why the link's token was not used (never silently dropped)
        page = httpx.get(url + to_login.headers["location"], headers=HTML, timeout=30).text
        assert 'id="link-token"' in page and "home page only" in page and token not in page
        wrong = httpx.get(url + "/?token=wrong-token-00000000", headers=HTML, follow_redirects=True, timeout=30)
        assert 'id="link-token"' in wrong.text and "not valid" in wrong.text
        assert "answers its own OS user" not in wrong.text  # a token server: a token is needed
        with httpx.Client(base_url=url, timeout=30, follow_redirects=True) as rc:
            assert rc.post("/login", data={"token": reader_token, "next": "/"}, headers={"Origin": url}).status_code == 200
            home = rc.get("/", headers=HTML)
            assert "rita (Reader)" in home.text
            # no actions offered; forced, the API refuses
            sched = rc.get("/schedules", headers=HTML).text
            assert "data-post" not in sched
            forced = rc.post("/api/v1/jobs/x/cancel", json={}, headers={"Origin": url})
            assert forced.status_code == 403
        # cross-site login (login CSRF) is refused by the guard
        assert httpx.post(url + "/login", data={"token": token}, headers={"Origin": "http://evil.example"},
                          timeout=30).status_code == 403
    finally:
        handle[1].terminate()
        handle[1].wait(30)


def _start_with_token(ws: Path, token_file: Path):  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    log = open(ws.parent / "server.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "openaml", "server", "--workspace", str(ws), "--port", "0",
                             "--token-file", str(token_file)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        info = ws / "server.json"
        if info.exists():
            data = json.loads(info.read_text())
            if data.get("pid") == proc.pid:
                return data["url"], proc
        if proc.poll() is not None:
            raise RuntimeError(f"server exited; see {log.name}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")


# ---------------------------------------------------------------------------- code snapshot, environment
def test_code_snapshot_tree_and_file_view(server, hostile_job):
    """The job's code snapshot: a file tree, text files shown (escaped), binary and huge files refused
    with the reason and a download, paths confined to the snapshot, 404 for what is not there."""
    r = _page(server.url, f"/jobs/{hostile_job}/code")
    assert r.status_code == 200
    for name in ("t.py", "pkg/", "&lt;i&gt;util.py", "weights.bin", "big.txt"):
        assert name in r.text, name
    assert "<i>util.py" not in r.text
    r = _page(server.url, f"/jobs/{hostile_job}/code/t.py")
    assert r.status_code == 200 and "acc_metric_xyz" in r.text
    assert "&lt;script&gt;alert(&#39;log&#39;)&lt;/script&gt;" in r.text and 'id="code-text"' in r.text
    r = _page(server.url, f"/jobs/{hostile_job}/code/pkg/%3Ci%3Eutil.py")
    assert r.status_code == 200 and "X = &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;" in r.text
    r = _page(server.url, f"/jobs/{hostile_job}/code/weights.bin")
    assert r.status_code == 200 and 'id="code-refused"' in r.text and "binary" in r.text
    r = _page(server.url, f"/jobs/{hostile_job}/code/big.txt")
    assert r.status_code == 200 and "too big" in r.text and "1,100,000 bytes" in r.text and "x" * 1000 not in r.text
    r = _page(server.url, f"/jobs/{hostile_job}/code/weights.bin?download=1")
    assert r.status_code == 200 and r.content == bytes(range(256)) * 4 and "attachment" in r.headers["content-disposition"]
    for bad in ("..%2F..%2Fserver.json", "%2Fetc%2Fpasswd", "pkg/..%2F..%2F..%2Fserver.json"):
        r = _page(server.url, f"/jobs/{hostile_job}/code/{bad}")
        assert r.status_code in (400, 404), bad
        assert "root:" not in r.text and '"pid"' not in r.text
    assert _page(server.url, f"/jobs/{hostile_job}/code/no-such.py").status_code == 404
    r = _page(server.url, "/jobs/no_such_job_x/code")
    assert r.status_code == 404 and 'href="/jobs"' in r.text


def test_job_environment_page_shows_the_resolved_environment_and_its_build_log(server, hostile_job):
    r = _page(server.url, f"/jobs/{hostile_job}/environment")
    assert r.status_code == 200
    assert "AzureML-sklearn-1.5" in r.text
    # the curated environment is a virtualenv built for this workspace: its build log (uv's output)
    assert 'id="build-log"' in r.text and "# openaml environment" in r.text
    assert _page(server.url, "/jobs/no_such_job_x/environment").status_code == 404
    page = _page(server.url, f"/jobs/{hostile_job}").text
    assert f'href="/jobs/{hostile_job}/code"' in page and f'href="/jobs/{hostile_job}/environment"' in page


def test_environment_page_shows_its_build_log(server, cli, tmp_path):
    """A registered environment's page: the default environment has nothing to build; a virtualenv
    one shows "no build log yet" until built, then the end of envs/<spec_hash>/build.log (escaped)."""
    image = "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"
    cli("environment", "create", "--name", "studio-env-image", "--image", image, check=True)
    r = _page(server.url, "/environments/studio-env-image")
    assert r.status_code == 200 and 'id="build-log-note"' in r.text and "nothing was built" in r.text
    (tmp_path / "conda.yml").write_text("name: e\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n"
                                        "    - studio-not-a-real-package-xyz==1.0\n")
    env = cli("environment", "create", "--name", "studio-env-venv", "--image", "python:3.11",
              "--conda-file", str(tmp_path / "conda.yml"), "-o", "json", check=True).json()
    r = _page(server.url, "/environments/studio-env-venv")
    assert r.status_code == 200 and "no build log yet" in r.text
    log = server.path / "envs" / env["spec_hash"] / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("# openaml environment\n<script>alert('build')</script> resolving\n")
    r = _page(server.url, "/environments/studio-env-venv")
    assert 'id="build-log"' in r.text and "&lt;script&gt;alert(&#39;build&#39;)&lt;/script&gt; resolving" in r.text
    # review 15, F10: a build that left its log but no environment is not "not built"
    assert "not built" not in r.text and "failed or in progress" in r.text


def test_component_page_lists_the_pipeline_jobs_that_use_the_version(server, cli, tmp_path):
    (tmp_path / "comp.yml").write_text(textwrap.dedent("""\
        $schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
        name: studio_where_used
        version: "1"
        type: command
        command: echo hi
        environment: azureml:AzureML-sklearn-1.5@latest
        """))
    cli("component", "create", "--file", str(tmp_path / "comp.yml"), check=True)
    (tmp_path / "pipe.yml").write_text(textwrap.dedent("""\
        type: pipeline
        display_name: "<b>where-used pipeline</b>"
        experiment_name: studio-where-used
        settings: {default_compute: local}
        jobs:
          first:
            component: azureml:studio_where_used@latest
          second:
            component: azureml:studio_where_used:1
        """))
    job = cli("job", "create", "--file", str(tmp_path / "pipe.yml"), "-o", "json", check=True).json()["name"]
    r = _page(server.url, "/components/studio_where_used?version=1")
    assert r.status_code == 200 and 'id="used-by"' in r.text
    assert f'href="/jobs/{job}"' in r.text and "first, second" in r.text
    assert "&lt;b&gt;where-used pipeline&lt;/b&gt;" in r.text and "<b>where-used" not in r.text
    (tmp_path / "comp2.yml").write_text((tmp_path / "comp.yml").read_text().replace('version: "1"', 'version: "2"'))
    cli("component", "create", "--file", str(tmp_path / "comp2.yml"), check=True)
    r = _page(server.url, "/components/studio_where_used?version=2")
    assert r.status_code == 200 and f'href="/jobs/{job}"' not in r.text and "no pipeline job has used" in r.text
    # regression (studio review): a pipeline's code and environment pages claimed it ran without code on
    # the default environment; its steps have them
    for what in ("code", "environment"):
        page = _page(server.url, f"/jobs/{job}/{what}").text
        assert "a pipeline job runs no command of its own" in page, page[-2000:]
        assert "ran without" not in page and "nothing was built" not in page
    cli("job", "cancel", "--name", job)


# ---------------------------------------------------------------------------- batch endpoints
@pytest.fixture(scope="module")
def batch_endpoint(server, cli, ml_client, tmp_path_factory) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Endpoint ``bep-studio`` (description with <script>) with MLflow-model deployments ``blue`` and
    ``green`` (green the default), a data asset of 3 CSVs, and one finished invocation."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    root = tmp_path_factory.mktemp("studio-batch")
    lr = LinearRegression().fit(pd.DataFrame({"x": np.arange(10.0)}), np.arange(10.0) * 2 + 1)
    mlflow.sklearn.save_model(lr, str(root / "model"), input_example=pd.DataFrame({"x": [1.0]}))
    (root / "data").mkdir()
    for i in range(3):
        pd.DataFrame({"x": [float(i), i + 0.5]}).to_csv(root / "data" / f"part-{i}.csv", index=False)
    cli("data", "create", "--name", "bep-studio-data", "--type", "uri_folder", "--path", str(root / "data"), check=True)
    (root / "ep.yml").write_text("name: bep-studio\ndescription: \"<script>alert('ep')</script>\"\n")
    cli("batch-endpoint", "create", "--file", str(root / "ep.yml"), check=True)
    for dep, size in (("blue", 1), ("green", 2)):
        (root / f"{dep}.yml").write_text(
            f"name: {dep}\nendpoint_name: bep-studio\ntype: model\n"
            f"model:\n  name: bep-studio-model\n  path: {root / 'model'}\n  type: mlflow_model\n"
            "compute: local\nresources: {instance_count: 1}\n"
            f"settings:\n  mini_batch_size: {size}\n  max_concurrency_per_instance: 1\n  output_action: append_row\n"
            f"  output_file_name: {dep}-predictions.csv\n")
        cli("batch-deployment", "create", "--file", str(root / f"{dep}.yml"),
            *(["--set-default"] if dep == "green" else []), check=True)
    job = cli("batch-endpoint", "invoke", "-n", "bep-studio", "--input", "azureml:bep-studio-data@latest",
              check=True).json()["name"]
    cli("job", "stream", "--name", job, timeout=600)
    return {"endpoint": "bep-studio", "job": job}


def _api(server, method: str, path: str, body: dict | None = None) -> httpx.Response:  # type: ignore[no-untyped-def]
    """As studio.js sends an action: same origin, JSON body."""
    return httpx.request(method, server.url + path, headers={"Origin": server.url, "Content-Type": "application/json"},
                         content=json.dumps(body or {}).encode(), timeout=60)


def test_batch_endpoint_pages_show_deployments_settings_default_and_jobs(server, batch_endpoint):
    job = batch_endpoint["job"]
    r = _page(server.url, "/batch-endpoints")
    assert r.status_code == 200 and 'href="/batch-endpoints/bep-studio"' in r.text and "green" in r.text
    r = _page(server.url, "/batch-endpoints/bep-studio")
    assert r.status_code == 200
    assert 'id="default-deployment">green<' in r.text
    assert "&lt;script&gt;alert(&#39;ep&#39;)&lt;/script&gt;" in r.text and "<script>alert('ep')" not in r.text
    for dep in ("blue", "green"):
        assert f'href="/batch-endpoints/bep-studio/deployments/{dep}"' in r.text
        assert f"{dep}-predictions.csv" in r.text  # its settings
    assert "mini_batch_size" in r.text and "append_row" in r.text
    assert r.text.count('class="set-default"') == 1  # offered for blue only (green is the default)
    assert f'href="/jobs/{job}"' in r.text and "Completed" in r.text
    assert f'href="/jobs/{job}/files/score"' in r.text  # the invocation's output
    out = _page(server.url, f"/jobs/{job}/files/score").text
    assert "green-predictions.csv" in out
    r = _page(server.url, "/batch-endpoints/bep-studio/deployments/blue")
    assert r.status_code == 200 and "blue-predictions.csv" in r.text and "no jobs yet" in r.text
    assert 'class="set-default"' in r.text
    r = _page(server.url, "/batch-endpoints/bep-studio/deployments/green")
    assert r.status_code == 200 and f'href="/jobs/{job}"' in r.text and 'class="set-default"' not in r.text


def test_every_link_of_the_batch_endpoint_and_deployment_pages_resolves(server, cli, batch_endpoint, tmp_path):
    """Regression (studio review): links of the batch pages were wrong or missing (the deployment's
    model, compute); an endpoint without a deployment offered Invoke."""
    import html
    import re

    for page in ("/batch-endpoints/bep-studio", "/batch-endpoints/bep-studio/deployments/green"):
        text = _page(server.url, page).text
        assert 'href="/models/bep-studio-model' in text and 'href="/computes/local"' in text, page
        links = {html.unescape(h) for h in re.findall(r'href="(/[^"#]*)"', text)} - {"/logout"}
        for link in sorted(links):
            r = _page(server.url, link)
            assert r.status_code == 200, (page, link, r.text[:300])
    (tmp_path / "ep.yml").write_text("name: bep-empty\ndescription: nothing deployed\ntags: {team: ml}\n")
    cli("batch-endpoint", "create", "--file", str(tmp_path / "ep.yml"), check=True)
    r = _page(server.url, "/batch-endpoints/bep-empty")
    assert r.status_code == 200 and 'id="batch-invoke"' not in r.text and 'id="invoke-unavailable"' in r.text
    assert "has no deployment" in r.text
    assert 'id="endpoint-description">nothing deployed<' in r.text and "team=ml" in r.text


def test_batch_endpoint_missing_pages_are_404_with_a_link_back(server, batch_endpoint):
    r = _page(server.url, "/batch-endpoints/no-such-bep")
    assert r.status_code == 404 and 'href="/batch-endpoints"' in r.text
    r = _page(server.url, "/batch-endpoints/bep-studio/deployments/%3Cscript%3Ex")
    assert r.status_code == 404 and 'href="/batch-endpoints/bep-studio"' in r.text
    assert "<script>x" not in r.text


def test_batch_endpoint_actions_set_default_invoke_and_delete(server, batch_endpoint):
    """The calls the page's buttons make (studio.js): set default, invoke from a data asset and from a
    datastore path, delete a deployment; each shows on the page afterwards."""
    r = _api(server, "PUT", "/api/v1/batch-endpoints/bep-studio", {"name": "bep-studio",
                                                                    "defaults": {"deployment_name": "blue"}})
    assert r.status_code == 200, r.text
    assert 'id="default-deployment">blue<' in _page(server.url, "/batch-endpoints/bep-studio").text
    r = _api(server, "POST", "/api/v1/batch-endpoints/bep-studio/jobs",
             {"inputs": {"input_data": {"type": "uri_folder", "path": "azureml:bep-studio-data@latest"}},
              "deployment_name": "green"})
    assert r.status_code == 200, r.text
    from_asset = r.json()["name"]
    asset = httpx.get(f"{server.url}/api/v1/data/bep-studio-data/versions/1", timeout=30).json()
    assert asset["path"].startswith("azureml://datastores/")
    r = _api(server, "POST", "/api/v1/batch-endpoints/bep-studio/jobs",
             {"inputs": {"input_data": {"type": "uri_folder", "path": asset["path"]}}})
    assert r.status_code == 200, r.text
    from_path = r.json()["name"]
    page = _page(server.url, "/batch-endpoints/bep-studio").text
    assert f'href="/jobs/{from_asset}"' in page and f'href="/jobs/{from_path}"' in page
    blue = _page(server.url, "/batch-endpoints/bep-studio/deployments/blue").text
    assert f'href="/jobs/{from_path}"' in blue and f'href="/jobs/{from_asset}"' not in blue
    for j in (from_asset, from_path):
        _api(server, "POST", f"/api/v1/jobs/{j}/cancel")
    r = _api(server, "DELETE", "/api/v1/batch-endpoints/bep-studio/deployments/blue")
    assert r.status_code == 200, r.text
    page = _page(server.url, "/batch-endpoints/bep-studio").text
    assert 'href="/batch-endpoints/bep-studio/deployments/blue"' not in page
    assert 'id="default-deployment">none<' in page  # deleting the default cleared it
    assert _page(server.url, "/batch-endpoints/bep-studio/deployments/blue").status_code == 404


# ---------------------------------------------------------------------------- the studio's API client
def _norm(path: str) -> str:
    import re

    return re.sub(r"\{[^}]*\}", "{}", path)


def test_the_studio_api_client_is_typed_against_openapi(server):
    """Every /api/v1 call the studio makes (studio.js's OPS table, the templates' buttons and links)
    is an operation of the server's /openapi.json, and every body field studio.js sends is a property
    of that operation's request schema (issue 15: the client typed against /openapi.json)."""
    import re

    from openaml.server.studio._common import HERE

    doc = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    ops = {(m.upper(), _norm(p)): spec for p, item in doc["paths"].items() for m, spec in item.items()}
    js = (HERE / "static" / "studio.js").read_text()
    table = re.findall(r'(\w+): \["(GET|POST|PUT|DELETE)", "([^"]+)",\s*(null|\[[^\]]*\])\]', js)
    assert len(table) >= 6 and {t[0] for t in table} >= {"putBatchEndpoint", "invokeBatchEndpoint"}
    assert not re.search(r'api\("(GET|POST|PUT|DELETE)", "/api/v1', js), "an /api/v1 call outside OPS"

    def schema(ref: dict) -> dict:
        while "$ref" in ref:
            ref = doc["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
        return ref

    for name, method, path, fields in table:
        op = ops.get((method, _norm(path)))
        assert op is not None, f"{name}: {method} {path} is not in /openapi.json"
        if fields != "null":
            props = schema(op["requestBody"]["content"]["application/json"]["schema"]).get("properties") or {}
            for f in re.findall(r'"(\w+)"', fields):
                assert f in props, f"{name}: body field {f!r} is not in the request schema of {method} {path}"
    # the templates' actions: data-post (POST), delete buttons' data-url (DELETE), download links (GET)
    calls = set()
    for tpl in (HERE / "templates").glob("*.html"):
        text = re.sub(r"\{\{[^}]*\}\}", "{x}", tpl.read_text())
        calls |= {("POST", p) for p in re.findall(r'data-post="(/api/v1[^"]*)"', text)}
        calls |= {("DELETE", p) for p in re.findall(r'class="delete-api[^"]*" [^>]*data-url="(/api/v1[^"]*)"', text)}
        calls |= {("GET", p) for p in re.findall(r'href="(/api/v1[^"]*)"', text)}
    assert ("DELETE", "/api/v1/batch-endpoints/{x}") in calls and len(calls) >= 6
    for method, path in calls:
        assert (method, _norm(path)) in ops, f"{method} {path} (a template's action) is not in /openapi.json"


def test_a_disabled_schedule_stays_listed_with_its_enable_action(server, cli, tmp_path):
    """Regression (studio review): the page listed enabled schedules only, so a schedule disabled
    there vanished and could never be enabled again from the studio."""
    (tmp_path / "job.yml").write_text("type: command\ncommand: echo hi\nenvironment: azureml:AzureML-sklearn-1.5@latest\n")
    (tmp_path / "sched.yml").write_text(
        "name: studio-off-sched\ndisplay_name: Nightly <b>retrain</b>\ndescription: the description zq\n"
        "trigger:\n  type: recurrence\n  frequency: day\n  interval: 1\n"
        "  start_time: \"2999-01-01T00:00:00\"\ncreate_job: ./job.yml\n")
    cli("schedule", "create", "--file", str(tmp_path / "sched.yml"), check=True)
    # review 15, F13: display name, description, next fire time without raw ISO, the times' zone, last job
    row = _page(server.url, "/schedules").text.split('data-schedule="studio-off-sched"', 1)[1].split("</tr>", 1)[0]
    assert "Nightly &lt;b&gt;retrain&lt;/b&gt;" in row and "the description zq" in row
    assert '<td class="next-fire">2999-01-01 00:00:00</td>' in row, row
    assert "Times are UTC" in _page(server.url, "/schedules").text
    fired = httpx.post(f"{server.url}/api/v1/schedules/studio-off-sched/trigger", json={}, timeout=30)
    assert fired.status_code == 200, fired.text
    job = fired.json()["job_name"]
    row = _page(server.url, "/schedules").text.split('data-schedule="studio-off-sched"', 1)[1].split("</tr>", 1)[0]
    assert f'href="/jobs/{job}"' in row
    httpx.post(f"{server.url}/api/v1/jobs/{job}/cancel", json={}, timeout=30)
    r = httpx.post(f"{server.url}/api/v1/schedules/studio-off-sched/disable", json={})
    assert r.status_code == 200, r.text
    page = _page(server.url, "/schedules").text
    assert "studio-off-sched" in page
    assert "/api/v1/schedules/studio-off-sched/enable" in page


def test_paging_back_a_log_never_splits_a_character(tmp_path):
    """Regression (studio review): a line longer than a chunk was cut inside a multi-byte character,
    so each chunk boundary showed U+FFFD and the joined chunks differed from the log."""
    from openaml.server.studio._jobs import LOG_CHUNK, _read_back

    log = tmp_path / "std_log.txt"
    # lines longer than a chunk, 2- and 3-byte characters, the end shifted so chunk starts fall mid-character
    text = "€" * (LOG_CHUNK // 2) + "\n" + "é" * LOG_CHUNK + "x"
    log.write_text(text, encoding="utf-8")
    parts, before = [], None
    while True:
        chunk, start, _size = _read_back(log, before)
        assert "\ufffd" not in chunk
        parts.append(chunk)
        if start == 0:
            break
        before = start
    assert "".join(reversed(parts)) == text


def test_every_noun_list_is_filtered_sorted_and_paged_on_the_server(server, cli, tmp_path):
    """Regression (studio review, must-have 2): only the jobs list could be sorted, filtered or paged."""
    import re

    for n in ("studio_sort_b", "studio_sort_c", "studio_sort_a"):
        (tmp_path / f"{n}.yml").write_text(f"name: {n}\nversion: '1'\ntype: command\ncommand: echo hi\n"
                                           "environment: azureml:AzureML-sklearn-1.5@latest\n")
        cli("component", "create", "--file", str(tmp_path / f"{n}.yml"), check=True)

    def names(query: str) -> list[str]:
        r = _page(server.url, f"/components?q=studio_sort_&{query}")
        assert r.status_code == 200, r.text[-500:]
        return re.findall(r'<tr><td><a href="/components/[^"]*">([^<]*)</a>', r.text)

    want = ["studio_sort_a", "studio_sort_b", "studio_sort_c"]
    assert names("sort=name&order=asc") == want
    assert names("sort=name&order=desc") == want[::-1]
    assert names("sort=name&per_page=1&page=2") == ["studio_sort_b"]
    # review 15, F9 (every list): the filter form, the sort links and the pager keep per_page
    import html as _html

    listing = _page(server.url, "/components?q=studio_sort_&sort=name&per_page=1&page=2").text
    assert '<input type="hidden" name="per_page" value="1">' in listing
    links = [_html.unescape(h) for h in re.findall(r'href="(\?q=[^"]*)"', listing)]
    assert links and all("per_page=1" in h and "q=studio_sort_" in h for h in links), links
    assert "page 2 of 3" in _page(server.url, "/components?q=studio_sort_&sort=name&per_page=1&page=2").text
    assert names("sort=name&order=asc").count("studio_sort_a") == 1
    assert _page(server.url, "/components?q=studio_sort_zzz").text.count("nothing matches") == 1
    for bad in ("per_page=abc", "page=0", "sort=nosuchcolumn", "order=up"):
        assert _page(server.url, f"/components?{bad}").status_code == 400, bad
    for path in ("/data", "/models", "/environments", "/computes", "/datastores", "/online-endpoints",
                 "/batch-endpoints"):
        r = _page(server.url, f"{path}?q=x&sort=name&order=desc&page=1&per_page=5")
        assert r.status_code == 200 and 'id="list-filter"' in r.text, path


def test_bad_input_gets_a_400_naming_it(server, hostile_job):
    """Regressions (studio review): since=garbage was ignored, an SSE offset of -5 was accepted, a
    traversal path in the code snapshot said "Not found" with a 400."""
    r = _page(server.url, "/jobs?since=garbage")
    assert r.status_code == 400 and "Bad request" in r.text and "since=garbage" in r.text
    assert "YYYY-MM-DD" in r.text and 'href="/jobs"' in r.text
    assert _page(server.url, "/jobs?until=2026-13-45").status_code == 400
    r = httpx.get(f"{server.url}/jobs/{hostile_job}/log/stream?offset=-5", timeout=30)
    assert r.status_code == 400 and "offset" in r.json()["error"]["message"]
    for bad in ("per_page=0", "per_page=501", "page=0", "page=-1", "sort=bogus", "order=sideways", "status=Bogus",
                "type=bogus"):  # review 15, F2: silently defaulted on /jobs, a 400 on every other list
        r = _page(server.url, f"/jobs?{bad}")
        assert r.status_code == 400 and "Bad request" in r.text and bad.split("=")[0] in r.text, bad
    assert _page(server.url, "/jobs?status=Completed&type=command&sort=name&order=asc&per_page=500").status_code == 200
    for bad in ("page=0", "per_page=abc", "per_page=0", "sort=bogus", "order=up"):
        assert _page(server.url, f"/experiments?{bad}").status_code == 400, bad
    import re

    total = int(re.search(r'<h1>Experiments <small class="muted">(\d+)</small>', _page(server.url, "/experiments").text)
                .group(1))
    r = _page(server.url, "/experiments?per_page=1&order=desc")
    assert r.status_code == 200 and f"page 1 of {total}" in r.text or total == 1
    assert total == 1 or ('rel="next"' in r.text and "per_page=1" in r.text)
    for bad in ("limit=0", "limit=-3", "limit=9999"):
        assert _page(server.url, f"/experiments/studio-tests?{bad}").status_code == 400, bad
    r = httpx.get(f"{server.url}/jobs/{hostile_job}/log?before=-5", timeout=30)  # review 15, F2
    assert r.status_code == 400 and "before" in r.json()["error"]["message"]
    chunk = httpx.get(f"{server.url}/jobs/{hostile_job}/log", timeout=30).json()
    assert "a log line" in chunk["text"] and chunk["size"] > 0 and chunk["start"] == 0
    r = _page(server.url, f"/jobs/{hostile_job}/code/..%2F..%2Fserver.json")
    assert r.status_code == 400 and "Bad request" in r.text and "Not found" not in r.text


def test_a_browser_gets_html_error_pages(server):
    """Regression (studio review): errors outside a studio page's own handling (an unknown route, a
    parameter of the wrong type) were JSON to a browser; the API still answers JSON."""
    for path, status in (("/no-such-page", 404), ("/jobs?page=abc", 400), ("/jobs/x/log?before=abc", 400)):
        r = _page(server.url, path)
        assert r.status_code == status and r.headers["content-type"].startswith("text/html"), path
        assert 'href="/"' in r.text and "openaml studio" in r.text, path
    r = httpx.get(f"{server.url}/api/v1/jobs/no_such_job_x", headers=HTML, timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{server.url}/no-such-page", timeout=30).json()["error"]["code"] == "not_found"


def test_a_missing_datastore_folder_is_a_404(server):
    r = _page(server.url, "/datastores/workspaceblobstore/browse/no/such/folder")
    assert r.status_code == 404 and "Not found" in r.text and 'href="/datastores/workspaceblobstore"' in r.text


def test_a_data_preview_error_names_the_asset_relative_path_only(server, cli, tmp_path):
    """Regression (studio review): a preview error showed the server's filesystem path."""
    src = tmp_path / "prev"
    src.mkdir()
    (src / "table_xq7.parquet").write_text("not parquet at all\n")  # pyarrow's error names the file's path
    cli("data", "create", "--name", "studio_prev_err", "--version", "1", "--type", "uri_folder", "--path", str(src),
        check=True)
    r = _page(server.url, "/data/studio_prev_err")
    assert r.status_code == 200 and "No preview" in r.text and "Parquet magic bytes" in r.text
    assert "&#39;table_xq7.parquet&#39;" in r.text  # the file named by its path inside the asset
    assert str(server.path) not in r.text and str(server.path.resolve()) not in r.text


def test_model_files_are_listed_viewed_and_downloaded_one_by_one(server, cli, tmp_path):
    """Regression (studio review): a model's files could only be downloaded all together."""
    src = tmp_path / "m"
    (src / "sub").mkdir(parents=True)
    (src / "MLmodel").write_text("flavors:\n  <script>x: 1\n")
    (src / "sub" / "weights.bin").write_bytes(bytes(range(256)))
    cli("model", "create", "--name", "studio_files_model", "--version", "1", "--path", str(src), check=True)
    page = _page(server.url, "/models/studio_files_model?version=1").text
    assert 'href="/models/studio_files_model/files/MLmodel?version=1"' in page
    assert 'href="/models/studio_files_model/files/sub/weights.bin?version=1&amp;download=1"' in page
    r = _page(server.url, "/models/studio_files_model/files/MLmodel?version=1")
    assert r.status_code == 200 and "&lt;script&gt;x: 1" in r.text and 'id="file-text"' in r.text
    r = _page(server.url, "/models/studio_files_model/files/sub/weights.bin?version=1")
    assert r.status_code == 200 and 'id="file-refused"' in r.text and "binary" in r.text
    r = _page(server.url, "/models/studio_files_model/files/sub/weights.bin?version=1&download=1")
    assert r.status_code == 200 and r.content == bytes(range(256)) and "attachment" in r.headers["content-disposition"]
    for bad in ("..%2F..%2F..%2Fserver.json", "%2Fetc%2Fpasswd"):
        r = _page(server.url, f"/models/studio_files_model/files/{bad}?version=1")
        assert r.status_code == 400 and "Bad request" in r.text and '"pid"' not in r.text and "root:" not in r.text
    assert _page(server.url, "/models/studio_files_model/files/nope.txt?version=1").status_code == 404


def test_literal_inputs_and_schedule_triggers_are_key_value_text(server, cli, tmp_path):
    """Regression (studio review): literal job inputs and schedule triggers were raw JSON."""
    (tmp_path / "job.yml").write_text(textwrap.dedent("""\
        type: command
        command: echo ${{inputs.lr}} ${{inputs.mode}}
        description: "a <b>described</b> job"
        inputs:
          lr: 0.25
          mode: {type: string, value: fast}
        environment: azureml:AzureML-sklearn-1.5@latest
        """))
    name = cli("job", "create", "--file", str(tmp_path / "job.yml"), "-o", "json", check=True).json()["name"]
    page = _page(server.url, f"/jobs/{name}").text
    inputs = page.split("<h3>Inputs</h3>", 1)[1].split("</table>", 1)[0]
    assert "0.25" in inputs and "fast" in inputs and "{&#34;" not in inputs and '{"' not in inputs
    assert 'id="job-description">a &lt;b&gt;described&lt;/b&gt; job<' in page
    (tmp_path / "sched.yml").write_text(textwrap.dedent("""\
        name: studio_kv_schedule
        trigger:
          type: recurrence
          frequency: day
          interval: 1
          start_time: "2999-01-01T00:00:00"
          schedule: {hours: [4], minutes: [30]}
        create_job: ./job.yml
        """))
    cli("schedule", "create", "--file", str(tmp_path / "sched.yml"), check=True)
    row = _page(server.url, "/schedules").text.split('data-schedule="studio_kv_schedule"', 1)[1].split("</tr>", 1)[0]
    assert "<b>frequency</b>=<span>day</span>" in row and "<b>hours</b>=<span>4</span>" in row
    assert "{&#34;" not in row and '{"' not in row
    httpx.post(f"{server.url}/api/v1/schedules/studio_kv_schedule/disable", json={})
    cli("job", "cancel", "--name", name)


def test_home_counts_top_level_jobs_as_the_jobs_list_and_the_favicon_is_served(server, cli, hostile_job, tmp_path):
    """Regressions (studio review): the home page counted child jobs (a pipeline's steps) where the jobs
    list counts top-level jobs; /favicon.ico answered 404."""
    import re

    (tmp_path / "p.yml").write_text(textwrap.dedent("""\
        type: pipeline
        jobs:
          a: {type: command, command: echo a, environment: azureml:AzureML-sklearn-1.5@latest}
          b: {type: command, command: echo b, environment: azureml:AzureML-sklearn-1.5@latest}
        """))
    name = cli("job", "create", "--file", str(tmp_path / "p.yml"), "-o", "json", check=True).json()["name"]
    cli("job", "stream", "--name", name, timeout=300)
    home = _page(server.url, "/").text
    for status in ("Completed", "Failed", "Canceled"):
        shown = int(re.search(rf'href="/jobs\?status={status}"><b>(\d+)</b>', home).group(1))
        listed = int(re.search(r"<small class=\"muted\">(\d+) matching", _page(server.url, f"/jobs?status={status}").text)
                     .group(1))
        assert shown == listed, status
    assert "top-level jobs" in home
    r = httpx.get(f"{server.url}/favicon.ico", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml") and b"<svg" in r.content
    assert 'rel="icon"' in home


def test_data_preview_reads_nothing_outside_the_asset(server, cli, tmp_path):
    """Regression (review 15, F18/F19): the preview followed an MLTable's ``paths`` (changed after
    registration) and a folder's links to any file of the server (``/etc/passwd``, the token file)."""
    secret = tmp_path / "secret_tok.txt"
    secret.write_text("tok_secret_value_zz9\n")
    root = tmp_path / "dsroot"
    (root / "mlt").mkdir(parents=True)
    (root / "mlt" / "t.csv").write_text("a,b\n1,2\n3,4\n")
    (root / "mlt" / "MLTable").write_text("paths:\n  - file: ./t.csv\ntransformations:\n  - read_delimited: {delimiter: ','}\n")
    (root / "lnk").mkdir()
    (root / "lnk" / "a.csv").write_text("x,y\n5,6\n")
    r = httpx.put(f"{server.url}/api/v1/datastores/studio_prev_ds", timeout=30,
                  json={"name": "studio_prev_ds", "type": "local", "path": str(root)})
    assert r.status_code in (200, 201), r.text
    for name, typ, folder in (("studio_prev_mlt", "mltable", "mlt"), ("studio_prev_lnk", "uri_folder", "lnk")):
        cli("data", "create", "--name", name, "--version", "1", "--type", typ,
            "--path", f"azureml://datastores/studio_prev_ds/paths/{folder}", check=True)
    r = _page(server.url, "/data/studio_prev_mlt")  # the right value first: the table inside the asset
    assert r.status_code == 200 and "<td>3</td>" in r.text, r.text[-2000:]
    assert _page(server.url, "/data/studio_prev_lnk").status_code == 200
    # the folder changes after registration
    for bad in ("../secret_tok.txt", "../../secret_tok.txt", str(secret), "/etc/passwd"):
        (root / "mlt" / "MLTable").write_text(f"paths:\n  - file: {bad}\ntransformations:\n"
                                              "  - read_delimited: {delimiter: ',', header: no_header}\n")
        r = _page(server.url, "/data/studio_prev_mlt")
        assert r.status_code == 400, (bad, r.text[-1500:])
        assert "tok_secret_value_zz9" not in r.text and "root:x" not in r.text
        assert bad.replace("/", "") in r.text.replace("/", "").replace("&#39;", "'") or "absolute" in r.text, bad
    (root / "mlt" / "innerlink.csv").symlink_to(secret)
    (root / "mlt" / "MLTable").write_text("paths:\n  - file: ./innerlink.csv\n")
    r = _page(server.url, "/data/studio_prev_mlt")
    assert r.status_code == 400 and "innerlink.csv" in r.text and "tok_secret_value_zz9" not in r.text
    (root / "mlt" / "MLTable").write_text("paths:\n  - pattern: ./*.csv\n")
    r = _page(server.url, "/data/studio_prev_mlt")
    assert r.status_code == 400 and "tok_secret_value_zz9" not in r.text
    (root / "mlt" / "MLTable").write_text("paths:\n  - file: https://example.invalid/x.csv\n")
    r = _page(server.url, "/data/studio_prev_mlt")
    assert r.status_code == 400 and "example.invalid" in r.text
    (root / "lnk" / "a.csv").unlink()
    (root / "lnk" / "a.csv").symlink_to(secret)
    r = _page(server.url, "/data/studio_prev_lnk")
    assert r.status_code == 400 and "a.csv" in r.text and "tok_secret_value_zz9" not in r.text
    (root / "one.csv").write_text("p,q\n7,8\n")
    cli("data", "create", "--name", "studio_prev_file", "--version", "1", "--type", "uri_file",
        "--path", "azureml://datastores/studio_prev_ds/paths/one.csv", check=True)
    assert _page(server.url, "/data/studio_prev_file").status_code == 200
    (root / "one.csv").unlink()
    (root / "one.csv").symlink_to(secret)  # a uri_file replaced by a link out of the datastore
    r = _page(server.url, "/data/studio_prev_file")
    assert r.status_code == 400 and "one.csv" in r.text and "tok_secret_value_zz9" not in r.text


def test_rerun_of_a_pipeline_and_of_its_step(server, cli, tmp_path):
    """Regressions (review 15, F14/F15): rerunning a pipeline failed ("field 'steps': unknown field");
    rerunning a step made a child of the finished pipeline, canceled at once. Now: a new pipeline with
    the same jobs; the step as a standalone job (no parent, no pipeline tags or properties) that runs."""
    (tmp_path / "pipe.yml").write_text(textwrap.dedent("""\
        type: pipeline
        experiment_name: studio-rerun-pipe
        settings: {default_compute: local}
        jobs:
          only_step:
            type: command
            command: echo rerun-step-ran
            environment: azureml:AzureML-sklearn-1.5@latest
        """))
    job = cli("job", "create", "--file", str(tmp_path / "pipe.yml"), "-o", "json", check=True).json()["name"]
    cli("job", "stream", "--name", job, timeout=300)
    api = f"{server.url}/api/v1/jobs"
    post = {"headers": {"Origin": server.url}, "json": {}, "timeout": 60}
    assert httpx.get(f"{api}/{job}", timeout=30).json()["status"] == "Completed"
    r = httpx.post(f"{api}/{job}/rerun", **post)
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["type"] == "pipeline" and again["name"] != job and set(again["jobs"]) == {"only_step"}
    step = f"{job}-only_step"
    original = httpx.get(f"{api}/{step}", timeout=30).json()
    assert original["parent_job_name"] == job
    r = httpx.post(f"{api}/{step}/rerun", **post)
    assert r.status_code == 200, r.text
    new = r.json()["name"]
    deadline = time.monotonic() + 240
    while True:
        got = httpx.get(f"{api}/{new}", timeout=30).json()
        if got["status"] in ("Completed", "Failed", "Canceled") or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert got["status"] == "Completed", got
    assert not got.get("parent_job_name") and got["command"] == "echo rerun-step-ran"
    assert not {"openaml.pipeline", "openaml.node"} & set(got.get("tags") or {})
    assert not {"azureml.isreused", "openaml.reason"} & set(got.get("properties") or {})
    assert new not in _page(server.url, f"/jobs/{job}").text  # not among the old pipeline's child jobs
    listing = _page(server.url, "/jobs?per_page=500").text
    assert new in listing  # a top-level job, listed
    import re

    row = re.search(rf'<tr>\s*<td><a href="/jobs/{job}">.*?</tr>', listing, re.S)
    assert row and "<td>local</td>" in row.group(0), "review 15, F7: the pipeline's compute is shown"
    cli("job", "cancel", "--name", again["name"])
    # a pipeline whose nodes name registered components, with inputs and settings, reruns too
    (tmp_path / "comp.yml").write_text(textwrap.dedent("""\
        name: studio_rerun_comp
        version: "1"
        type: command
        inputs: {n: {type: integer, default: 1}}
        command: echo ${{inputs.n}}
        environment: azureml:AzureML-sklearn-1.5@latest
        """))
    cli("component", "create", "--file", str(tmp_path / "comp.yml"), check=True)
    (tmp_path / "pipe2.yml").write_text(textwrap.dedent("""\
        type: pipeline
        experiment_name: studio-rerun-pipe
        settings: {default_compute: local, continue_on_step_failure: false}
        inputs: {count: 3}
        jobs:
          a:
            component: azureml:studio_rerun_comp@latest
            inputs:
              n: ${{parent.inputs.count}}
          b:
            component: azureml:studio_rerun_comp:1
        """))
    job2 = cli("job", "create", "--file", str(tmp_path / "pipe2.yml"), "-o", "json", check=True).json()["name"]
    r = httpx.post(f"{api}/{job2}/rerun", **post)
    assert r.status_code == 200, r.text
    assert set(r.json()["jobs"]) == {"a", "b"} and r.json()["inputs"]["count"] in (3, {"type": "integer", "value": 3},
                                                                                 {"value": 3})
    for n in (job2, r.json()["name"]):
        cli("job", "cancel", "--name", n)


def test_a_model_page_lists_the_batch_deployments_using_it(server, batch_endpoint):
    """Regression (review 15, F8): only online deployments were listed ("Deployments using it: none")."""
    import re

    deps = _api(server, "GET", "/api/v1/batch-endpoints/bep-studio/deployments").json()
    deps = deps.get("value", deps) if isinstance(deps, dict) else deps
    assert deps  # (an earlier test of the module may have deleted one of blue and green)
    for d in deps:
        dep, ref = d["name"], d["model"]
        text = (ref if isinstance(ref, str) else f"{ref['name']}:{ref.get('version', '')}").replace("azureml:", "")
        model, _, version = text.partition(":")
        assert model == "bep-studio-model" and version, ref
        r = _page(server.url, f"/models/{model}?version={version}")
        assert r.status_code == 200
        used = re.search(r'<ul id="used-by">(.*?)</ul>', r.text, re.S)
        assert used and f'href="/batch-endpoints/bep-studio/deployments/{dep}"' in used.group(1), r.text[-3000:]
        assert "none" not in used.group(1)


def test_an_experiment_named_with_a_slash_opens_and_paging_keeps_per_page(server, cli, tmp_path):
    """Regressions (review 15, F1, F9): ``/experiments/team/churn`` was a 404; the job list's paging
    and sort links and its filter form dropped ``per_page`` (page 2 opened at 50 a page, empty)."""
    import html
    import re

    names = []
    for i in range(3):
        (tmp_path / f"j{i}.yml").write_text(textwrap.dedent(f"""\
            type: command
            command: echo slash-{i}
            experiment_name: studio-team/churn
            environment: azureml:AzureML-sklearn-1.5@latest
            """))
        names.append(cli("job", "create", "--file", str(tmp_path / f"j{i}.yml"), "-o", "json", check=True).json()["name"])
    listing = _page(server.url, "/experiments").text
    assert 'href="/experiments/studio-team/churn"' in listing
    for path in ("/experiments/studio-team/churn", "/experiments/studio-team%2Fchurn"):
        r = _page(server.url, path)
        assert r.status_code == 200 and all(n in r.text for n in names), path
    r = _page(server.url, "/jobs?experiment=studio-team/churn&per_page=2")
    assert r.status_code == 200 and "page 1 of 2" in r.text
    links = [html.unescape(h) for h in re.findall(r'href="(/jobs\?[^"]*)"', r.text)]
    assert links and all("per_page=2" in h and "experiment=studio-team%2Fchurn" in h for h in links), links
    nxt = html.unescape(re.search(r'href="([^"]*)" rel="next"', r.text).group(1))
    page2 = _page(server.url, nxt).text
    assert "page 2 of 2" in page2 and sum(n in page2 for n in names) == 1
    assert '<input type="hidden" name="per_page" value="2">' in r.text
    for n in names:
        cli("job", "cancel", "--name", n)


def test_sweep_metric_by_trial_chart_is_in_trial_order(server, cli, tmp_path):
    """Regression (review 15, F17): "score by trial" drew the trials best-first (always a falling
    line); now x is the trial number, one marker per trial titled with its name, the best marked."""
    import re

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "t.py").write_text("import sys, mlflow\nx = float(sys.argv[1])\n"
                                           "mlflow.log_metric('score', x * 2)\n")
    (tmp_path / "s.yml").write_text(textwrap.dedent("""\
        type: sweep
        compute: azureml:local
        sampling_algorithm: grid
        search_space: {x: {type: choice, values: [0.1, 0.5, 0.3]}}
        objective: {goal: maximize, primary_metric: score}
        limits: {max_total_trials: 3, max_concurrent_trials: 3}
        trial:
          code: src
          command: python t.py ${{search_space.x}}
          environment: azureml:AzureML-sklearn-1.5@latest
        """))
    name = cli("job", "create", "--file", str(tmp_path / "s.yml"), "-o", "json", check=True).json()["name"]
    cli("job", "stream", "--name", name, timeout=300)
    trials = httpx.get(f"{server.url}/api/v1/jobs/{name}", timeout=30).json()["trials"]
    assert len(trials) == 3 and all(isinstance(t["metric"], float) for t in trials)
    by_index = [t["name"] for t in sorted(trials, key=lambda t: t["index"])]
    best = max(trials, key=lambda t: t["metric"])["name"]
    page = _page(server.url, f"/jobs/{name}").text
    marks = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="(\d)" class="trial-mark( best)?"[^>]*><title>([^<:]+): ',
                       page)
    assert [m[4] for m in marks] == by_index, marks
    assert [float(m[0]) for m in marks] == sorted(float(m[0]) for m in marks)  # left to right by trial number
    assert [m[4] for m in marks if m[3]] == [best]
    table = re.search(r'<table class="grid" id="trials-table">.*?</table>', page, re.S).group(0)
    assert "None" not in table  # review 15, F6: Python's None and unit-less seconds
    assert len(re.findall(r"<td>(?:\d+\.\d+s|\d+m \d\ds)</td>", table)) == 3, table
    value = {t["name"]: t["metric"] for t in trials}
    ys = [float(m[1]) for m in marks]  # SVG y grows downwards: a higher score is drawn higher (smaller y)
    for i in range(len(by_index) - 1):
        a, b = by_index[i], by_index[i + 1]
        assert (value[a] > value[b]) == (ys[i] < ys[i + 1]), (a, b)


def test_an_output_link_is_listed_as_a_link_not_stat_through(server, hostile_job, tmp_path):
    """Regression (review 15, F19): the output listing showed the size of a link's target outside."""
    import re

    target = tmp_path / "outside_secret.txt"
    target.write_text("s" * 12345)
    found = [p for p in Path(server.path).rglob("<script>f.txt")
             if hostile_job in p.parts and "mlartifacts" in p.parts]  # the run's artifact store
    assert found
    link = found[0].parent / "lnk_out.txt"
    link.symlink_to(target)
    try:
        page = _page(server.url, f"/jobs/{hostile_job}/files/artifacts/outputs").text
        row = re.search(r"<tr><td><a [^>]*>lnk_out.txt</a></td><td>(.*?)</td>", page)
        assert row and "link" in row.group(1) and "12345" not in page, page[-2000:]
        r = _page(server.url, f"/jobs/{hostile_job}/files/artifacts/outputs/lnk_out.txt?download=1")
        assert r.status_code == 400 and "s" * 100 not in r.text
    finally:
        link.unlink()


def test_a_missing_version_is_named_as_a_version_and_an_empty_one_is_the_latest(server, cli, tmp_path):
    """Regression (review 15, F3): ``?version=99`` of an existing asset said there was no such asset,
    and an empty ``?version=`` (a GET form's) was a 404 instead of the latest."""
    (tmp_path / "v.csv").write_text("a\n1\n")
    cli("data", "create", "--name", "studio_ver_q", "--version", "3", "--type", "uri_file", "--path",
        str(tmp_path / "v.csv"), check=True)
    r = _page(server.url, "/data/studio_ver_q?version=99")
    assert r.status_code == 404 and "data asset &#39;studio_ver_q&#39; has no version &#39;99&#39;" in r.text
    assert 'href="/data/studio_ver_q"' in r.text and "There is no data asset" not in r.text
    r = _page(server.url, "/data/studio_ver_q?version=")
    assert r.status_code == 200 and "studio_ver_q" in r.text
    r = _page(server.url, "/data/studio_ver_nope?version=1")
    assert r.status_code == 404 and "There is no data asset &#39;studio_ver_nope&#39;" in r.text
    r = _page(server.url, "/models/studio_ver_nope_model?version=2")
    assert r.status_code == 404 and "There is no model" in r.text


def test_datastore_browse_outside_or_of_a_file_is_a_400_page(server):
    """Regression (review 15, F5): a 200 listing "empty" with a Python exception name in it."""
    for bad in ("..%2F..%2F", "%2Fetc"):
        r = _page(server.url, f"/datastores/workspaceblobstore/browse/{bad}")
        assert r.status_code == 400 and "Bad request" in r.text and "PathEscapeError" not in r.text, bad
        assert 'href="/datastores/workspaceblobstore"' in r.text


def test_a_server_without_auth_offers_no_sign_out(server):
    """Regression (review 15, F11): a tokenless loopback server showed "sign out", which led to a login
    page saying a token was needed."""
    page = _page(server.url, "/jobs").text
    assert "(Owner)" in page and 'action="/logout"' not in page
    login = _page(server.url, "/login").text
    assert "answers its own OS user" in login and "This server needs a token" not in login


def test_traffic_naming_an_unknown_deployment_is_refused_even_at_zero(server):
    """Regression (review 15, F12): the traffic form's ``{"blue": 100, "ghost": 0}`` was accepted."""
    r = _api(server, "PUT", "/api/v1/online-endpoints/studio-traffic-ep", {"name": "studio-traffic-ep"})
    assert r.status_code in (200, 201), r.text
    r = _api(server, "PUT", "/api/v1/online-endpoints/studio-traffic-ep",
              {"name": "studio-traffic-ep", "traffic": {"ghost": 0}})
    assert r.status_code == 400 and "ghost" in r.json()["error"]["message"], r.text
    r = _api(server, "PUT", "/api/v1/online-endpoints/studio-traffic-ep",
              {"name": "studio-traffic-ep", "description": "still updatable"})
    assert r.status_code == 200, r.text
    _api(server, "DELETE", "/api/v1/online-endpoints/studio-traffic-ep")


def test_a_dashboard_file_that_is_a_link_is_not_read(tmp_path):
    """Hardening (review 15, F19): a job output's link is never read through by the server."""
    from openaml.server.studio._rai_data import SCHEMA, load_dashboard

    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"schema": SCHEMA, "title": "secret-title"}))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "dashboard.json").symlink_to(target)
    with pytest.raises(ValueError, match="is a link"):
        load_dashboard(tmp_path / "out" / "dashboard.json")
    assert load_dashboard(target)["title"] == "secret-title"
