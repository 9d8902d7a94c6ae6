"""Components (spec 5.1, 5.4): registered, immutable, versioned command and pipeline components.

Versions follow the other assets: an omitted version is the next integer; ``@latest`` is the
newest unarchived version. Registering an existing version with the same content returns it
(re-running ``component create`` is harmless); different content is a conflict.
"""

from __future__ import annotations

import re
from typing import Any, cast

import pydantic

from openaml.entities._base import validation_error_from_pydantic
from openaml.entities._component import CommandComponent, PipelineComponent, component_name_problem
from openaml.errors import ConflictError, NotFoundError, OpenAMLError, ValidationError
from openaml.records import ArchivedRecord, ComponentRecord
from openaml.services._context import WorkspaceContext

__all__ = ["ComponentService", "parse_component_ref"]

_KIND = "component"
_SERVER_FIELDS = {"id", "archived", "created_at", "creation_context", "name", "version"}
_REF = re.compile(r"^(?:azureml:)?(?P<name>[A-Za-z0-9_\-.]+)(?::(?P<version>[^:@/]+)|@(?P<label>[A-Za-z0-9_]+))?$")


def parse_component_ref(ref: str) -> tuple[str, str | None, str | None] | None:
    """``azureml:name:version`` / ``azureml:name@latest`` / ``name:version`` -> (name, version, label)."""
    if ref.startswith("azureml://registries/"):
        parts = ref.split("/")
        if "components" in parts:
            i = parts.index("components")
            name = parts[i + 1] if len(parts) > i + 1 else ""
            rest = parts[i + 2:]
            if rest[:1] == ["versions"] and len(rest) > 1:
                return name, rest[1], None
            return name, None, "latest"
        return None
    m = _REF.match(ref)
    if not m:
        return None
    return m["name"], m["version"], m["label"]


class ComponentService:
    def __init__(self, ctx: WorkspaceContext) -> None:
        self.ctx = ctx

    def _validate(self, spec: dict[str, Any]) -> CommandComponent | PipelineComponent:
        spec = {k: v for k, v in spec.items() if k not in ("id", "archived", "created_at", "creation_context")}
        spec.pop("$schema", None)
        ctype = spec.get("type", "command")
        if ctype not in ("command", "pipeline"):
            raise ValidationError(f"component: field 'type': {ctype!r} components cannot be registered "
                                  "here yet; supported: command, pipeline", details={"field": "type"})
        cls = PipelineComponent if ctype == "pipeline" else CommandComponent
        try:
            comp = cls.model_validate(spec)
        except pydantic.ValidationError as exc:
            raise validation_error_from_pydantic(exc, source=None, lines=None, kind="component") from None
        if not comp.name:
            raise ValidationError("component: field 'name' is required to register a component "
                                  "(lowercase letters, digits and underscores, starting with a letter)",
                                  details={"field": "name"})
        problem = component_name_problem(comp.name)
        if problem:
            raise ValidationError(f"component: field 'name': {problem}", details={"field": "name", "value": comp.name})
        if isinstance(comp, PipelineComponent):
            self._check_pipeline_nodes(comp)
            return comp
        code = comp.code
        if code and not (code.startswith("openaml-code:") or code.startswith("azureml://")):
            raise ValidationError(f"component: field 'code': {code!r} is a local path the server cannot read; "
                                  "register with the openaml CLI or SDK, which upload it", details={"field": "code"})
        from openaml.services._job_resolve import ResolveErrors, component_problems

        errors = ResolveErrors()
        dumped = comp.model_dump(mode="json", exclude_none=True)
        for field, message in component_problems(dumped):
            errors.add(field, message)
        if dumped.get("environment") is not None:
            try:
                self.ctx.services["environments"].resolve_for_job(dumped["environment"])
            except OpenAMLError as exc:
                errors.add("environment", exc.message)
        errors.raise_if_any(f"component {comp.name}")
        return comp

    def _check_pipeline_nodes(self, comp: PipelineComponent) -> None:
        """The nodes of a pipeline component, checked as far as they can be without a pipeline
        around them: component files must have been sent inline by the client, references exist."""
        from openaml.services._job_resolve import ResolveErrors
        from openaml.services._pipeline_nested import expand_pipeline_nodes

        errors = ResolveErrors()
        for node, nd in comp.jobs.items():
            ref = nd.component
            if isinstance(ref, str) and not ref.startswith("azureml:"):
                errors.add(f"jobs.{node}.component", f"{ref!r} is a local file the server cannot read; register "
                                                      "with the openaml CLI or SDK, which send it inline")
        if not errors.items:
            jobs = {k: v.model_dump(mode="json", exclude_none=True) for k, v in comp.jobs.items()}
            expand_pipeline_nodes(jobs, self.resolve_reference, errors)
        errors.raise_if_any("component")

    def create_or_update(self, spec: dict[str, Any]) -> ComponentRecord:
        """Register a version. Raises ValidationError (fields named) or ConflictError."""
        comp = self._validate(spec)
        assert comp.name is not None
        data = comp.model_dump(mode="json", exclude_none=True, exclude=_SERVER_FIELDS)
        try:
            return self._view(self.ctx.store.create_asset(_KIND, comp.name, comp.version, data))
        except ConflictError:
            existing = self.ctx.store.get_asset(_KIND, comp.name, comp.version)
            if {k: v for k, v in existing.items() if k not in _SERVER_FIELDS} == data:
                return self._view(existing)
            raise

    def _view(self, asset: dict[str, Any]) -> ComponentRecord:
        out = dict(asset)
        out["id"] = f"azureml:{asset['name']}:{asset['version']}"
        return cast(ComponentRecord, out)  # the stored spec's fields pass through (see openaml.records)

    def get(self, name: str, version: str | None = None, label: str | None = None, *,
            registry: str | None = None) -> ComponentRecord:
        """Raises NotFoundError naming the versions (or components) that exist.

        ``registry``: read from a registry instead of this workspace (``azureml``: the built-in,
        read-only Responsible AI components of :mod:`openaml.rai.registry`)."""
        if registry:
            from openaml.rai.registry import builtin_component

            return cast(ComponentRecord, builtin_component(registry, name, version, label))
        try:
            return self._view(self.ctx.store.get_asset(_KIND, name, version, label))
        except NotFoundError as exc:
            if "versions:" in exc.message:
                raise
            names = [a["name"] for a in self.ctx.store.list_assets(_KIND, include_archived=True)]
            known = ("components in this workspace: " + ", ".join(names)) if names else \
                "this workspace has no components yet (openaml component create --file component.yml)"
            if name.startswith(("rai_tabular_", "microsoft_azureml_rai_")):
                known += (f"; {name!r} is a component of the azureml registry: refer to it as "
                          f"azureml://registries/azureml/components/{name}/labels/latest")
            raise NotFoundError(f"{exc.message}; {known}", details={"field": "name", "value": name}) from None

    def resolve_reference(self, ref: str) -> ComponentRecord:
        from openaml.rai.registry import parse_registry_component_ref

        in_registry = parse_registry_component_ref(ref)
        if in_registry is not None:
            registry, rname, rversion, rlabel = in_registry
            return self.get(rname, rversion, rlabel, registry=registry)
        parsed = parse_component_ref(ref)
        if parsed is None:
            raise ValidationError(f"{ref!r} is not a component reference; use azureml:<name>:<version> or "
                                  "azureml:<name>@latest")
        name, version, label = parsed
        return self.get(name, version, label)

    def list(self, name: str | None = None, *, include_archived: bool = False,
             archived_only: bool = False) -> list[ComponentRecord]:
        rows = self.ctx.store.list_assets(_KIND, name, include_archived=include_archived or archived_only)
        if archived_only:
            rows = [r for r in rows if r["archived"]]
        return [self._view(r) for r in rows]

    def set_archived(self, name: str, version: str | None, archived: bool) -> ArchivedRecord:
        self.ctx.store.set_asset_archived(_KIND, name, version, archived)
        return {"name": name, "version": version, "archived": archived}
