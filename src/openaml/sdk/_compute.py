"""``ml_client.compute``: get, list, begin_create_or_update, begin_delete."""

from __future__ import annotations

from typing import Any

from openaml.entities import Compute
from openaml.entities._compute import compute_class

__all__ = ["ComputeOperations"]


def _entity(d: dict[str, Any]) -> Compute:
    cls = compute_class(d.get("type")) if d.get("type") in ("amlcompute", "ray") else Compute
    return cls.model_validate({k: v for k, v in d.items() if k in cls.model_fields})


class ComputeOperations:
    def __init__(self, client: Any) -> None:
        self._t = client._transport

    def get(self, name: str, **kwargs: Any) -> Compute:
        return _entity(self._t.get(f"/computes/{name}"))

    def list(self, **kwargs: Any) -> list[Compute]:
        return [_entity(d) for d in self._t.get("/computes")]

    def begin_create_or_update(self, compute: Compute, **kwargs: Any) -> Any:
        from openaml.sdk._client import Poller

        return Poller(_entity(self._t.put(f"/computes/{compute.name}", json=compute.to_dict())))

    def create_or_update(self, compute: Compute, **kwargs: Any) -> Compute:
        return self.begin_create_or_update(compute).result()

    def begin_delete(self, name: str, **kwargs: Any) -> Any:
        from openaml.sdk._client import Poller

        self._t.delete(f"/computes/{name}")
        return Poller(None)
