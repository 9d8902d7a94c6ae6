"""``ml_client.data``: create_or_update, get, list, archive, restore (azure-ai-ml ``DataOperations``).

A local ``path`` (relative to the YAML's folder when loaded with ``load_data``, else to the current
folder) is checked against the asset's type first, then uploaded into the default datastore (or
``data.datastore``) and registered with its ``azureml://datastores/...`` URI, as Azure ML does.
A bad asset uploads nothing.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

from openaml.datastores import is_url, validate_mltable_folder
from openaml.entities import Data
from openaml.errors import ConflictError, NotFoundError, ValidationError
from openaml.sdk._upload import upload_path

__all__ = ["DataOperations"]

# azure-ai-ml ListViewType values, and ours
_VIEWS = {"ActiveOnly": "active", "ArchivedOnly": "archived", "All": "all",
          "active": "active", "archived": "archived", "all": "all"}


def _entity(d: dict[str, Any]) -> Data:
    return Data.model_validate({k: v for k, v in d.items() if k in Data.model_fields})


def _q(part: str) -> str:
    return quote(str(part), safe="")


def _is_local(path: str) -> bool:
    return not is_url(path) and not path.startswith("azureml:")


class DataOperations:
    """Data asset operations of one workspace (``MLClient.data``)."""

    def __init__(self, client: Any) -> None:
        self._t = client._transport

    # ------------------------------------------------------------------ create
    def create_or_update(self, data: Data, *, show_progress: bool = False, **kwargs: Any) -> Data:
        """Register a new version of a data asset and return it (with ``id`` and the stored ``path``).

        Args:
            data: ``Data(name, path, type="uri_folder"|"uri_file"|"mltable", version=None, ...)``.
                No ``version`` takes the next integer.
            show_progress: show an upload progress bar (the CLI turns it on).

        Raises:
            ValidationError: no name or path, a local path that does not exist or does not match the
                type (uri_file: a file; uri_folder: a folder; mltable: a folder with a valid MLTable
                file), or anything the server refuses.
            PathEscapeError: an MLTable path leaving its folder.
            ConflictError: ``name:version`` exists (versions are immutable); checked before uploading.
        """
        if not isinstance(data, Data):
            raise ValidationError(f"data.create_or_update expects a Data entity, got {type(data).__name__}")
        where = data._source or "Data"
        if not data.name:
            raise ValidationError(f"{where}: field 'name' is required for a data asset", details={"field": "name"})
        if not data.path:
            raise ValidationError(f"{where}: field 'path' is required: a local file or folder, an "
                                  "azureml://datastores/... URI or a URL", details={"field": "path"})
        spec = data.to_dict()
        for key in ("id", "creation_context", "archived", "name"):
            spec.pop(key, None)
        if _is_local(data.path):
            local = self._check_local(data, where)
            if data.version is not None:
                self._refuse_existing(data.name, data.version)
            spec["path"] = upload_path(self._t, local, target="datastore", progress=show_progress,
                                       datastore=data.datastore)["uri"]
        result = self._t.post(f"/data/{_q(data.name)}/versions", json=spec, params={"source": data._source})
        for w in result.get("warnings") or []:  # e.g. a datastore path that does not exist yet
            warnings.warn(w, UserWarning, stacklevel=2)
        return _entity(result)

    @staticmethod
    def _check_local(data: Data, where: str) -> Path:
        """Absolute local path of ``data.path`` after the type checks; nothing is uploaded yet."""
        assert data.path is not None
        raw = data.path.removeprefix("file:")
        local = (data.base_path / Path(raw).expanduser()).resolve()
        at = where + _line_of(data, "path")

        def fail(msg: str) -> ValidationError:
            return ValidationError(f"{at}: field 'path': {msg}", details={"file": data._source, "field": "path",
                                                                         "value": data.path})

        if not local.exists():
            raise fail(f"{data.path!r} does not exist (resolved to {local}); paths in a YAML file are relative to "
                       "its folder, paths given to the SDK to the current folder")
        if data.type == "uri_file" and not local.is_file():
            raise fail(f"type uri_file needs a file but {data.path!r} is a folder; use type uri_folder, or point "
                       "path at a file")
        if data.type == "uri_folder" and not local.is_dir():
            raise fail(f"type uri_folder needs a folder but {data.path!r} is a file; use type uri_file, or point "
                       "path at a folder")
        if data.type == "mltable":
            if local.is_file():
                raise fail(f"type mltable needs the folder holding the MLTable file, but {data.path!r} is a file; "
                           "point path at its folder")
            try:
                validate_mltable_folder(local)
            except ValidationError as exc:
                raise type(exc)(f"{at}: field 'path': {exc.message}", details=exc.details) from None
        return local

    def _refuse_existing(self, name: str, version: str) -> None:
        try:
            self._t.get(f"/data/{_q(name)}/versions/{_q(version)}")
        except NotFoundError:
            return
        raise ConflictError(f"data {name}:{version} already exists and versions are immutable; omit the version "
                            "to get the next one, or choose another version",
                            details={"field": "version", "value": version})

    # ------------------------------------------------------------------ read
    def get(self, name: str, version: str | int | None = None, label: str | None = None, **kwargs: Any) -> Data:
        """One version, by ``version`` or ``label="latest"`` (the default: newest unarchived version).

        Raises:
            NotFoundError: listing the versions that exist. ValidationError: an unknown label.
        """
        if version is not None and label is not None:
            raise ValidationError("give either version or label, not both")
        if version is not None:
            return _entity(self._t.get(f"/data/{_q(name)}/versions/{_q(str(version))}"))
        return _entity(self._t.get(f"/data/{_q(name)}/labels/{_q(label or 'latest')}"))

    def list(self, name: str | None = None, *, list_view_type: Any = "ActiveOnly", **kwargs: Any) -> list[Data]:
        """All versions of ``name`` (newest first), or the latest version of every data asset.

        ``list_view_type``: ``ActiveOnly`` (default), ``ArchivedOnly`` or ``All`` (azure-ai-ml's
        ``ListViewType``; its enum members are accepted too).
        """
        key = str(getattr(list_view_type, "value", list_view_type))
        if key not in _VIEWS:
            raise ValidationError(f"list_view_type {key!r} is invalid; use ActiveOnly, ArchivedOnly or All")
        return [_entity(d) for d in self._t.get("/data", params={"name": name, "view": _VIEWS[key]})]

    def resolve(self, ref: str) -> Data:
        """The asset a reference names: ``azureml:name:1``, ``name@latest``, an id, ``azureml://data/...``."""
        return _entity(self._t.get("/data/_resolve", params={"ref": ref}))

    # ------------------------------------------------------------------ archive
    def archive(self, name: str, version: str | int | None = None, label: str | None = None, **kwargs: Any) -> None:
        """Archive one version, or every version when none is given (hidden from list and latest)."""
        self._set_archived("archive", name, version, label)

    def restore(self, name: str, version: str | int | None = None, label: str | None = None, **kwargs: Any) -> None:
        """Undo :meth:`archive`."""
        self._set_archived("restore", name, version, label)

    def _set_archived(self, verb: str, name: str, version: str | int | None, label: str | None) -> None:
        if version is None and label is not None:
            version = self.get(name, label=label).version
        self._t.post(f"/data/{_q(name)}/{verb}", params={"version": None if version is None else str(version)})


def _line_of(data: Data, field: str) -> str:
    """``", line N"`` of a top-level field in the YAML the entity came from, when it still holds that value."""
    if not data._source:
        return ""
    try:
        from openaml._yaml import load_yaml_with_lines

        raw, lines = load_yaml_with_lines(data._source)
    except (ValidationError, OSError):
        return ""
    if raw.get(field) != getattr(data, field) or (field,) not in lines:
        return ""
    return f", line {lines[(field,)]}"
