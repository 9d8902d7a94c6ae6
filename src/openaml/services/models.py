"""Models: versions of the workspace's MLflow model registry (spec 7.2).

A model created here has its files copied into MLflow's artifact store under
``mlartifacts/models/<name>/<version>/`` and is registered as an MLflow model version whose
``source`` is the served ``mlflow-artifacts:/models/<name>/<version>/...`` URI, so
``mlflow.pyfunc.load_model("models:/<name>/<version>")`` works against ``<url>/mlflow``. Models
registered by user code through MLflow (``log_model(registered_model_name=...)``,
``register_model``) are read back as workspace models: one registry serves both APIs, as in
Azure ML.

openaml's own facts about a version live in MLflow model version tags prefixed ``openaml.``
(type, path, archived, stage, properties); user tags are stored as plain tags.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic

from openaml.constants import MODEL_TYPES
from openaml.datastores import LocalDatastore, parse_datastore_uri, parse_job_output_uri, tar_stream
from openaml.entities import Model
from openaml.entities._base import validation_error_from_pydantic
from openaml.errors import (
    ConflictError,
    NotFoundError,
    OpenAMLError,
    PathEscapeError,
    UnsupportedError,
    ValidationError,
)
from openaml.records import ModelRecord
from openaml.services._actor import actor
from openaml.services._context import WorkspaceContext
from openaml.services.rai_gate import RaiGateService

__all__ = ["ModelService", "parse_model_version"]

TAG_TYPE = "openaml.model_type"
TAG_PATH = "openaml.path"
TAG_ARCHIVED = "openaml.archived"
TAG_STAGE = "openaml.stage"
TAG_PROP = "openaml.prop."
TAG_CREATED_BY = "openaml.created_by"
LIST_VIEW_TYPES = ("ActiveOnly", "ArchivedOnly", "All")
_REMOTE_SCHEMES = ("http", "https", "wasbs", "wasb", "abfss", "abfs", "adl", "s3", "gs", "gcs", "az", "dbfs")

_REGISTRY_REF = re.compile(r"^azureml://registries/(?P<reg>[^/]+)/models/(?P<name>[^/]+)"
                           r"/(?:versions/(?P<version>[^/]+)|labels/(?P<label>[^/]+))/?$")
_SHORT_REF = re.compile(r"^azureml://models/(?P<name>[^/]+)/(?:versions/(?P<version>[^/]+)|labels/(?P<label>[^/]+))/?$")
_LONG_REF = re.compile(r"^(?:azureml:)?(?:azureml://locations/[^/]+|/subscriptions/[^/]+/resource[gG]roups/[^/]+"
                       r"(?:/providers/Microsoft\.MachineLearningServices)?)/workspaces/[^/]+/models/(?P<name>[^/]+)"
                       r"/versions/(?P<version>[^/]+)/?$")
#: the job's run artifacts addressed without ``/paths/``, as the book writes them:
#: ``azureml://jobs/<run>/outputs/artifacts/outputs/model.pkl`` (ch5), ``.../outputs/mlflow-model/`` (ch10)
_ARTIFACTS_NO_PATHS = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?:artifacts|default)/(?!paths(?:/|$))(?P<path>.+)$")
_MLFLOW_REF = re.compile(r"^models:/(?P<name>[^/]+)/(?P<version>\d+)/?$")


def parse_model_version(version: Any, *, field: str = "version") -> int | None:
    """``None`` or a positive integer from a user's version (``3``, ``"3"``).

    Raises:
        ValidationError: anything else (MLflow, which stores models, numbers versions 1, 2, 3...).
    """
    if version is None or version == "":
        return None
    text = str(version).strip()
    if isinstance(version, bool) or not text.isdigit() or int(text) < 1:
        raise ValidationError(f"field '{field}': model version {version!r} is invalid: model versions are positive "
                              "integers (1, 2, 3...) because the MLflow registry stores them; give an integer or "
                              "omit the version to get the next one", details={"field": field, "value": str(version)})
    return int(text)


class ModelService:
    """Create, read, archive and download workspace models; resolve model references for jobs."""

    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading
    def get(self, name: str, version: str | None = None, label: str | None = None) -> ModelRecord:
        """One version: by ``version``, or by ``label`` (``latest``: the newest version not archived,
        as Azure ML; any other label is an MLflow alias).

        Returns the model dict: ``{name, version, type, path, description, tags, properties, stage,
        flavors, job_name, archived, id, creation_context, source}``.

        Raises:
            ValidationError: neither or both of version and label given.
            NotFoundError: unknown model, version (the versions are listed) or label.
        """
        _check_name(name)
        if (version is None) == (label is None):
            raise ValidationError(f"model {name!r}: give exactly one of version (e.g. 1) or label (latest)",
                                  details={"name": name})
        if version is not None:
            v = parse_model_version(version)
            return self._view(self.ctx.tracking.get_model_version(name, str(v)))
        if label == "latest":
            versions = self.ctx.tracking.list_model_versions(name)
            if not versions:
                raise NotFoundError(f"model {name!r} not found; list models with: openaml model list",
                                    details={"name": name})
            active = [r for r in versions if not _archived(r)]
            if not active:
                raise NotFoundError(f"model {name!r} has no active version: all of "
                                    f"{', '.join(r['version'] for r in reversed(versions))} are archived; "
                                    f"restore one with: openaml model restore -n {name} -v <version>",
                                    details={"name": name})
            return self._view(active[0])
        return self._view(self.ctx.tracking.get_model_version_by_alias(name, str(label)))

    def list(self, name: str | None = None, list_view_type: str = "ActiveOnly") -> list[ModelRecord]:
        """With ``name``: its versions, newest first. Without: the latest version of every model.

        ``list_view_type`` is ``ActiveOnly`` (default), ``ArchivedOnly`` or ``All`` (azure-ai-ml's
        ``ListViewType``). Without a name, a model is archived when all its versions are.

        Raises:
            ValidationError: unknown list_view_type.
        """
        if list_view_type not in LIST_VIEW_TYPES:
            raise ValidationError(f"list_view_type {list_view_type!r} is invalid; use one of "
                                  f"{', '.join(LIST_VIEW_TYPES)}", details={"value": list_view_type})
        tracking = self.ctx.tracking
        if name is not None:
            _check_name(name)
            records = [r for r in tracking.list_model_versions(name) if _keep(_archived(r), list_view_type)]
            return [self._view(r) for r in records]
        out = []
        for model_name in tracking.list_model_names():
            versions = tracking.list_model_versions(model_name)
            if not versions:
                continue
            active = [r for r in versions if not _archived(r)]
            if not _keep(not active, list_view_type):
                continue
            out.append(self._view(active[0] if active and list_view_type != "ArchivedOnly" else versions[0]))
        return out

    def _view(self, rec: dict[str, Any]) -> ModelRecord:
        tags = rec["tags"]
        path = self._own_path(rec) or rec["storage_uri"]
        local = self._try_local(rec)
        model_type = tags.get(TAG_TYPE) or (
            "mlflow_model" if local is not None and (local[0] / "MLmodel").is_file() else "custom_model")
        flavors = _read_flavors(local[0]) if model_type == "mlflow_model" and local is not None else None
        name, version = rec["name"], rec["version"]
        return {
            "name": name,
            "version": version,
            "type": model_type,
            "path": path,
            "description": rec["description"],
            "tags": {k: v for k, v in tags.items() if not k.startswith(("openaml.", "mlflow."))},
            "properties": {k[len(TAG_PROP):]: v for k, v in tags.items() if k.startswith(TAG_PROP)},
            "stage": tags.get(TAG_STAGE),
            "flavors": flavors,
            "job_name": rec["run_id"],
            "archived": _archived(rec),
            "id": (f"/subscriptions/local/resourceGroups/local/providers/Microsoft.MachineLearningServices/"
                   f"workspaces/{self.ctx.workspace_name}/models/{name}/versions/{version}"),
            "creation_context": {"created_at": _iso(rec["created_at"]),
                                 "created_by": tags.get(TAG_CREATED_BY) or rec["user_id"] or "openaml",
                                 "last_modified_at": _iso(rec["last_updated_at"])},
            "source": rec["source"],
        }

    # ------------------------------------------------------------------ local files
    def _job_submitter(self, job_name: str | None) -> str:
        """Who submitted ``job_name`` (a model registered from a job's output is that user's)."""
        try:
            who = self.ctx.services["users"].submitter(self.ctx.store.get_job(str(job_name)))
        except Exception:  # noqa: BLE001 - the job is gone: nobody to name
            return "owner"
        return who.name if who is not None else "owner"

    def _try_local(self, rec: dict[str, Any]) -> tuple[Path, str] | None:
        try:
            return self._local(rec)
        except OpenAMLError:
            return None

    def _own_path(self, rec: dict[str, Any]) -> str | None:
        """The files of a version openaml registered, from its immutable MLflow ``source``.

        openaml copies a model to ``mlflow-artifacts:/models/<name>/<version>/<base>`` and registers
        that folder (or, for a file model, the version folder) as the source, which no MLflow API
        can change afterwards. The ``openaml.path`` tag repeats it for people reading tags, but any
        MLflow client may set tags: it never decides which files a model serves. None for a
        version registered by other means (MLflow ``runs:/``/``models:/`` sources).
        """
        prefix = f"mlflow-artifacts:/models/{rec['name']}/{rec['version']}"
        source = str(rec.get("source") or "")
        if source.startswith(prefix + "/") and "/" not in source[len(prefix) + 1:]:
            return source
        if source != prefix:
            return None
        try:  # a file model: the one file in the version folder
            folder, _ = self.ctx.tracking.resolve_artifact_uri(source)
            entries = [p.name for p in folder.iterdir() if not p.name.startswith(".")] if folder.is_dir() else []
        except (OpenAMLError, OSError):
            entries = []
        return f"{prefix}/{entries[0]}" if len(entries) == 1 else source

    def _local(self, rec: dict[str, Any]) -> tuple[Path, str]:
        """(file or folder on disk, the name it is downloaded under) of a version record."""
        tracking = self.ctx.tracking
        own = self._own_path(rec)
        if own:
            local, given = tracking.resolve_artifact_uri(own)
        elif rec["source"].startswith(("runs:/", "models:/")):
            # MLflow 3 sources: a logged model (named by log_model(name=...)) or a run's artifact
            local, given = tracking.resolve_artifact_uri(rec["source"])
            if given is None and rec["source"].startswith("runs:/"):
                given = _last(rec["source"][len("runs:/"):])
        else:
            local, given = tracking.resolve_artifact_uri(rec["storage_uri"])
        return local, _safe_base(given or local.name, rec["name"])

    def local_path(self, name: str, version: str) -> Path:
        """The file or folder holding ``name:version``'s files (what a job mounts).

        Raises:
            NotFoundError: unknown version, or its files are missing.
            PathEscapeError: an MLflow-registered source outside the workspace.
        """
        _check_name(name)
        rec = self.ctx.tracking.get_model_version(name, str(parse_model_version(version)))
        local, _ = self._local(rec)
        if not local.exists():
            raise NotFoundError(f"the files of model {name}:{version} are missing (expected at {local})",
                                details={"name": name, "version": str(version)})
        return local

    def download_archive(self, name: str, version: str) -> Iterator[bytes]:
        """A tar archive of ``name:version``: a folder model as ``<folder name>/...``, a file model as
        ``<file name>`` (azure-ai-ml lays downloads out so under ``<download_path>/<name>/``),
        streamed chunk by chunk (:func:`~openaml.datastores.tar_stream`; never whole in memory).

        Raises (before the first chunk):
            NotFoundError: unknown version or missing files.
            PathEscapeError: a link inside the model that points outside its folder.
        """
        _check_name(name)
        rec = self.ctx.tracking.get_model_version(name, str(parse_model_version(version)))
        local, base = self._local(rec)
        if not local.exists():
            raise NotFoundError(f"the files of model {name}:{version} are missing (expected at {local})")
        port = LocalDatastore(f"model {name}:{version}", {"path": str(local.parent)})
        if local.is_file():
            return tar_stream(port, local.name, prefix=base)
        files = [(rel, src.stat().st_size) for src, rel in _walk_files(local)]
        return tar_stream(port, local.name, prefix=base, files=files)

    # ------------------------------------------------------------------ writing
    def create_or_update(self, spec: dict[str, Any]) -> ModelRecord:
        """Register a model version from a ``Model`` spec whose ``path`` the server can read.

        ``path`` forms (spec 1.2): ``azureml://datastores/<ds>/paths/<p>`` (local files are uploaded
        there by the SDK/CLI first), ``azureml://jobs/<job>/outputs/artifacts/paths/<p>`` (also
        ``default``: the job's run artifacts), ``azureml://jobs/<job>/outputs/<output>`` (a named
        output), ``runs:/<run_id>/<p>``, ``mlflow-artifacts:/<p>``. An explicit version must be a new
        positive integer; omitted, it is the next one.

        Raises:
            ValidationError: unknown field, bad version, missing path, ``mlflow_model`` without MLmodel.
            ConflictError: the version exists (versions are immutable).
            NotFoundError: the path does not exist.
            UnsupportedError: remote storage, registries.
        """
        clean = {k: v for k, v in spec.items() if k not in ("id", "creation_context", "archived", "source")}
        try:
            model = Model.model_validate(clean)
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=None, lines=None, kind="model") from None
        if not model.name:
            raise ValidationError("field 'name': a model needs a name", details={"field": "name"})
        version = parse_model_version(model.version)
        if not model.path:
            raise ValidationError(f"model {model.name!r}: field 'path' is required: a local file or folder, "
                                  "azureml://datastores/<ds>/paths/<p>, azureml://jobs/<job>/outputs/..., or "
                                  "runs:/<run_id>/<path>", details={"field": "path"})
        if version is not None:
            self._check_new(model.name, version)
        gate = RaiGateService(self.ctx)
        # before any file is copied: a bad score card loses nothing
        tags = gate.derive_tags(model.tags, name=model.name, version=str(version) if version else None)
        hits = gate.protected(tags, model.stage)
        if hits:
            gate.check(model.name, str(version) if version else None, tags, f"be registered with {', '.join(hits)}")
        fetched = self._fetch_remote(model.path)  # an object-store datastore's files: copied here first
        try:
            local, base, job_name = fetched or self._resolve_path(model.path)
            return self._register(model.name, version, model.type, local, base, shown=model.path,
                                  description=model.description, tags=tags, properties=model.properties,
                                  stage=model.stage, job_name=model.job_name or job_name)
        finally:
            if fetched is not None:
                shutil.rmtree(fetched[0].parent, ignore_errors=True)

    def update(self, name: str, version: str, *, tags: dict[str, Any] | None = None, description: str | None = None,
               stage: str | None = None) -> ModelRecord:
        """Change a version's mutable fields: add or change ``tags``, set ``description`` and ``stage``
        (``az ml model update --set``; the files and the version number never change).

        ``tags.rai.scorecard=<job>/<output>`` links the version's RAI score card: the server then writes
        ``rai.verdict`` and ``rai.failed`` (:mod:`openaml.services.rai_gate`). Setting a tag or stage that
        the workspace's RAI gate protects needs a passing verdict.

        Raises:
            NotFoundError: unknown model or version. ValidationError: ``rai.verdict``/``rai.failed`` given,
            a bad score card reference. ConflictError: the RAI gate refuses (HTTP 409, failing checks named).
        """
        _check_name(name)
        v = str(parse_model_version(version))
        rec = self.ctx.tracking.get_model_version(name, v)
        gate = RaiGateService(self.ctx)
        for key in tags or {}:
            if str(key).startswith(("openaml.", "mlflow.")):
                raise ValidationError(f"tag {key!r}: tags starting with openaml. or mlflow. are the server's",
                                      details={"field": f"tags.{key}"})
        new_tags = gate.derive_tags(tags or {}, name=name, version=v)
        merged = {**rec["tags"], **new_tags}
        changed_stage = stage if stage is not None and stage != rec["tags"].get(TAG_STAGE) else None
        hits = gate.protected({k: val for k, val in new_tags.items() if rec["tags"].get(k) != val}, changed_stage)
        if hits:
            gate.check(name, v, merged, f"get {', '.join(hits)}")
        for key, value in new_tags.items():
            self.ctx.tracking.set_model_version_tag(name, v, key, value)
        if stage is not None:
            self.ctx.tracking.set_model_version_tag(name, v, TAG_STAGE, stage)
        if description is not None:
            self.ctx.tracking.update_model_version_description(name, v, description)
        return self.get(name, version=v)

    def _fetch_remote(self, path: str) -> tuple[Path, str, str | None] | None:
        """For a datastore (or named job output) URI on a datastore without local files (``s3``,
        ``azure_blob``): its files downloaded through the port into a staging folder of the
        workspace (streamed), as ``(local path, name to keep, job name)``; None for other paths."""
        if parse_datastore_uri(path) is None and parse_job_output_uri(path) is None:
            return None
        try:
            located = self.ctx.services["datastores"].locate(path)
        except OpenAMLError:
            return None  # reported by _resolve_path with its own message
        if located is None or located[0].has_local_path:
            return None
        port, rel = located
        if not port.exists(rel):
            raise NotFoundError(f"model path {path!r} does not exist", details={"field": "path", "value": path})
        job_uri = parse_job_output_uri(path)
        base = _safe_base(_last(rel) or (job_uri.output if job_uri else ""), "")
        stage = self.ctx.layout.uploads / f"model-{uuid.uuid4().hex}"
        port.get(rel, stage / base)
        return stage / base, base, job_uri.job if job_uri else None

    def register_from_path(self, name: str, version: str | int | None, type: str, local_path: str | Path,
                           description: str | None = None, tags: dict[str, str] | None = None,
                           job_name: str | None = None, properties: dict[str, str] | None = None) -> ModelRecord:
        """Register a job's declared model output (``outputs: {o: {type: mlflow_model, name: m}}``).

        The files at ``local_path`` (a file or folder on the server's disk) are copied into the
        artifact store; ``job_name`` becomes the version's run (its lineage).

        Returns the model dict (as :meth:`get`).

        Raises:
            ValidationError: bad name, version or type; ``mlflow_model`` without an MLmodel file.
            ConflictError: the version exists. NotFoundError: ``local_path`` does not exist.
        """
        _check_name(name)
        v = parse_model_version(version)
        if type not in MODEL_TYPES:
            raise ValidationError(f"model {name!r}: type {type!r} is invalid; use one of {', '.join(MODEL_TYPES)}",
                                  details={"field": "type", "value": type})
        if v is not None:
            self._check_new(name, v)
        local = Path(local_path)
        return self._register(name, v, type, local, _safe_base(local.name, name), shown=str(local),
                              description=description, tags=dict(tags or {}), properties=dict(properties or {}),
                              stage=None, job_name=job_name)

    def archive(self, name: str, version: str | None = None) -> None:
        """Archive one version, or every version when ``version`` is None (Azure archives the model).
        Archived versions stay readable by version but are skipped by ``@latest`` and lists.

        Raises:
            NotFoundError: unknown model or version.
        """
        self._set_archived(name, version, True)

    def restore(self, name: str, version: str | None = None) -> None:
        """Undo :meth:`archive`. Raises NotFoundError for an unknown model or version."""
        self._set_archived(name, version, False)

    def _set_archived(self, name: str, version: str | None, archived: bool) -> None:
        _check_name(name)
        tracking = self.ctx.tracking
        if version is not None:
            targets = [tracking.get_model_version(name, str(parse_model_version(version)))["version"]]
        else:
            targets = [r["version"] for r in tracking.list_model_versions(name)]
            if not targets:
                raise NotFoundError(f"model {name!r} not found; list models with: openaml model list",
                                    details={"name": name})
        for v in targets:
            tracking.set_model_version_tag(name, v, TAG_ARCHIVED, "true" if archived else "false")

    def _check_new(self, name: str, version: int) -> None:
        if self.ctx.tracking.model_version_exists(name, version):
            raise ConflictError(f"model {name}:{version} already exists and model versions are immutable; "
                                f"omit the version to create version {self.ctx.tracking.next_model_version(name)}",
                                details={"name": name, "version": str(version)})

    def _register(self, name: str, version: int | None, model_type: str, local: Path, base: str, *, shown: str,
                  description: str | None, tags: dict[str, str], properties: dict[str, str], stage: str | None,
                  job_name: str | None) -> ModelRecord:
        if not local.exists():
            raise NotFoundError(f"model {name!r}: path {shown!r} does not exist", details={"field": "path",
                                                                                        "value": shown})
        is_file = local.is_file()
        if model_type == "mlflow_model":
            _check_mlflow_folder(local, shown)
        models_root = self.ctx.layout.mlartifacts / "models" / name
        stage_dir = models_root / f".staging-{uuid.uuid4().hex}"
        try:
            _copy_into(local, stage_dir / base)
            for _attempt in range(5):
                with self._lock:
                    v = version if version is not None else self.ctx.tracking.next_model_version(name)
                    if version is not None:
                        self._check_new(name, v)  # again, now that no other create can run
                    dest = models_root / str(v)
                    if dest.exists():  # files left by an earlier crash: that version was never registered
                        shutil.rmtree(dest)
                    os.replace(stage_dir, dest)
                    files = self.ctx.services.get("files")
                    if files is not None:  # other servers of the workspace serve it too
                        files.push(dest)
                    path_uri = f"mlflow-artifacts:/models/{name}/{v}/{base}"
                    source = f"mlflow-artifacts:/models/{name}/{v}" if is_file else path_uri
                    all_tags = {TAG_TYPE: model_type, TAG_PATH: path_uri, **tags}
                    who = actor()
                    if who is not None or job_name:  # who registered it (a job's output: its submitter)
                        all_tags[TAG_CREATED_BY] = who.name if who is not None else self._job_submitter(job_name)
                    all_tags.update({f"{TAG_PROP}{key}": value for key, value in properties.items()})
                    if stage:
                        all_tags[TAG_STAGE] = stage
                    try:
                        rec = self.ctx.tracking.create_model_version(name, source=source, version=v,
                                                                     description=description, tags=all_tags,
                                                                     run_id=job_name)
                    except ConflictError:
                        os.replace(dest, stage_dir)
                        if version is not None:
                            raise
                        continue  # an MLflow client took that number meanwhile: take the next one
                    except BaseException:
                        shutil.rmtree(dest, ignore_errors=True)
                        raise
                return self._view(rec)
            raise ConflictError(f"model {name!r}: could not get a free version number; try again")
        finally:
            if stage_dir.exists():
                shutil.rmtree(stage_dir, ignore_errors=True)

    def _resolve_path(self, path: str) -> tuple[Path, str, str | None]:
        """(local file or folder, name to keep, job name) of a model ``path`` the server can read."""
        tracking = self.ctx.tracking
        bare = _ARTIFACTS_NO_PATHS.match(path)
        if bare is not None:
            path = f"azureml://jobs/{bare['job']}/outputs/artifacts/paths/{bare['path']}"
        job_uri = parse_job_output_uri(path)
        if parse_datastore_uri(path) is not None:
            local = self.ctx.services["datastores"].resolve(path)
            return local, _safe_base(_last(parse_datastore_uri(path).path), ""), None  # type: ignore[union-attr]
        if job_uri is not None:
            if job_uri.output in ("artifacts", "default"):
                local, given = tracking.resolve_run_path(job_uri.job, job_uri.path)
                return local, _safe_base(_last(job_uri.path) or given or "", ""), job_uri.job
            local = self._named_output(path, job_uri)
            return local, _safe_base(_last(job_uri.path) or job_uri.output, ""), job_uri.job
        if path.startswith("runs:/"):
            run_id, _, rel = path[len("runs:/"):].lstrip("/").partition("/")
            local, given = tracking.resolve_run_path(run_id, rel)
            return local, _safe_base(_last(rel) or given or "", ""), run_id
        if path.startswith(("mlflow-artifacts:", "models:/")):
            local, given = tracking.resolve_artifact_uri(path)
            return local, _safe_base(given or local.name, ""), None
        scheme = path.split("://", 1)[0].lower() if "://" in path else ""
        if scheme in _REMOTE_SCHEMES:
            raise UnsupportedError(f"model path {path!r}: {scheme}:// storage cannot be read by this installation; "
                                   "download the files and give their local path (the CLI/SDK uploads it)",
                                   details={"field": "path", "value": path})
        if path.startswith("azureml:"):
            raise ValidationError(f"model path {path!r} is not a form this server can read; use "
                                  "azureml://datastores/<ds>/paths/<p>, azureml://jobs/<job>/outputs/<output>"
                                  "[/paths/<p>] or runs:/<run_id>/<path>", details={"field": "path", "value": path})
        raise ValidationError(f"model path {path!r} is a local path of the client; the openaml CLI and SDK upload "
                              "local paths before creating the model. Over the REST API, upload the files first "
                              "(POST /api/v1/uploads) and give the azureml://datastores/... URI it returns",
                              details={"field": "path", "value": path})

    def _named_output(self, path: str, job_uri: Any) -> Path:
        try:
            local = self.ctx.services["jobs"].resolve_output_uri(job_uri)
        except OpenAMLError as exc:
            raise type(exc)(f"model path {path!r}: {exc.message}", details=exc.details) from None
        except Exception as exc:  # noqa: BLE001 - the jobs service's failure becomes a clear error here
            raise UnsupportedError(f"model path {path!r}: the named output {job_uri.output!r} of job "
                                   f"{job_uri.job!r} cannot be resolved ({type(exc).__name__}: {exc}); use "
                                   f"azureml://jobs/{job_uri.job}/outputs/artifacts/paths/<path> for files the "
                                   "job wrote under ./outputs", details={"field": "path", "value": path}) from None
        return Path(local)

    # ------------------------------------------------------------------ references (for jobs)
    def resolve_reference(self, ref: str) -> ModelRecord:
        """The model a job input or deployment refers to, with ``local_path`` (its file or folder).

        Accepted: ``azureml:<name>:<version>``, ``azureml:<name>@<label>``, ``<name>:<version>``,
        ``<name>@latest``, ``azureml://models/<name>/versions/<v>`` (or ``/labels/<l>``), the model's
        ``id`` (``/subscriptions/.../workspaces/<ws>/models/<name>/versions/<v>``),
        ``azureml://locations/<loc>/workspaces/<ws>/models/<name>/versions/<v>``, ``models:/<name>/<v>``
        and ``azureml://registries/<reg>/models/<name>/versions/<v>`` when ``<reg>`` is this workspace.

        Returns the model dict (as :meth:`get`) plus ``local_path`` (str).

        Raises:
            ValidationError: not a model reference, or no version/label given.
            UnsupportedError: a registry other than this workspace.
            NotFoundError: unknown model, version or label.
        """
        name, version, label = self._parse_reference(ref)
        model = self.get(name, version=version, label=label)
        model["local_path"] = str(self.local_path(name, model["version"]))
        return model

    def _parse_reference(self, ref: str) -> tuple[str, str | None, str | None]:
        s = str(ref).strip()
        m = _REGISTRY_REF.match(s)
        if m:
            if m.group("reg") != self.ctx.workspace_name:
                raise UnsupportedError(f"model {s!r} is in registry {m.group('reg')!r}; registries are not available "
                                       "in this installation. Register the model in this workspace (openaml model "
                                       "create) and refer to it as azureml:<name>:<version>", details={"value": s})
            return m.group("name"), m.group("version"), m.group("label")
        for pattern in (_SHORT_REF, _LONG_REF, _MLFLOW_REF):
            m = pattern.match(s)
            if m:
                groups = m.groupdict()
                return m.group("name"), groups.get("version"), groups.get("label")
        body = s.removeprefix("azureml:")
        if "://" in body or body.startswith("/") or not body:
            raise ValidationError(f"{s!r} is not a model reference; use azureml:<name>:<version>, "
                                  "azureml:<name>@latest or azureml://models/<name>/versions/<version>",
                                  details={"value": s})
        if "@" in body:
            name, _, label = body.partition("@")
            return name, None, label
        if ":" in body:
            name, _, version = body.rpartition(":")
            return name, version, None
        raise ValidationError(f"model reference {s!r} names no version: use {body}:<version> or {body}@latest",
                              details={"value": s})


# ---------------------------------------------------------------------- helpers
def _check_name(name: str) -> None:
    try:
        Model(name=name)
    except pydantic.ValidationError:
        raise ValidationError(f"model name {name!r} is invalid: use letters, digits, '_', '-' and '.', starting "
                              "with a letter or digit (at most 255 characters)",
                              details={"field": "name", "value": name}) from None


def _archived(rec: dict[str, Any]) -> bool:
    return rec["tags"].get(TAG_ARCHIVED) == "true"


def _keep(archived: bool, list_view_type: str) -> bool:
    return list_view_type == "All" or (archived == (list_view_type == "ArchivedOnly"))


def _iso(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat() if ms else None


def _last(rel: str) -> str:
    parts = [p for p in str(rel).replace("\\", "/").split("/") if p]
    return parts[-1] if parts else ""


def _safe_base(candidate: str, fallback: str) -> str:
    base = _last(candidate)
    if base in ("", ".", ".."):
        base = fallback or "model"
    return base


def _read_flavors(folder: Path) -> dict[str, Any] | None:
    mlmodel = folder / "MLmodel"
    if not mlmodel.is_file():
        return None
    from openaml._yaml import safe_load

    try:
        text = mlmodel.read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        return None
    data = safe_load(text, source=str(mlmodel.name))  # an alias bomb or broken MLmodel is refused
    flavors = data.get("flavors") if isinstance(data, dict) else None
    return flavors if isinstance(flavors, dict) else None


def _check_mlflow_folder(local: Path, shown: str) -> None:
    """An ``mlflow_model`` is a folder with an MLmodel file (what ``mlflow.*.save_model`` writes)."""
    if local.is_file():
        raise ValidationError(f"model path {shown!r} is a file, but type mlflow_model needs a folder holding an "
                              "MLmodel file (written by mlflow.<flavor>.save_model); give the folder, or use "
                              "type custom_model", details={"field": "path", "value": shown})
    if not (local / "MLmodel").is_file():
        found = sorted(p.name for p in local.iterdir())[:10]
        raise ValidationError(f"model path {shown!r} has no MLmodel file, which type mlflow_model needs (found: "
                              f"{', '.join(found) or 'an empty folder'}); save the model with "
                              "mlflow.<flavor>.save_model, point path at the folder holding MLmodel, or use type "
                              "custom_model", details={"field": "path", "value": shown})
    if _read_flavors(local) is None:
        raise ValidationError(f"model path {shown!r}: its MLmodel file has no 'flavors' mapping; it is not an "
                              "MLflow model (use type custom_model)", details={"field": "path", "value": shown})


def _walk_files(root: Path) -> list[tuple[Path, str]]:
    """(path, relative posix name) of every file under ``root``. Links are followed only while they
    stay inside ``root``; a link leaving it is refused (paths never escape their folder)."""
    root_real = root.resolve()
    out: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def visit(folder: Path, rel: str) -> None:
        real = folder.resolve()
        if real in seen:  # a link loop inside the folder
            return
        seen.add(real)
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            name = f"{rel}{entry.name}"
            if entry.is_symlink():
                target = entry.resolve()
                if target != root_real and root_real not in target.parents:
                    raise PathEscapeError(f"{name!r} in the model's folder is a link to {target}, outside the "
                                          "folder; links may only point inside it", details={"value": name})
            if entry.is_dir():
                visit(entry, name + "/")
            elif entry.is_file():
                out.append((entry, name))

    visit(root, "")
    return out


def _copy_into(src: Path, dest: Path) -> None:
    """Copy a file or folder to ``dest`` (which must not exist), refusing links that leave ``src``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_file():
        shutil.copy2(src, dest)
        return
    files = _walk_files(src)
    dest.mkdir(parents=True)
    for path, rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
