"""Schema lifecycle on every backend: ``start()`` migrates an empty database to the Alembic head,
is idempotent, and the head matches the ORM tables exactly.
"""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

import openaml.store._store as store_module
from openaml.store import MetadataStore
from openaml.store._tables import Base

MIGRATIONS = Path(store_module.__file__).with_name("migrations")


def _head() -> str:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"the migrations have {len(heads)} heads: {heads}; merge them"
    return heads[0]


def _current(url: str) -> tuple[str | None, set[str]]:
    """(alembic revision, table names) of the database at ``url``."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision(), set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_start_on_empty_database_creates_schema_at_head(store_url: str) -> None:
    assert _current(store_url) == (None, set())
    store = MetadataStore(store_url).start()
    store.close()
    revision, tables = _current(store_url)
    assert revision == _head()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


def test_start_twice_is_idempotent(store_url: str) -> None:
    first = MetadataStore(store_url).start()
    first.put_compute("local", "local", 2, {})
    first.create_asset("data", "iris", None, {}, type="uri_file", path="x.csv")
    first.close()

    second = MetadataStore(store_url).start()
    second.start()  # and again on the same object
    try:
        assert [c["name"] for c in second.list_computes()] == ["local"]
        assert second.get_asset("data", "iris")["version"] == "1"
    finally:
        second.close()
    assert _current(store_url)[0] == _head()


def _start_when_released(url: str, barrier: Any) -> None:
    barrier.wait(timeout=30)
    MetadataStore(url).start().close()


def test_concurrent_starts_on_an_empty_database(store_url: str) -> None:
    """Two servers starting at once on one new database: both come up, the schema is made once.

    Two processes (forked, so they start at once with everything imported) race on ``start()``.
    """
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_start_when_released, args=(store_url, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0], "a process failed to start the store (traceback above)"
    assert _current(store_url)[0] == _head()


def test_concurrent_starts_in_one_process(store_url: str) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    stores: list[MetadataStore] = []

    def start() -> None:
        try:
            barrier.wait(timeout=30)
            stores.append(MetadataStore(store_url).start())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in stores:
        s.close()
    assert not errors, errors
    assert _current(store_url)[0] == _head()


def test_head_matches_orm_metadata(store_url: str) -> None:
    MetadataStore(store_url).start().close()
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], ("the ORM tables (store/_tables.py) and the migrations disagree; add a migration: "
                        f"{diff}")
