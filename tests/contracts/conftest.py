"""Shared fixtures of the contract suites: one suite per port, each run over every backend.

Layout: ``tests/contracts/test_<port>_contract.py`` (store, tracking, compute, datastore) plus the
store's schema tests (``test_migrations.py``, ``test_frozen_database.py``). Every test here gets
the ``contracts`` marker, so ``pytest -m contracts`` runs the suites wherever they are collected.

Backends. A suite parametrizes its backend fixture with :func:`backend_params`, whose ids are the
backend names (``sqlite``, ``postgres``, ``local`` ...): each test id then says its backend, and
the end-of-run summary counts passed / skipped / failed tests per backend ("contract suites per
backend"). ``postgres`` params carry the ``postgres`` marker.

PostgreSQL comes from ``OPENAML_TEST_POSTGRES_URL`` (``eval "$(scripts/start-postgres.sh)"`` sets
it). Without it the postgres tests skip with a reason naming that variable and the command; under
``CI=true`` they fail instead, so CI cannot silently stop testing PostgreSQL.

Isolation: one uniquely named database per test module (created with psycopg, dropped with
``WITH (FORCE)`` afterwards) and, inside it, a fresh schema per test, reached through the URL's
``search_path``: every test starts from an empty database, at the cost of a ``CREATE SCHEMA``.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL, make_url

from openaml.store import MetadataStore

POSTGRES_ENV = "OPENAML_TEST_POSTGRES_URL"
# PostgreSQL sessions run in a non-UTC zone, as a server configured for local time would: the
# store must still hand back UTC datetimes.
PG_SESSION_TIMEZONE = "America/New_York"
_HERE = Path(__file__).resolve().parent


def backend_params(*names: str) -> list[Any]:
    """``pytest.param`` per backend name, with the name as id and ``backend`` mark (and ``postgres``).

    Use as ``@pytest.fixture(params=backend_params("sqlite", "postgres"))``; the fixture reads
    ``request.param`` (the name).
    """
    params = []
    for name in names:
        marks = [pytest.mark.backend(name)]
        if name == "postgres":
            marks.append(pytest.mark.postgres)
        params.append(pytest.param(name, id=name, marks=marks))
    return params


SQL_BACKENDS = backend_params("sqlite", "postgres")


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


def libpq(url: URL) -> str:
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
    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin.set(database=name)
    finally:
        with psycopg.connect(libpq(admin), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def fresh_postgres_schema(database: URL) -> str:
    """Create an empty schema in ``database``; return a store URL whose connections use only it."""
    import psycopg
    from psycopg import sql

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq(database), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    options = f"-csearch_path={schema} -ctimezone={PG_SESSION_TIMEZONE}"
    return database.update_query_dict({"options": options}).render_as_string(hide_password=False)


def schema_of(url: str) -> str:
    """The schema a :func:`fresh_postgres_schema` URL searches."""
    return str(make_url(url).query["options"]).split("search_path=", 1)[1].split()[0]


@pytest.fixture(params=SQL_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
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


# ---------------------------------------------------------------------------------------------- markers, counts


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "contracts: a port's contract suite (tests/contracts)")
    config.addinivalue_line("markers", "backend(name): the backend a contract test runs on")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.contracts)


_OUTCOMES: dict[str, Counter[str]] = defaultdict(Counter)


# backend names recognised in a parametrized test's values when it has no ``backend`` mark (a suite
# parametrized with plain names, e.g. a datastore type)
KNOWN_BACKENDS = frozenset({"sqlite", "postgres", "local", "s3", "azure_blob", "azure_data_lake_gen2",
                            "azure_file", "kubernetes", "amlcompute"})


def _backend(item: pytest.Item) -> str:
    mark = item.get_closest_marker("backend")
    if mark and mark.args:
        return str(mark.args[0])
    params = getattr(getattr(item, "callspec", None), "params", {})
    names = [v for v in params.values() if isinstance(v, str) and v in KNOWN_BACKENDS]
    return names[0] if names else "any"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if item.get_closest_marker("contracts") is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _OUTCOMES[_backend(item)][report.outcome] += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _OUTCOMES:
        return
    terminalreporter.section("contract tests per backend")
    for name in sorted(_OUTCOMES):
        counts = _OUTCOMES[name]
        terminalreporter.write_line(f"{name:10} " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))


@pytest.fixture(autouse=True, scope="module")
def _restore_environment() -> Iterator[None]:
    """A port started in this process (``Tracking.start``) configures MLflow's server through the
    process environment (``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI``, ``_MLFLOW_SERVER_*``), as
    ``mlflow server`` does; restore it after each module so that later tests' ``MlflowClient``
    (whose registry URI defaults to MLflow's global one, which ``initialize_backend_stores`` sets)
    do not reach that module's database."""
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils

    saved = dict(os.environ)
    uris = (tracking_utils._tracking_uri, registry_utils._registry_uri)  # initialize_backend_stores sets both
    yield
    os.environ.clear()
    os.environ.update(saved)
    tracking_utils._tracking_uri, registry_utils._registry_uri = uris
