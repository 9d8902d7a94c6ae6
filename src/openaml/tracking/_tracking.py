"""MLflow stores of a workspace, and the operations openaml needs on them."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from openaml.errors import ConflictError, NotFoundError, ValidationError
from openaml.workspace import WorkspaceLayout

__all__ = ["Tracking"]

_STATUS_TO_MLFLOW = {"Completed": "FINISHED", "Failed": "FAILED", "Canceled": "KILLED"}
ARCHIVED_TAG = "openaml.archived"
MODEL_TYPE_TAG = "openaml.model_type"
MODEL_PATH_TAG = "openaml.path"


class Tracking:
    """MLflow tracking + registry stores of one workspace.

    MLflow's server keeps its stores in process globals; one openaml server serves one
    workspace, so this object configures them once at :meth:`start`.
    """

    def __init__(self, layout: WorkspaceLayout, *, backend_uri: str | None = None) -> None:
        self.layout = layout
        self.backend_uri = backend_uri or f"sqlite:///{layout.mlflow_db}"
        self._tracking_store: Any = None
        self._registry_store: Any = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, allowed_hosts: list[str] | None = None) -> None:
        from mlflow.server import constants as c

        os.environ[c.BACKEND_STORE_URI_ENV_VAR] = self.backend_uri
        os.environ[c.REGISTRY_STORE_URI_ENV_VAR] = self.backend_uri
        os.environ[c.ARTIFACT_ROOT_ENV_VAR] = "mlflow-artifacts:/"
        os.environ[c.ARTIFACTS_DESTINATION_ENV_VAR] = str(self.layout.mlartifacts)
        os.environ[c.SERVE_ARTIFACTS_ENV_VAR] = "true"
        os.environ.setdefault("MLFLOW_SERVER_ALLOWED_HOSTS", ",".join(allowed_hosts or ["*"]))
        os.environ.setdefault("MLFLOW_SERVER_CORS_ALLOWED_ORIGINS", "")
        from mlflow.server.handlers import _get_model_registry_store, _get_tracking_store, initialize_backend_stores

        initialize_backend_stores(self.backend_uri, self.backend_uri, "mlflow-artifacts:/")
        self._tracking_store = _get_tracking_store()
        self._registry_store = _get_model_registry_store()

    def asgi_app(self) -> Any:
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app()

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
        exp = self.store.get_experiment_by_name(name)
        if exp is None:
            try:
                return str(self.store.create_experiment(name, artifact_location=None))
            except Exception:  # created concurrently
                exp = self.store.get_experiment_by_name(name)
                if exp is None:
                    raise
                return str(exp.experiment_id)
        if exp.lifecycle_stage == "deleted":
            self.store.restore_experiment(exp.experiment_id)
        return str(exp.experiment_id)

    def create_run(self, run_id: str, experiment_name: str, *, run_name: str | None = None,
                   tags: dict[str, str] | None = None, parent_run_id: str | None = None) -> dict[str, str]:
        """Create an MLflow run whose id is the job name (Azure ML: job name == run id).

        Returns ``{"experiment_id", "run_id", "artifact_uri"}``.
        """
        from mlflow.entities import LifecycleStage, RunStatus, SourceType
        from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME, MLFLOW_USER

        exp_id = self.experiment_id(experiment_name)
        exp = self.store.get_experiment(exp_id)
        artifact_uri = f"{exp.artifact_location.rstrip('/')}/{run_id}/artifacts"
        all_tags = {MLFLOW_RUN_NAME: run_name or run_id, MLFLOW_USER: os.environ.get("USER", "openaml")}
        if parent_run_id:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        all_tags.update(tags or {})
        with self.store.ManagedSessionMaker() as session:
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
        self.store.update_run_info(run_id, "RUNNING", None, None)

    def end_run(self, run_id: str, job_status: str) -> None:
        status = _STATUS_TO_MLFLOW.get(job_status, "FAILED")
        try:
            self.store.update_run_info(run_id, status, int(time.time() * 1000), None)
        except Exception:  # the run was deleted by the user through MLflow; the job still ends
            pass

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        for k, v in tags.items():
            self.store.set_tag(run_id, RunTag(k, str(v)))

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self.store.log_batch(run_id, metrics=[], params=[Param(k, str(v)) for k, v in params.items()], tags=[])

    def run_summary(self, run_id: str) -> dict[str, Any]:
        """Metrics (latest values), params and tags of a run; empty when the run is gone."""
        try:
            run = self.store.get_run(run_id)
        except Exception:
            return {"metrics": {}, "params": {}, "tags": {}}
        return {"metrics": dict(run.data.metrics), "params": dict(run.data.params),
                "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}}

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.store.get_metric_history(run_id, key)]

    def artifact_dir(self, artifact_uri: str) -> Path:
        """Local folder behind an ``mlflow-artifacts:/...`` URI (the workspace's artifact root)."""
        parsed = urlparse(artifact_uri)
        if parsed.scheme != "mlflow-artifacts":
            raise ValidationError(f"not a served artifact URI: {artifact_uri}")
        rel = parsed.path.lstrip("/")
        root = self.layout.mlartifacts.resolve()
        p = (root / rel).resolve()
        if root not in p.parents and p != root:
            raise ValidationError(f"artifact URI escapes the artifact root: {artifact_uri}")
        return p

    def run_artifact_dir(self, run_id: str) -> Path:
        run = self.store.get_run(run_id)
        return self.artifact_dir(run.info.artifact_uri)

    # ------------------------------------------------------------------ model registry
    def _mv_dict(self, mv: Any) -> dict[str, Any]:
        tags = dict(mv.tags or {})
        return {
            "name": mv.name,
            "version": str(mv.version),
            "type": tags.get(MODEL_TYPE_TAG) or ("mlflow_model" if mv.run_id or mv.source.startswith(("runs:", "models:")) else "custom_model"),
            "path": tags.get(MODEL_PATH_TAG) or mv.source,
            "source": mv.source,
            "description": mv.description or None,
            "tags": {k: v for k, v in tags.items() if not k.startswith("openaml.")},
            "properties": {k[len("openaml.prop."):]: v for k, v in tags.items() if k.startswith("openaml.prop.")},
            "job_name": mv.run_id or None,
            "archived": tags.get(ARCHIVED_TAG) == "true",
            "created_at": mv.creation_timestamp,
            "stage": mv.current_stage if mv.current_stage not in (None, "None") else None,
        }

    def create_model_version(self, name: str, *, source: str, version: str | None, model_type: str,
                             path: str, description: str | None, tags: dict[str, str],
                             properties: dict[str, str], run_id: str | None = None) -> dict[str, Any]:
        """Register a model version. An explicit ``version`` must be a positive integer not yet used.

        Raises:
            ValidationError: non-integer version. ConflictError: the version exists.
        """
        from mlflow.entities.model_registry import ModelVersionTag
        from mlflow.exceptions import MlflowException

        if version is not None and (not str(version).isdigit() or int(version) < 1):
            raise ValidationError(f"model version {version!r} is invalid: model versions are positive integers "
                                  "(the MLflow registry that backs models numbers them)",
                                  details={"field": "version", "value": version})
        try:
            self.registry.get_registered_model(name)
        except MlflowException:
            try:
                self.registry.create_registered_model(name)
            except MlflowException:
                pass  # created concurrently
        if version is not None:
            try:
                self.registry.get_model_version(name, str(version))
                raise ConflictError(f"model {name}:{version} already exists and versions are immutable")
            except MlflowException:
                pass
        all_tags = {MODEL_TYPE_TAG: model_type, MODEL_PATH_TAG: path, **tags}
        all_tags.update({f"openaml.prop.{k}": v for k, v in properties.items()})
        mv = self.registry.create_model_version(name, source, run_id=run_id, description=description)
        if version is not None and str(mv.version) != str(version):
            mv = self._renumber(name, int(mv.version), int(version))
        for k, v in all_tags.items():
            self.registry.set_model_version_tag(name, str(mv.version), ModelVersionTag(k, str(v)))
        return self._mv_dict(self.registry.get_model_version(name, str(mv.version)))

    def _renumber(self, name: str, old: int, new: int) -> Any:
        from mlflow.store.model_registry.dbmodels.models import SqlModelVersion

        with self.registry.ManagedSessionMaker() as session:
            row = session.query(SqlModelVersion).filter(SqlModelVersion.name == name,
                                                        SqlModelVersion.version == old).one()
            row.version = new
        return self.registry.get_model_version(name, str(new))

    def get_model_version(self, name: str, version: str | None = None, label: str | None = None) -> dict[str, Any]:
        from mlflow.exceptions import MlflowException

        if version is not None:
            try:
                return self._mv_dict(self.registry.get_model_version(name, str(version)))
            except MlflowException:
                versions = [v["version"] for v in self.list_model_versions(name, include_archived=True)]
                if versions:
                    raise NotFoundError(f"model {name}:{version} not found; versions: {', '.join(versions)}") from None
                raise NotFoundError(f"model {name!r} not found") from None
        if label not in (None, "latest"):
            raise ValidationError(f"label {label!r} is not supported; only 'latest' is")
        versions = self.list_model_versions(name)
        if not versions:
            raise NotFoundError(f"model {name!r} not found (or all its versions are archived)")
        return versions[0]

    def list_model_versions(self, name: str | None = None, include_archived: bool = False) -> list[dict[str, Any]]:
        """All versions of ``name`` (newest first), or the latest version of every model."""
        if name is not None:
            mvs = self.registry.search_model_versions(f"name='{name.replace(chr(39), '')}'", max_results=10000)
            out = sorted((self._mv_dict(mv) for mv in mvs), key=lambda d: -int(d["version"]))
            return [d for d in out if include_archived or not d["archived"]]
        result = []
        for rm in self.registry.search_registered_models(max_results=10000):
            versions = self.list_model_versions(rm.name, include_archived)
            if versions:
                result.append(versions[0])
        return sorted(result, key=lambda d: d["name"])

    def set_model_archived(self, name: str, version: str | None, archived: bool) -> None:
        from mlflow.entities.model_registry import ModelVersionTag

        targets = [version] if version is not None else [v["version"] for v in
                                                         self.list_model_versions(name, include_archived=True)]
        if not targets:
            raise NotFoundError(f"model {name!r} not found")
        for v in targets:
            self.get_model_version(name, v)
            self.registry.set_model_version_tag(name, str(v), ModelVersionTag(ARCHIVED_TAG, "true" if archived else "false"))

    def model_download_uri(self, name: str, version: str) -> str:
        return self.registry.get_model_version_download_uri(name, version)
