"""One workspace served by two servers sharing PostgreSQL (issue 12 item 4).

Two workspace folders with their own ``$OPENAML_HOME`` stand for two hosts. The first creates the
workspace on the database (``workspace create --database-url``), the second joins it with the
first's ``secret.key``. Both serve the API; one leads (runs the scheduler), the other stands by and
takes over when the leader stops. Real servers, the real CLI and SDK, a real PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import start_server
from tests.contracts.conftest import fresh_postgres_schema

pytestmark = [pytest.mark.postgres, pytest.mark.backend("postgres")]


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAML_HOME": str(home)}
    env.pop("OPENAML_WORKSPACE", None)
    env.pop("OPENAML_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "openaml", *args], env=env, capture_output=True, text=True,
                          timeout=180)


def _health(url: str, ws: Path) -> dict[str, Any]:
    token = (ws / "server.token").read_text().strip() if (ws / "server.token").exists() else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}/health", headers=headers, timeout=30).json()


def test_two_servers_on_one_postgres_workspace_one_leads_the_other_takes_over(tmp_path: Path,
                                                                               pg_database: Any) -> None:
    from openaml import MLClient, command

    url = fresh_postgres_schema(pg_database)
    home_a, home_b = tmp_path / "host-a", tmp_path / "host-b"
    ws_a, ws_b = tmp_path / "a" / "ws", tmp_path / "b" / "ws"
    r = _cli(home_a, "workspace", "create", "-n", "team", "--path", str(ws_a), "--database-url", url)
    assert r.returncode == 0, r.stderr
    recorded = json.loads((ws_a / "database.json").read_text())
    assert recorded == {"database_url": url} and oct((ws_a / "database.json").stat().st_mode)[-3:] == "600"

    # joining is checked before anything is written: another name, or no key
    r = _cli(home_b, "workspace", "create", "-n", "other", "--path", str(ws_b), "--database-url", url)
    assert r.returncode != 0 and "holds workspace 'team'" in r.stderr, r.stderr
    r = _cli(home_b, "workspace", "create", "-n", "team", "--path", str(ws_b), "--database-url", url)
    assert r.returncode != 0 and "--secret-key-file" in r.stderr, r.stderr
    assert not ws_b.exists()
    r = _cli(home_b, "workspace", "create", "-n", "team", "--path", str(ws_b), "--database-url", url,
             "--secret-key-file", str(ws_a / "secret.key"))
    assert r.returncode == 0, r.stderr
    assert json.loads((ws_b / "workspace.json").read_text())["id"] == json.loads(
        (ws_a / "workspace.json").read_text())["id"]

    a = start_server(ws_a, create=False, env={"OPENAML_HOME": str(home_a)})
    b = None
    try:
        b = start_server(ws_b, create=False, env={"OPENAML_HOME": str(home_b)})
        health_a, health_b = _health(a.url, ws_a), _health(b.url, ws_b)
        assert (health_a["role"], health_a["leader"]) == ("leader", a.url), health_a
        assert (health_b["role"], health_b["leader"]) == ("standby", a.url), health_b

        # a job sent to the standby server runs (the leader's scheduler starts it); both see it
        with MLClient(workspace=b.url) as ml_b:
            job = ml_b.jobs.create_or_update(command(command="echo from-b", experiment_name="team-ws"))
            assert ml_b.jobs.wait(job.name, timeout=240).status == "Completed"
        with MLClient(workspace=a.url) as ml_a:
            assert ml_a.jobs.get(job.name).status == "Completed"
        # online endpoints are served by the leader: the standby refuses changes, naming it
        r = httpx.put(f"{b.url}/api/v1/online-endpoints/refused", json={"name": "refused", "auth_mode": "key"},
                      timeout=30)
        assert r.status_code == 409 and a.url in r.json()["error"]["message"], r.text
        # and scoring requests sent to the standby are redirected to the leader (307 keeps the body)
        r = httpx.post(f"{b.url}/endpoints/any/score?verbose=1", json={"data": [1]}, timeout=30)
        assert (r.status_code, r.headers["location"]) == (307, f"{a.url}/endpoints/any/score?verbose=1"), r.text

        # the leader stops: the standby takes the lead within a few seconds and runs the next job
        a.stop()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _health(b.url, ws_b)["role"] != "leader":
            time.sleep(0.5)
        assert _health(b.url, ws_b) == {"status": "ok", "workspace": "team", "role": "leader", "leader": b.url}
        with MLClient(workspace=b.url) as ml_b:
            job2 = ml_b.jobs.create_or_update(command(command="echo after-failover", experiment_name="team-ws"))
            assert ml_b.jobs.wait(job2.name, timeout=240).status == "Completed"
    finally:
        a.stop()
        if b is not None:
            b.stop()


def test_a_folder_of_another_workspace_is_refused_by_the_database(tmp_path: Path, pg_database: Any) -> None:
    """A server whose folder is another workspace than the one the database holds does not start
    (it would mix two workspaces' rows), and says which workspace the database holds."""
    url = fresh_postgres_schema(pg_database)
    home = tmp_path / "home"
    assert _cli(home, "workspace", "create", "-n", "first", "--path", str(tmp_path / "first"),
                "--database-url", url).returncode == 0
    assert _cli(home, "workspace", "create", "-n", "second", "--path", str(tmp_path / "second")).returncode == 0
    env = {**os.environ, "OPENAML_HOME": str(home), "OPENAML_DATABASE_URL": url}
    r = subprocess.run([sys.executable, "-m", "openaml", "server", "-w", str(tmp_path / "second")], env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode != 0
    assert "holds workspace 'first'" in r.stderr and "not this folder's workspace 'second'" in r.stderr, r.stderr
