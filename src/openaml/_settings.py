"""One settings object, built at the entry point and passed down (nothing reads env at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings", "openaml_home"]


def openaml_home(environ: dict[str, str] | None = None) -> Path:
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
        heartbeat_timeout: seconds without a runner heartbeat before a job is presumed dead.
    """

    workspace: Path
    host: str = "127.0.0.1"
    port: int = 0
    database_url: str | None = None
    tracking_url: str | None = None
    token: str | None = None
    scheduler_interval: float = 0.2
    heartbeat_timeout: float = 30.0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def metadata_url(self) -> str:
        return self.database_url or f"sqlite:///{self.workspace / 'openaml.db'}"
