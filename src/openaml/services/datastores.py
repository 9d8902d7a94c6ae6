"""Datastores: the default ``workspaceblobstore`` folder, other local folders, and URI resolution.

Each datastore's files are reached through its port (:meth:`DatastoreService.port`, a
:class:`~openaml.datastores.DatastorePort` chosen by its type); :meth:`DatastoreService.locate`
turns an ``azureml://`` URI into ``(port, path)``. A local path (:meth:`DatastoreService.resolve`)
exists only for datastores whose files are on this machine.
"""

from __future__ import annotations

import builtins
import re
from pathlib import Path
from typing import Any, cast

import pydantic

from openaml.constants import DEFAULT_DATASTORE
from openaml.datastores import (
    DatastorePort,
    open_datastore,
    parse_datastore_uri,
    parse_job_output_uri,
    relative_parts,
)
from openaml.entities._datastore import credentials_from, datastore_class, datastore_fields_class, public_credentials
from openaml.errors import ConflictError, NotFoundError, ValidationError
from openaml.records import DatastoreRecord
from openaml.services._context import WorkspaceContext

__all__ = ["DatastoreService", "REMOTE_TYPES"]

#: datastore types whose files are in an object store reached with the stored credentials
REMOTE_TYPES = ("s3", "azure_blob")


#: a datastore name (Azure ML: letters, digits and underscores; openaml also takes '-')
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")


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

    def _entity(self, d: dict[str, Any]) -> DatastoreRecord:
        d = dict(d)
        # secrets are never returned (Azure's GET omits them too); the kind and non-secret fields are
        creds = public_credentials(d.pop("credentials", None))
        if creds:
            d["credentials"] = creds
        endpoint = str(d.get("endpoint") or "")
        if d["type"] == "azure_blob" and "://" in endpoint:
            # a URL endpoint (Azurite, a private endpoint) is the account's URL as it is: its scheme is the
            # protocol in use, whatever ``protocol`` was stored (azure-ai-ml's class defaults it to https)
            d["protocol"] = endpoint.split("://", 1)[0].lower()
        if d["type"] == "local":
            d["local_path"] = str(open_datastore(self._definition(d), base=self.ctx.layout.root).local_path(""))
        return cast(DatastoreRecord, d)  # the stored spec's fields pass through (see openaml.records)

    def list(self) -> list[DatastoreRecord]:
        return [self._entity(d) for d in self.ctx.store.list_datastores()]

    def get(self, name: str) -> DatastoreRecord:
        return self._entity(self.ctx.store.get_datastore(name))

    def get_default(self) -> DatastoreRecord:
        for d in self.ctx.store.list_datastores():
            if d.get("is_default"):
                return self._entity(d)
        return self.get(DEFAULT_DATASTORE)

    def default_name(self) -> str:
        """The name of the workspace's default datastore (``workspaceblobstore`` unless another one
        was registered with ``is_default: true``): where uploads and outputs without a datastore go."""
        for d in self.ctx.store.list_datastores():
            if d.get("is_default"):
                return str(d["name"])
        return DEFAULT_DATASTORE

    def canonical_name(self, name: str | None) -> str | None:
        """A datastore name as the user may write it: ``azureml:<name>`` (azure-ai-ml's reference form,
        as for computes) or ``<name>`` -> ``<name>``; None stays None. Not checked against the store."""
        if name is not None and name.startswith("azureml:"):
            name = name[len("azureml:"):]
        return name

    def delete(self, name: str) -> None:
        """Remove a datastore's registration, as Azure ML does: its files stay where they are (a local
        datastore's folder, the bucket or container) and registering it again gives them back.

        Refused (nothing removed): the workspace's own ``workspaceblobstore``; the default datastore
        (:meth:`default_name`; make another the default first); a datastore that a data asset version
        that is not archived points into (its ``path`` is on the datastore: the asset would no longer
        resolve), naming up to five of them.

        Raises:
            NotFoundError: no such datastore, naming those that exist. ConflictError: the workspace's
                own datastore, the default one, or one that data assets use.
        """
        canonical = self.canonical_name(name)
        assert canonical is not None
        name = canonical
        if name == DEFAULT_DATASTORE:
            raise ConflictError(
                f"datastore {DEFAULT_DATASTORE!r} is the workspace's own folder (created with the workspace) "
                "and cannot be deleted", details={"datastore": name, "built_in": True})
        self.ctx.store.get_datastore(name)  # NotFoundError naming the datastores that exist
        if name == self.default_name():
            raise ConflictError(
                f"datastore {name!r} is the workspace's default datastore and cannot be deleted; make another "
                f"one the default first (register it with is_default: true, or register {name!r} again with "
                f"is_default: false to give the default back to {DEFAULT_DATASTORE!r})",
                details={"datastore": name, "is_default": True})
        used, total = self.ctx.store.assets_under("data", f"azureml://datastores/{name}/paths/")
        if total:
            listed = ", ".join(f"{n}:{v}" for n, v in used) + (f" and {total - len(used)} more" if total > len(used)
                                                               else "")
            raise ConflictError(
                f"datastore {name!r} is used by {total} data asset version{'s' if total > 1 else ''} ({listed}); "
                "archive them first (openaml data archive --name <name> --version <version>), then delete it",
                details={"datastore": name, "data": [f"{n}:{v}" for n, v in used], "count": total})
        self.ctx.store.delete_datastore(name)
        files = self.ctx.services.get("files")
        if files is not None:
            files.forget_port()

    def create_or_update(self, spec: dict[str, Any], *, skip_validation: bool = False) -> DatastoreRecord:
        """Register a datastore. ``local`` needs ``path``, an absolute folder (made when it does not exist,
        with a warning in the answer naming it: a mistyped path shows); ``s3`` and
        ``azure_blob`` are proved first by one listing call with the given credentials
        (:meth:`~openaml.datastores.DatastorePort.probe`), so wrong or malformed credentials, a
        missing bucket or container or an unreachable endpoint fail here, naming the datastore, the
        field and the service's error, and nothing is stored (``skip_validation``: not proved, for
        an endpoint only the jobs' machines reach; the answer's ``warnings`` say so); the other
        Azure types (azure_file, azure_data_lake_gen1/gen2)
        are validated as azure-ai-ml does and kept as metadata with their credentials (jobs using
        them fail with that reason). The credentials are stored encrypted under the one key
        ``credentials`` and never returned.

        An update that sends the same credential kind without its secret (a ``get`` result sent back)
        keeps the stored secret, as the secret is never returned.

        Raises:
            ValidationError: a missing or wrong field for the datastore's type, or the default store.
        """
        from openaml.entities._base import validation_error_from_pydantic

        cls = datastore_class(spec.get("type"))
        fields = datastore_fields_class(spec.get("type"))
        warning: str | None = None
        try:
            if fields is not None:  # unknown fields named with this type's fields (Datastore takes every type's)
                fields.model_validate(spec)
            ds = cls.model_validate(spec)
        except pydantic.ValidationError as exc:
            model = fields if fields is not None and exc.title == fields.__name__ else cls
            raise validation_error_from_pydantic(exc, source=None, lines=None, kind="datastore", model=model) from None
        if ds.name == DEFAULT_DATASTORE:
            raise ValidationError(f"datastore {DEFAULT_DATASTORE!r} is the workspace's own folder and cannot be changed")
        if not _NAME.match(ds.name):  # it is a part of azureml://datastores/<name>/paths/... URIs
            raise ValidationError(f"datastore name {ds.name!r}: use letters, digits, '_' and '-' (a letter or digit "
                                  "first, 255 at most); nothing was stored",
                                  details={"field": "name", "value": ds.name})
        data = ds.model_dump(mode="json", exclude_none=True, exclude={"name", "type", "is_default", "id"})
        if "credentials" in data:
            data["credentials"] = self._keep_secrets(ds.name, data["credentials"])
        if ds.type == "local":
            if not ds.path:
                raise ValidationError("a local datastore needs 'path': an absolute folder of the server's machine",
                                      details={"field": "path"})
            p = Path(ds.path).expanduser()
            if not p.is_absolute():
                raise ValidationError(f"datastore path {ds.path!r} must be absolute", details={"field": "path"})
            self._check_allowed_root(p, ds.path)
            self._check_no_secrets(p, ds.path)
            if p.exists() and not p.is_dir():
                raise ValidationError(f"field 'path': {ds.path!r} is a file; a local datastore needs a folder "
                                      "(give the folder that holds it)", details={"field": "path", "value": ds.path})
            missing = not p.exists()
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValidationError(f"field 'path': folder {ds.path!r} cannot be made: {exc.strerror or exc}",
                                      details={"field": "path", "value": ds.path}) from None
            if missing:  # made, as always (scratch datastores rely on it), but never silently: a typo shows
                warning = (f"datastore {ds.name!r}: field 'path': folder {ds.path!r} did not exist and was created "
                           "(empty); if the path is mistyped, delete the datastore (openaml datastore delete --name "
                           f"{ds.name}; the folder stays) and register it with the right path")
            data["path"] = str(p.resolve())
        if ds.type in REMOTE_TYPES:  # proved before anything is stored: wrong credentials store nothing
            port = open_datastore({**data, "name": ds.name, "type": ds.type}, base=self.ctx.layout.root)
            port.check_definition()  # a malformed endpoint is never right, checked or not
            if skip_validation:
                warning = (f"datastore {ds.name!r} ({ds.type}): registered without checking that {port.describe()} "
                           "answers (skip_validation); a job or upload using it fails with the service's error "
                           "while it does not")
            else:
                warning = port.probe()
        if ds.type == "fsspec":  # a local member in any case or chain (FILE:///x, simplecache::file:///x)
            from openaml.datastores import local_url_paths

            for member in local_url_paths(ds.url or ""):
                self._check_allowed_root(Path(member or ".").expanduser().absolute(), ds.url or "")
        saved = self.ctx.store.put_datastore(ds.name, ds.type, data, ds.is_default)
        # one default: the one registered last with is_default: true, else workspaceblobstore again
        for other in self.ctx.store.list_datastores():
            if other["name"] == ds.name:
                continue
            want = not ds.is_default and other["name"] == DEFAULT_DATASTORE and not self._other_default(ds.name)
            if bool(other.get("is_default")) != want and (ds.is_default or want):
                keep = {k: v for k, v in other.items() if k not in ("name", "type", "is_default")}
                self.ctx.store.put_datastore(other["name"], other["type"], keep, want)
        files = self.ctx.services.get("files")
        if files is not None:
            files.forget_port()  # the default may have changed (other servers see it within seconds)
        view = self._entity(saved)
        if warning:
            view["warnings"] = [warning]  # this answer only; not stored
        return view

    def _other_default(self, name: str) -> bool:
        return any(d.get("is_default") and d["name"] not in (name, DEFAULT_DATASTORE)
                   for d in self.ctx.store.list_datastores())

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

    def _check_no_secrets(self, p: Path, given: str) -> None:
        """A local datastore's folder is read by jobs (``ro_mount`` binds it into the job's view before the
        workspace's secrets are hidden, :mod:`openaml.environments._hide`), so it must hold none of them.

        Raises:
            ValidationError: ``p`` (links resolved) is the workspace folder, contains it, or lies inside it
                anywhere but its ``datastores/`` folder; or it contains or is inside ``$OPENAML_HOME`` (saved client
                tokens, the user's other workspaces) or one of the server's secret files
                (``--token-file``, TLS key, databases), naming the path and the fix.
        """
        from openaml._settings import openaml_home
        from openaml.environments._hide import server_secret_files

        real = p.resolve()
        ws = self.ctx.layout.root.resolve()
        allowed = ws / "datastores"
        if real == ws or ws in real.parents:
            if real == allowed or allowed in real.parents:
                return
            raise ValidationError(
                f"datastore path {given!r} is inside the workspace folder {ws}, whose files (server.token, "
                f"secret.key, the databases, other jobs) every job could then read; use a folder under {allowed} "
                "or outside the workspace", details={"field": "path", "value": given})
        hidden = [("the workspace folder", ws), ("$OPENAML_HOME", openaml_home().expanduser().resolve())]
        hidden += [("the server's secret file", Path(f)) for f in server_secret_files(self.ctx.settings)]
        for what, secret in hidden:
            if real == secret or real in secret.parents or secret in real.parents:
                raise ValidationError(
                    f"datastore path {given!r} contains or is inside {what} {secret}, which every job could then read "
                    "through the datastore; register a folder that holds only data (not a parent of the "
                    "workspace, of $OPENAML_HOME or of the server's token, key and database files, nor inside them)",
                    details={"field": "path", "value": given})

    def local_roots(self) -> builtins.list[str]:
        """The resolved folders of the workspace's local datastores (the default one included), as
        absolute paths: what a job or a deployment worker sees read-only
        (:func:`openaml.environments._hide.hide_lines`). Datastores whose folder cannot be resolved are
        skipped."""
        out: list[str] = []
        for d in self.ctx.store.list_datastores():
            if d.get("type") != "local":
                continue
            try:
                out.append(str(Path(self._definition(d)["path"]).resolve()))
            except (OSError, KeyError, ValueError):
                continue
        return sorted(set(out))

    def port(self, name: str) -> DatastorePort:
        """The datastore's port (its files), from its stored definition.

        Raises:
            NotFoundError: unknown datastore. UnsupportedError: a type without a file backend here
                (naming the datastore, its type and the supported types).
        """
        return open_datastore(self.definition(name, secrets=True), base=self.ctx.layout.root)

    def with_secrets(self, definition: dict[str, Any]) -> dict[str, Any]:
        """A datastore definition as a job's row keeps it (no secrets), with the stored credentials
        of an object-store datastore added: what the job's runner opens (given with its spec over
        HTTP, never written to the job's row or folder). Other definitions come back as they are.

        Raises:
            NotFoundError: the datastore is gone.
        """
        if definition.get("type") not in REMOTE_TYPES:
            return definition
        creds = self.ctx.store.get_datastore(str(definition["name"])).get("credentials")
        return {**definition, "credentials": creds} if creds else definition

    def definition(self, name: str, *, secrets: bool = False) -> dict[str, Any]:
        """``{"name", "type", ...}``: the datastore's fields without credentials (what a job's row
        keeps; local paths absolute); with ``secrets=True`` an object-store datastore's stored
        ``credentials`` too (what the server's own port uses).

        Raises:
            NotFoundError: unknown datastore. ValidationError: a local datastore registered before the
                rule of :meth:`_check_no_secrets` on a folder holding the workspace's secrets (it is
                not opened: every job and reader would see them); re-register it elsewhere.
        """
        stored = self.ctx.store.get_datastore(name)
        d = self._definition(stored)
        if secrets and stored.get("type") in REMOTE_TYPES and stored.get("credentials"):
            d["credentials"] = stored["credentials"]
        if d["type"] == "local" and d["name"] != DEFAULT_DATASTORE:
            self._check_no_secrets(Path(d["path"]), d["path"])
        return d

    def _definition(self, d: dict[str, Any]) -> dict[str, Any]:
        keep = {k: v for k, v in d.items() if k not in ("credentials", "is_default", "id", "created_at",
                                                        "updated_at", "description", "tags", "properties")}
        if d["type"] == "local":
            p = Path(d.get("path") or "")
            keep["path"] = str(p if p.is_absolute() else self.ctx.layout.root / p)
        return keep

    def local_root(self, name: str) -> Path:
        """Folder behind a datastore that has one (``local``).

        Raises:
            NotFoundError: unknown datastore. UnsupportedError: a datastore without a local folder.
        """
        return self.port(name).local_path("")

    def locate(self, uri: str) -> tuple[DatastorePort, str] | None:
        """``(port, path in it)`` of an ``azureml://datastores/...`` URI, or of an
        ``azureml://jobs/<job>/outputs/<output>/...`` URI whose output is a datastore path; None
        for a job's default artifact output (MLflow's artifact store, not a datastore).

        Raises:
            ValidationError: not such a URI. NotFoundError: unknown datastore, job or output.
            PathEscapeError: the path leaves the datastore (naming the URI).
        """
        parsed = parse_datastore_uri(uri)
        if parsed is not None:
            port = self.port(parsed.datastore)
            return port, port.normalize(parsed.path)
        job_uri = parse_job_output_uri(uri)
        if job_uri is not None:
            base = self.ctx.services["jobs"].output_uri(job_uri.job, job_uri.output)
            if base is None:
                return None
            inner = parse_datastore_uri(base)
            if inner is None:
                return None
            rel = "/".join(relative_parts(job_uri.path, what=f"path of {uri}"))
            port = self.port(inner.datastore)
            return port, port.normalize("/".join(p for p in (inner.path.rstrip("/"), rel) if p))
        raise ValidationError(f"{uri!r} is not an azureml://datastores/... or azureml://jobs/... URI")

    def resolve(self, uri: str) -> Path:
        """Local path of an ``azureml://datastores/<ds>/paths/<p>`` or ``azureml://jobs/...`` URI
        (through the datastore's port: only datastores with a local folder have one).

        Raises:
            ValidationError: not such a URI. PathEscapeError: the path leaves the datastore.
            UnsupportedError: the datastore has no local path.
        """
        located = self.locate(uri)
        if located is not None:
            port, path = located
            return port.local_path(path)
        job_uri = parse_job_output_uri(uri)
        assert job_uri is not None  # locate returns None only for a job's artifacts
        return self.ctx.services["jobs"].resolve_output_uri(job_uri)

    def to_uri(self, local: Path) -> str | None:
        """The datastore URI of a local path inside a local datastore, or None."""
        local = local.resolve()
        for d in self.ctx.store.list_datastores():
            if d["type"] != "local":
                continue
            try:
                root = self.local_root(d["name"]).resolve()
            except ValidationError:  # one on the workspace's secrets (registered before the rule): not used
                continue
            if local == root or root in local.parents:
                return f"azureml://datastores/{d['name']}/paths/{local.relative_to(root).as_posix()}"
        return None
