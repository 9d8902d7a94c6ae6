"""Computes (spec section 8): a named local process pool whose slots are max_instances, or (an
openaml extension, ``type: ray``) an existing Ray cluster that runs each job's runner as a Ray job."""

from __future__ import annotations

import copy
import typing
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from openaml.entities._base import Entity

__all__ = ["Compute", "AmlCompute", "ComputeInstance", "RayCompute", "RayResources", "compute_class", "load_compute"]


class RayResources(Entity):
    """What one instance (one job's runner, a Ray job's entrypoint) reserves on a Ray node:
    ``num_cpus`` and ``num_gpus`` (Ray's logical units, fractions allowed), ``memory`` (bytes) and
    ``custom`` Ray resources (``{"trainer": 1}``: only nodes started with that resource take it).
    Ray's ``entrypoint_num_cpus``/``entrypoint_num_gpus``/``entrypoint_memory``/``entrypoint_resources``."""

    num_cpus: float = Field(default=1.0, ge=0)
    num_gpus: float = Field(default=0.0, ge=0)
    memory: int | None = Field(default=None, ge=0)
    custom: dict[str, float] = Field(default_factory=dict)


class Compute(Entity):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9\-]{1,31}$")
    type: Literal["amlcompute", "computeinstance", "local", "kubernetes", "virtualmachine", "ray"] = "amlcompute"
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    location: str | None = None
    size: str | None = None
    min_instances: int = Field(default=0, ge=0)
    max_instances: int = Field(default=4, ge=1)
    idle_time_before_scale_down: int | None = Field(default=120, ge=0)
    tier: str | None = None
    identity: dict[str, Any] | None = None
    ssh_settings: dict[str, Any] | None = None
    ssh_public_access_enabled: bool | None = None
    network_settings: dict[str, Any] | None = None
    enable_node_public_ip: bool | None = None
    # type: ray (an openaml extension): the cluster's Jobs API, runtime_env defaults, resources per instance
    address: str | None = Field(default=None, validate_default=True)  # validated when absent too (type: ray needs it)
    runtime_env: dict[str, Any] | None = None
    resources: RayResources | None = None
    #: how a distributed job's instances are placed on the nodes (Ray placement group strategies):
    #: spread (default: distinct nodes where there are enough), strict_spread (distinct or nothing), pack
    placement: Literal["spread", "strict_spread", "pack"] | None = None
    # server-populated
    id: str | None = None
    provisioning_state: str | None = None
    backend: str | None = None
    running_jobs: int | None = None
    queued_jobs: int | None = None

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A Ray cluster's Jobs API (its dashboard): an http(s) URL with a host and, if given, a numeric port;
        required (and not empty) for ``type: ray``, reported on ``address`` itself."""
        fix = "the Jobs API's http(s) URL, the dashboard's (e.g. http://127.0.0.1:8265)"
        if value is None or value == "":
            if info.data.get("type") != "ray":
                return value  # the model's check says that address is for type ray only
            if value is None:
                raise ValueError("a compute of type 'ray' needs 'address': its Ray cluster's Jobs API URL "
                                 "(the dashboard's, e.g. http://127.0.0.1:8265)")
            raise ValueError(f"an empty address names no Ray cluster; give {fix}")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"not {fix}; a ray:// or GCS address (host:6379) is not it")
        parsed = urlsplit(value)
        try:
            parsed.port  # noqa: B018 - raises for a port that is not a number in 0-65535
        except ValueError:
            raise ValueError(f"its port is not a number from 1 to 65535; give {fix}") from None
        if not parsed.hostname:
            raise ValueError(f"it names no host; give {fix}")
        return value

    @model_validator(mode="after")
    def _check_bounds(self) -> "Compute":
        if self.max_instances is not None and self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) must not exceed max_instances ({self.max_instances})"
            )
        if self.tier is not None and self.tier.lower() not in ("dedicated", "low_priority", "lowpriority"):
            raise ValueError(f"tier must be 'dedicated' or 'low_priority', got {self.tier!r}")
        if self.type != "ray":  # type ray without an address: refused on 'address' (_check_address)
            given = [f for f in ("address", "runtime_env", "resources", "placement") if getattr(self, f) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} apply to computes of type 'ray' only (this one is {self.type!r})")
        return self


class AmlCompute(Compute):
    """``AmlCompute(name, size, min_instances, max_instances, idle_time_before_scale_down, tier)``."""

    type: Literal["amlcompute"] = "amlcompute"  # type: ignore[assignment]


class ComputeInstance(Compute):
    type: Literal["computeinstance"] = "computeinstance"  # type: ignore[assignment]
    max_instances: int = 1


class RayCompute(Compute):
    """``RayCompute(name, address, runtime_env=None, resources=None, max_instances=...)``: an openaml
    extension (not in azure-ai-ml): jobs on it run as Ray jobs of an existing cluster, submitted to
    its Jobs API at ``address``. ``max_instances`` (jobs at once) is taken from the cluster at
    create when not given (its CPUs divided by ``resources.num_cpus``)."""

    type: Literal["ray"] = "ray"  # type: ignore[assignment]
    #: None: taken from the cluster at create (the server's answer has the number)
    max_instances: int | None = Field(default=None, ge=1)  # type: ignore[assignment]


def compute_class(type_: Any) -> type[Compute]:
    """The entity class of a compute ``type``: ``RayCompute`` for ``ray``, ``ComputeInstance`` for
    ``computeinstance``, else ``AmlCompute`` (whose validation names the type's error)."""
    classes: dict[str, type[Compute]] = {"ray": RayCompute, "computeinstance": ComputeInstance}
    return classes.get(type_ if isinstance(type_, str) else "", AmlCompute)


def load_compute(source: str | Path | None = None, *, data: dict[str, Any] | None = None,
                 params_override: list[Any] | None = None, override_labels: dict[str, str] | None = None) -> Compute:
    """A compute YAML (or dict) as the class of its ``type`` (``type: ray`` -> :class:`RayCompute`);
    ``override_labels`` as :func:`~openaml.entities.load_entity` (the CLI's flags).

    Raises:
        ValidationError: as :func:`~openaml.entities.load_entity` (file, line and field named).
    """
    from openaml._yaml import LineMap, apply_set_overrides, load_yaml_with_lines, override_sources
    from openaml.entities._base import load_entity
    from openaml.errors import ValidationError

    raw, lines = load_yaml_with_lines(source) if source is not None else (dict(data or {}), LineMap())
    type_ = apply_set_overrides(copy.deepcopy(raw), params_override).get("type", "amlcompute")
    allowed = typing.get_args(Compute.model_fields["type"].annotation)
    if type_ not in allowed:  # named with the types, not as pydantic's "Input should be 'amlcompute'"
        by = (override_labels or {}).get("type") or override_sources(params_override).get(("type",))
        where = by or (f"{source}, line {lines[('type',)]}" if source is not None and ("type",) in lines
                       else str(source or "compute"))
        raise ValidationError(f"{where}: field 'type': unknown compute type {type_!r}; allowed: {', '.join(allowed)}",
                              details={"file": None if source is None else str(source), "field": "type",
                                       "value": repr(type_), "allowed": list(allowed)})
    cls = compute_class(type_)
    if source is not None:
        return load_entity(cls, source, params_override=params_override, kind="compute",
                           override_labels=override_labels)
    return load_entity(cls, data=data, params_override=params_override, kind="compute", override_labels=override_labels)
