"""Data assets: ``uri_file``, ``uri_folder`` and ``mltable`` versions over the metadata store (spec 7.1).

Azure ML behaviour reproduced:

- versions are immutable; an omitted version is the next integer;
- ``label="latest"`` (and ``@latest`` references) is the newest version that is not archived;
  archived versions are hidden from lists and from ``latest`` but still readable by version;
- ``path`` is kept as an ``azureml://datastores/<ds>/paths/<p>`` URI (the SDK and CLI upload local
  paths first), an ``azureml://jobs/<job>/outputs/<out>/paths/<p>`` URI, or a remote URL
  (http(s), wasb(s), abfs(s), adl, s3, gs), stored as given;
- the asset's ``id`` is an ARM-style id, ``/subscriptions/.../workspaces/<ws>/data/<name>/versions/<v>``,
  accepted back wherever a data reference is.

A path on a local datastore must exist and match the type: a file for ``uri_file``, a folder
for ``uri_folder``, a folder with a valid ``MLTable`` file for ``mltable``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pydantic

from openaml.datastores import (
    URL_SCHEMES,
    DatastorePort,
    is_url,
    parse_datastore_uri,
    parse_job_output_uri,
    validate_mltable_folder,
)
from openaml.entities import Data
from openaml.entities._base import validation_error_from_pydantic
from openaml.errors import NotFoundError, OpenAMLError, UnsupportedError, ValidationError
from openaml.records import ArchivedRecord, DataVersionRecord
from openaml.services._actor import actor
from openaml.services._context import WorkspaceContext

__all__ = ["LIST_VIEWS", "DataService", "parse_data_reference"]

LIST_VIEWS = ("active", "archived", "all")

_SERVER_FIELDS = ("id", "creation_context", "archived", "created_at", "created_by")
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_REF_FORMS = [
    # (pattern, what the groups mean); first match wins
    re.compile(rf"^/subscriptions/[^/]+/resource[gG]roups/[^/]+/providers/"
               rf"Microsoft\.MachineLearningServices/workspaces/[^/]+/data/(?P<name>{_NAME})"
               rf"/(?:versions/(?P<version>[^/]+)|labels/(?P<label>[^/]+))/?$"),
    re.compile(rf"^azureml://(?:locations/[^/]+/workspaces/[^/]+/)?data/(?P<name>{_NAME})"
               rf"/(?:versions/(?P<version>[^/]+)|labels/(?P<label>[^/]+))/?$"),
    re.compile(rf"^(?P<name>{_NAME}):(?P<version>[^:@/]+)$"),
    re.compile(rf"^(?P<name>{_NAME})@(?P<label>[^:@/]+)$"),
]


def parse_data_reference(ref: str) -> tuple[str, str | None, str | None]:
    """Split a data reference into ``(name, version, label)`` (exactly one of version/label is set).

    Accepted: ``azureml:name:ver``, ``azureml:name@latest``, ``name:ver``, ``name@latest``,
    ``azureml://data/<name>/versions/<v>`` (or ``/labels/latest``, optionally with
    ``locations/<loc>/workspaces/<ws>/`` before ``data``), and the ARM id
    ``[azureml:]/subscriptions/.../workspaces/<ws>/data/<name>/versions/<v>``.

    Raises:
        ValidationError: any other form, with the accepted forms listed.
    """
    text = (ref or "").strip()
    if text.startswith("azureml:") and not text.startswith("azureml://"):
        text = text[len("azureml:"):]
    for pattern in _REF_FORMS:
        m = pattern.match(text)
        if m:
            g = m.groupdict()
            return g["name"], g.get("version"), g.get("label")
    hint = ""
    if re.match(rf"^{_NAME}$", text):
        hint = f" (a version is needed: '{text}:1' or '{text}@latest')"
    raise ValidationError(
        f"{ref!r} is not a data asset reference{hint}; use azureml:<name>:<version>, azureml:<name>@latest, "
        "azureml://data/<name>/versions/<version> or the asset's id", details={"value": ref})


class DataService:
    """Create, read, list, archive and resolve data assets. Returns plain dicts shaped as ``Data``."""

    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------ views
    def _id(self, name: str, version: str) -> str:
        return (f"/subscriptions/local/resourceGroups/local/providers/Microsoft.MachineLearningServices/"
                f"workspaces/{self.ctx.workspace_name or 'local'}/data/{name}/versions/{version}")

    def _view(self, row: dict[str, Any]) -> DataVersionRecord:
        out = {k: v for k, v in row.items() if k not in _SERVER_FIELDS}
        out["id"] = self._id(row["name"], row["version"])
        out["archived"] = bool(row.get("archived"))
        by = row.get("created_by")  # who registered it (versions registered before this was kept: unknown)
        out["creation_context"] = {"created_at": row.get("created_at"),
                                   **({"created_by": str(by.get("name")), "created_by_type": "User"}
                                      if isinstance(by, dict) else {})}
        return cast(DataVersionRecord, out)  # the stored spec's fields pass through (see openaml.records)

    # ------------------------------------------------------------------ create
    def create(self, spec: dict[str, Any], *, source: str | None = None,
               created_by: dict[str, str] | None = None) -> DataVersionRecord:
        """Register a data asset version. Nothing is stored unless every check passes.

        Args:
            spec: the ``Data`` fields (``name`` and ``path`` required; ``version`` optional).
            source: the YAML file the spec came from, for messages.
            created_by: who registers it when no request is served (a job's output: its submitter's
                ``{name, role, kind}``); else the request's principal.

        Returns:
            The stored asset (``Data`` fields plus ``id``, ``creation_context``).

        Raises:
            ValidationError: unknown field, wrong type, missing name/path, a local (not uploaded) path,
                an unsupported URL scheme, a path that is not of the declared type, a bad MLTable file.
            PathEscapeError: a datastore path with ``..`` or leaving the datastore through a symlink.
            NotFoundError: unknown datastore, or a datastore path that does not exist.
            ConflictError: ``name:version`` exists (versions are immutable).
        """
        body = {k: v for k, v in spec.items() if k not in _SERVER_FIELDS}
        body.pop("$schema", None)
        try:
            data = Data.model_validate(body)
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=source, lines=None, kind="data") from None
        where = source or "data"
        if not data.name:
            raise ValidationError(f"{where}: field 'name' is required for a data asset",
                                  details={"file": source, "field": "name"})
        if not data.path:
            raise ValidationError(f"{where}: field 'path' is required: a local file or folder (uploaded by the "
                                  "SDK/CLI), an azureml://datastores/... URI or a URL",
                                  details={"file": source, "field": "path"})
        warns: list[str] = []
        path = self._check_path(data.type, data.path, where, warns)
        stored = data.model_dump(mode="json", exclude_none=True, exclude={"name", "version", *_SERVER_FIELDS})
        stored["path"] = path
        who = actor()
        if who is not None:
            stored["created_by"] = who.record()
        elif created_by:
            stored["created_by"] = dict(created_by)
        row = self.ctx.store.create_asset("data", data.name, data.version, stored, type=data.type, path=path)
        view = self._view(row)
        if warns:
            view["warnings"] = warns  # this answer only; not stored
        return view

    def _check_path(self, type_: str, path: str, where: str, warns: list[str]) -> str:
        """Validate ``path`` for ``type_``; returns the canonical form to store.

        A datastore path that does not exist yet is stored with a warning appended to ``warns``
        (Azure ML does not check); a job reading it fails at submission if it is still missing."""
        ds_uri = parse_datastore_uri(path)
        if ds_uri is not None:
            canonical = str(ds_uri)
            datastores = self.ctx.services["datastores"]
            try:
                located = datastores.locate(canonical)
                assert located is not None  # a datastore URI always has a port
                port, rel = located
                exists = port.exists(rel)
            except UnsupportedError:
                return canonical  # a cloud datastore: metadata only, its files cannot be checked here
            except OpenAMLError as exc:
                raise type(exc)(f"{where}: field 'path': {exc.message}",
                                details={**exc.details, "field": "path", "value": path}) from None
            if not exists:
                warns.append(f"{where}: field 'path': {canonical} does not exist yet; the reference is stored "
                             "as given (as Azure ML does) and a job reading it fails if it is still missing")
                return canonical
            self._check_files(type_, port, rel, canonical, where)
            return canonical
        if parse_job_output_uri(path) is not None:
            return path  # a job's output: may not be written yet, so kept as given (Azure does the same)
        if is_url(path):
            scheme = path.split("://", 1)[0].lower()
            if scheme not in URL_SCHEMES or scheme == "azureml":
                raise ValidationError(
                    f"{where}: field 'path': {path!r} is not a supported URI; use azureml://datastores/<ds>/paths/<p>, "
                    f"azureml://jobs/<job>/outputs/<output>/paths/<p>, or a URL with one of: "
                    f"{', '.join(s + '://' for s in URL_SCHEMES if s != 'azureml')}",
                    details={"field": "path", "value": path})
            return path
        if path.startswith("azureml:"):
            raise ValidationError(
                f"{where}: field 'path': {path!r} names an asset; a data asset's path is a file or folder: a local "
                "path (uploaded by the SDK/CLI), an azureml://datastores/... or azureml://jobs/... URI, or a URL",
                details={"field": "path", "value": path})
        raise ValidationError(
            f"{where}: field 'path': {path!r} is a local path, which the server cannot read from your machine; "
            "create the asset with the openaml SDK or CLI (they upload it), or give an azureml://datastores/... URI",
            details={"field": "path", "value": path})

    @staticmethod
    def _check_files(type_: str, port: DatastorePort, rel: str, uri: str, where: str) -> None:
        """The files at ``rel`` of ``port`` fit ``type_`` (an MLTable folder is validated where the
        datastore has a local path)."""
        if type_ == "uri_file" and not port.isfile(rel):
            raise ValidationError(f"{where}: field 'path': type uri_file needs a file but {uri} is a folder; "
                                  "use type uri_folder, or point path at a file", details={"field": "path"})
        if type_ == "uri_folder" and not port.isdir(rel):
            raise ValidationError(f"{where}: field 'path': type uri_folder needs a folder but {uri} is a file; "
                                  "use type uri_file, or point path at a folder", details={"field": "path"})
        if type_ == "mltable":
            if port.isfile(rel):
                raise ValidationError(f"{where}: field 'path': type mltable needs the folder holding the MLTable "
                                      f"file, but {uri} is a file; point path at its folder",
                                      details={"field": "path"})
            if port.has_local_path:
                validate_mltable_folder(port.local_path(rel), label=uri)

    # ------------------------------------------------------------------ read
    def get(self, name: str, version: str | None = None, label: str | None = None) -> DataVersionRecord:
        """One version; neither ``version`` nor ``label`` means ``latest`` (newest unarchived).

        Raises:
            ValidationError: both given, or a label other than ``latest``.
            NotFoundError: naming the versions that exist (and saying when all are archived).
        """
        if version is not None and label is not None:
            raise ValidationError("give either version or label, not both")
        if label is not None and label != "latest":
            raise ValidationError(f"label {label!r} is not supported; the only label is 'latest'",
                                  details={"field": "label", "value": label})
        try:
            return self._view(self.ctx.store.get_asset("data", name, version=version, label=label))
        except NotFoundError as exc:
            if version is None and self.ctx.store.list_assets("data", name, include_archived=True):
                raise NotFoundError(f"{exc.message} (every version of data {name!r} is archived; restore one with "
                                    f"'openaml data restore -n {name} -v <version>' or ask for a version)") from None
            raise

    def list(self, name: str | None = None, view: str = "active") -> list[DataVersionRecord]:
        """Versions of ``name`` (newest first), or the latest version of every asset.

        ``view``: ``active`` (default, archived hidden), ``archived`` (only archived) or ``all``.

        Raises:
            ValidationError: unknown view.
        """
        if view not in LIST_VIEWS:
            raise ValidationError(f"list view {view!r} is invalid; use one of: {', '.join(LIST_VIEWS)}")
        rows = self.ctx.store.list_assets("data", name, include_archived=view != "active")
        if view == "archived":
            rows = [r for r in rows if r["archived"]]
        return [self._view(r) for r in rows]

    def set_archived(self, name: str, version: str | None, archived: bool) -> ArchivedRecord:
        """Archive (or restore) one version, or every version when ``version`` is None.

        Returns ``{"name", "version", "archived", "count"}``.

        Raises:
            NotFoundError: unknown name or version.
        """
        count = self.ctx.store.set_asset_archived("data", name, version, archived)
        return {"name": name, "version": version, "archived": archived, "count": count}

    def resolve_reference(self, ref: str) -> DataVersionRecord:
        """The asset a reference names (forms: :func:`parse_data_reference`).

        Used by the jobs service for ``Input(path="azureml:titanic:1")`` and friends.

        Raises:
            ValidationError: not a data reference. NotFoundError: listing the versions that exist.
        """
        name, version, label = parse_data_reference(ref)
        return self.get(name, version=version, label=label)

    def local_path(self, asset: dict[str, Any]) -> Path:
        """Local file or folder of an asset whose path is on a local datastore or a job's output.

        Raises:
            UnsupportedError: a remote URL or a cloud datastore (no local files).
        """
        path = asset["path"]
        if parse_datastore_uri(path) is None and parse_job_output_uri(path) is None:
            raise UnsupportedError(f"data {asset['name']}:{asset['version']} is at {path}, a remote URL; "
                                   "openaml does not download remote data")
        return Path(self.ctx.services["datastores"].resolve(path))
