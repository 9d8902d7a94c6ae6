"""Build the frozen workspace of a previous release for the migration test (tests/contracts/test_frozen_database.py).

    .venv/bin/python scripts/frozen_workspace.py                      # SQLite: tests/data/frozen-0003/
    .venv/bin/python scripts/frozen_workspace.py --postgres URL       # also the PostgreSQL dump (pg_dump on PATH
                                                                      # or under /usr/lib/postgresql/*/bin)

It exports ``src/`` of an older commit of this repository (``--commit``, default: the commit before
migration 0004_users_secrets, whose head is 0003) with ``git archive``, and runs that version's
own code in a subprocess (``PYTHONPATH=<old src>``, this virtualenv's packages): create a
workspace, build the server's context (store start = migrations of that release) and create,
through that release's services, what a user would have made: a cloud datastore with an account
key (stored in clear by that release), data, environment and component assets, a command, a sweep
and a pipeline job (ended Completed / Failed / Canceled), an online endpoint with its keys (in clear
too) and a disabled schedule. Nothing runs (no scheduler thread is started).

Written to ``--out``: ``openaml.db`` (the metadata store), ``workspace.json``, and ``expected.json``:
every row of every table as that release's database holds it (raw SQL), which the test compares
with the upgraded database. With ``--postgres``, the same is made on PostgreSQL (that release's
metadata store on the server, in a fresh database) and dumped with ``pg_dump --inserts`` to
``postgres.sql`` (plain SQL, loadable statement by statement) plus ``expected-postgres.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_COMMIT = "37bcc86b505a288902264bb1f1f926ec395fa1d1"  # the parent of 32a973a (migration 0004_users_secrets)
DEFAULT_OUT = REPO / "tests" / "data" / "frozen-0003"
# values the test looks for in clear (before) and not in clear (after); no base64 character in them
ACCOUNT_KEY = "frozen account key: AK-0003!"


# ---------------------------------------------------------------------------------------------- under the old code

def populate(ws: Path) -> None:
    """Run with the OLD release's ``openaml`` on sys.path: fill the workspace ``ws``."""
    from openaml._settings import Settings
    from openaml.server._app import build_context

    # (that release's CLI, not its Settings, reads OPENAML_DATABASE_URL)
    ctx = build_context(Settings(workspace=ws, database_url=os.environ.get("OPENAML_DATABASE_URL") or None))
    s = ctx.services
    s["datastores"].create_or_update({
        "name": "archive", "type": "azure_blob", "account_name": "frozenacct", "container_name": "data",
        "description": "cloud datastore kept as metadata", "credentials": {"account_key": ACCOUNT_KEY}})
    folder = ws / "datastores" / "workspaceblobstore" / "frozen"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "iris.csv").write_text("a,b\n1,2\n")
    s["data"].create({"name": "iris", "version": "1", "type": "uri_file", "description": "frozen data",
                      "path": "azureml://datastores/workspaceblobstore/paths/frozen/iris.csv", "tags": {"k": "v"}})
    s["data"].create({"name": "iris", "type": "uri_folder",
                      "path": "azureml://datastores/workspaceblobstore/paths/frozen/"})
    s["environments"].create_or_update({"name": "frozen-env", "version": "3", "image": "python:3.11-slim",
                                        "conda_file": {"dependencies": ["python=3.11", {"pip": ["pyyaml"]}]}})
    s["components"].create_or_update({
        "name": "frozen_step", "version": "1", "type": "command", "command": "echo ${{inputs.n}}",
        "environment": "azureml:AzureML-sklearn-1.5@latest", "inputs": {"n": {"type": "integer", "default": 1}}})

    command = s["jobs"].submit({"name": "frozen_command", "type": "command", "command": "echo hi",
                                "environment": "azureml:AzureML-sklearn-1.5@latest",
                                "experiment_name": "frozen", "display_name": "frozen command",
                                "tags": {"team": "a"}})
    sweep = s["jobs"].submit({
        "name": "frozen_sweep", "type": "sweep", "experiment_name": "frozen",
        "trial": {"command": "echo ${{inputs.lr}}", "environment": "azureml:AzureML-sklearn-1.5@latest"},
        "inputs": {"lr": "${{search_space.lr}}"},
        "search_space": {"lr": {"type": "choice", "values": [0.1, 0.2]}},
        "objective": {"primary_metric": "acc", "goal": "maximize"},
        "sampling_algorithm": "grid", "limits": {"max_total_trials": 2}})
    pipeline = s["jobs"].submit({
        "name": "frozen_pipeline", "type": "pipeline", "experiment_name": "frozen",
        "jobs": {"step": {"type": "command", "component": "azureml:frozen_step:1", "inputs": {"n": 2}}}})
    for job, status in ((command, "Completed"), (sweep, "Failed"), (pipeline, "Canceled")):
        name = job["name"]
        ctx.store.transition_job(name, status)
        ctx.tracking.end_run(name, status)
    for job in ctx.store.list_jobs():  # children the controllers made at submission: ended too
        if job["status"] not in ("Completed", "Failed", "Canceled"):
            ctx.store.transition_job(job["name"], "Canceled")
            ctx.tracking.end_run(job["name"], "Canceled")

    s["endpoints"].create_or_update_endpoint({"name": "frozen-ep", "auth_mode": "key", "description": "frozen",
                                              "tags": {"k": "v"}})
    s["schedules"].create_or_update({
        "name": "frozen_schedule", "trigger": {"type": "cron", "expression": "0 3 * * 1"},
        "create_job": {"type": "command", "command": "echo scheduled",
                       "environment": "azureml:AzureML-sklearn-1.5@latest"}})
    s["schedules"].set_enabled("frozen_schedule", False)
    ctx.store.close()


# ---------------------------------------------------------------------------------------------- driver

def _old_src(commit: str, into: Path) -> Path:
    data = subprocess.run(["git", "-C", str(REPO), "archive", commit, "src"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _run_old(src: Path, ws: Path, home: Path, env: dict[str, str]) -> None:
    full = {**os.environ, **env, "PYTHONPATH": str(src), "OPENAML_HOME": str(home)}
    for key in ("OPENAML_WORKSPACE", *(k for k, v in env.items() if not v)):
        full.pop(key, None)
    subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", "frozen", "--path", str(ws)],
                   check=True, env=full, cwd=src.parent)
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'scripts')!r}); import frozen_workspace as f; "
            f"f.populate(__import__('pathlib').Path({str(ws)!r}))")
    subprocess.run([sys.executable, "-c", code], check=True, env=full, cwd=src.parent)


def _sqlite_rows(db: Path) -> dict[str, list[dict[str, Any]]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                             "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: [dict(r) for r in conn.execute(f'SELECT * FROM "{t}" ORDER BY 1')] for t in tables}


def build_sqlite(src: Path, out: Path, work: Path) -> None:
    ws = work / "ws"
    _run_old(src, ws, work / "home", {"OPENAML_DATABASE_URL": ""})
    db = ws / "openaml.db"
    with sqlite3.connect(db) as conn:  # one self-contained file: WAL folded in, free pages dropped
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("VACUUM")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(db, out / "openaml.db")
    shutil.copyfile(ws / "workspace.json", out / "workspace.json")
    (out / "expected.json").write_text(json.dumps(_sqlite_rows(db), indent=1, sort_keys=True) + "\n")
    assert ACCOUNT_KEY.encode() in (out / "openaml.db").read_bytes(), "the old release stored the key in clear"


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    raise SystemExit(f"{name} not found (install PostgreSQL's client programs)")


def build_postgres(src: Path, out: Path, work: Path, admin_url: str) -> None:
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    admin = make_url(admin_url)
    libpq = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = "openaml_frozen_0003"
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        db_url = admin.set(database=name)
        _run_old(src, work / "pg-ws", work / "pg-home",
                 {"OPENAML_DATABASE_URL": db_url.render_as_string(hide_password=False)})
        db_libpq = db_url.set(drivername="postgresql").render_as_string(hide_password=False)
        dump = subprocess.run([_pg_bin("pg_dump"), "--inserts", "--no-owner", "--no-privileges", "--no-comments",
                               "--schema=public", "-d", db_libpq], check=True, capture_output=True, text=True).stdout
        # psql's meta-commands (\\restrict ...) are not SQL: left out, so any client can load the file
        (out / "postgres.sql").write_text("".join(line for line in dump.splitlines(keepends=True)
                                                  if not line.startswith("\\")))
        with psycopg.connect(db_libpq) as conn:
            conn.row_factory = psycopg.rows.dict_row  # type: ignore[attr-defined]
            tables = [r["tablename"] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
            rows = {t: [{k: _pg_json(v) for k, v in r.items()}
                        for r in conn.execute(sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(t)))]
                    for t in tables}
        (out / "expected-postgres.json").write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _pg_json(v: Any) -> Any:
    """A PostgreSQL value as JSON: datetimes as ISO strings in UTC, JSON columns as they are."""
    from datetime import UTC, datetime

    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat()
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commit", default=DEFAULT_COMMIT, help="the older commit whose code writes the database")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--postgres", metavar="URL", help="also build the PostgreSQL dump on this server "
                                                      "(e.g. $OPENAML_TEST_POSTGRES_URL)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="openaml-frozen-") as tmp:
        work = Path(tmp)
        src = _old_src(args.commit, work / "old")
        build_sqlite(src, args.out, work)
        if args.postgres:
            build_postgres(src, args.out, work, args.postgres)
    print(f"wrote {', '.join(sorted(p.name for p in args.out.iterdir()))} to {args.out}")


if __name__ == "__main__":
    main()
