"""Which server of a workspace runs its background work (scheduler, deployment supervisor).

Several servers may serve one workspace when its metadata lives in PostgreSQL (one per host; the
embedded SQLite default allows one server per workspace folder, which ``server.lock`` enforces). All
of them serve the REST API and MLflow; exactly one, the *leader*, runs the job scheduler (it starts
and follows the runners, reconciles after a restart) and the deployment workers. The others stand by
and take over when the leader goes.

Leadership is a PostgreSQL session-level advisory lock (``pg_try_advisory_lock``), held on a
connection of its own: it is released by the database when the leader's process or connection
dies, with no lease to tune and no clock to trust. The leader names itself in that connection's
``application_name`` (``openaml-leader <url>``), which the others read from ``pg_stat_activity`` to
say where the work happens. A leader that loses its connection stops its background work before
anyone else can take the lock (:meth:`Leadership.still_held` fails first), so two schedulers never
run at once.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["Leadership", "leader_lock_key"]

log = logging.getLogger("openaml.leader")

_APP_PREFIX = "openaml-leader "


def leader_lock_key(workspace_id: str) -> int:
    """The advisory lock key of a workspace's lead: 60 bits of the SHA-256 of its id, so that
    workspaces in different schemas of one database lead independently (PostgreSQL's advisory
    locks are per database)."""
    import hashlib

    return int(hashlib.sha256(workspace_id.encode()).hexdigest()[:15], 16)


class Leadership:
    """The leadership of one server: :meth:`try_acquire`, :meth:`still_held`, :meth:`release`, and
    :meth:`leader_url` (who leads). On SQLite every server is the leader (one per folder).

    Args:
        database_url: the metadata database URL (the store's).
        url: this server's URL, advertised while it leads (PostgreSQL keeps 63 bytes of
            ``application_name``: 48 of the URL).
        workspace_id: the workspace's id (``workspace.json``), which names its lock.
    """

    def __init__(self, database_url: str, url: str, workspace_id: str) -> None:
        self.database_url = database_url
        self.url = url
        self.key = leader_lock_key(workspace_id)
        self.shared = database_url.startswith("postgresql")
        self._engine: Any = None
        self._conn: Any = None

    def _connect(self) -> Any:
        import sqlalchemy as sa

        if self._engine is None:
            self._engine = sa.create_engine(self.database_url, poolclass=sa.pool.NullPool)
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return conn

    def try_acquire(self) -> bool:
        """Take the lead if no server holds it. True when this server leads (now or already).

        Never raises: a database that cannot be reached means not leading (logged)."""
        if not self.shared:
            return True
        if self._conn is not None:
            return self.still_held()
        try:
            conn = self._connect()
            conn.exec_driver_sql("SELECT set_config('application_name', %(n)s, false)",
                                 {"n": (_APP_PREFIX + self.url)[:63]})
            got = bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({self.key})").scalar())
        except Exception as exc:  # noqa: BLE001 - any driver error: not leading, try again later
            log.warning("cannot reach the metadata database to take the lead: %s", exc)
            return False
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def still_held(self) -> bool:
        """True while this server leads and its lock connection answers. A lost connection (the
        database restarted, a network cut) means the lock is gone: the caller stops its background
        work."""
        if not self.shared:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.exec_driver_sql("SELECT 1").scalar()
            return True
        except Exception as exc:  # noqa: BLE001
            log.warning("lost the metadata database connection that holds the lead: %s", exc)
            self._drop()
            return False

    def leader_url(self) -> str | None:
        """The URL of the server that leads (this one's when it does); None when none leads or the
        database cannot be reached."""
        if not self.shared or self._conn is not None:
            return self.url
        try:
            with self._connect() as conn:
                name = conn.exec_driver_sql(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %(hi)s AND l.objid::bigint = %(lo)s "
                    "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = "
                    "current_database())", {"hi": self.key >> 32, "lo": self.key & 0xFFFFFFFF}).scalar()
        except Exception:  # noqa: BLE001
            return None
        if isinstance(name, str) and name.startswith(_APP_PREFIX):
            return name[len(_APP_PREFIX):]
        return None

    def release(self) -> None:
        """Give the lead up (at server stop): another server can take it at once."""
        self._drop()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({self.key})")
            except Exception:  # noqa: BLE001 - closing the connection releases it anyway
                pass
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
