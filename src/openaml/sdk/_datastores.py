"""``ml_client.datastores``: list, get, get_default, create_or_update, delete."""

from __future__ import annotations

from typing import Any

from openaml.entities import Datastore
from openaml.entities._datastore import datastore_class

__all__ = ["DatastoreOperations"]


def _entity(d: dict[str, Any]) -> Datastore:
    """The server's datastore as the class of its type; its credentials come back without secrets."""
    cls = datastore_class(d.get("type"))
    return cls.model_validate({k: v for k, v in d.items() if k in cls.model_fields})


def _name(name: str) -> str:
    """A datastore name as given (``azureml:<name>`` or ``<name>``) -> ``<name>``.

    Raises:
        ValidationError: empty, or with a ``/`` (a name, not a path)."""
    from openaml.errors import ValidationError

    bare = str(name or "").strip()
    bare = bare[len("azureml:"):] if bare.startswith("azureml:") else bare
    if not bare or "/" in bare:
        raise ValidationError(f"datastore name {name!r}: give a datastore's name (openaml datastore list shows them)",
                              details={"field": "name", "value": name})
    return bare


class DatastoreOperations:
    def __init__(self, client: Any) -> None:
        self._t = client._transport

    def list(self, **kwargs: Any) -> list[Datastore]:
        return [_entity(d) for d in self._t.get("/datastores")]

    def get(self, name: str, **kwargs: Any) -> Datastore:
        """The datastore ``name`` (``azureml:<name>`` accepted).

        Raises:
            ValidationError: an empty name or one with a ``/``. NotFoundError: no such datastore.
        """
        from urllib.parse import quote

        return _entity(self._t.get(f"/datastores/{quote(_name(name), safe='')}"))

    def get_default(self, **kwargs: Any) -> Datastore:
        return next(d for d in self.list() if d.is_default)

    def create_or_update(self, datastore: Datastore, *, skip_validation: bool = False, **kwargs: Any) -> Datastore:
        """Register (or replace) a datastore. An ``s3`` or ``azure_blob`` one is checked by the server
        with one listing call: refused (ValidationError naming it, the field and the service's error;
        nothing stored) when the service rejects the credentials or lacks the bucket/container, when
        the client refuses the credentials (a malformed key), or when the endpoint cannot be reached
        from the server. ``skip_validation=True`` (an openaml extension): registered unchecked, with
        a ``UserWarning`` saying so (an endpoint that only the jobs' machines reach)."""
        import warnings

        params = {"skip_validation": "true"} if skip_validation else None
        result = self._t.put(f"/datastores/{datastore.name}", json=datastore.to_dict(), params=params)
        for w in result.get("warnings") or []:
            warnings.warn(w, UserWarning, stacklevel=2)
        return _entity(result)

    def delete(self, name: str, **kwargs: Any) -> None:
        """Remove a datastore's registration, as azure-ai-ml's ``datastores.delete``: its files are not
        touched. ``azureml:<name>`` is accepted.

        Raises:
            NotFoundError: no such datastore (naming those that exist). ConflictError: the workspace's
                own ``workspaceblobstore``, the default datastore (make another the default first), or
                one that data asset versions still point into (naming them; archive them first).
        """
        from urllib.parse import quote

        self._t.delete(f"/datastores/{quote(_name(name), safe='')}")
