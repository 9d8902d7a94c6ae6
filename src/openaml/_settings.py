"""One settings object, built at the entry point and passed down (nothing reads env at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings", "HttpLimits", "openaml_home"]


@dataclass
class HttpLimits:
    """Limits of the HTTP server (seconds and counts); every one closes a slow or idle client.

    Attributes:
        header_timeout: seconds a client may take to send the request line and headers.
        body_timeout: seconds a request body may stall (no bytes received) before the
            connection is closed.
        keep_alive: seconds an idle keep-alive connection stays open.
        max_connections: open connections (and requests) at once; more get 503.
        max_header_bytes: largest request head accepted.
    """

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keep_alive: float = 5.0
    max_connections: int = 1000
    max_header_bytes: int = 64 * 1024


def openaml_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$OPENAML_HOME`` or ``~/.openaml``: holds the default workspace and the workspace index."""
    env = os.environ if environ is None else environ
    return Path(env.get("OPENAML_HOME") or Path.home() / ".openaml").expanduser().resolve()


@dataclass
class Settings:
    """Server settings.

    Attributes:
        workspace: the workspace folder (everything of the workspace lives under it).
        host: bind address; 127.0.0.1 by default (security by default).
        port: TCP port; 0 picks a free one.
        database_url: metadata database URL; SQLite in the workspace folder when None.
        tracking_url: MLflow backend store URL; when None, SQLite in the workspace folder, or the
            metadata database's PostgreSQL (its own schema) when ``database_url`` is PostgreSQL.
        token: bearer token required on every request when set (required when host is not loopback).
        scheduler_interval: seconds between scheduler passes.
        heartbeat_timeout: seconds without a report from a job's runner (state or heartbeat, over
            HTTP) before the job is failed as lost and its runner killed; 0 turns the check off.
            Runners report every quarter of it (0.5 to 5 s).
        allowed_hosts: extra ``Host`` names accepted besides loopback and ``host``
            (``--allowed-host``; ``*`` accepts any). See docs/guide/security.md.
        ssl_certfile, ssl_keyfile: PEM files; when both are set the server speaks HTTPS.
        token_file: the file the token was read from (``--token-file``), hidden from jobs.
        limits: HTTP limits (:class:`HttpLimits`).
        datastore_roots: folders under which local datastores may be registered
            (``--datastore-root``/``OPENAML_DATASTORE_ROOTS``); empty means the workspace folder
            and the user's home.
    """

    workspace: Path
    host: str = "127.0.0.1"
    port: int = 0
    database_url: str | None = None
    tracking_url: str | None = None
    token: str | None = None
    scheduler_interval: float = 0.2
    heartbeat_timeout: float = 60.0
    extra: dict[str, str] = field(default_factory=dict)
    allowed_hosts: list[str] = field(default_factory=list)
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    limits: HttpLimits = field(default_factory=lambda: HttpLimits())
    datastore_roots: list[Path] = field(default_factory=list)
    token_file: Path | None = None

    def local_datastore_roots(self) -> list[Path]:
        """Resolved folders local datastores must lie under (see ``datastore_roots``)."""
        roots = self.datastore_roots or [self.workspace, Path.home()]
        return [Path(r).expanduser().resolve() for r in roots]

    @property
    def metadata_url(self) -> str:
        return self.database_url or f"sqlite:///{self.workspace / 'openaml.db'}"
