"""Datastores: the default ``workspaceblobstore`` folder, other local folders, and URI resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic

from openaml.constants import DEFAULT_DATASTORE
from openaml.datastores import parse_datastore_uri, parse_job_output_uri, safe_join
from openaml.entities._datastore import credentials_from, datastore_class, public_credentials
from openaml.errors import NotFoundError, UnsupportedError, ValidationError
from openaml.services._context import WorkspaceContext

__all__ = ["DatastoreService"]


class DatastoreService:
    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx

    def ensure_default(self) -> None:
        store = self.ctx.store
        names = {d["name"] for d in store.list_datastores()}
        if DEFAULT_DATASTORE not in names:
            store.put_datastore(DEFAULT_DATASTORE, "local",
                                {"description": "default datastore: a folder of the workspace",
                                 "path": "datastores/workspaceblobstore"}, is_default=True)
        self.ctx.layout.default_datastore.mkdir(parents=True, exist_ok=True)

    def _entity(self, d: dict[str, Any]) -> dict[str, Any]:
        d = dict(d)
        # secrets are never returned (Azure's GET omits them too); the kind and non-secret fields are
        creds = public_credentials(d.pop("credentials", None))
        if creds:
            d["credentials"] = creds
        if d["type"] == "local":
            d["local_path"] = str(self.local_root(d["name"]))
        return d

    def list(self) -> list[dict[str, Any]]:
        return [self._entity(d) for d in self.ctx.store.list_datastores()]

    def get(self, name: str) -> dict[str, Any]:
        return self._entity(self.ctx.store.get_datastore(name))

    def get_default(self) -> dict[str, Any]:
        for d in self.ctx.store.list_datastores():
            if d.get("is_default"):
                return self._entity(d)
        return self.get(DEFAULT_DATASTORE)

    def create_or_update(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Register a datastore. ``local`` needs ``path`` (an existing folder); the Azure types
        (azure_blob, azure_file, azure_data_lake_gen1/gen2) are validated as azure-ai-ml does and kept
        as metadata with their credentials (their files cannot be reached from here and jobs using them
        fail with that reason). The credentials are stored under the one key ``credentials``.

        An update that sends the same credential kind without its secret (a ``get`` result sent back)
        keeps the stored secret, as the secret is never returned.

        Raises:
            ValidationError: a missing or wrong field for the datastore's type, or the default store.
        """
        from openaml.entities._base import validation_error_from_pydantic

        cls = datastore_class(spec.get("type"))
        try:
            ds = cls.model_validate(spec)
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=None, lines=None, kind="datastore", model=cls) from None
        if ds.name == DEFAULT_DATASTORE:
            raise ValidationError(f"datastore {DEFAULT_DATASTORE!r} is the workspace's own folder and cannot be changed")
        data = ds.model_dump(mode="json", exclude_none=True, exclude={"name", "type", "is_default", "id"})
        if "credentials" in data:
            data["credentials"] = self._keep_secrets(ds.name, data["credentials"])
        if ds.type == "local":
            if not ds.path:
                raise ValidationError("a local datastore needs 'path': an existing folder",
                                      details={"field": "path"})
            p = Path(ds.path).expanduser()
            if not p.is_absolute():
                raise ValidationError(f"datastore path {ds.path!r} must be absolute", details={"field": "path"})
            self._check_allowed_root(p, ds.path)
            p.mkdir(parents=True, exist_ok=True)
            data["path"] = str(p.resolve())
        return self._entity(self.ctx.store.put_datastore(ds.name, ds.type, data, ds.is_default))

    def _keep_secrets(self, name: str, creds: dict[str, Any]) -> dict[str, Any]:
        try:
            old = self.ctx.store.get_datastore(name).get("credentials") or {}
        except NotFoundError:
            return creds
        if not old or old.get("type") != creds.get("type"):
            return creds
        cls = type(credentials_from(creds))
        kept = {k: old[k] for k in cls._secret_fields if k not in creds and k in old}
        return {**creds, **kept}
    def _check_allowed_root(self, p: Path, given: str) -> None:
        """A local datastore exposes its folder to every token holder: only under allowed roots.

        Raises:
            ValidationError: ``p`` (links resolved) is outside every root of
                ``Settings.local_datastore_roots()``, naming them and the flag that adds one.
        """
        real = p.resolve()
        roots = self.ctx.settings.local_datastore_roots()
        if not any(real == r or r in real.parents for r in roots):
            raise ValidationError(
                f"datastore path {given!r} is outside the folders local datastores may use "
                f"({', '.join(str(r) for r in roots)}); start the server with --datastore-root FOLDER "
                "(or OPENAML_DATASTORE_ROOTS) to allow another one", details={"field": "path", "value": given})

    def local_root(self, name: str) -> Path:
        """Folder behind a local datastore.

        Raises:
            NotFoundError: unknown datastore. UnsupportedError: a cloud datastore (no local folder).
        """
        d = self.ctx.store.get_datastore(name)
        if d["type"] != "local":
            raise UnsupportedError(f"datastore {name!r} is of type {d['type']}, which this installation keeps as "
                                   "metadata only; its files cannot be read here. Use a local datastore.")
        p = Path(d.get("path") or "")
        return p if p.is_absolute() else (self.ctx.layout.root / p)

    def resolve(self, uri: str) -> Path:
        """Local path of an ``azureml://datastores/<ds>/paths/<p>`` or ``azureml://jobs/...`` URI.

        Raises:
            ValidationError: not such a URI. PathEscapeError: the path leaves the datastore.
        """
        parsed = parse_datastore_uri(uri)
        if parsed is not None:
            return safe_join(self.local_root(parsed.datastore), parsed.path, what=f"path of {uri}")
        job_uri = parse_job_output_uri(uri)
        if job_uri is not None:
            return self.ctx.services["jobs"].resolve_output_uri(job_uri)
        raise ValidationError(f"{uri!r} is not an azureml://datastores/... or azureml://jobs/... URI")

    def to_uri(self, local: Path) -> str | None:
        """The datastore URI of a local path inside a local datastore, or None."""
        local = local.resolve()
        for d in self.ctx.store.list_datastores():
            if d["type"] != "local":
                continue
            root = self.local_root(d["name"]).resolve()
            if local == root or root in local.parents:
                return f"azureml://datastores/{d['name']}/paths/{local.relative_to(root).as_posix()}"
        return None
