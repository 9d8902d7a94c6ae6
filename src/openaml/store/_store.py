"""The metadata store: SQLAlchemy 2 over SQLite (WAL) or PostgreSQL, schema by Alembic.

Contract (tested against every backend by ``tests/contracts/test_store_contract.py``):

- methods are thread-safe; each opens its own short transaction;
- returned objects are plain dicts, detached from any session, safe to mutate;
- versions of an asset are immutable: creating an existing (name, version) raises ConflictError;
- an omitted version becomes ``max(numeric versions) + 1`` atomically (a unique constraint
  plus retry, so concurrent creators never get the same version);
- ``transition_job`` is a compare-and-set on the status, so two schedulers or a scheduler and
  a cancel never both win;
- read-modify-write methods (``update_job``, ``transition_job``) never lose a concurrent update:
  on PostgreSQL they lock the row (``SELECT ... FOR UPDATE``); on SQLite every write transaction
  is ``BEGIN IMMEDIATE`` (one writer at a time, readers never blocked thanks to WAL);
- datetimes come back timezone-aware, in UTC, on every backend.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, cast

from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from openaml.errors import ConflictError, NotFoundError, ValidationError
from openaml.store._job_queries import JobQueries
from openaml.store._tables import (
    ComponentRow,
    ComputeRow,
    DataRow,
    DatastoreRow,
    EnvironmentRow,
    JobRow,
    MetaRow,
    ScheduleRow,
    StepCacheRow,
)

__all__ = ["MetadataStore", "utcnow"]

_MIGRATIONS = Path(__file__).with_name("migrations")
# Alembic runs a migration through module-global state (``alembic.context``): two stores of one
# process must not migrate at the same time, whatever their databases.
_ALEMBIC_LOCK = threading.Lock()


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    """UTC-aware: SQLite hands back naive datetimes (stored as UTC), PostgreSQL the session's zone."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _version_num(version: str) -> int | None:
    return int(version) if version.isdigit() else None


class MetadataStore(JobQueries):
    """Workspace metadata. Construct, then :meth:`start` (connects and migrates)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._writers: sessionmaker[Session] | None = None
        self._lock = threading.Lock()
        # set by the server (a SecretBox over the workspace's key file): secrets are then encrypted at
        # rest (datastore credentials here, endpoint keys in EndpointRepository)
        self.secret_box: Any = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> MetadataStore:
        """Connect and migrate to the newest schema; a second call on a started store does nothing."""
        if self._engine is not None:
            return self
        kwargs: dict[str, Any] = {"future": True}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(self.url, **kwargs)
        if self.url.startswith("sqlite"):
            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:  # WAL: readers never block the writer
                # pysqlite's own transaction handling skips BEGIN before SELECT and DDL, so a
                # read-then-write would read outside its transaction (two compare-and-sets could
                # both win) and migrations would not be atomic: we emit BEGIN ourselves below.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA busy_timeout=30000")
                # switching a new database to WAL needs an exclusive lock, which SQLite may refuse at
                # once (no busy wait) while another process does the same: retry for a while
                for attempt in range(100):
                    try:
                        cur.execute("PRAGMA journal_mode=WAL")
                        break
                    except sqlite3.OperationalError:
                        if attempt == 99:
                            raise
                        time.sleep(0.05)
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

            @event.listens_for(engine, "begin")
            def _begin(conn: Any) -> None:
                # A write transaction takes the write lock up front (waiting up to busy_timeout),
                # so what it reads cannot change before it writes.
                write = conn.get_execution_options().get("openaml_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._writers = sessionmaker(engine.execution_options(openaml_write=True), expire_on_commit=False)
        self.migrate()
        return self

    def migrate(self) -> None:
        """Upgrade the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        assert self._engine is not None
        with _ALEMBIC_LOCK, self._engine.execution_options(openaml_write=True).begin() as conn:
            if conn.dialect.name == "postgresql":
                # Two servers starting on one empty database: the second waits, then finds head.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def compact(self) -> None:
        """SQLite: rebuild the file (VACUUM) and empty the WAL, so that no freed page or old WAL frame
        keeps a value that was overwritten (after plain secrets were encrypted). No-op elsewhere."""
        if self._engine is None or not self.url.startswith("sqlite"):
            return
        raw = self._engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cur.execute("VACUUM")
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cur.close()
        finally:
            raw.close()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._sessions = self._writers = None

    def _session(self) -> Session:
        """A session for reads; writes go through :meth:`_write`."""
        if self._sessions is None:
            raise RuntimeError("MetadataStore.start() was not called")
        return self._sessions()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A session inside one write transaction, committed on success, rolled back on error."""
        if self._writers is None:
            raise RuntimeError("MetadataStore.start() was not called")
        with self._writers() as s, s.begin():
            yield s

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        with self._session() as s:
            row = s.get(MetaRow, key)
            return row.value if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as s:
            row = s.get(MetaRow, key)
            if row:
                row.value = value
            else:
                s.add(MetaRow(key=key, value=value))

    # ------------------------------------------------------------------ datastores
    def _ds(self, row: DatastoreRow) -> dict[str, Any]:
        spec = dict(row.spec)
        if spec.get("credentials") and self.secret_box is not None:
            spec["credentials"] = self.secret_box.open_tree(spec["credentials"])
        return {**spec, "name": row.name, "type": row.type, "is_default": row.is_default}

    def put_datastore(self, name: str, type_: str, spec: dict[str, Any], is_default: bool = False) -> dict[str, Any]:
        """Create or replace the datastore ``name`` (its ``credentials`` encrypted when a secret box is set)."""
        if spec.get("credentials") and self.secret_box is not None:
            spec = {**spec, "credentials": self.secret_box.seal_tree(spec["credentials"])}
        with self._write() as s:
            row = s.get(DatastoreRow, name, with_for_update=True)
            if row is None:
                row = DatastoreRow(name=name, type=type_, spec=spec, is_default=is_default, created_at=utcnow())
                s.add(row)
            else:
                row.type, row.spec, row.is_default = type_, spec, is_default
            s.flush()
            return self._ds(row)

    def get_datastore(self, name: str) -> dict[str, Any]:
        with self._session() as s:
            row = s.get(DatastoreRow, name)
            if row is None:
                names = ", ".join(s.scalars(select(DatastoreRow.name).order_by(DatastoreRow.name))) or "(none)"
                raise NotFoundError(f"datastore {name!r} not found; datastores: {names}",
                                    details={"field": "datastore", "value": name})
            return self._ds(row)

    def list_datastores(self) -> list[dict[str, Any]]:
        with self._session() as s:
            return [self._ds(r) for r in s.scalars(select(DatastoreRow).order_by(DatastoreRow.name))]

    def delete_datastore(self, name: str) -> None:
        """Remove the registration of ``name`` (its files are not touched).

        Raises:
            NotFoundError: naming the datastores that exist.
        """
        with self._write() as s:
            row = s.get(DatastoreRow, name, with_for_update=True)
            if row is None:
                names = ", ".join(s.scalars(select(DatastoreRow.name).order_by(DatastoreRow.name))) or "(none)"
                raise NotFoundError(f"datastore {name!r} not found; datastores: {names}",
                                    details={"field": "datastore", "value": name})
            s.delete(row)

    def seal_plain_datastore_credentials(self) -> int:
        """Encrypt datastore credentials stored in clear (by an older version); returns how many."""
        box = self.secret_box
        if box is None:
            return 0
        n = 0
        with self._write() as s:
            for row in s.scalars(select(DatastoreRow)):
                creds = (row.spec or {}).get("credentials")
                if creds and box.seal_tree(creds) != creds:
                    row.spec = {**row.spec, "credentials": box.seal_tree(creds)}
                    n += 1
        return n

    # ------------------------------------------------------------------ versioned assets
    _ASSETS: ClassVar[dict[str, Any]] = {"data": DataRow, "environment": EnvironmentRow, "component": ComponentRow}

    @staticmethod
    def _asset(row: Any) -> dict[str, Any]:
        d = dict(row.spec)
        d.update(name=row.name, version=row.version, archived=row.archived,
                 created_at=_aware(row.created_at).isoformat())  # type: ignore[union-attr]
        return d

    def create_asset(self, kind: str, name: str, version: str | None, spec: dict[str, Any],
                     **columns: Any) -> dict[str, Any]:
        """Create an immutable asset version; ``version=None`` takes the next integer.

        Raises:
            ConflictError: (name, version) exists.
            ValidationError: ``version`` is ``latest``, the label of the newest version (Azure ML's
                ``@latest`` / ``--label latest``), which a version must not shadow.
        """
        table = self._table(kind)
        if version is not None:
            version = str(version)
            if version.strip().lower() == "latest":
                raise ValidationError(
                    f"{kind} {name}: field 'version': 'latest' is not a version but the label of the newest one "
                    f"(refer to it as {name}@latest or --label latest); give another version or omit it to get "
                    "the next number", details={"field": "version", "value": version})
        for _attempt in range(20):
            try:
                with self._write() as s:
                    v = version
                    if v is None:
                        top = s.scalar(select(func.max(table.version_num)).where(table.name == name))
                        v = str((top or 0) + 1)
                    row = table(name=name, version=v, version_num=_version_num(v), spec=spec,
                                archived=False, created_at=utcnow(), **columns)
                    s.add(row)
                    s.flush()
                    created = self._asset(row)
            except IntegrityError:
                if version is not None:
                    raise ConflictError(
                        f"{kind} {name}:{version} already exists and versions are immutable; "
                        f"omit the version to get the next one, or choose another version",
                        details={"name": name, "version": version},
                    ) from None
                continue  # a concurrent creator took max + 1 (PostgreSQL): read max again
            return created
        raise ConflictError(f"could not allocate a version for {kind} {name!r} (too much contention)")

    def get_asset(self, kind: str, name: str, version: str | None = None, label: str | None = None) -> dict[str, Any]:
        """Get one version; ``version=None`` or ``label='latest'`` gives the newest unarchived one, and so
        does ``version='latest'`` (``--version latest``: no version may be called that, see
        :meth:`create_asset`, so it can only mean the label).

        Raises:
            NotFoundError: naming the versions that do exist.
        """
        table = self._table(kind)
        if version is not None and label is None and str(version).strip().lower() == "latest":
            version, label = None, "latest"
        if version is None and label not in (None, "latest"):
            raise ValidationError(f"label {label!r} is not supported; only 'latest' is",
                                  details={"field": "label", "value": label})
        with self._session() as s:
            if version is not None:
                row = s.scalar(select(table).where(table.name == name, table.version == str(version)))
            else:
                row = s.scalar(select(table).where(table.name == name, table.archived.is_(False))
                               .order_by(table.id.desc()).limit(1))
            if row is None:
                raise self._asset_not_found(s, kind, name, version)
            return self._asset(row)

    def _table(self, kind: str) -> Any:
        try:
            return self._ASSETS[kind]
        except KeyError:
            raise ValueError(f"unknown asset kind {kind!r}; kinds: {', '.join(self._ASSETS)}") from None

    def _asset_not_found(self, s: Session, kind: str, name: str, version: str | None) -> NotFoundError:
        table = self._table(kind)
        rows = s.execute(select(table.version, table.archived).where(table.name == name).order_by(table.id)).all()
        details = {"name": name, "version": version, "versions": [v for v, _ in rows]}
        if not rows:
            return NotFoundError(f"{kind} {name!r} not found", details=details)
        listed = ", ".join(f"{v} (archived)" if archived else v for v, archived in rows)
        if version is None:
            return NotFoundError(f"{kind} {name!r} has no unarchived version; versions: {listed}", details=details)
        return NotFoundError(f"{kind} {name}:{version} not found; versions: {listed}", details=details)

    def list_assets(self, kind: str, name: str | None = None, include_archived: bool = False) -> list[dict[str, Any]]:
        """All versions of ``name`` (newest first), or the latest version of each asset."""
        table = self._table(kind)
        with self._session() as s:
            if name is not None:
                q = select(table).where(table.name == name)
                if not include_archived:
                    q = q.where(table.archived.is_(False))
                return [self._asset(r) for r in s.scalars(q.order_by(table.id.desc()))]
            newest = select(func.max(table.id)).group_by(table.name)
            if not include_archived:
                newest = newest.where(table.archived.is_(False))
            q = select(table).where(table.id.in_(newest)).order_by(table.name)
            return [self._asset(r) for r in s.scalars(q)]

    def assets_under(self, kind: str, prefix: str, limit: int = 5) -> tuple[list[tuple[str, str]], int]:
        """Unarchived versions whose ``path`` starts with ``prefix`` (e.g. a datastore's
        ``azureml://datastores/<name>/paths/``): up to ``limit`` ``(name, version)`` pairs, oldest
        first, and how many there are in all."""
        table = self._table(kind)
        where = (table.path.startswith(prefix, autoescape=True), table.archived.is_(False))
        with self._session() as s:
            total = s.scalar(select(func.count()).select_from(table).where(*where)) or 0
            rows = s.execute(select(table.name, table.version).where(*where).order_by(table.id).limit(limit)).all()
            return [(str(n), str(v)) for n, v in rows], int(total)

    def set_asset_archived(self, kind: str, name: str, version: str | None, archived: bool) -> int:
        """Archive (or restore) one version, or every version when ``version`` is None.

        Returns the number of versions changed. Raises NotFoundError naming the versions that exist.
        """
        table = self._table(kind)
        with self._write() as s:
            q = update(table).where(table.name == name).values(archived=archived)
            if version is not None:
                q = q.where(table.version == str(version))
            n = cast("CursorResult[Any]", s.execute(q)).rowcount  # an UPDATE's result has rowcount
        if not n:
            with self._session() as s:
                raise self._asset_not_found(s, kind, name, version)
        return n

    # ------------------------------------------------------------------ computes
    @staticmethod
    def _compute(row: ComputeRow) -> dict[str, Any]:
        return {**row.spec, "name": row.name, "type": row.type, "max_instances": row.max_instances}

    def put_compute(self, name: str, type_: str, max_instances: int, spec: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the compute ``name``."""
        with self._write() as s:
            row = s.get(ComputeRow, name, with_for_update=True)
            if row is None:
                row = ComputeRow(name=name, type=type_, max_instances=max_instances, spec=spec, created_at=utcnow())
                s.add(row)
            else:
                row.type, row.max_instances, row.spec = type_, max_instances, spec
            s.flush()
            return self._compute(row)

    def get_compute(self, name: str) -> dict[str, Any]:
        with self._session() as s:
            row = s.get(ComputeRow, name)
            if row is None:
                raise self._compute_not_found(s, name)
            return self._compute(row)

    @staticmethod
    def _compute_not_found(s: Session, name: str) -> NotFoundError:
        names = ", ".join(s.scalars(select(ComputeRow.name).order_by(ComputeRow.name))) or "(none)"
        return NotFoundError(f"compute {name!r} not found; computes in this workspace: {names}",
                             details={"field": "compute", "value": name})

    def list_computes(self) -> list[dict[str, Any]]:
        with self._session() as s:
            return [self._compute(r) for r in s.scalars(select(ComputeRow).order_by(ComputeRow.name))]

    def delete_compute(self, name: str) -> None:
        """Raises NotFoundError (naming the computes that exist) when ``name`` does not exist."""
        with self._write() as s:
            row = s.get(ComputeRow, name)
            if row is None:
                raise self._compute_not_found(s, name)
            s.delete(row)

    # ------------------------------------------------------------------ jobs
    @staticmethod
    def _job(row: JobRow) -> dict[str, Any]:
        return {
            "seq": row.seq, "name": row.name, "type": row.type, "status": row.status,
            "experiment_name": row.experiment_name, "display_name": row.display_name,
            "compute": row.compute, "parent_name": row.parent_name, "spec": dict(row.spec),
            "runtime": dict(row.runtime or {}), "status_history": list(row.status_history or []),
            "created_at": _aware(row.created_at), "start_time": _aware(row.start_time),
            "end_time": _aware(row.end_time), "exit_code": row.exit_code, "error": row.error,
            "archived": row.archived,
        }

    def create_job(self, *, name: str, type_: str, status: str, experiment_name: str, compute: str,
                   spec: dict[str, Any], display_name: str | None = None, parent_name: str | None = None,
                   runtime: dict[str, Any] | None = None) -> dict[str, Any]:
        """Raises ConflictError when a job with this name exists (job names are unique)."""
        now = utcnow()
        row = JobRow(name=name, type=type_, status=status, experiment_name=experiment_name, compute=compute,
                     spec=spec, display_name=display_name, parent_name=parent_name, runtime=runtime or {},
                     status_history=[{"status": status, "time": now.isoformat()}], created_at=now)
        try:
            with self._write() as s:
                s.add(row)
                s.flush()
                created = self._job(row)
        except IntegrityError:
            raise ConflictError(f"a job named {name!r} already exists; job names are unique, "
                                "omit name to get a generated one", details={"name": name}) from None
        return created

    def get_job(self, name: str) -> dict[str, Any]:
        with self._session() as s:
            row = s.scalar(select(JobRow).where(JobRow.name == name))
            if row is None:
                raise NotFoundError(f"job {name!r} not found")
            return self._job(row)

    def list_jobs(self, *, status: Iterable[str] | None = None, compute: str | None = None,
                  parent_name: str | None = None, include_archived: bool = False,
                  top_level_only: bool = False, limit: int | None = None,
                  ascending: bool = False) -> list[dict[str, Any]]:
        """Jobs, newest first (``ascending``: oldest first), filtered.

        ``parent_name`` gives the children of one job; otherwise ``top_level_only`` leaves out
        child jobs. ``limit=None`` means no limit.
        """
        with self._session() as s:
            q = select(JobRow)
            if status is not None:
                q = q.where(JobRow.status.in_(list(status)))
            if compute is not None:
                q = q.where(JobRow.compute == compute)
            if parent_name is not None:
                q = q.where(JobRow.parent_name == parent_name)
            elif top_level_only:
                q = q.where(JobRow.parent_name.is_(None))
            if not include_archived:
                q = q.where(JobRow.archived.is_(False))
            q = q.order_by(JobRow.seq.asc() if ascending else JobRow.seq.desc())
            if limit is not None:
                q = q.limit(limit)
            return [self._job(r) for r in s.scalars(q)]

    def count_jobs(self, *, status: Iterable[str], compute: str | None = None,
                   types: Iterable[str] | None = None) -> int:
        """Jobs in ``status`` (on ``compute``; of ``types`` when given, e.g. ("command",))."""
        with self._session() as s:
            q = select(func.count()).select_from(JobRow).where(JobRow.status.in_(list(status)))
            if compute is not None:
                q = q.where(JobRow.compute == compute)
            if types is not None:
                q = q.where(JobRow.type.in_(list(types)))
            return int(s.scalar(q) or 0)

    def transition_job(self, name: str, to_status: str, *, from_statuses: Iterable[str] | None = None,
                       runtime_update: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any] | None:
        """Set the status (and other columns) if the current status is in ``from_statuses``.

        Returns the updated job, or None when the compare-and-set lost (status had changed).
        """
        self._check_job_fields(fields, "transition_job")
        with self._write() as s:
            row = s.scalar(select(JobRow).where(JobRow.name == name).with_for_update())
            if row is None:
                raise NotFoundError(f"job {name!r} not found")
            if from_statuses is not None and row.status not in set(from_statuses):
                return None
            if row.status != to_status:
                row.status_history = [*(row.status_history or []),
                                      {"status": to_status, "time": utcnow().isoformat()}]
            row.status = to_status
            if runtime_update:
                row.runtime = {**(row.runtime or {}), **runtime_update}
            for key, value in fields.items():
                setattr(row, key, value)
            s.flush()
            return self._job(row)

    # Columns that transition_job/update_job may set through keyword fields: not the identity, and
    # not the status and its history, which only transition_job's compare-and-set changes.
    _JOB_FIELDS: ClassVar[frozenset[str]] = frozenset({"type", "experiment_name", "display_name", "compute", "parent_name", "spec",
                             "runtime", "start_time", "end_time", "exit_code", "error", "archived"})

    def _check_job_fields(self, fields: dict[str, Any], method: str) -> None:
        unknown = sorted(set(fields) - self._JOB_FIELDS)
        if unknown:
            raise TypeError(f"{method}() cannot set {', '.join(unknown)}; settable: {', '.join(sorted(self._JOB_FIELDS))}"
                            + ("; change the status with transition_job()" if "status" in unknown else ""))

    def update_job(self, name: str, *, runtime_update: dict[str, Any] | None = None,
                   spec_update: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Merge ``runtime_update``/``spec_update`` into the job's dicts (top-level keys) and set
        columns given as ``fields``. The status changes only through :meth:`transition_job`.
        """
        self._check_job_fields(fields, "update_job")
        with self._write() as s:
            row = s.scalar(select(JobRow).where(JobRow.name == name).with_for_update())
            if row is None:
                raise NotFoundError(f"job {name!r} not found")
            if runtime_update:
                row.runtime = {**(row.runtime or {}), **runtime_update}
            if spec_update:
                row.spec = {**(row.spec or {}), **spec_update}
            for key, value in fields.items():
                setattr(row, key, value)
            s.flush()
            return self._job(row)

    # ------------------------------------------------------------------ pipeline step cache
    def add_step_cache(self, *, reuse_key: str, identity: str, job_name: str, fingerprint: dict[str, Any]) -> None:
        """Record a step that completed by running, for later reuse (never a reused step)."""
        with self._write() as s:
            s.add(StepCacheRow(reuse_key=reuse_key, identity=identity[:512], job_name=job_name,
                               fingerprint=fingerprint, created_at=utcnow()))

    @staticmethod
    def _cache(row: StepCacheRow) -> dict[str, Any]:
        return {"reuse_key": row.reuse_key, "identity": row.identity, "job_name": row.job_name,
                "fingerprint": dict(row.fingerprint), "created_at": _aware(row.created_at)}

    def find_step_cache(self, *, reuse_key: str | None = None, identity: str | None = None,
                        limit: int = 20) -> list[dict[str, Any]]:
        """Cache entries matching the key and/or the identity, newest first."""
        with self._session() as s:
            q = select(StepCacheRow)
            if reuse_key is not None:
                q = q.where(StepCacheRow.reuse_key == reuse_key)
            if identity is not None:
                q = q.where(StepCacheRow.identity == identity[:512])
            q = q.order_by(StepCacheRow.id.desc()).limit(limit)
            return [self._cache(r) for r in s.scalars(q)]

    # ------------------------------------------------------------------ schedules
    @staticmethod
    def _schedule(row: ScheduleRow) -> dict[str, Any]:
        return {"name": row.name, "spec": dict(row.spec), "enabled": row.enabled, "state": dict(row.state or {}),
                "created_at": _aware(row.created_at)}

    def put_schedule(self, name: str, spec: dict[str, Any], *, enabled: bool | None = None,
                     state: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create or replace a schedule; ``enabled``/``state`` keep their stored values when None."""
        with self._write() as s:
            row = s.scalar(select(ScheduleRow).where(ScheduleRow.name == name).with_for_update())
            if row is None:
                row = ScheduleRow(name=name, spec=spec, enabled=True if enabled is None else enabled,
                                  state=state or {}, created_at=utcnow())
                s.add(row)
            else:
                row.spec = spec
                if enabled is not None:
                    row.enabled = enabled
                if state is not None:
                    row.state = state
            s.flush()
            return self._schedule(row)

    def update_schedule(self, name: str, *, enabled: bool | None = None, state_update: dict[str, Any] | None = None,
                        expect_state: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Set ``enabled`` and merge ``state_update`` into the state (top-level keys), leaving the spec.

        A compare-and-set when ``expect_state`` is given: returns None (nothing written) unless every
        key of it has that value in the stored state, so two schedulers never both record one fire.

        Raises:
            NotFoundError: no schedule ``name``.
        """
        with self._write() as s:
            row = s.scalar(select(ScheduleRow).where(ScheduleRow.name == name).with_for_update())
            if row is None:
                raise NotFoundError(f"schedule {name!r} not found", details={"name": name})
            state = dict(row.state or {})
            if expect_state and any(state.get(k) != v for k, v in expect_state.items()):
                return None
            if enabled is not None:
                row.enabled = enabled
            if state_update:
                row.state = {**state, **state_update}
            s.flush()
            return self._schedule(row)

    def get_schedule(self, name: str) -> dict[str, Any]:
        with self._session() as s:
            row = s.scalar(select(ScheduleRow).where(ScheduleRow.name == name))
            if row is None:
                names = list(s.scalars(select(ScheduleRow.name).order_by(ScheduleRow.name)))
                raise NotFoundError(f"schedule {name!r} not found; schedules: {', '.join(names) or 'none'}",
                                    details={"name": name})
            return self._schedule(row)

    def list_schedules(self) -> list[dict[str, Any]]:
        with self._session() as s:
            return [self._schedule(r) for r in s.scalars(select(ScheduleRow).order_by(ScheduleRow.name))]

    def delete_schedule(self, name: str) -> None:
        self.get_schedule(name)
        with self._write() as s:
            row = s.scalar(select(ScheduleRow).where(ScheduleRow.name == name))
            if row is not None:
                s.delete(row)
