"""Upgrading a database of the previous release (schema 0003, before users and secrets at rest).

``tests/data/frozen-0003/`` was written by that release's own code (``scripts/frozen_workspace.py``
rebuilds it from the older commit): a cloud datastore with an account key and an online endpoint
with its keys, both stored in clear then; data, environment and component assets; a command, a
sweep and a pipeline job (ended); a disabled schedule. ``expected.json`` holds every row as that
database has it.

The current server starts on a copy and must: upgrade the schema to the head, keep every row with
its values, seal the secrets (no clear value left in the database file or rows; the same values
come back decrypted), and serve all of it through the API (the real SDK). The same for PostgreSQL
from ``postgres.sql`` (``pg_dump --inserts`` of the same release's store on PostgreSQL).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from openaml.store import SecretBox
from tests.conftest import REPO, start_server
from tests.contracts.conftest import libpq
from tests.contracts.test_migrations import _current, _head

FROZEN = REPO / "tests" / "data" / "frozen-0003"
ACCOUNT_KEY = "frozen account key: AK-0003!"  # scripts/frozen_workspace.py


def _expected(name: str) -> dict[str, list[dict[str, Any]]]:
    return json.loads((FROZEN / name).read_text())


def _clear_secrets(expected: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The secrets the old release stored in clear: the account key and every endpoint key."""
    keys = [ACCOUNT_KEY]
    for row in expected["online_endpoints"]:
        auth = row["auth"] if isinstance(row["auth"], dict) else json.loads(row["auth"])
        keys += list(auth.values())
    return keys


def _value(v: Any, box: SecretBox | None) -> Any:
    """A column value compared across versions: JSON text parsed, sealed strings opened."""
    if isinstance(v, str) and v[:1] in "{[":
        try:
            v = json.loads(v)
        except ValueError:
            pass
    return box.open_tree(v) if box is not None else v


def _compare(expected: dict[str, list[dict[str, Any]]], actual: dict[str, list[dict[str, Any]]],
             box: SecretBox) -> None:
    """Every expected row is in ``actual`` with the same values (secrets compared decrypted); rows the
    new server adds (its job-token secret in ``workspace_meta``) are allowed."""
    for table, rows in expected.items():
        if table == "alembic_version":
            continue
        got = [{k: _value(v, box) for k, v in r.items()} for r in actual[table]]
        for old in rows:
            want = {k: _value(v, None) for k, v in old.items()}
            same = [r for r in got if all(r.get(k) == v for k, v in want.items())]
            assert len(same) == 1, (f"{table}: the row {want} is not kept by the upgrade; "
                                    f"rows after it: {got}")
        assert len(got) >= len(rows)


def _check_api(url: str, expected: dict[str, list[dict[str, Any]]]) -> None:
    """The server lists what the old release stored, through the SDK."""
    from openaml import MLClient

    endpoint_auth = json.loads(expected["online_endpoints"][0]["auth"]) if isinstance(
        expected["online_endpoints"][0]["auth"], str) else expected["online_endpoints"][0]["auth"]
    with MLClient(workspace=url) as ml:
        assert sorted(d.name for d in ml.datastores.list()) == ["archive", "workspaceblobstore"]
        archive = ml.datastores.get("archive")
        assert (archive.type, archive.account_name, archive.container_name) == ("azure_blob", "frozenacct", "data")
        assert sorted(str(d.version) for d in ml.data.list(name="iris")) == ["1", "2"]
        assert ml.data.get("iris", version="1").description == "frozen data"
        assert ml.environments.get("frozen-env", version="3").image == "python:3.11-slim"
        assert ml.components.get("frozen_step", version="1").command == "echo ${{inputs.n}}"
        jobs = {j.name: j.status for j in ml.jobs.list()}
        assert {k: jobs.get(k) for k in ("frozen_command", "frozen_sweep", "frozen_pipeline")} == {
            "frozen_command": "Completed", "frozen_sweep": "Failed", "frozen_pipeline": "Canceled"}
        command = ml.jobs.get("frozen_command")
        assert (command.type, command.command, command.display_name) == ("command", "echo hi", "frozen command")
        assert ml.jobs.get("frozen_sweep").type == "sweep" and ml.jobs.get("frozen_pipeline").type == "pipeline"
        assert [e.name for e in ml.online_endpoints.list()] == ["frozen-ep"]
        keys = ml.online_endpoints.get_keys("frozen-ep")
        assert (keys.primary_key, keys.secondary_key) == (endpoint_auth["primary_key"],
                                                          endpoint_auth["secondary_key"])
        schedule = ml.schedules.get("frozen_schedule")
        assert schedule.is_enabled is False and schedule.trigger.expression == "0 3 * * 1"


def _sqlite_rows(db: Path) -> dict[str, list[dict[str, Any]]]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [dict(r) for r in conn.execute(f'SELECT * FROM "{t}" ORDER BY 1')] for t in tables}


def _upgrade_through_the_server(ws: Path, url: str, expected: dict[str, Any], *, name: str,
                                env: dict[str, str] | None = None) -> None:
    """Start the current server on the old database (it migrates at start), check what the API
    lists, stop it; the schema is then at head."""
    server = start_server(ws, name=name, create=False, env=env)
    try:
        _check_api(server.url, expected)
    finally:
        server.stop()
    revision, tables = _current(url)
    assert revision == _head() and "users" in tables


@pytest.mark.backend("sqlite")
def test_sqlite_database_of_the_previous_release_is_upgraded(tmp_path: Path) -> None:
    expected = _expected("expected.json")
    secrets = _clear_secrets(expected)
    ws = tmp_path / "ws"
    ws.mkdir()
    for name in ("openaml.db", "workspace.json"):
        shutil.copyfile(FROZEN / name, ws / name)
    db = ws / "openaml.db"
    url = f"sqlite:///{db}"
    assert _current(url)[0] == "0003"
    assert all(s.encode() in db.read_bytes() for s in secrets), "the frozen file holds the secrets in clear"

    _upgrade_through_the_server(ws, url, expected, name="frozen")
    _compare(expected, _sqlite_rows(db), SecretBox(ws / "secret.key"))
    leftovers = [p.name for p in ws.glob("openaml.db*") for s in secrets if s.encode() in p.read_bytes()]
    assert leftovers == [], "a secret is still in clear in the database files"


@pytest.mark.postgres
@pytest.mark.backend("postgres")
def test_postgres_database_of_the_previous_release_is_upgraded(tmp_path: Path, pg_database: Any) -> None:
    import psycopg
    from psycopg.rows import dict_row

    expected = _expected("expected-postgres.json")
    secrets = _clear_secrets(expected)
    with psycopg.connect(libpq(pg_database), autocommit=True) as conn:  # the dump makes the public schema
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute((FROZEN / "postgres.sql").read_text())
    url = pg_database.render_as_string(hide_password=False)
    assert _current(url)[0] == "0003"

    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copyfile(FROZEN / "workspace.json", ws / "workspace.json")
    _upgrade_through_the_server(ws, url, expected, name="frozen-pg", env={"OPENAML_DATABASE_URL": url})
    with psycopg.connect(libpq(pg_database), row_factory=dict_row) as conn:
        actual = {t: [{k: (v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
                      for r in conn.execute(f'SELECT * FROM public."{t}" ORDER BY 1')] for t in expected}
        raw = conn.execute("SELECT auth::text FROM public.online_endpoints").fetchall()
        raw += conn.execute("SELECT spec::text FROM public.datastores").fetchall()
    _compare(expected, actual, SecretBox(ws / "secret.key"))
    assert [s for s in secrets if s in repr(raw)] == [], "a secret is still in clear in the database"
