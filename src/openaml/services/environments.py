"""Environments: registered versions (spec 7.3), resolution at job submission, pre-building.

Stored spec: the environment's fields as the SDK sent them, with ``conda_file`` inlined (a
mapping) and a local ``build.path`` replaced by the uploaded context (``azureml://codes/<hash>``,
the folder ``code/<hash>/`` of the workspace). Versions are immutable; an omitted version is the
next integer. Names starting with ``AzureML-`` are reserved for curated environments, as in Azure.
"""

from __future__ import annotations

import builtins
import re
import sys
from pathlib import Path
from typing import Any, cast

import pydantic

from openaml.entities import Environment
from openaml.entities._base import validation_error_from_pydantic
from openaml.environments import (
    CODE_URI_PREFIX,
    CURATED_PREFIX,
    EnvOptions,
    EnvSpec,
    curated_names,
    ensure_environment,
    env_info,
    env_path,
    env_status,
    parse_reference,
    resolve_spec,
)
from openaml.errors import NotFoundError, ValidationError
from openaml.records import ArchivedRecord, EnvironmentBuildRecord, EnvironmentRecord
from openaml.services._actor import actor
from openaml.services._context import WorkspaceContext

__all__ = ["EnvironmentService"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_SERVER_FIELDS = ("id", "creation_context", "archived", "spec_hash", "build_status", "python", "python_asked",
                  "lock", "deviations", "warnings", "interpreter", "created_by")
_KIND = "environment"


class EnvironmentService:
    """Use cases of environments. Constructed with the workspace context (no background work)."""

    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx

    def options(self) -> EnvOptions:
        """The workspace's environment settings: ``workspace.json`` key ``environments``
        (``python_downloads``, ``strict``, ``interpreters``); defaults when absent."""
        try:
            info = self.ctx.layout.info()
        except Exception:  # noqa: BLE001 - a context without workspace.json (tests) gets the defaults
            return EnvOptions()
        data = info.get("environments")
        return EnvOptions.from_dict(data if isinstance(data, dict) else None)

    # ------------------------------------------------------------------ validation
    def _validate(self, spec: dict[str, Any], *, named: bool) -> Environment:
        data = {k: v for k, v in spec.items() if k not in _SERVER_FIELDS and k not in ("created_at", "$schema")}
        try:
            env = Environment.model_validate(data)
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=None, lines=None, kind="environment") from None
        if named:
            if not env.name:
                raise ValidationError("environment: field 'name' is required", details={"field": "name"})
            if not _NAME_RE.match(env.name):
                raise ValidationError(f"environment: field 'name': {env.name!r} is invalid; use up to 255 letters, "
                                      "digits, '-', '_' or '.', starting with a letter or digit",
                                      details={"field": "name", "value": env.name})
            if env.name.lower().startswith(CURATED_PREFIX.lower()):
                raise ValidationError(f"environment: field 'name': {env.name!r} starts with {CURATED_PREFIX!r}, "
                                      "which is reserved for curated environments; choose another name",
                                      details={"field": "name", "value": env.name})
            if env.version is not None and (not _VERSION_RE.match(env.version) or env.version == "latest"):
                raise ValidationError(f"environment: field 'version': {env.version!r} is invalid; use letters, "
                                      "digits, '-', '_' or '.' (not 'latest'), or omit it to get the next number",
                                      details={"field": "version", "value": env.version})
        if env.image and env.build:
            raise ValidationError("environment: give either 'image' or 'build', not both (as in Azure ML)",
                                  details={"field": "build"})
        if not (env.image or env.build or env.conda_file is not None):
            raise ValidationError("environment: give at least one of 'image', 'conda_file' or 'build'",
                                  details={"field": "image"})
        if isinstance(env.conda_file, str) and "\n" not in env.conda_file:
            raise ValidationError(
                f"environment: field 'conda_file': {env.conda_file!r} is a path the server cannot read; send the "
                "file's content (openaml's SDK and CLI do this for you)",
                details={"field": "conda_file", "value": env.conda_file})
        if env.build and env.build.path:
            path = env.build.path
            if path.startswith(CODE_URI_PREFIX):
                if not self._code_dir(path).is_dir():
                    raise ValidationError(f"environment: field 'build.path': uploaded context {path!r} not found "
                                          "in this workspace; upload it again", details={"field": "build.path"})
            elif "://" not in path:
                raise ValidationError(
                    f"environment: field 'build.path': {path!r} is a local folder the server cannot read; upload "
                    "it first (openaml's SDK and CLI do this for you)", details={"field": "build.path",
                                                                                  "value": path})
        return env

    def _code_dir(self, uri: str) -> Path:
        digest = uri[len(CODE_URI_PREFIX):].strip("/")
        if not re.fullmatch(r"[0-9a-f]{16,128}", digest):
            raise ValidationError(f"build.path {uri!r} is not an uploaded context", details={"field": "build.path"})
        return self.ctx.layout.code / digest

    # ------------------------------------------------------------------ runtime spec
    def _runtime_dict(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The stored spec with the uploaded build context's local folder filled in."""
        out = dict(spec)
        build = out.get("build")
        if isinstance(build, dict) and str(build.get("path") or "").startswith(CODE_URI_PREFIX):
            out["build"] = {**build, "local_path": str(self._code_dir(build["path"]))}
        return out

    def _resolve(self, spec: dict[str, Any], source: str) -> EnvSpec:
        keep = {k: v for k, v in self._runtime_dict(spec).items()
                if k in ("image", "conda_file", "build", "os_type", "inference_config", "properties")}
        return resolve_spec(keep, source=source, options=self.options())

    # ------------------------------------------------------------------ views
    def _view(self, asset: dict[str, Any]) -> EnvironmentRecord:
        name, version = asset["name"], asset["version"]
        out = {k: v for k, v in asset.items() if k not in ("created_at", "created_by")}
        out["id"] = (f"/subscriptions/local/resourceGroups/local/providers/Microsoft.MachineLearningServices/"
                     f"workspaces/{self.ctx.workspace_name}/environments/{name}/versions/{version}")
        by = asset.get("created_by")  # who registered it (versions registered before this was kept: unknown)
        out["creation_context"] = {"created_at": asset.get("created_at"),
                                   **({"created_by": str(by.get("name")), "created_by_type": "User"}
                                      if isinstance(by, dict) else {})}
        try:
            es = self._resolve(asset, f"{name}:{version}")
        except (ValidationError, NotFoundError) as exc:  # stored before a rule changed: show, do not fail
            out["build_status"] = f"invalid: {exc.message}"
            return cast(EnvironmentRecord, out)  # the stored spec's fields pass through (see openaml.records)
        out.update(self._env_state(es))
        return cast(EnvironmentRecord, out)

    def _env_state(self, es: EnvSpec) -> dict[str, Any]:
        """What ``environment show`` reports of a resolved spec: status, Python asked/used, the lock
        (exact versions installed, once built) and every deviation (asked vs got)."""
        out: dict[str, Any] = {"spec_hash": es.spec_hash, "build_status": env_status(es, self.ctx.layout.envs),
                               "python_asked": es.python, "warnings": list(es.warnings)}
        if es.kind == "base":
            out["python"] = ".".join(map(str, sys.version_info[:3]))
            out["interpreter"] = "default environment (a per-job layer over the server's packages)"
            return out
        out["python"] = es.python_used
        out["interpreter"] = es.interpreter or f"uv-managed Python {es.python_used} (downloaded at build)"
        info = env_info(es, self.ctx.layout.envs)
        deviations = [w for w in es.warnings if w.startswith("python ") and not es.python_exact]
        if info:
            out["python"] = info.get("python") or out["python"]
            out["lock"] = info.get("lock") or []
            deviations = list(info.get("deviations") or deviations)
        out["deviations"] = deviations
        return out

    # ------------------------------------------------------------------ CRUD
    def create_or_update(self, spec: dict[str, Any]) -> EnvironmentRecord:
        """Register a new version (immutable; an omitted version is the next integer).

        Args:
            spec: the environment's fields (``name`` required; ``conda_file`` inlined as a mapping;
                ``build.path`` an uploaded context ``azureml://codes/<hash>`` or a remote URL).

        Raises:
            ValidationError: unknown fields, bad name/version, a reserved ``AzureML-`` name, image and
                build together, nothing given, a conda file path instead of its content, a bad conda file.
            ConflictError: the version exists (versions are immutable).
        """
        env = self._validate(spec, named=True)
        data = env.model_dump(mode="json", exclude_none=True, exclude={"name", "version", *_SERVER_FIELDS})
        if not data.get("tags"):
            data.pop("tags", None)
        if not data.get("properties"):
            data.pop("properties", None)
        es = self._resolve(data, f"{env.name}:{env.version or 'new'}")  # fail now, not at the first job
        assert env.name is not None
        who = actor()
        if who is not None:
            data["created_by"] = who.record()
        saved = self.ctx.store.create_asset(_KIND, env.name, env.version, data, spec_hash=es.spec_hash)
        return self._view(saved)

    def get(self, name: str, version: str | None = None, label: str | None = None) -> EnvironmentRecord:
        """One version; no version (or ``label='latest'``) gives the newest unarchived one.

        Raises:
            NotFoundError: listing the versions that exist (or the environments, for an unknown name).
        """
        try:
            return self._view(self.ctx.store.get_asset(_KIND, name, version, label))
        except NotFoundError as exc:
            if "versions:" in exc.message:
                raise
            raise NotFoundError(f"{exc.message}; {self._known_names()}",
                                details={"field": "name", "value": name}) from None

    def _known_names(self) -> str:
        names = [a["name"] for a in self.ctx.store.list_assets(_KIND, include_archived=True)]
        return ("environments in this workspace: " + ", ".join(names)) if names else \
            "this workspace has no environments yet (openaml environment create --file env.yml)"

    def list(self, name: str | None = None, *, include_archived: bool = False,
             archived_only: bool = False) -> list[EnvironmentRecord]:
        """All versions of ``name`` (newest first), or the latest version of each environment."""
        rows = self.ctx.store.list_assets(_KIND, name, include_archived=include_archived or archived_only)
        if archived_only:
            rows = [r for r in rows if r["archived"]]
        return [self._view(r) for r in rows]

    def set_archived(self, name: str, version: str | None, archived: bool) -> ArchivedRecord:
        """Archive or restore one version (or every version when ``version`` is None).

        Raises:
            NotFoundError: unknown name or version.
        """
        self.ctx.store.set_asset_archived(_KIND, name, version, archived)
        return {"name": name, "version": version, "archived": archived}

    # ------------------------------------------------------------------ jobs
    def resolve_for_job(self, ref: str | dict[str, Any] | None) -> dict[str, Any]:
        """Validate and resolve a job's ``environment`` at submission, before anything runs.

        Args:
            ref: ``None`` (workspace default); a reference string: ``azureml:name:version``,
                ``name:version``, ``name@latest``, ``azureml:name@latest``, a curated name
                (``AzureML-sklearn-1.5@latest``, ``azureml://registries/azureml/environments/
                sklearn-1.5/labels/latest``); or an inline environment mapping (``conda_file``
                inlined, ``build.path`` uploaded).

        Returns:
            The full spec (``image``, ``conda_file``, ``build`` with ``local_path``, ``name``,
            ``version`` for registered ones, ``curated`` for curated ones) merged with the
            :class:`EnvSpec` fields (``kind``, ``pip``, ``python``, ``spec_hash``, ``warnings``,
            ``constraints``, ``source``). Pass it to ``spec_from_dict`` in the job runner.

        Raises:
            NotFoundError: unknown environment (names listed) or version (versions listed), unknown
                curated name (known ones listed).
            ValidationError: malformed reference, bad inline environment or conda file.
        """
        if ref is None:
            es = resolve_spec(None)
            return {**es.to_dict()}
        if isinstance(ref, str):
            parsed = parse_reference(ref)
            if parsed.curated:
                es = resolve_spec(ref, options=self.options())
                return {"curated": es.source.removesuffix(" (curated)"), "ref": ref, **es.to_dict()}
            try:
                asset = self.get(parsed.name, parsed.version, parsed.label)
            except NotFoundError:
                from openaml.environments._refs import is_rai_environment

                if not is_rai_environment(parsed.name):
                    raise
                # azureml:responsibleai-tabular@latest with no workspace environment of that name:
                # Azure's RAI environment (the registry's), docs/guide/rai.md
                es = resolve_spec(f"azureml://registries/azureml/environments/{parsed.name}/"
                                  + (f"versions/{parsed.version}" if parsed.version else "labels/latest"),
                                  options=self.options())
                return {"curated": es.source.removesuffix(" (curated)"), "ref": ref, **es.to_dict()}
            spec = {k: v for k, v in asset.items()
                    if k in ("image", "conda_file", "build", "os_type", "inference_config", "description")}
            source = f"{asset['name']}:{asset['version']}"
            es = self._resolve(spec, source)
            return {**self._runtime_dict(spec), "name": asset["name"], "version": asset["version"], "ref": ref,
                    **es.to_dict()}
        if isinstance(ref, dict):
            env = self._validate(ref, named=False)
            spec = env.model_dump(mode="json", exclude_none=True, exclude={"tags", *_SERVER_FIELDS})
            if env.name and env.version:
                source = f"{env.name}:{env.version}"
            else:
                source = "inline environment"
            es = self._resolve(spec, source)
            return {**self._runtime_dict(spec), **es.to_dict()}
        raise ValidationError(f"field 'environment' must be a reference string or a mapping, got "
                              f"{type(ref).__name__}", details={"field": "environment"})

    # the jobs service asks for this name
    runner_environment = resolve_for_job

    def build(self, name: str, version: str | None = None, label: str | None = None) -> EnvironmentBuildRecord:
        """Build (or find built) a registered environment's virtualenv, blocking; pre-warms jobs.

        Returns:
            ``{name, version, spec_hash, kind, status ('built' or 'base'), bin_dir, build_log, warnings,
            python, python_asked, interpreter, lock, deviations}``

        Raises:
            NotFoundError: unknown environment or version.
            EnvironmentBuildError: uv failed (the tail of its output is in the message).
        """
        asset = self.ctx.store.get_asset(_KIND, name, version, label)
        es = self._resolve(asset, f"{asset['name']}:{asset['version']}")
        bin_dir = ensure_environment(es, self.ctx.layout.envs)
        root = env_path(es, self.ctx.layout.envs)
        out = {"name": asset["name"], "version": asset["version"], "kind": es.kind, **self._env_state(es),
               "status": env_status(es, self.ctx.layout.envs), "bin_dir": str(bin_dir),
               "build_log": str(root / "build.log") if es.kind == "venv" else None, "pip": es.pip}
        return cast(EnvironmentBuildRecord, out)  # _env_state's keys: those of EnvironmentBuildRecord

    def known_curated(self) -> builtins.list[str]:
        return curated_names()
