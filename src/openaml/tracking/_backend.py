"""Where a workspace's MLflow stores live, from the workspace's settings.

* Default: SQLite in the workspace folder (``<workspace>/mlflow.db``), as the metadata store.
* Metadata on PostgreSQL (``Settings.database_url``): MLflow's tables go to the same database, in
  a schema of their own (``mlflow``, or ``<schema>_mlflow`` when the URL's ``search_path`` names
  a schema), because MLflow and openaml each keep an Alembic ``alembic_version`` table.
* ``Settings.tracking_url`` set: that URL, as given.

Artifacts are always the workspace's ``mlartifacts/`` folder, served by MLflow's artifact proxy
(``mlflow-artifacts:/``), so runners on any machine upload through the server.
"""

from __future__ import annotations

import re
from typing import Any

from openaml.errors import UnsupportedError

__all__ = ["tracking_backend_url", "ensure_backend", "open_stores", "SQL_SCHEMES"]

# the backends MLflow's SQLAlchemy stores accept (MLflow docs, "Backend Stores")
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
_SEARCH_PATH = re.compile(r"-c\s*search_path=([^\s]+)")


def tracking_backend_url(settings: Any) -> str:
    """The MLflow backend store URI of a workspace (see the module docstring)."""
    if getattr(settings, "tracking_url", None):
        return str(settings.tracking_url)
    db = settings.database_url
    if db and db.split(":", 1)[0].split("+", 1)[0] == "postgresql":
        return _with_schema(db)
    return f"sqlite:///{settings.workspace / 'mlflow.db'}"


def _with_schema(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    options = str(u.query.get("options", "") or "")
    m = _SEARCH_PATH.search(options)
    schema = f"{m.group(1).split(',')[0]}_mlflow" if m else "mlflow"
    options = _SEARCH_PATH.sub("", options).strip()
    options = f"-csearch_path={schema} {options}".strip()
    return u.update_query_dict({"options": options}).render_as_string(hide_password=False)


def _scheme(uri: str) -> str:
    return uri.split(":", 1)[0].split("+", 1)[0]


def ensure_backend(uri: str) -> None:
    """Create what MLflow cannot create itself: the PostgreSQL schema its tables go to.

    Raises:
        UnsupportedError: a backend MLflow's SQL stores do not support (the supported ones named).
    """
    if _scheme(uri) not in SQL_SCHEMES:
        raise UnsupportedError(f"tracking backend {uri.split(':', 1)[0]!r} is not supported; use one of: "
                               f"{', '.join(SQL_SCHEMES)} (an SQLAlchemy URL)", details={"value": uri.split(':', 1)[0]})
    if _scheme(uri) != "postgresql":
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    u = make_url(uri)
    m = _SEARCH_PATH.search(str(u.query.get("options", "") or ""))
    if not m:
        return
    schema = m.group(1).split(",")[0]
    engine = create_engine(u.difference_update_query(["options"]))
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()


def open_stores(uri: str, artifact_root: str) -> tuple[Any, Any]:
    """MLflow's tracking and model-registry stores on ``uri`` (its public SQLAlchemy store classes;
    they share one engine per URI with the stores of MLflow's own server)."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    return TrackingStore(uri, artifact_root), RegistryStore(uri)
