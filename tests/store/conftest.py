"""Backends for the store's contract suite: SQLite (a temp file) and PostgreSQL.

PostgreSQL comes from ``OPENAML_TEST_POSTGRES_URL`` (``eval "$(scripts/start-postgres.sh)"`` sets
it). Without it the postgres tests skip with that advice; under ``CI=true`` they fail instead, so
CI cannot silently stop testing PostgreSQL.

Isolation: one uniquely named database per test module (created with psycopg, dropped with
``WITH (FORCE)`` afterwards) and, inside it, a fresh schema per test, reached through the URL's
``search_path``: every test starts from an empty database, at the cost of a ``CREATE SCHEMA``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL, make_url

from openaml.store import MetadataStore

POSTGRES_ENV = "OPENAML_TEST_POSTGRES_URL"
# PostgreSQL sessions run in a non-UTC zone, as a server configured for local time would: the
# store must still hand back UTC datetimes.
PG_SESSION_TIMEZONE = "America/New_York"

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def postgres_admin_url() -> URL:
    """The server URL from the environment, or skip (locally) / fail (CI) with the fix."""
    raw = os.environ.get(POSTGRES_ENV, "").strip()
    if not raw:
        msg = (f"{POSTGRES_ENV} is not set; start a test server with "
               f"`eval \"$(scripts/start-postgres.sh)\"` to run the PostgreSQL tests")
        if _in_ci():
            pytest.fail(f"{msg} (CI=true: PostgreSQL tests must run in CI, not skip)", pytrace=False)
        pytest.skip(msg)
    return make_url(raw)


def _libpq(url: URL) -> str:
    """A libpq connection string (psycopg's) for a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def pg_database(request: pytest.FixtureRequest) -> Iterator[URL]:
    """A database of its own for this test module, dropped afterwards."""
    import psycopg
    from psycopg import sql

    admin = postgres_admin_url()
    module = request.module.__name__.rsplit(".", 1)[-1][:30]
    name = f"openaml_{module}_{uuid.uuid4().hex[:8]}".lower()
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin.set(database=name)
    finally:
        with psycopg.connect(_libpq(admin), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def fresh_postgres_schema(database: URL) -> str:
    """Create an empty schema in ``database``; return a store URL whose connections use only it."""
    import psycopg
    from psycopg import sql

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(database), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    options = f"-csearch_path={schema} -ctimezone={PG_SESSION_TIMEZONE}"
    return database.update_query_dict({"options": options}).render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """The URL of an empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    return fresh_postgres_schema(request.getfixturevalue("pg_database"))


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    """A started store on an empty database."""
    s = MetadataStore(store_url).start()
    try:
        yield s
    finally:
        s.close()
