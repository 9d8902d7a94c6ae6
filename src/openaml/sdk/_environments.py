"""``ml_client.environments``: create_or_update, get, list, archive, restore (+ build, resolve).

Before sending, the SDK makes an environment self-contained, as azure-ai-ml does: a
``conda_file`` path (relative to the YAML's folder, else the current folder) is replaced by the
file's parsed content, and a local ``build.path`` folder is uploaded as a code snapshot and
replaced by ``azureml://codes/<hash>``. :func:`environment_payload` does this; the jobs SDK uses
it for inline environments too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openaml.entities import Environment
from openaml.environments import CODE_URI_PREFIX
from openaml.errors import ValidationError

__all__ = ["EnvironmentOperations", "environment_payload"]
_SERVER_ONLY = ("id", "creation_context", "archived", "spec_hash", "build_status", "python", "python_asked", "interpreter",
                "lock", "deviations", "warnings")


def _entity(d: dict[str, Any]) -> Environment:
    data = {k: v for k, v in d.items() if k in Environment.model_fields}
    return Environment.model_validate(data)


def _inline_conda(value: str, bases: list[Path]) -> dict[str, Any]:
    from openaml.environments import load_conda_file

    p = Path(value).expanduser()
    candidates = [p] if p.is_absolute() else [b / p for b in bases]
    for c in candidates:
        if c.is_file():
            return load_conda_file(c)
    looked = " and ".join(str(c) for c in dict.fromkeys(candidates))
    raise ValidationError(f"environment: field 'conda_file': file {value!r} not found (looked at {looked}); "
                          "give a path relative to the YAML's folder or the current folder",
                          details={"field": "conda_file", "value": value})


def environment_payload(transport: Any, env: Environment | dict[str, Any] | str,
                        base_path: str | Path | None = None) -> dict[str, Any] | str:
    """What to send for an environment: conda file inlined, local build context uploaded.

    Args:
        transport: the client's ``Transport`` (used to upload a build context).
        env: an ``Environment``, its dict, a reference string (returned unchanged) or a
            ``file:<path>`` reference (loaded with ``load_environment`` first).
        base_path: folder relative paths are read from first (default: the entity's YAML folder);
            the current folder is tried next.

    Raises:
        ValidationError: the conda file or build folder is missing (the path is named), or the
            referenced environment YAML is invalid.
    """
    if isinstance(env, str):
        if not env.startswith("file:"):
            return env
        from openaml._load import load_environment

        p = Path(env[len("file:"):])
        if not p.is_absolute() and base_path is not None:
            p = Path(base_path) / p
        env = load_environment(p)
    bases: list[Path] = []
    if base_path is not None:
        bases.append(Path(base_path))
    if isinstance(env, Environment):
        if env._base_path is not None:
            bases.append(env._base_path)
        data = env.model_dump(mode="json", exclude_none=True, exclude=set(_SERVER_ONLY))
    else:
        data = {k: v for k, v in dict(env).items() if k not in _SERVER_ONLY}
    bases.append(Path.cwd())
    bases = list(dict.fromkeys(b.resolve() for b in bases))
    if not data.get("tags"):
        data.pop("tags", None)
    if not data.get("properties"):
        data.pop("properties", None)
    if data.get("image") and data.get("build"):
        raise ValidationError("environment: give either 'image' or 'build', not both (as in Azure ML)",
                              details={"field": "build"})
    conda = data.get("conda_file")
    if isinstance(conda, str) and "\n" not in conda:
        data["conda_file"] = _inline_conda(conda, bases)
    build = data.get("build")
    if isinstance(build, dict) and build.get("path") and "://" not in str(build["path"]):
        raw = Path(str(build["path"])).expanduser()
        folder = next((c for c in ([raw] if raw.is_absolute() else [b / raw for b in bases]) if c.is_dir()), None)
        if folder is None:
            raise ValidationError(f"environment: field 'build.path': folder {str(build['path'])!r} not found "
                                  f"(looked in {', '.join(map(str, bases))})",
                                  details={"field": "build.path", "value": str(build["path"])})
        from openaml.sdk._upload import upload_path

        code_id = upload_path(transport, folder, target="code", honour_ignore=True)["code_id"]
        data["build"] = {**build, "path": f"{CODE_URI_PREFIX}{code_id}"}
    return data


class EnvironmentOperations:
    """Environment operations, as ``azure.ai.ml.operations.EnvironmentOperations``."""

    def __init__(self, client: Any) -> None:
        self._t = client._transport

    def create_or_update(self, environment: Environment, **kwargs: Any) -> Environment:
        """Register a new version of ``environment`` and return it as stored.

        Versions are immutable; an omitted version becomes the next integer (``.version`` of the
        result tells which).

        Raises:
            ValidationError: no name, a missing conda file or build folder (path named), a bad
                conda file, image and build both given.
            ConflictError: that version exists.
        """
        if not isinstance(environment, Environment):
            raise ValidationError(f"create_or_update expects an Environment, got {type(environment).__name__}")
        if not environment.name:
            raise ValidationError("environment: field 'name' is required to register an environment",
                                  details={"field": "name"})
        payload = environment_payload(self._t, environment)
        return _entity(self._t.post("/environments", json=payload))

    def get(self, name: str, version: str | None = None, label: str | None = None, **kwargs: Any) -> Environment:
        """One version; ``label="latest"`` (or no version) gives the newest unarchived one.

        Raises:
            NotFoundError: listing the versions that exist.
        """
        if version is not None:
            return _entity(self._t.get(f"/environments/{name}/versions/{version}"))
        return _entity(self._t.get(f"/environments/{name}", params={"label": label}))

    def list(self, name: str | None = None, *, list_view_type: str | None = None,
             include_archived: bool = False, **kwargs: Any) -> list[Environment]:
        """All versions of ``name`` (newest first), or the latest version of every environment.

        ``list_view_type`` takes azure-ai-ml's ``"ActiveOnly"`` (default), ``"ArchivedOnly"``, ``"All"``.
        """
        view = (list_view_type or "ActiveOnly").replace("_", "").lower()
        params = {"name": name, "include_archived": include_archived or view == "all",
                  "archived_only": view == "archivedonly"}
        return [_entity(d) for d in self._t.get("/environments", params=params)]

    def archive(self, name: str, version: str | None = None, label: str | None = None, **kwargs: Any) -> None:
        """Hide a version (or all versions) from ``list`` and ``@latest``; ``name:version`` still works."""
        self._t.post(f"/environments/{name}/archive", params={"version": version})

    def restore(self, name: str, version: str | None = None, label: str | None = None, **kwargs: Any) -> None:
        self._t.post(f"/environments/{name}/restore", params={"version": version})

    def build(self, name: str, version: str | None = None, label: str | None = None) -> dict[str, Any]:
        """openaml extra: build the environment's virtualenv now (blocking), so jobs start at once.

        Raises:
            EnvironmentBuildError: uv failed; the message ends with its output.
        """
        if version is not None:
            return self._t.post(f"/environments/{name}/versions/{version}/build")
        return self._t.post(f"/environments/{name}/build", params={"label": label or "latest"})

    def _inline(self, environment: Environment | dict[str, Any] | str,
                base_path: str | Path | None = None) -> dict[str, Any] | str:
        """For the jobs SDK: an inline environment made self-contained (see :func:`environment_payload`)."""
        return environment_payload(self._t, environment, base_path)

    def resolve(self, environment: Environment | dict[str, Any] | str | None) -> dict[str, Any]:
        """openaml extra: what a job with this ``environment`` would run in (kind, pip, warnings...)."""
        payload = None if environment is None else environment_payload(self._t, environment)
        return self._t.post("/environments/resolve", json={"environment": payload})
