"""The built-in ``azureml`` registry: read-only components shipped inside the package.

Azure ML publishes the Responsible AI components in its ``azureml`` registry; pipelines refer to
them as ``azureml://registries/azureml/components/<name>/versions/<v>`` (or ``/labels/latest``) and
the SDK reads them with ``MLClient(registry_name="azureml").components.get(name, version=...)``.
Here the registry is the YAML files of :mod:`openaml.rai.components` (one file per component,
published under ``rai_tabular_<x>`` and ``microsoft_azureml_rai_tabular_<x>``, the two names Azure
uses). They are never written to a workspace's store and cannot be changed or archived.

Each component is published under every version Azure published in its ``azureml`` registry
(:data:`AZURE_VERSIONS`, read from the history of Azure/azureml-assets'
``assets/responsibleai/tabular/components/*/spec.yaml``), all with this one implementation: the
inputs and outputs of every one of those versions are a subset of the shipped spec's (the shipped
spec adds optional inputs only), so a pipeline pinning any of them runs unchanged. ``latest`` is
the newest. A version Azure never published is refused, naming the versions there are.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from openaml.errors import NotFoundError, ValidationError

__all__ = ["AZURE_VERSIONS", "REGISTRIES", "builtin_component", "builtin_components",
           "parse_registry_component_ref"]

#: registries this installation has (Azure's public ``azureml`` registry, as built-in components)
REGISTRIES = ("azureml",)
_DIR = Path(__file__).parent / "components"
_ALIAS_PREFIX = "microsoft_azureml_"
#: the versions Azure published of the RAI tabular components in its ``azureml`` registry, oldest
#: first: 0.1.0 (October 2022) ... 0.22.0 (December 2025), every minor version in between (the same
#: set for all seven components; 0.0.1-preview was only in the ``azureml-dev`` registry). Azure's
#: samples pin 0.3.0 (the CLI housing sample) and 0.4.0-0.22.0; the newest is ``latest``.
AZURE_VERSIONS: tuple[str, ...] = tuple(f"0.{minor}.0" for minor in range(1, 23))
_REF = re.compile(r"^azureml://registries/(?P<reg>[^/]+)/components/(?P<name>[^/]+)"
                  r"(?:/versions/(?P<version>[^/]+)|/labels/(?P<label>[^/]+))?/?$")


def parse_registry_component_ref(ref: str) -> tuple[str, str, str | None, str | None] | None:
    """``azureml://registries/<reg>/components/<name>[/versions/<v>|/labels/<l>]`` ->
    (registry, name, version, label); None when ``ref`` is not a registry component reference.
    No version and no label means ``latest`` (as Azure ML)."""
    m = _REF.match(str(ref).strip())
    if not m:
        return None
    label = m["label"] or (None if m["version"] else "latest")
    return m["reg"], m["name"], m["version"], label


@lru_cache(maxsize=1)
def _load() -> dict[str, dict[str, dict[str, Any]]]:
    """name -> version -> spec: both published names of every shipped YAML file, each under every
    version of :data:`AZURE_VERSIONS` (the file's own ``version`` is the newest of them)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(_DIR.glob("*.yml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec.pop("$schema", None)
        name = spec["name"]
        for published in (name, _ALIAS_PREFIX + name):
            for version in AZURE_VERSIONS:
                one = copy.deepcopy(spec)
                one["name"] = published
                one["version"] = version
                one["id"] = f"azureml://registries/azureml/components/{published}/versions/{version}"
                one["archived"] = False
                one["created_at"] = None
                one.setdefault("tags", {})["openaml.builtin"] = "true"
                out.setdefault(published, {})[version] = one
    return out


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.\-]", v))


def builtin_components(registry: str = "azureml", name: str | None = None) -> list[dict[str, Any]]:
    """Components of ``registry`` (copies), as a workspace lists them (``az ml component list``):
    the latest version of each component sorted by name, or, given ``name``, every version of it,
    newest first (none for an unknown name)."""
    _check_registry(registry)
    comps = _load()
    if name is not None:
        return [copy.deepcopy(comps[name][v]) for v in sorted(comps.get(name, {}), key=_version_key, reverse=True)]
    return [copy.deepcopy(comps[n][max(comps[n], key=_version_key)]) for n in sorted(comps)]


def _check_registry(registry: str) -> None:
    if registry not in REGISTRIES:
        raise NotFoundError(f"registry {registry!r} does not exist here; registries: {', '.join(REGISTRIES)} "
                            "(built-in, read-only: Azure ML's public registry of Responsible AI components)",
                            details={"field": "registry_name", "value": registry})


def builtin_component(registry: str, name: str, version: str | None = None, label: str | None = None) -> dict[str, Any]:
    """The spec of one built-in component version (a copy, shaped as a stored component).

    ``label`` may be ``latest`` only (the newest version); neither version nor label means latest.

    Raises:
        NotFoundError: unknown registry (naming the registries there are), unknown component
            (naming the components of the registry), unknown version (naming its versions).
        ValidationError: a label other than ``latest``.
    """
    _check_registry(registry)
    comps = _load()
    if name not in comps:
        raise NotFoundError(f"component {name!r} not found in registry {registry!r}; its components: "
                            f"{', '.join(sorted(comps))}", details={"field": "name", "value": name})
    versions = sorted(comps[name], key=_version_key)
    if version is None:
        if label not in (None, "latest"):
            raise ValidationError(f"component {name!r} of registry {registry!r}: label {label!r} does not exist; "
                                  "its labels: latest", details={"field": "label", "value": label})
        version = versions[-1]
    if version not in comps[name]:
        raise NotFoundError(f"component {name!r} version {version!r} not found in registry {registry!r}; "
                            f"versions: {', '.join(versions)} (or /labels/latest)",
                            details={"field": "version", "value": version})
    return copy.deepcopy(comps[name][version])
