"""Resolving an environment to what a job runs in: :class:`EnvSpec`.

Two kinds (ARCHITECTURE.md, "Environments"):

- ``venv``: a virtualenv built with uv from exactly the pip requirements the spec gives (taken
  from ``conda_file``, a build context, a ``pip`` list, or a curated environment's published
  package list), on the Python the spec asks for (see :mod:`openaml.environments._python`),
  cached under ``envs/<spec_hash>/`` (see :func:`openaml.environments.ensure_environment`).
- ``base``: the documented default environment (no environment, an image with nothing to
  install): each job gets its own virtualenv layered over the server's packages, which it can
  read but not change (see :func:`openaml.environments.job_layer`).

Pins are never replaced here. Where the Python asked for cannot be had, the nearest installed
one is used and a warning says so; only then may the build relax a pin that has no build for
that Python, to the nearest version that installs (recorded in the environment's lock and
reported as a warning). ``strict`` turns every such deviation into a build failure.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from openaml.environments._conda import (
    _req_name,
    canonical_name,
    load_conda_file,
    map_pip_requirement,
    normalize_requirement,
    parse_conda,
    read_build_context,
)
from openaml.environments._curated_data import CURATED_PACKAGES
from openaml.environments._python import choose_python
from openaml.environments._refs import CODE_URI_PREFIX, lookup_curated, parse_reference
from openaml.errors import ValidationError

__all__ = ["SPEC_KEYS", "EnvOptions", "EnvSpec", "resolve_spec", "server_python", "server_versions",
           "spec_from_dict"]

_HASH_VERSION = 2
# added to every virtualenv that does not name setuptools itself (docs/guide/environments.md)
SETUPTOOLS = "setuptools<81"

# keys of a spec dict: the entity's fields, server-added metadata, and EnvSpec fields
_SPEC_FIELDS = {"image", "conda_file", "build", "pip", "python", "curated", "os_type", "inference_config"}
_META_FIELDS = {"name", "version", "description", "tags", "properties", "datastore", "id", "creation_context",
                "archived", "spec_hash", "build_status", "created_at", "kind", "warnings", "constraints",
                "source", "ref", "$schema", "python_used", "interpreter", "strict", "lock", "deviations"}
SPEC_KEYS = frozenset(_SPEC_FIELDS | _META_FIELDS)


@dataclass(frozen=True)
class EnvOptions:
    """Workspace settings for environments (``workspace.json`` key ``environments``).

    Attributes:
        python_downloads: let uv download the Python asked for when it is not installed
            (``uv python install``; needs the internet). Default off.
        strict: any deviation (another Python, a relaxed pin) fails the build instead of a warning.
        interpreters: use only these interpreter paths (default: discover them).
    """

    python_downloads: bool = False
    strict: bool = False
    interpreters: tuple[str, ...] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EnvOptions:
        """From the ``environments`` mapping of workspace.json (unknown keys ignored)."""
        data = data or {}
        paths = data.get("interpreters")
        return cls(python_downloads=_truthy(data.get("python_downloads")), strict=_truthy(data.get("strict")),
                   interpreters=tuple(str(p) for p in paths) if isinstance(paths, list) else None)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on") if value is not None else False


@dataclass
class EnvSpec:
    """What a job's environment resolves to.

    Attributes:
        kind: ``"base"`` (the default environment over the server's packages) or ``"venv"``.
        pip: pip requirement lines to install (venv only), in request order.
        python: the Python version the spec asked for (``"3.8"``), or None.
        python_used: the ``X.Y.Z`` the environment is built on (``X.Y`` for a uv download).
        interpreter: the interpreter's path, or None when uv downloads ``python`` at build time.
        strict: deviations fail the build.
        image: the Docker image named by the spec, for messages only.
        spec_hash: sha256 hex of the normalised spec; a venv lives at ``envs/<spec_hash>/``.
        warnings: lines for the top of the job's log (fallbacks, dropped packages).
        constraints: ``name==version`` pins taken from the server's interpreter.
        source: what was resolved, for messages (``"AzureML-sklearn-1.5 (curated)"``, ``"my-env:2"``).
    """

    kind: Literal["base", "venv"]
    pip: list[str] = field(default_factory=list)
    python: str | None = None
    image: str | None = None
    spec_hash: str = ""
    warnings: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    source: str = ""
    python_used: str | None = None
    interpreter: str | None = None
    strict: bool = False

    @property
    def python_exact(self) -> bool:
        """Whether the Python used is the ``major.minor`` asked for (or none was asked)."""
        if not self.python or not self.python_used:
            return True
        return self.python_used.split(".")[:2] == self.python.split(".")[:2]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; :func:`spec_from_dict` reads it back."""
        return asdict(self)


def server_python() -> str:
    """``major.minor`` of the interpreter running this code (the server's, or the runner's)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


@lru_cache(maxsize=1)
def server_versions() -> dict[str, str]:
    """Canonical distribution name -> version, for every distribution of this interpreter."""
    from importlib.metadata import distributions

    out: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata.get("Name") if dist.metadata else None  # type: ignore[attr-defined]  # email.Message on 3.11
        if name:
            out.setdefault(canonical_name(name), dist.version)
    return out


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _container_engine() -> str | None:
    for exe in ("docker", "podman"):
        if shutil.which(exe):
            return exe
    return None


def _image_warning(what: str) -> str:
    engine = _container_engine()
    if engine:
        return (f"{what} needs a container engine; {engine} is installed but openaml does not run jobs in "
                "containers: running in the default environment instead")
    return f"{what} needs a container engine; none here: running in the default environment instead"


def _base(source: str, *, image: str | None = None, warnings: list[str] | None = None,
          extra: dict[str, Any] | None = None) -> EnvSpec:
    h = _digest({"v": _HASH_VERSION, "kind": "base", "image": image, **(extra or {})})
    return EnvSpec(kind="base", image=image, spec_hash=h, warnings=list(warnings or []), source=source)


def _curated(name: str, options: EnvOptions) -> EnvSpec:
    cur = lookup_curated(parse_reference(name))
    if cur.family == "responsibleai":
        # Azure's RAI environments are the one the built-in RAI components run in: openaml's own
        # packages (nothing to build), with scikit-learn models saved by cloudpickle (the runner adds
        # the curated hook to the job's layer: environments._curated_hook.wants_curated_hooks)
        return _base(f"{cur.name} (curated)", extra={"curated": "responsibleai"})
    warnings: list[str] = []
    key = cur.packages
    if key is None:
        family = [k for k in CURATED_PACKAGES if k.rsplit("-", 1)[0] == cur.family or k.startswith(cur.family + "-")]
        key = family[0] if family else "sklearn-1.5"
        warnings.append(f"curated environment {cur.name} is not in openaml's table; built from the package list "
                        f"of AzureML-{key} (docs/guide/environments.md)")
    data_python, pkgs = CURATED_PACKAGES[key]
    python = cur.azure_python or data_python
    spec = _venv(list(pkgs), python, f"{cur.name} (curated)", warnings, options, None)
    return spec


def _unversioned(req: str) -> bool:
    body = req.split(";", 1)[0]
    return not any(c in body for c in "<>=!~@")


def _dedupe(reqs: list[str]) -> list[str]:
    """One line per package: the first request wins unless a later one pins a version."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for r in reqs:
        name = _req_name(r)
        if name is None:
            if r not in out:
                out.append(r)
            continue
        if name in seen:
            if _unversioned(out[seen[name]]) and not _unversioned(r):
                out[seen[name]] = r
            continue
        seen[name] = len(out)
        out.append(r)
    return out


def _venv(reqs: list[str], wanted: str | None, label: str, warnings: list[str], options: EnvOptions,
          image: str | None) -> EnvSpec:
    """A venv spec on the interpreter chosen for ``wanted``; the Python deviation is a warning."""
    from openaml.environments._build import find_uv

    if not any(_req_name(r) == "setuptools" for r in reqs):
        # a conda environment always has setuptools; the line that still ships pkg_resources, which
        # older packages import at startup (MLflow 1.x and 2.0 among them)
        reqs = [*reqs, SETUPTOOLS]
    choice = choose_python(wanted, find_uv(), downloads=options.python_downloads,
                           interpreters=list(options.interpreters) if options.interpreters is not None else None)
    if choice.download:
        warnings.append(f"python {wanted} is not installed here; uv downloads it at build time (workspace setting "
                        "environments.python_downloads is on)")
    elif not choice.exact:
        warnings.append(f"python {wanted} was asked for and is not installed here (python downloads are off: "
                        f"workspace setting environments.python_downloads); using the nearest, Python "
                        f"{choice.version} ({choice.path})")
    h = _digest({"v": _HASH_VERSION, "kind": "venv", "pip": sorted(reqs), "python": choice.version,
                 "interpreter": choice.path, "download": choice.download, "strict": options.strict})
    return EnvSpec(kind="venv", pip=reqs, python=wanted, image=image, spec_hash=h, warnings=warnings,
                   source=label, python_used=choice.version, interpreter=choice.path, strict=options.strict)


def _load_conda(value: Any, base_path: Path | None) -> tuple[dict[str, Any], str]:
    if isinstance(value, dict):
        return value, "conda_file"
    if isinstance(value, str):
        if "\n" in value:
            from openaml._yaml import parse_yaml_with_lines

            data, _ = parse_yaml_with_lines(value, source="conda_file")
            return data, "conda_file"
        p = Path(value)
        if not p.is_absolute() and base_path is not None:
            p = base_path / p
        if not p.is_file():
            raise ValidationError(
                f"conda_file {value!r} not found (looked at {p}); give a path relative to the YAML's folder "
                "or the current folder, or the conda file's content", details={"field": "conda_file",
                                                                                "value": value})
        return load_conda_file(p), str(value)
    raise ValidationError(f"field 'conda_file' must be a path or a mapping, got {type(value).__name__}",
                          details={"field": "conda_file"})


def _build_folder(build: Any, base_path: Path | None) -> tuple[Path | None, str, str]:
    if not isinstance(build, dict):
        raise ValidationError(f"field 'build' must be a mapping with 'path', got {build!r}",
                              details={"field": "build"})
    path = str(build.get("path") or "")
    dockerfile = str(build.get("dockerfile_path") or "Dockerfile")
    local = build.get("local_path")
    if local and Path(local).is_dir():
        return Path(local), path, dockerfile
    if path and "://" not in path:
        p = Path(path)
        if not p.is_absolute() and base_path is not None:
            p = base_path / p
        if p.is_dir():
            return p, path, dockerfile
    return None, path, dockerfile


def resolve_spec(env: Any = None, *, base_path: str | Path | None = None, source: str | None = None,
                 options: EnvOptions | None = None) -> EnvSpec:
    """Resolve an environment to an :class:`EnvSpec`. No server needed; call it where the job runs.

    Args:
        env: one of

            - ``None``: the workspace default (the default environment);
            - a curated reference string: ``AzureML-sklearn-1.5@latest``,
              ``azureml:AzureML-sklearn-1.5@latest``, ``azureml://registries/azureml/environments/
              sklearn-1.5/labels/latest`` (or ``/versions/N``), lightgbm/tensorflow/pytorch/acpt/minimal
              names (table in :mod:`openaml.environments._refs`);
            - a spec dict (an environment's fields: ``image``, ``conda_file`` as content or path,
              ``build: {path, dockerfile_path}``; plus openaml's ``pip: [...]`` and ``python: "3.x"``;
              metadata keys such as ``name``/``version``/``spec_hash`` are ignored), e.g. what
              ``EnvironmentService.resolve_for_job`` returns;
            - an :class:`openaml.entities.Environment` (its YAML folder is the ``base_path``).
        base_path: folder that relative ``conda_file`` and ``build.path`` are read from (default:
            the current folder).
        source: how to name this environment in messages.
        options: the workspace's environment settings (Python downloads, strict, interpreters).

    Returns:
        EnvSpec: ``kind="venv"`` when there is something to install (curated environments
        included), else ``kind="base"`` (the default environment). An image with nothing to
        install resolves to ``base`` with the warning ``"image X needs a container engine; none
        here: running in the default environment instead"``.

    Raises:
        ValidationError: a workspace reference (``name:version``: resolve those on the server with
            ``EnvironmentService.resolve_for_job``), unknown spec keys, a missing conda file, a bad
            conda file.
        NotFoundError: an unknown curated name (the known ones are listed).
    """
    options = options or EnvOptions()
    if env is None:
        return _base(source or "workspace default")
    if isinstance(env, str):
        ref = parse_reference(env)
        if ref.curated:
            return _curated(env, options)
        raise ValidationError(
            f"environment {env!r} is a workspace environment; the server resolves it at job submission "
            "(EnvironmentService.resolve_for_job) - pass the dict it returns",
            details={"field": "environment", "value": env})
    if hasattr(env, "model_dump") and hasattr(env, "base_path"):
        base_path = base_path or env.base_path
        env = env.model_dump(mode="json", exclude_none=True)
    if not isinstance(env, dict):
        raise ValidationError(f"environment must be a reference string or a mapping, got {type(env).__name__}",
                              details={"field": "environment"})
    unknown = sorted(set(env) - SPEC_KEYS)
    if unknown:
        raise ValidationError(f"environment: unknown field(s) {', '.join(map(repr, unknown))}; allowed: "
                              f"{', '.join(sorted(_SPEC_FIELDS | {'name', 'version', 'description', 'tags'}))}",
                              details={"field": f"environment.{unknown[0]}"})
    base = Path(base_path) if base_path is not None else Path.cwd()
    label = source or env.get("source") or (
        f"{env['name']}:{env['version']}" if env.get("name") and env.get("version") else "inline environment")
    if env.get("curated"):
        return _curated(str(env["curated"]), options)
    props = env.get("properties") or {}
    if _truthy(props.get("strict", props.get("openaml.strict"))) and not options.strict:
        options = EnvOptions(options.python_downloads, True, options.interpreters)

    warnings: list[str] = []
    reqs: list[str] = []
    wanted: str | None = str(env["python"]) if env.get("python") else None
    image = env.get("image")
    got_something = False
    if str(env.get("os_type") or "linux").lower() == "windows":
        warnings.append("os_type windows: this host runs Linux; the job runs on it anyway")
    if env.get("conda_file") is not None:
        conda, where = _load_conda(env["conda_file"], base)
        r, py, w = parse_conda(conda, source=where)
        reqs += r
        warnings += w
        wanted = py or wanted
        got_something = True
    if env.get("build") is not None:
        folder, path, dockerfile = _build_folder(env["build"], base)
        used = None
        if folder is not None:
            r, py, used, w = read_build_context(folder, dockerfile)
            reqs += r
            warnings += w
            wanted = wanted or py
        shown = "build context" + ("" if path.startswith(CODE_URI_PREFIX) else f" {path!r}")
        if used is None and not got_something:
            where = shown + ("" if folder is not None else " (not available on this machine)")
            warnings.append(_image_warning(where) + "; add a requirements.txt or conda.yml to the context "
                            "to get a virtualenv")
        elif used is not None:
            warnings.append(f"{shown}: no container engine is used; installing the packages of its {used} "
                            "into a virtualenv")
        got_something = True
    for line in env.get("pip") or []:
        norm = normalize_requirement(str(line))
        if norm:
            reqs.append(norm)
    mapped = [m for m in (map_pip_requirement(r, warnings) for r in reqs) if m]
    reqs = _dedupe(mapped)
    if image and got_something and reqs:
        warnings.append(f"image {image} is not used (no container engine); its packages come from the "
                        "conda file, installed into a virtualenv")
    elif image and not reqs:
        warnings.insert(0, _image_warning(f"image {image}"))
    if not reqs:
        if wanted and wanted != server_python():
            warnings.append(f"python {wanted} was asked for with nothing to install; the default environment "
                            f"runs on the server's Python {server_python()}")
        return _base(label, image=image, warnings=warnings,
                     extra={"python": wanted} if wanted else None)
    return _venv(reqs, wanted, label, warnings, options, image)


def spec_from_dict(data: dict[str, Any]) -> EnvSpec:
    """Rebuild an :class:`EnvSpec` from :meth:`EnvSpec.to_dict` (or a resolve_for_job result).

    A dict without ``kind`` and ``spec_hash`` is resolved afresh with :func:`resolve_spec`.
    """
    if data.get("kind") in ("base", "venv") and data.get("spec_hash"):
        return EnvSpec(kind=data["kind"], pip=list(data.get("pip") or []), python=data.get("python"),
                       image=data.get("image"), spec_hash=str(data["spec_hash"]),
                       warnings=list(data.get("warnings") or []),
                       constraints=list(data.get("constraints") or []), source=str(data.get("source") or ""),
                       python_used=data.get("python_used"), interpreter=data.get("interpreter"),
                       strict=bool(data.get("strict")))
    return resolve_spec(data)
