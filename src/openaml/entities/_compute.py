"""Computes (spec section 8): a named local process pool whose slots are max_instances."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from openaml.entities._base import Entity

__all__ = ["Compute", "AmlCompute", "ComputeInstance"]


class Compute(Entity):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9\-]{1,31}$")
    type: Literal["amlcompute", "computeinstance", "local", "kubernetes", "virtualmachine"] = "amlcompute"
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
    # server-populated
    id: str | None = None
    provisioning_state: str | None = None
    backend: str | None = None
    running_jobs: int | None = None
    queued_jobs: int | None = None

    @model_validator(mode="after")
    def _check_bounds(self) -> "Compute":
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) must not exceed max_instances ({self.max_instances})"
            )
        if self.tier is not None and self.tier.lower() not in ("dedicated", "low_priority", "lowpriority"):
            raise ValueError(f"tier must be 'dedicated' or 'low_priority', got {self.tier!r}")
        return self


class AmlCompute(Compute):
    """``AmlCompute(name, size, min_instances, max_instances, idle_time_before_scale_down, tier)``."""

    type: Literal["amlcompute"] = "amlcompute"  # type: ignore[assignment]


class ComputeInstance(Compute):
    type: Literal["computeinstance"] = "computeinstance"  # type: ignore[assignment]
    max_instances: int = 1
