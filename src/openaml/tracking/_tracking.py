"""MLflow stores of a workspace, and the operations openaml needs on them."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from openaml.errors import ConflictError, NotFoundError, PathEscapeError, UnsupportedError, ValidationError
from openaml.tracking._backend import ensure_backend, open_stores
from openaml.tracking._queries import TrackingQueries
from openaml.workspace import WorkspaceLayout

__all__ = ["Tracking"]

_STATUS_TO_MLFLOW = {"Completed": "FINISHED", "Failed": "FAILED", "Canceled": "KILLED"}


class Tracking(TrackingQueries):
    """MLflow tracking + registry stores of one workspace.

    MLflow's server keeps its stores in process globals; one openaml server serves one
    workspace, so this object configures them once at :meth:`start`.
    """

    def __init__(self, layout: WorkspaceLayout, *, backend_uri: str | None = None) -> None:
        self.layout = layout
        self.backend_uri = backend_uri or f"sqlite:///{layout.mlflow_db}"
        self._tracking_store: Any = None
        self._registry_store: Any = None
        #: the workspace's shared files (services/workspace_files.py): artifacts missing here are
        #: fetched from the default datastore when it is an object store; None: local only
        self.files: Any = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, allowed_hosts: list[str] | None = None) -> None:
        """Configure MLflow's server (its documented environment variables and
        ``initialize_backend_stores``) on this workspace's backend and artifact folder, and open
        openaml's own handles on the same stores.

        Raises:
            UnsupportedError: a backend URI MLflow's SQL stores do not support.
        """
        from mlflow.server import constants as c

        ensure_backend(self.backend_uri)
        os.environ[c.BACKEND_STORE_URI_ENV_VAR] = self.backend_uri
        os.environ[c.REGISTRY_STORE_URI_ENV_VAR] = self.backend_uri
        os.environ[c.ARTIFACT_ROOT_ENV_VAR] = "mlflow-artifacts:/"
        os.environ[c.ARTIFACTS_DESTINATION_ENV_VAR] = str(self.layout.mlartifacts)
        os.environ[c.SERVE_ARTIFACTS_ENV_VAR] = "true"
        os.environ.setdefault("MLFLOW_SERVER_ALLOWED_HOSTS", ",".join(allowed_hosts or ["*"]))
        os.environ.setdefault("MLFLOW_SERVER_CORS_ALLOWED_ORIGINS", "")
        from mlflow.server.handlers import initialize_backend_stores

        if self.backend_uri.startswith("sqlite:///"):
            _sqlite_wal_for(self.backend_uri[len("sqlite:///"):])

        initialize_backend_stores(self.backend_uri, self.backend_uri, "mlflow-artifacts:/")
        self._tracking_store, self._registry_store = open_stores(self.backend_uri, "mlflow-artifacts:/")

    def asgi_app(self) -> Any:
        from mlflow.server.fastapi_app import create_fastapi_app

        from openaml.tracking._compat import OldClientPaths

        return OldClientPaths(create_fastapi_app())  # MLflow 1.x clients' registry paths

    @property
    def store(self) -> Any:
        if self._tracking_store is None:
            raise RuntimeError("Tracking.start() was not called")
        return self._tracking_store

    @property
    def registry(self) -> Any:
        if self._registry_store is None:
            raise RuntimeError("Tracking.start() was not called")
        return self._registry_store

    # ------------------------------------------------------------------ experiments and runs
    def experiment_id(self, name: str) -> str:
        return str(self._experiment(name).experiment_id)

    def _experiment(self, name: str) -> Any:
        """The active MLflow experiment named ``name`` (created, or restored if deleted)."""
        exp = self.store.get_experiment_by_name(name)
        if exp is None:
            try:
                exp_id = self.store.create_experiment(name, artifact_location=None)
            except Exception:  # created concurrently
                exp = self.store.get_experiment_by_name(name)
                if exp is None:
                    raise
                return exp
            return self.store.get_experiment(exp_id)
        if exp.lifecycle_stage == "deleted":
            self.store.restore_experiment(exp.experiment_id)
        return exp

    def create_run(self, run_id: str, experiment_name: str, *, run_name: str | None = None,
                   tags: dict[str, str] | None = None, parent_run_id: str | None = None) -> dict[str, str]:
        """Create an MLflow run whose id is the job name (Azure ML: job name == run id).

        Returns ``{"experiment_id", "run_id", "artifact_uri"}``.
        """
        from mlflow.entities import LifecycleStage, RunStatus, SourceType
        from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME, MLFLOW_USER

        exp = self._experiment(experiment_name)  # its artifact location too: one query, not two
        exp_id = str(exp.experiment_id)
        artifact_uri = f"{exp.artifact_location.rstrip('/')}/{run_id}/artifacts"
        all_tags = {MLFLOW_RUN_NAME: run_name or run_id, MLFLOW_USER: os.environ.get("USER", "openaml")}
        if parent_run_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        all_tags.update(tags or {})
        with self.store.ManagedSessionMaker(read_only=False) as session:
            run = SqlRun(
                name=run_name or run_id, artifact_uri=artifact_uri, run_uuid=run_id, experiment_id=int(exp_id),
                source_type=SourceType.to_string(SourceType.JOB), source_name="", entry_point_name="",
                user_id=all_tags[MLFLOW_USER], status=RunStatus.to_string(RunStatus.SCHEDULED),
                start_time=int(time.time() * 1000), end_time=None, deleted_time=None, source_version="",
                lifecycle_stage=LifecycleStage.ACTIVE,
            )
            run.tags = [SqlTag(key=k, value=str(v)) for k, v in all_tags.items()]
            session.add(run)
        return {"experiment_id": exp_id, "run_id": run_id, "artifact_uri": artifact_uri}

    def set_run_running(self, run_id: str) -> None:
        from mlflow.entities import RunStatus

        self.store.update_run_info(run_id, RunStatus.RUNNING, None, None)

    def end_run(self, run_id: str, job_status: str) -> None:
        from mlflow.entities import RunStatus

        status = RunStatus.from_string(_STATUS_TO_MLFLOW.get(job_status, "FAILED"))
        try:
            self.store.update_run_info(run_id, status, int(time.time() * 1000), None)
        except Exception:  # noqa: BLE001 - the run was deleted by the user through MLflow; the job still ends
            pass

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        for k, v in tags.items():
            self.store.set_tag(run_id, RunTag(k, str(v)))

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self.store.log_batch(run_id, metrics=[], params=[Param(k, str(v)) for k, v in params.items()], tags=[])

    def log_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        """Log ``metrics`` (step 0, now) on run ``run_id`` in one batch."""
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        self.store.log_batch(run_id, metrics=[Metric(k, float(v), ts, 0) for k, v in metrics.items()], params=[],
                             tags=[])

    def run_summary(self, run_id: str) -> dict[str, Any]:
        """Metrics (latest values), params and tags of a run; empty when the run is gone."""
        try:
            run = self.store.get_run(run_id)
        except Exception:  # noqa: BLE001 - a run deleted through MLflow shows as empty, not as an error
            return {"metrics": {}, "params": {}, "tags": {}}
        return {"metrics": dict(run.data.metrics), "params": dict(run.data.params),
                "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}}

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.store.get_metric_history(run_id, key)]

    def artifact_dir(self, artifact_uri: str, *, fetch: bool = True) -> Path:
        """Local folder behind an ``mlflow-artifacts:/...`` URI (the workspace's artifact root);
        with ``fetch``, what another server of the workspace stored there is fetched first
        (:attr:`files`)."""
        parsed = urlparse(artifact_uri)
        if parsed.scheme != "mlflow-artifacts":
            raise ValidationError(f"not a served artifact URI: {artifact_uri}")
        rel = parsed.path.lstrip("/")
        root = self.layout.mlartifacts.resolve()
        p = (root / rel).resolve()
        if root not in p.parents and p != root:
            raise ValidationError(f"artifact URI escapes the artifact root: {artifact_uri}")
        if fetch and self.files is not None:
            self.files.try_pull(p)
        return p

    def run_artifact_dir(self, run_id: str) -> Path:
        run = self.store.get_run(run_id)
        return self.artifact_dir(run.info.artifact_uri)

    # ------------------------------------------------------------------ model registry
    # Workspace models ARE MLflow registered model versions (spec 7.2: one registry serves both
    # APIs). These methods return plain records; the models service gives them their meaning.
    def _mv_record(self, mv: Any) -> dict[str, Any]:
        from mlflow.exceptions import MlflowException

        try:
            storage_uri = self.registry.get_model_version_download_uri(mv.name, str(mv.version))
        except MlflowException:
            storage_uri = mv.source
        return {
            "name": mv.name,
            "version": str(mv.version),
            "source": mv.source or "",
            "storage_uri": storage_uri or mv.source or "",
            "run_id": mv.run_id or None,
            "description": mv.description or None,
            "tags": dict(mv.tags or {}),
            "created_at": mv.creation_timestamp,
            "last_updated_at": mv.last_updated_timestamp,
            "user_id": mv.user_id or None,
        }

    def next_model_version(self, name: str) -> int:
        """One more than the highest version ever used by ``name`` (deleted ones included: MLflow
        keeps their rows, and versions are never reused)."""
        import sqlalchemy
        from mlflow.store.model_registry.dbmodels.models import SqlModelVersion

        with self.registry.ManagedSessionMaker(read_only=False) as session:
            top = session.query(sqlalchemy.func.max(SqlModelVersion.version)).filter(
                SqlModelVersion.name == name).scalar()
        return int(top or 0) + 1

    def create_model_version(self, name: str, *, source: str, version: int, description: str | None,
                             tags: dict[str, str], run_id: str | None = None) -> dict[str, Any]:
        """Register version ``version`` of ``name`` (the registered model is created when new).

        MLflow numbers versions itself (max + 1); another number is obtained by renumbering the
        new row before any tag is attached to it.

        Returns:
            The model version record (see :meth:`get_model_version`).

        Raises:
            ValidationError: ``version`` is not a positive integer.
            ConflictError: the version exists, or was used by a version deleted through MLflow.
        """
        from mlflow.entities.model_registry import ModelVersionTag
        from mlflow.exceptions import MlflowException

        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValidationError(f"model version {version!r} is invalid: versions are positive integers",
                                  details={"field": "version", "value": str(version)})
        try:
            self.registry.get_registered_model(name)
        except MlflowException:
            try:
                self.registry.create_registered_model(name)
            except MlflowException:
                pass  # created concurrently
        if self.model_version_exists(name, version):
            raise ConflictError(f"model {name}:{version} already exists (or was deleted through MLflow); "
                                "model versions are immutable and never reused: omit the version to get "
                                f"the next one ({self.next_model_version(name)})",
                                details={"name": name, "version": str(version)})
        mv = self.registry.create_model_version(name, source, run_id=run_id, description=description)
        if int(mv.version) != version:
            mv = self._renumber(name, int(mv.version), version)
        for k, v in tags.items():
            self.registry.set_model_version_tag(name, str(version), ModelVersionTag(k, str(v)))
        return self._mv_record(self.registry.get_model_version(name, str(version)))

    def model_version_exists(self, name: str, version: int) -> bool:
        """True when ``name:version`` exists or existed (MLflow keeps deleted versions' rows)."""
        from mlflow.store.model_registry.dbmodels.models import SqlModelVersion

        with self.registry.ManagedSessionMaker(read_only=False) as session:
            return session.query(SqlModelVersion).filter(SqlModelVersion.name == name,
                                                         SqlModelVersion.version == version).first() is not None

    def _renumber(self, name: str, old: int, new: int) -> Any:
        import sqlalchemy.exc
        from mlflow.store.model_registry.dbmodels.models import SqlModelVersion

        try:
            with self.registry.ManagedSessionMaker(read_only=False) as session:
                row = session.query(SqlModelVersion).filter(SqlModelVersion.name == name,
                                                            SqlModelVersion.version == old).one()
                row.version = new
        except sqlalchemy.exc.IntegrityError:
            self.registry.delete_model_version(name, str(old))
            raise ConflictError(f"model {name}:{new} was created concurrently; versions are immutable") from None
        return self.registry.get_model_version(name, str(new))

    def get_model_version(self, name: str, version: str) -> dict[str, Any]:
        """The record of ``name:version``: ``{name, version, source, storage_uri, run_id, description,
        tags, created_at, last_updated_at, user_id}``.

        Raises:
            NotFoundError: listing the versions that exist, or saying the model does not exist.
        """
        from mlflow.exceptions import MlflowException

        try:
            return self._mv_record(self.registry.get_model_version(name, str(version)))
        except MlflowException:
            versions = [v["version"] for v in self.list_model_versions(name)]
            if versions:
                raise NotFoundError(f"model {name!r} has no version {version!r}; its versions are: "
                                    f"{', '.join(reversed(versions))}",
                                    details={"name": name, "version": str(version), "versions": versions}) from None
            raise NotFoundError(f"model {name!r} not found; list models with: openaml model list",
                                details={"name": name}) from None

    def list_model_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name``, newest first (empty when the model does not exist)."""
        quoted = name.replace("'", "''")
        mvs = self.registry.search_model_versions(f"name='{quoted}'", max_results=10000)
        return sorted((self._mv_record(mv) for mv in mvs if mv.name == name), key=lambda d: -int(d["version"]))

    def list_model_names(self) -> list[str]:
        names: list[str] = []
        token = None
        while True:
            page = self.registry.search_registered_models(max_results=1000, page_token=token)
            names.extend(rm.name for rm in page)
            token = page.token
            if not token:
                return sorted(names)

    def get_model_version_by_alias(self, name: str, alias: str) -> dict[str, Any]:
        """The version an MLflow alias (``@champion``) points to.

        Raises:
            NotFoundError: the model has no such alias (its aliases are listed).
        """
        from mlflow.exceptions import MlflowException

        try:
            return self._mv_record(self.registry.get_model_version_by_alias(name, alias))
        except MlflowException:
            try:
                aliases = sorted(self.registry.get_registered_model(name).aliases)
            except MlflowException:
                raise NotFoundError(f"model {name!r} not found; list models with: openaml model list",
                                    details={"name": name}) from None
            raise NotFoundError(f"model {name!r} has no label {alias!r}; labels are 'latest' and its MLflow "
                                f"aliases: {', '.join(aliases) or '(none)'}", details={"name": name}) from None

    def update_model_version_description(self, name: str, version: str, description: str) -> None:
        self.registry.update_model_version(name, str(version), description)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        from mlflow.entities.model_registry import ModelVersionTag

        self.registry.set_model_version_tag(name, str(version), ModelVersionTag(key, value))

    # ------------------------------------------------------------------ artifact locations
    def resolve_artifact_uri(self, uri: str) -> tuple[Path, str | None]:
        """Local file or folder behind an MLflow location, and the name MLflow gave it.

        Accepted: ``mlflow-artifacts:/<path>``, ``runs:/<run_id>/<path>``, ``models:/<model_id>``
        (an MLflow 3 logged model), ``models:/<name>/<version>``, and plain paths or ``file:``
        URIs that lie inside the workspace's artifact root. The name is the logged model's name,
        else None.

        Raises:
            PathEscapeError: a location outside the workspace's artifact root.
            NotFoundError: unknown run, logged model or model version.
            UnsupportedError: another scheme (s3:, dbfs:, ...).
        """
        parsed = urlparse(uri)
        if parsed.scheme == "mlflow-artifacts":
            return self.artifact_dir(uri), None
        if parsed.scheme == "runs":
            run_id, _, rel = uri[len("runs:/"):].lstrip("/").partition("/")
            return self.resolve_run_path(run_id, rel)
        if parsed.scheme == "models":
            parts = [p for p in uri[len("models:/"):].split("/") if p]
            if len(parts) == 1:
                return self._logged_model_dir(parts[0])
            if len(parts) == 2 and parts[1].isdigit():
                rec = self.get_model_version(parts[0], parts[1])
                if rec["storage_uri"] == uri:
                    raise ValidationError(f"model version source {uri!r} refers to itself")
                return self.resolve_artifact_uri(rec["storage_uri"])
            raise ValidationError(f"MLflow model URI {uri!r} is not models:/<model_id> or models:/<name>/<version>")
        if parsed.scheme in ("", "file"):
            local = Path(parsed.path if parsed.scheme == "file" else uri)
            root = self.layout.mlartifacts.resolve()
            resolved = local.resolve()
            if resolved != root and root not in resolved.parents:
                raise PathEscapeError(f"model location {uri!r} is outside the workspace's artifact store; "
                                      "only files of this workspace can be read", details={"value": uri})
            return resolved, None
        raise UnsupportedError(f"model location {uri!r} uses the {parsed.scheme}: scheme, which this "
                               "installation cannot read; register models from files of this workspace")

    def _logged_model_dir(self, model_id: str) -> tuple[Path, str | None]:
        from mlflow.exceptions import MlflowException

        try:
            lm = self.store.get_logged_model(model_id)
        except MlflowException:
            raise NotFoundError(f"MLflow logged model {model_id!r} not found") from None
        return self.artifact_dir(lm.artifact_location), lm.name

    def resolve_run_path(self, run_id: str, rel: str) -> tuple[Path, str | None]:
        """``<run artifacts>/<rel>``; when absent, the MLflow 3 logged model named ``rel`` of that run
        (``log_model(name=...)`` writes outside the run's artifacts, yet ``runs:/<id>/<name>`` means it).

        Raises:
            NotFoundError: unknown run, or neither an artifact nor a logged model of that name.
            PathEscapeError: ``rel`` leaves the run's artifact folder.
        """
        from mlflow.exceptions import MlflowException

        from openaml.datastores import safe_join

        try:
            run = self.store.get_run(run_id)
        except MlflowException:
            raise NotFoundError(f"run (job) {run_id!r} not found", details={"value": run_id}) from None
        base = self.artifact_dir(run.info.artifact_uri)
        target = safe_join(base, rel, what=f"artifact path of run {run_id}")
        if target.exists() or not rel.strip("/"):
            return target, None
        name = rel.strip("/")
        quoted = name.replace("'", "''")
        try:
            found = self.store.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=f"source_run_id = '{run_id}' AND name = '{quoted}'", max_results=10)
        except MlflowException:
            found = []
        if found:
            return self._logged_model_dir(found[0].model_id)
        listing = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
        raise NotFoundError(f"run {run_id!r} has no artifact or logged model {rel!r}; its artifacts are: "
                            f"{', '.join(listing) or '(none)'}", details={"value": rel})


_WAL_PATHS: set[str] = set()


def _sqlite_wal_for(db_path: str) -> None:
    """WAL journal and ``synchronous=NORMAL`` on MLflow's SQLite store (it uses SQLite's defaults).

    With the default rollback journal every ``log_metric`` waits for a full fsync and readers block
    the writer; WAL (the embedded default of the metadata store too) removes both. NORMAL keeps the
    database consistent after a crash; only the last transactions before a power loss may be lost.
    """
    import os

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = os.path.realpath(db_path)
    if target in _WAL_PATHS:
        return
    _WAL_PATHS.add(target)

    @event.listens_for(Engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # every engine of the process passes here: only sqlite3's are asked (a PRAGMA sent to a
        # PostgreSQL connection would fail and leave its first transaction aborted)
        if not isinstance(dbapi_conn, sqlite3.Connection):
            return
        rows = dbapi_conn.execute("PRAGMA database_list").fetchall()
        if any(r[2] and os.path.realpath(r[2]) == target for r in rows):
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")
            dbapi_conn.execute("PRAGMA busy_timeout=30000")
