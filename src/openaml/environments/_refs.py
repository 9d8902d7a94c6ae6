"""Environment reference strings and the curated-environment table.

Reference forms accepted (spec 1.1, 2.3)::

    azureml:<name>:<version>        azureml:<name>@<label>      <name>:<version>    <name>@latest
    azureml://registries/<registry>/environments/<name>/versions/<v>   (or /labels/<label>)
    /subscriptions/.../workspaces/<ws>/environments/<name>/versions/<v>   (ARM id)

A name starting with ``AzureML-`` (any case), or any registry reference, is a curated
environment. Azure's curated environments are Docker images with a conda environment; here each
is a virtualenv built with uv from the package list Azure publishes for it
(:mod:`openaml.environments._curated_data`), cached by spec hash and shared by every job naming
it. :data:`CURATED` is the documented table; names of the same families with other versions
(``sklearn-*``, ``lightgbm-*``, ``tensorflow-*``, ``pytorch-*``, ``acpt-pytorch-*``,
``minimal-*``, ``mlflow-*``) are accepted too and built from the nearest listed entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openaml.errors import NotFoundError, ValidationError

__all__ = [
    "CODE_URI_PREFIX",
    "CURATED",
    "CURATED_PREFIX",
    "CuratedEnv",
    "EnvRef",
    "RAI_ENVIRONMENTS",
    "curated_names",
    "is_rai_environment",
    "lookup_curated",
    "parse_reference",
]

CURATED_PREFIX = "AzureML-"
# a build context uploaded to the workspace's code snapshots (folder ``code/<hash>/``)
CODE_URI_PREFIX = "azureml://codes/"


@dataclass(frozen=True)
class CuratedEnv:
    """One curated name. ``expects`` are import-package distributions the Azure image carries;
    ``packages`` the key of its list in :data:`~openaml.environments._curated_data.CURATED_PACKAGES`
    (None: the family's first entry)."""

    name: str
    family: str
    expects: tuple[str, ...]
    azure_python: str | None = None
    note: str = ""
    packages: str | None = None


_SKLEARN = ("scikit-learn", "pandas", "numpy", "mlflow")
_TABLE: tuple[CuratedEnv, ...] = (
    CuratedEnv("AzureML-sklearn-1.5", "sklearn", _SKLEARN, "3.10", packages="sklearn-1.5"),
    CuratedEnv("AzureML-sklearn-1.1", "sklearn", _SKLEARN, "3.8", packages="sklearn-1.1"),
    CuratedEnv("AzureML-sklearn-1.0-ubuntu20.04-py38-cpu", "sklearn", _SKLEARN, "3.8", packages="sklearn-1.0"),
    CuratedEnv("AzureML-sklearn-1.0", "sklearn", _SKLEARN, "3.8", packages="sklearn-1.0"),
    CuratedEnv("AzureML-sklearn-0.24-ubuntu18.04-py37-cpu", "sklearn", _SKLEARN, "3.7",
               "the book's chapter 3 train component uses version 21", "sklearn-0.24"),
    CuratedEnv("AzureML-lightgbm-3.3", "lightgbm", ("lightgbm", "scikit-learn", "pandas", "mlflow"), "3.10", packages="lightgbm-3.3"),
    CuratedEnv("AzureML-lightgbm-3.2-ubuntu18.04-py37-cpu", "lightgbm", ("lightgbm", "scikit-learn", "pandas"), "3.7",
               packages="lightgbm-3.2"),
    CuratedEnv("AzureML-tensorflow-2.16-cuda12", "tensorflow", ("tensorflow",), "3.10", packages="tensorflow-2.16"),
    CuratedEnv("AzureML-tensorflow-2.12-cuda11", "tensorflow", ("tensorflow",), "3.8", packages="tensorflow-2.12"),
    CuratedEnv("AzureML-tensorflow-2.4-ubuntu18.04-py37-cuda11-gpu", "tensorflow", ("tensorflow",), "3.7", packages="tensorflow-2.4"),
    CuratedEnv("AzureML-pytorch-1.10-ubuntu18.04-py38-cuda11-gpu", "pytorch", ("torch",), "3.8", packages="pytorch-1.10"),
    CuratedEnv("AzureML-acpt-pytorch-2.8-cuda12.6", "acpt-pytorch", ("torch",), "3.10", packages="acpt-pytorch-2.8"),
    CuratedEnv("AzureML-acpt-pytorch-2.2-cuda12.1", "acpt-pytorch", ("torch",), "3.10", packages="acpt-pytorch-2.2"),
    CuratedEnv("AzureML-ACPT-pytorch-1.13-py38-cuda11.7-gpu", "acpt-pytorch", ("torch",), "3.8", packages="acpt-pytorch-1.13"),
    CuratedEnv("AzureML-sklearn-1.5-ubuntu22.04-py39-cpu", "sklearn", _SKLEARN, "3.9", packages="sklearn-1.5"),
    CuratedEnv("AzureML-minimal-ubuntu22.04-py311-cpu-inference", "minimal", (), "3.11",
               packages="minimal-py311-inference"),
    CuratedEnv("AzureML-minimal-ubuntu22.04-py39-cpu-inference", "minimal", (), "3.9", packages="minimal-py39-inference"),
    CuratedEnv("AzureML-minimal-ubuntu20.04-py38-cpu-inference", "minimal", (), "3.8", packages="minimal-py38-inference"),
    CuratedEnv("AzureML-mlflow-ubuntu20.04-py38-cpu-inference", "mlflow", ("mlflow",), "3.8", packages="mlflow-py38-inference"),
)
CURATED: dict[str, CuratedEnv] = {c.name.lower(): c for c in _TABLE}

# families accepted beyond the table (other versions of the same images)
_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("acpt-pytorch", ("torch",)),
    ("sklearn", _SKLEARN),
    ("lightgbm", ("lightgbm", "scikit-learn", "pandas")),
    ("tensorflow", ("tensorflow",)),
    ("pytorch", ("torch",)),
    ("minimal", ()),
    ("mlflow", ("mlflow",)),
)

# Azure's Responsible AI environments (the images Azure's RAI components and its RAI samples' training
# steps run in), name -> the newest version Azure's published RAI component specs name (Azure numbers
# an environment's versions 1, 2, ...; Azure/azureml-assets, assets/responsibleai/tabular/components/
# */spec.yaml: responsibleai-tabular 2 ... 28 from component 0.15.0 on, responsibleai-ubuntu20.04-py38-cpu
# 2 ... 49 for 0.2.0-0.14.0). Here they are the environment the built-in RAI components run in:
# openaml's own (the default environment), whose packages are the libraries those components use;
# scikit-learn models are saved with cloudpickle there by default, as on Azure's image (_curated_hook).
RAI_ENVIRONMENTS: dict[str, int] = {"responsibleai-tabular": 28, "responsibleai-ubuntu20.04-py38-cpu": 49}
# the older curated names, e.g. AzureML-responsibleai-0.20-ubuntu20.04-py38-cpu (component 0.1.0)
_RAI_CURATED_RE = re.compile(r"^(azureml-)?responsibleai-0\.\d+-ubuntu20\.04-py38-cpu$", re.IGNORECASE)
_RAI_EXPECTS = ("scikit-learn", "pandas", "numpy", "mlflow", "mltable", "erroranalysis", "econml", "fairlearn",
                "shap", "lightgbm")


def is_rai_environment(name: str) -> bool:
    """Whether ``name`` is one of Azure's Responsible AI environments (:data:`RAI_ENVIRONMENTS`, or an
    ``AzureML-responsibleai-0.<n>-ubuntu20.04-py38-cpu`` curated name)."""
    short = name.removeprefix("azureml:")
    return short.lower() in RAI_ENVIRONMENTS or bool(_RAI_CURATED_RE.match(short))


def _rai_curated(ref: EnvRef) -> CuratedEnv:
    """The curated entry of an RAI environment; a version Azure has not published is refused."""
    newest = RAI_ENVIRONMENTS.get(ref.name.lower())
    if newest is not None and ref.version is not None:
        if not ref.version.isdigit() or not 1 <= int(ref.version) <= newest:
            raise NotFoundError(
                f"environment {ref.name!r} version {ref.version!r} not found in registry "
                f"{ref.registry or 'azureml'!r}; versions: 1 to {newest} (or /labels/latest)",
                details={"field": "environment", "value": ref.version})
    if ref.label not in (None, "latest"):
        raise NotFoundError(f"environment {ref.name!r}: label {ref.label!r} does not exist; its labels: latest",
                            details={"field": "environment", "value": ref.label})
    return CuratedEnv(ref.name, "responsibleai", _RAI_EXPECTS, None,
                      "the environment of the built-in RAI components (openaml's own packages)")


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$")
_REGISTRY_RE = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)/environments/(?P<name>[^/]+)"
    r"(?:/(?:versions/(?P<version>[^/]+)|labels/(?P<label>[^/]+)))?/?$")
# ARM ids and azureml://locations/... ids: only the tail matters here (one workspace per server)
_ARM_RE = re.compile(r"/workspaces/[^/]+/environments/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/?$",
                     re.IGNORECASE)


@dataclass(frozen=True)
class EnvRef:
    """A parsed reference. ``version`` and ``label`` are never both set; neither means latest."""

    name: str
    version: str | None = None
    label: str | None = None
    registry: str | None = None

    @property
    def curated(self) -> bool:
        return self.registry is not None or self.name.lower().startswith(CURATED_PREFIX.lower())

    def __str__(self) -> str:
        tail = f":{self.version}" if self.version else f"@{self.label or 'latest'}"
        return f"{self.name}{tail}"


def parse_reference(ref: str) -> EnvRef:
    """Parse an environment reference string (forms in the module docstring).

    Raises:
        ValidationError: empty, a ``file:`` reference (a client-side form: the SDK loads the
            file), or a malformed name.
    """
    text = ref.strip()
    if not text:
        raise ValidationError("environment reference is empty; use name:version, name@latest or a curated name",
                              details={"field": "environment", "value": ref})
    if text.startswith("file:"):
        raise ValidationError(f"environment {ref!r} is a file reference; load it on the client "
                              "(openaml.load_environment) and send the environment itself",
                              details={"field": "environment", "value": ref})
    m = _REGISTRY_RE.match(text)
    if m:
        return EnvRef(m["name"], m["version"], m["label"] if not m["version"] else None, m["registry"])
    m = _ARM_RE.search(text)
    if m and (text.startswith(("/subscriptions/", "azureml://locations/", "azureml:/subscriptions/"))):
        return EnvRef(m["name"], m["version"])
    text = text.removeprefix("azureml:")
    version = label = None
    if "@" in text:
        text, _, label = text.partition("@")
    elif ":" in text:
        text, _, version = text.rpartition(":")
    if not _NAME_RE.match(text) or (version is not None and not version) or (label is not None and not label):
        raise ValidationError(
            f"environment reference {ref!r} is malformed; use azureml:<name>:<version>, <name>@latest, "
            "a curated name such as AzureML-sklearn-1.5@latest, or "
            "azureml://registries/azureml/environments/<name>/labels/latest",
            details={"field": "environment", "value": ref})
    return EnvRef(text, version, label)


def curated_names() -> list[str]:
    """The documented curated names (the table in docs/guide/environments.md)."""
    return [c.name for c in _TABLE]


def lookup_curated(ref: EnvRef | str) -> CuratedEnv:
    """Find a curated environment by ``AzureML-<short>`` name or registry short name.

    Raises:
        NotFoundError: the name is neither in the table nor of a known family; the message
            lists the known names.
    """
    if isinstance(ref, str):
        ref = parse_reference(ref)
    if is_rai_environment(ref.name):
        return _rai_curated(ref)
    short = ref.name
    if short.lower().startswith(CURATED_PREFIX.lower()):
        short = short[len(CURATED_PREFIX):]
    key = f"{CURATED_PREFIX}{short}".lower()
    if key in CURATED:
        return CURATED[key]
    low = short.lower()
    for family, expects in _FAMILIES:
        if low.startswith(family + "-") or low == family:
            py = re.search(r"py3(\d+)", low)
            return CuratedEnv(f"{CURATED_PREFIX}{short}", family, expects, f"3.{py.group(1)}" if py else None)
    where = f" in registry {ref.registry!r}" if ref.registry else ""
    raise NotFoundError(
        f"curated environment {ref.name!r}{where} is not known here; known curated environments: "
        f"{', '.join(curated_names())} (and other versions of the families "
        f"{', '.join(f for f, _ in _FAMILIES)}); or register your own with "
        "'openaml environment create --file env.yml'",
        details={"field": "environment", "value": ref.name})
