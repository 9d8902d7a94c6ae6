"""``ml_client.models``: create_or_update, get, list, download, archive, restore (azure-ai-ml v2)."""

from __future__ import annotations

import io
import itertools
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import IO, Any

from openaml.constants import ListViewType
from openaml.entities import Model
from openaml.errors import ConflictError, NotFoundError, ValidationError

__all__ = ["ModelOperations"]

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:")


def _entity(d: dict[str, Any]) -> Model:
    return Model.model_validate({k: v for k, v in d.items() if k in Model.model_fields})


def _local_path(model: Model) -> Path | None:
    """The local file or folder a model's ``path`` names, or None for a URI the server resolves."""
    path = str(model.path)
    if path.startswith("file:"):
        path = path[len("file://"):] if path.startswith("file://") else path[len("file:"):]
    elif _URI.match(path):
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() else model.base_path / p


def _check_version(model: Model) -> None:
    version = model.version
    if version is None:
        return
    text = str(version).strip()
    if not text.isdigit() or int(text) < 1:
        where = f"{model._source}: " if model._source else ""
        raise ValidationError(f"{where}field 'version': model version {version!r} is invalid: model versions are positive "
                              "integers (1, 2, 3...) because the MLflow registry stores them; give an integer or "
                              "omit the version to get the next one", details={"field": "version",
                                                                               "value": str(version)})


class ModelOperations:
    """Models of the workspace: the MLflow model registry, shaped as azure-ai-ml's ``ModelOperations``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._t = client._transport

    def create_or_update(self, model: Model, **kwargs: Any) -> Model:
        """Register a model version; a local ``path`` (relative to the YAML's folder, or the current
        folder) is uploaded first. Returns the created ``Model`` with ``id``, ``version`` and ``path``.

        Raises:
            ValidationError: no name, bad version, missing local path, ``mlflow_model`` without MLmodel.
            ConflictError: the version exists (versions are immutable).
        """
        from openaml.sdk._upload import upload_path

        if not model.name:
            raise ValidationError("field 'name': a model needs a name", details={"field": "name"})
        if not model.path:
            raise ValidationError(f"model {model.name!r}: field 'path' is required: a local file or folder, "
                                  "azureml://datastores/<ds>/paths/<p>, azureml://jobs/<job>/outputs/..., or "
                                  "runs:/<run_id>/<path>", details={"field": "path"})
        _check_version(model)
        spec = model.to_dict()
        local = _local_path(model)
        if local is not None:
            where = f" (in {model._source})" if model._source else ""
            if not local.exists():
                raise ValidationError(f"model {model.name!r}{where}: field 'path': local path {model.path!r} does not "
                                      f"exist (resolved to {local}); relative paths are relative to the YAML file's "
                                      "folder, or to the current folder for --path",
                                      details={"field": "path", "value": str(model.path)})
            if model.type == "mlflow_model" and not (local / "MLmodel").is_file():
                raise ValidationError(f"model {model.name!r}{where}: field 'path': {model.path!r} has no MLmodel file, "
                                      "which type mlflow_model needs; save the model with "
                                      "mlflow.<flavor>.save_model, point path at the folder holding MLmodel, or use "
                                      "type custom_model", details={"field": "path", "value": str(model.path)})
            if model.version is not None:
                self._check_new(model.name, str(model.version))
            spec["path"] = upload_path(self._t, local, target="datastore", progress=True)["uri"]
        return _entity(self._t.post(f"/models/{model.name}/versions", json=spec))

    def _check_new(self, name: str, version: str) -> None:
        try:
            self._t.get(f"/models/{name}/versions/{version}")
        except NotFoundError:
            return
        raise ConflictError(f"model {name}:{version} already exists and model versions are immutable; omit the "
                            "version to create the next one", details={"name": name, "version": version})

    def update(self, name: str, version: str | int, *, tags: dict[str, str] | None = None,
               description: str | None = None, stage: str | None = None) -> Model:
        """Change a version's tags (added or changed), description or stage; its files never change
        (``az ml model update --set``; openaml keeps it as a method since versions are immutable here).

        ``tags={"rai.scorecard": "<job>/<output>"}`` links the version's RAI score card: the server
        writes ``rai.verdict`` and ``rai.failed`` from it (docs/guide/rai.md).

        Raises:
            NotFoundError: unknown version. ValidationError: ``rai.verdict`` given, a bad score card.
            ConflictError: the workspace's RAI gate refuses a protected tag or stage (failing checks named).
        """
        body = {k: v for k, v in {"tags": tags, "description": description, "stage": stage}.items() if v is not None}
        return _entity(self._t.request("PATCH", f"/models/{name}/versions/{version}", json=body))

    def get(self, name: str, version: str | int | None = None, label: str | None = None, **kwargs: Any) -> Model:
        """One version by ``version`` or ``label`` (``"latest"``: newest not archived; else an MLflow alias).

        Raises:
            ValidationError: neither or both given. NotFoundError: unknown model/version (versions listed).
        """
        if (version is None) == (label is None):
            raise ValidationError(f"model {name!r}: give exactly one of version=... or label='latest'")
        if version is not None:
            return _entity(self._t.get(f"/models/{name}/versions/{version}"))
        return _entity(self._t.get(f"/models/{name}/labels/{label}"))

    def list(self, name: str | None = None, stage: str | None = None, *,
             list_view_type: str = ListViewType.ACTIVE_ONLY, **kwargs: Any) -> list[Model]:
        """The versions of ``name`` (newest first), or the latest version of every model."""
        view = getattr(list_view_type, "value", list_view_type)
        models = [_entity(d) for d in self._t.get("/models", params={"name": name, "list_view_type": view})]
        return [m for m in models if stage is None or m.stage == stage]

    def download(self, name: str, version: str | int, download_path: str | os.PathLike[str] = ".",
                 **kwargs: Any) -> None:
        """Download the files of ``name:version`` under ``<download_path>/<name>/`` (as ``az ml model
        download``: a folder model keeps its folder name, a file model its file name).

        Raises:
            NotFoundError: unknown version. PathEscapeError: an archive member leaving the folder
            (``..``, absolute, a link); nothing is written then.
        """
        from openaml.datastores import safe_join  # with tarfile: for downloads only, not model show (CLI start-up)

        dest = safe_join(Path(download_path).expanduser(), name, what="model name")
        if dest.parent.resolve() != Path(download_path).expanduser().resolve():
            raise ValidationError(f"model name {name!r} is invalid: it must be one path component")
        from openaml.sdk._http import ChunkReader

        stream = self._t.stream("GET", f"/models/{name}/versions/{version}/download")
        first = next(stream, b"")  # an error (unknown version) raises before anything is made
        # unpacked into the staging folder as it arrives: neither the archive nor a copy of it is kept
        _extract_download(io.BufferedReader(ChunkReader(itertools.chain([first], stream)), 1 << 20), dest)

    def archive(self, name: str, version: str | int | None = None, label: str | None = None, **kwargs: Any) -> None:
        """Archive a version, or the whole model when no version/label is given."""
        if label is not None:
            version = self.get(name, label=label).version
        self._t.post(f"/models/{name}/archive", params={"version": version})

    def restore(self, name: str, version: str | int | None = None, label: str | None = None, **kwargs: Any) -> None:
        """Restore an archived version, or every version of the model."""
        if label is not None:
            version = self.get(name, label=label).version
        self._t.post(f"/models/{name}/restore", params={"version": version})


def _extract_download(fileobj: IO[bytes], dest: Path) -> int:
    """Extract a model archive into ``dest`` (created), all or nothing.

    The archive is unpacked into a staging folder next to ``dest`` first; files then move into
    place, replacing files of the same name. Returns the number of files.

    Raises:
        PathEscapeError: a member that is absolute, has ``..`` or is a link (nothing is written).
    """
    from openaml.datastores import safe_extract_tar, safe_join

    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = dest.parent / f".{dest.name}.download-{uuid.uuid4().hex[:8]}"
    try:
        count = safe_extract_tar(fileobj, stage)
        for root, _dirs, files in os.walk(stage):
            for f in files:
                src = Path(root) / f
                rel = src.relative_to(stage).as_posix()
                target = safe_join(dest, rel, what="downloaded file")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, target)
        dest.mkdir(parents=True, exist_ok=True)
        return count
    finally:
        shutil.rmtree(stage, ignore_errors=True)
