"""Environments (spec 2.3, 7.3)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from openaml.entities._base import Entity

__all__ = ["Environment", "BuildContext"]


class BuildContext(Entity):
    """A Docker build context (``build: {path, dockerfile_path}``)."""

    path: str | None = None
    dockerfile_path: str = "Dockerfile"


class Environment(Entity):
    """An environment: curated name, image, image + conda file, conda file, or build context.

    ``conda_file`` may be a path (resolved against the YAML's folder when loaded) or an inline
    mapping. On create the SDK inlines the file's content so the server stores the full spec.
    """

    name: str | None = None
    version: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    image: str | None = None
    conda_file: str | dict[str, Any] | None = None
    build: BuildContext | None = None
    inference_config: dict[str, Any] | None = None
    os_type: Literal["linux", "windows", "Linux", "Windows"] | None = None
    datastore: str | None = None
    # server-populated: build status, the Python used (``python``) and asked for, the resolved lock
    # (``name==version`` installed, once built) and every deviation from the spec (asked vs got)
    id: str | None = None
    creation_context: dict[str, Any] | None = None
    archived: bool = False
    spec_hash: str | None = None
    build_status: str | None = None
    python: str | None = None
    python_asked: str | None = None
    interpreter: str | None = None
    lock: list[str] | None = None
    deviations: list[str] | None = None
    warnings: list[str] | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_to_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v
