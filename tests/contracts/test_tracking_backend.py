"""The tracking port's backend comes from the workspace's settings.

SQLite in the workspace folder by default; with the metadata store on PostgreSQL, MLflow's runs,
metrics and registered models go to the same database (their own schema). The PostgreSQL test
runs a real server on it and drives it with the real SDK and mlflow client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openaml._settings import Settings
from openaml.tracking import tracking_backend_url
from tests.conftest import start_server
from tests.contracts.conftest import fresh_postgres_schema, libpq


def test_default_backend_is_sqlite_in_the_workspace(tmp_path: Path) -> None:
    assert tracking_backend_url(Settings(workspace=tmp_path)) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert tracking_backend_url(Settings(workspace=tmp_path, tracking_url="sqlite:////x/y.db")) == "sqlite:////x/y.db"


def test_postgres_metadata_gives_mlflow_a_schema_of_its_own(tmp_path: Path) -> None:
    plain = tracking_backend_url(Settings(workspace=tmp_path, database_url="postgresql+psycopg://u:p@h:5/db"))
    assert plain == "postgresql+psycopg://u:p@h:5/db?options=-csearch_path%3Dmlflow"
    scoped = tracking_backend_url(Settings(
        workspace=tmp_path, database_url="postgresql+psycopg://u:p@h/db?options=-csearch_path%3Dt1%20-ctimezone%3DUTC"))
    assert "search_path%3Dt1_mlflow" in scoped and "timezone%3DUTC" in scoped and "search_path%3Dt1%20" not in scoped


@pytest.mark.postgres
@pytest.mark.backend("postgres")
def test_server_on_postgres_keeps_runs_and_metrics_there(tmp_path: Path, pg_database: Any) -> None:
    import mlflow
    import psycopg

    from openaml import MLClient, command

    url = fresh_postgres_schema(pg_database)
    from sqlalchemy.engine import make_url

    schema = str(make_url(url).query["options"]).split("search_path=", 1)[1].split()[0]
    ws = tmp_path / "ws"
    server = start_server(ws, name="pg-tracking", env={"OPENAML_DATABASE_URL": url})
    try:
        with MLClient(workspace=server.url) as ml:
            job = ml.jobs.wait(ml.jobs.create_or_update(command(
                command="python -c \"import mlflow; mlflow.log_metric('acc', 0.75)\"",
                environment="AzureML-sklearn-1.5@latest", experiment_name="pg-tracking")).name, timeout=240)
            assert job.status == "Completed"
        client = mlflow.MlflowClient(tracking_uri=server.url + "/mlflow")
        assert client.get_run(job.name).data.metrics["acc"] == 0.75
        with psycopg.connect(libpq(pg_database)) as conn:
            rows = conn.execute(f'SELECT m.value FROM "{schema}_mlflow".metrics m '
                                "WHERE m.run_uuid = %s AND m.key = 'acc'", (job.name,)).fetchall()
        assert rows == [(0.75,)]
        assert not (ws / "mlflow.db").exists()  # nothing of MLflow's state in a SQLite file
    finally:
        server.stop()
