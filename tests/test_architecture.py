"""Structure that must hold: no package import cycle, a light SDK and CLI, a described API.

The import graph counts imports inside functions (scripts/module_sizes.py); the SDK and the CLI
are checked in fresh interpreters for what they pull in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def _fresh(code: str, env: dict[str, str] | None = None) -> Any:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_no_package_import_cycle() -> None:
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "module_sizes.py"), "--check"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_sdk_and_loaders_do_not_import_the_server_side() -> None:
    """The client (MLClient, load_*, dsl) never imports services, the store, SQLAlchemy or MLflow."""
    loaded = _fresh(
        "import json, sys\n"
        "from openaml import MLClient, command, dsl, load_job, load_schedule, load_component\n"
        "import openaml.sdk._schedules, openaml.sdk._sweeps, openaml.sdk._pipelines\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'mlflow', 'alembic')"
        " or m.startswith(('openaml.services', 'openaml.store', 'openaml.server')))))")
    assert loaded == []


def test_cli_job_list_imports_only_what_it_runs(tmp_path: Path) -> None:
    """``openaml job list -o json`` builds the job noun only, reads command jobs only, and never
    imports rich, the sweep/pipeline/endpoint entities or anything server-side. Its own workspace,
    holding command jobs only (on the session's server another test's pipeline job is listed, and
    its entity imported to show it, as it should be)."""
    from openaml import MLClient, command
    from tests.conftest import start_server

    handle = start_server(tmp_path / "ws", name="lean-list")
    try:
        with MLClient(workspace=handle.url) as ml:
            ml.jobs.create_or_update(command(command="echo listed"))
        _lean_job_list(handle.url)
    finally:
        handle.stop()


def _lean_job_list(url: str) -> None:
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from openaml.cli import build_app, lean_process\n"
        "lean_process('job')\n"
        "r = CliRunner().invoke(build_app('job'), ['job', 'list', '-o', 'json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "names = ('rich.table', 'rich.console', 'sqlalchemy', 'mlflow', 'openaml.services', 'openaml.entities._sweep',"
        " 'openaml.entities._pipeline', 'openaml.entities._endpoint', 'openaml.cli._model', 'openaml.cli._data')\n"
        "print(json.dumps([n for n in names if n in sys.modules]))")
    import os

    assert _fresh(code, env={**os.environ, "OPENAML_WORKSPACE": url}) == []


def test_cli_lists_every_noun_in_help(cli: Any) -> None:
    out = cli("--help", check=True).stdout
    for noun in ("workspace", "job", "model", "schedule", "online-endpoint", "online-deployment"):
        assert noun in out


def test_openapi_describes_every_json_get_route(server: Any) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    untyped, typed = [], 0
    for path, item in spec["paths"].items():
        op = item.get("get")
        if not path.startswith("/api/v1") or op is None:
            continue
        content = op["responses"].get("200", {}).get("content", {})
        if "application/json" not in content:
            continue
        schema = content["application/json"].get("schema", {})
        ok = "$ref" in schema or "$ref" in schema.get("items", {})
        typed += ok
        if not ok:
            untyped.append(path)
    assert typed >= 25 and untyped == [], untyped
    job = spec["components"]["schemas"]["JobOut"]["properties"]
    assert {"name", "status", "log_tail", "status_history", "creation_context"} <= set(job)
    # request bodies: one schema per noun
    bodies = {path: item[m]["requestBody"]["content"]["application/json"]["schema"].get("$ref", "").rsplit("/", 1)[-1]
              for path, item in spec["paths"].items() for m in ("post", "put") if "requestBody" in item.get(m, {})
              and "application/json" in item[m]["requestBody"]["content"]}
    assert bodies["/api/v1/jobs"] == "JobIn" and bodies["/api/v1/schedules/{name}"] == "ScheduleIn"
    assert bodies["/api/v1/online-endpoints/{name}/deployments/{deployment}"] == "OnlineDeploymentIn"
    assert "command" in spec["components"]["schemas"]["JobIn"]["properties"]


def test_wire_record_keeps_the_service_keys_in_order() -> None:
    """A response schema writes what it was given: same keys, same order, extras kept, no defaults
    added, strings and datetimes left as they were (the SDK reads the wire as before)."""
    from openaml.server._schemas import JobOut

    when = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)
    given = {"tags": {"n": 1}, "name": "j", "custom": [1, {"x": None}], "created_at": when,
             "creation_context": {"created_at": "2026-01-02T03:04:05+00:00", "extra": True}, "exit_code": None}
    out = json.loads(JobOut.model_validate(given).model_dump_json())
    assert list(out) == list(given)
    assert out["custom"] == [1, {"x": None}] and out["tags"] == {"n": 1} and out["exit_code"] is None
    assert out["created_at"] == "2026-01-02T03:04:05.000678Z"
    assert out["creation_context"] == {"created_at": "2026-01-02T03:04:05+00:00", "extra": True}


def test_job_over_http_has_no_key_the_service_did_not_give(ml_client: Any, server: Any) -> None:
    from openaml import command

    job = ml_client.jobs.create_or_update(command(command="echo typed", experiment_name="typed-api"))
    raw = httpx.get(f"{server.url}/api/v1/jobs/{job.name}").json()
    assert "parent_job_name" not in raw and "description" not in raw  # declared by JobOut, not in the record
    assert raw["name"] == job.name and raw["created_at"].endswith("Z")


def test_a_record_the_schema_does_not_describe_is_sent_unchanged() -> None:
    """A field whose shape changed (here exit_code as text, a status entry without status) must not
    turn a working route into a 500: the record goes out as the service made it."""
    import warnings

    from openaml.server._schemas import JobOut

    given = {"name": "j", "exit_code": "killed", "status_history": [{"when": 1}], "extra": {"a": [1]}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic notes the unexpected types while serializing
        out = json.loads(JobOut.model_validate(given).model_dump_json())
    assert out == given and list(out) == list(given)
