"""The tracking port's contract, on every backend: SQLite in the workspace, and PostgreSQL (MLflow's
tables in a schema of their own beside the metadata store's).

Two ways in, both over each backend:

- openaml's port (``openaml.tracking.Tracking``): experiments, runs with the job name as run id,
  status mapping (job status -> MLflow run status), params, tags, metric history, the model
  registry (versions chosen by openaml, aliases, stages, sources) and the artifact root;
- a real server's ``/mlflow`` with the real ``mlflow`` client, whose data must land in the backend
  the workspace's settings name (MLflow's public server configuration: ``initialize_backend_stores``
  as ``mlflow server`` calls it, artifacts served through ``mlflow-artifacts:/``).

Contract sources: MLflow's tracking and registry REST API (runs, metrics, ``RunStatus``, aliases,
stages) and Azure ML's "a job is a run" (the job's name is its MLflow run id).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openaml._settings import Settings
from openaml.errors import ConflictError, NotFoundError, PathEscapeError, UnsupportedError, ValidationError
from openaml.tracking import Tracking, tracking_backend_url
from openaml.workspace import WorkspaceLayout
from tests.conftest import ServerHandle, start_server
from tests.contracts.conftest import SQL_BACKENDS, fresh_postgres_schema, libpq, schema_of


def _settings(backend: str, root: Path, request: pytest.FixtureRequest) -> tuple[Settings, dict[str, str]]:
    """The workspace settings of a backend, and the server environment that gives them."""
    if backend == "sqlite":
        return Settings(workspace=root), {}
    url = fresh_postgres_schema(request.getfixturevalue("pg_database"))
    return Settings(workspace=root, database_url=url), {"OPENAML_DATABASE_URL": url}


@pytest.fixture(scope="module", params=SQL_BACKENDS)
def tracking(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    """A started port on an empty backend (shared by the module's tests: names are unique per test)."""
    root = tmp_path_factory.mktemp(f"ws-{request.param}")
    settings, _env = _settings(request.param, root, request)
    t = Tracking(WorkspaceLayout(root), backend_uri=tracking_backend_url(settings))
    t.start()
    yield t


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------------------------------------- port: runs


def test_backend_comes_from_the_settings(tracking: Tracking) -> None:
    if tracking.backend_uri.startswith("sqlite"):
        assert tracking.backend_uri == f"sqlite:///{tracking.layout.mlflow_db}"
        assert tracking.layout.mlflow_db.exists()
    else:
        assert "search_path%3Dt_" in tracking.backend_uri and "_mlflow" in tracking.backend_uri


def test_experiment_is_created_once_and_restored(tracking: Tracking) -> None:
    name = _name("exp")
    assert tracking.store.get_experiment_by_name(name) is None
    exp_id = tracking.experiment_id(name)
    assert tracking.experiment_id(name) == exp_id
    assert tracking.store.get_experiment(exp_id).name == name
    tracking.store.delete_experiment(exp_id)
    assert tracking.experiment_id(name) == exp_id, "a deleted experiment is restored, not duplicated"
    assert tracking.store.get_experiment(exp_id).lifecycle_stage == "active"
    found = tracking.store.search_experiments(filter_string=f"name = '{name}'")
    assert [e.experiment_id for e in found] == [exp_id]


def test_run_id_is_the_job_name_with_tags_and_parent(tracking: Tracking) -> None:
    exp, parent, child = _name("exp"), _name("job"), _name("job")
    made = tracking.create_run(parent, exp, run_name="display", tags={"team": "a"})
    assert made["run_id"] == parent and made["experiment_id"] == tracking.experiment_id(exp)
    tracking.create_run(child, exp, parent_run_id=parent)
    run = tracking.store.get_run(parent)
    assert (run.info.run_id, run.info.run_name, run.info.status) == (parent, "display", "SCHEDULED")
    assert run.data.tags["team"] == "a" and run.data.tags["mlflow.runName"] == "display"
    assert tracking.store.get_run(child).data.tags["mlflow.parentRunId"] == parent
    assert tracking.store.get_run(child).info.run_name == child, "the run name defaults to the job name"
    with pytest.raises(Exception):  # noqa: B017 - MLflow's or the database's duplicate-key error
        tracking.create_run(parent, exp)
    runs = tracking.store.search_runs([made["experiment_id"]], "tags.team = 'a'", run_view_type=1)
    assert [r.info.run_id for r in runs] == [parent]


@pytest.mark.parametrize(("job_status", "mlflow_status"), [
    ("Completed", "FINISHED"), ("Failed", "FAILED"), ("Canceled", "KILLED"), ("NotResponding", "FAILED")])
def test_status_mapping(tracking: Tracking, job_status: str, mlflow_status: str) -> None:
    run_id = _name("job")
    tracking.create_run(run_id, _name("exp"))
    tracking.set_run_running(run_id)
    assert tracking.store.get_run(run_id).info.status == "RUNNING"
    before = int(time.time() * 1000)
    tracking.end_run(run_id, job_status)
    info = tracking.store.get_run(run_id).info
    assert info.status == mlflow_status and info.end_time is not None and info.end_time >= before - 1000


def test_end_run_of_a_run_deleted_through_mlflow_does_not_raise(tracking: Tracking) -> None:
    run_id = _name("job")
    tracking.create_run(run_id, _name("exp"))
    tracking.store.delete_run(run_id)
    tracking.end_run(run_id, "Completed")


def test_params_tags_metrics_and_summary(tracking: Tracking) -> None:
    from mlflow.entities import Metric

    run_id = _name("job")
    tracking.create_run(run_id, _name("exp"), tags={"a": "1"})
    tracking.log_params(run_id, {"lr": 0.1, "layers": 3})
    tracking.set_tags(run_id, {"b": 2, "a": "one"})
    now = int(time.time() * 1000)
    tracking.store.log_batch(run_id, metrics=[Metric("acc", v, now + i, i) for i, v in enumerate([0.5, 0.7, 0.6])],
                             params=[], tags=[])
    assert tracking.metric_history(run_id, "acc") == [(0, 0.5), (1, 0.7), (2, 0.6)]
    assert tracking.metric_history(run_id, "none") == []
    summary = tracking.run_summary(run_id)
    assert summary == {"metrics": {"acc": 0.6}, "params": {"lr": "0.1", "layers": "3"},
                       "tags": {"a": "one", "b": "2"}}, "latest values; mlflow.* tags left out"
    assert tracking.run_summary(_name("missing")) == {"metrics": {}, "params": {}, "tags": {}}


@pytest.mark.postgres
@pytest.mark.backend("postgres")
def test_sqlite_tracking_leaves_postgres_connections_alone(tmp_path: Path, pg_database: Any) -> None:
    """Regression: the WAL pragmas of a SQLite tracking store were sent to every new connection of
    the process; on PostgreSQL the failed PRAGMA aborted the connection's first transaction, so a
    server with ``--tracking-url sqlite:...`` and its metadata on PostgreSQL could not start."""
    from openaml.store import MetadataStore

    Tracking(WorkspaceLayout(tmp_path)).start()
    store = MetadataStore(fresh_postgres_schema(pg_database)).start()
    try:
        store.set_meta("k", "v")
        assert store.get_meta("k") == "v"
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------- port: artifacts


def test_artifact_root_is_the_workspace_folder(tracking: Tracking) -> None:
    run_id = _name("job")
    made = tracking.create_run(run_id, _name("exp"))
    assert made["artifact_uri"] == f"mlflow-artifacts:/{made['experiment_id']}/{run_id}/artifacts"
    folder = tracking.run_artifact_dir(run_id)
    assert folder == tracking.layout.mlartifacts.resolve() / made["experiment_id"] / run_id / "artifacts"
    folder.mkdir(parents=True)
    (folder / "model.txt").write_text("m")
    assert tracking.resolve_artifact_uri(f"runs:/{run_id}/model.txt") == (folder / "model.txt", None)
    assert tracking.resolve_artifact_uri(made["artifact_uri"])[0] == folder
    with pytest.raises(ValidationError, match="escapes the artifact root"):
        tracking.artifact_dir("mlflow-artifacts:/../../etc")
    with pytest.raises(PathEscapeError, match="outside the workspace's artifact store"):
        tracking.resolve_artifact_uri("/etc/hostname")
    with pytest.raises(UnsupportedError, match="s3: scheme"):
        tracking.resolve_artifact_uri("s3://bucket/model")
    with pytest.raises(NotFoundError, match="has no artifact or logged model 'nope'; its artifacts are: model.txt"):
        tracking.resolve_artifact_uri(f"runs:/{run_id}/nope")


# ---------------------------------------------------------------------------------------------- port: registry


def test_registry_versions_sources_and_conflicts(tracking: Tracking) -> None:
    name, run_id = _name("model"), _name("job")
    made = tracking.create_run(run_id, _name("exp"))
    assert tracking.next_model_version(name) == 1 and tracking.list_model_versions(name) == []
    v1 = tracking.create_model_version(name, source=made["artifact_uri"], version=1, description="first",
                                       tags={"stage": "dev"}, run_id=run_id)
    assert {k: v1[k] for k in ("name", "version", "source", "run_id", "description", "tags")} == {
        "name": name, "version": "1", "source": made["artifact_uri"], "run_id": run_id,
        "description": "first", "tags": {"stage": "dev"}}
    v5 = tracking.create_model_version(name, source="mlflow-artifacts:/x", version=5, description=None, tags={})
    assert v5["version"] == "5" and tracking.next_model_version(name) == 6, "versions chosen by openaml"
    assert [v["version"] for v in tracking.list_model_versions(name)] == ["5", "1"]
    assert name in tracking.list_model_names()
    assert tracking.get_model_version(name, "1")["source"] == made["artifact_uri"]
    with pytest.raises(ConflictError, match="already exists"):
        tracking.create_model_version(name, source="x", version=5, description=None, tags={})
    with pytest.raises(ValidationError, match="positive integers"):
        tracking.create_model_version(name, source="x", version=0, description=None, tags={})
    tracking.registry.delete_model_version(name, "5")
    assert tracking.model_version_exists(name, 5) and tracking.next_model_version(name) == 6, "never reused"
    with pytest.raises(NotFoundError, match=f"model '{name}' has no version '7'; its versions are: 1"):
        tracking.get_model_version(name, "7")
    with pytest.raises(NotFoundError, match="not found"):
        tracking.get_model_version(_name("none"), "1")
    tracking.set_model_version_tag(name, "1", "k", "v")
    assert tracking.get_model_version(name, "1")["tags"] == {"stage": "dev", "k": "v"}


def test_registry_aliases_and_stages(tracking: Tracking) -> None:
    name = _name("model")
    tracking.create_model_version(name, source="mlflow-artifacts:/a", version=1, description=None, tags={})
    tracking.create_model_version(name, source="mlflow-artifacts:/b", version=2, description=None, tags={})
    tracking.registry.set_registered_model_alias(name, "champion", "1")
    assert tracking.get_model_version_by_alias(name, "champion")["version"] == "1"
    with pytest.raises(NotFoundError, match="labels are 'latest' and its MLflow aliases: champion"):
        tracking.get_model_version_by_alias(name, "nope")
    mv = tracking.registry.transition_model_version_stage(name, "2", "Production", archive_existing_versions=False)
    assert mv.current_stage == "Production"
    assert [str(v.version) for v in tracking.registry.get_latest_versions(name, ["Production"])] == ["2"]


def test_models_uri_resolves_through_the_version_source(tracking: Tracking) -> None:
    name, run_id = _name("model"), _name("job")
    tracking.create_run(run_id, _name("exp"))
    folder = tracking.run_artifact_dir(run_id) / "model"
    folder.mkdir(parents=True)
    tracking.create_model_version(name, source=f"runs:/{run_id}/model", version=1, description=None, tags={},
                                  run_id=run_id)
    assert tracking.resolve_artifact_uri(f"models:/{name}/1")[0] == folder


# ---------------------------------------------------------------------------------------------- server + mlflow client


@pytest.fixture(scope="module", params=SQL_BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, ServerHandle, Settings]]:
    """(backend, a real server on it, its settings)."""
    root = tmp_path_factory.mktemp(f"served-{request.param}") / "ws"
    settings, env = _settings(request.param, root, request)
    server = start_server(root, name=f"tracking-{request.param}", env=env)
    try:
        yield request.param, server, settings
    finally:
        server.stop()


def _backend_experiments(backend: str, settings: Settings, pg_database: Any) -> set[str]:
    """Experiment names as stored in the backend itself (not through MLflow)."""
    if backend == "sqlite":
        with sqlite3.connect(settings.workspace / "mlflow.db") as conn:
            return {r[0] for r in conn.execute("SELECT name FROM experiments")}
    import psycopg

    schema = schema_of(str(settings.database_url))
    with psycopg.connect(libpq(pg_database)) as conn:
        return {r[0] for r in conn.execute(f'SELECT name FROM "{schema}_mlflow".experiments')}


def test_mlflow_client_through_the_server(served: tuple[str, ServerHandle, Settings], tmp_path: Path,
                                          request: pytest.FixtureRequest) -> None:
    import mlflow
    from mlflow.entities import RunStatus

    backend, server, settings = served
    client = mlflow.MlflowClient(tracking_uri=server.url + "/mlflow", registry_uri=server.url + "/mlflow")
    exp_name = _name("client-exp")
    exp_id = client.create_experiment(exp_name)
    assert client.get_experiment_by_name(exp_name).experiment_id == exp_id
    assert [e.name for e in client.search_experiments(filter_string=f"name = '{exp_name}'")] == [exp_name]

    run = client.create_run(exp_id, tags={"team": "a"}, run_name="r1")
    rid = run.info.run_id
    for step, value in enumerate([0.5, 0.8, 0.7]):
        client.log_metric(rid, "acc", value, step=step)
    client.log_param(rid, "lr", "0.1")
    client.set_tag(rid, "b", "2")
    (tmp_path / "model.txt").write_text("m")
    client.log_artifact(rid, str(tmp_path / "model.txt"))
    client.set_terminated(rid, RunStatus.to_string(RunStatus.FINISHED))

    got = client.get_run(rid)
    assert got.info.status == "FINISHED" and got.data.metrics == {"acc": 0.7} and got.data.params == {"lr": "0.1"}
    assert got.data.tags["team"] == "a" and got.data.tags["b"] == "2"
    assert [(m.step, m.value) for m in client.get_metric_history(rid, "acc")] == [(0, 0.5), (1, 0.8), (2, 0.7)]
    assert [r.info.run_id for r in client.search_runs([exp_id], "metrics.acc > 0.6")] == [rid]
    assert got.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert [a.path for a in client.list_artifacts(rid)] == ["model.txt"]
    # artifacts land in the workspace's artifact root, whatever the backend
    assert (settings.workspace / "mlartifacts" / exp_id / rid / "artifacts" / "model.txt").read_text() == "m"

    model = _name("client-model")
    client.create_registered_model(model)
    mv = client.create_model_version(model, f"runs:/{rid}/model.txt", run_id=rid)
    assert mv.version == "1" and mv.source == f"runs:/{rid}/model.txt"
    client.set_registered_model_alias(model, "champion", "1")
    assert client.get_model_version_by_alias(model, "champion").version == "1"
    assert client.transition_model_version_stage(model, "1", "Staging").current_stage == "Staging"

    pg = request.getfixturevalue("pg_database") if backend == "postgres" else None
    assert exp_name in _backend_experiments(backend, settings, pg), "the server's backend is the settings' one"
    if backend == "postgres":
        assert not (settings.workspace / "mlflow.db").exists()


@pytest.mark.postgres
@pytest.mark.backend("postgres")
def test_tracking_url_setting_with_metadata_on_postgres(tmp_path: Path, pg_database: Any) -> None:
    """``--tracking-url sqlite:...`` beside a PostgreSQL metadata store: MLflow's data goes to that file,
    the metadata to PostgreSQL (regression: the SQLite pragmas broke the PostgreSQL connections)."""
    import mlflow

    from openaml import MLClient

    tracking_db = tmp_path / "tracking.db"
    url = fresh_postgres_schema(pg_database)
    server = start_server(tmp_path / "ws", name="tracking-url", env={
        "OPENAML_DATABASE_URL": url, "OPENAML_TRACKING_URL": f"sqlite:///{tracking_db}"})
    try:
        client = mlflow.MlflowClient(tracking_uri=server.url + "/mlflow")
        exp_name = _name("tracking-url")
        client.create_experiment(exp_name)
        with MLClient(workspace=server.url) as ml:
            assert [d.name for d in ml.datastores.list()] == ["workspaceblobstore"]
    finally:
        server.stop()
    with sqlite3.connect(tracking_db) as conn:
        assert exp_name in {r[0] for r in conn.execute("SELECT name FROM experiments")}
    assert not (tmp_path / "ws" / "mlflow.db").exists()
