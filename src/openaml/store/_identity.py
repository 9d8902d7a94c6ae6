"""Which workspace a metadata database belongs to, and whether a server may open it.

A database (SQLite file or PostgreSQL) holds one workspace. Its ``workspace_meta`` table records
the workspace's ``id`` and ``name`` (from ``workspace.json``) and a value sealed with the workspace's
``secret.key``, written by the first server or ``workspace create`` that opens it. A second workspace
folder pointed at the same PostgreSQL database (another host serving the same workspace) must carry
the same id and the same key: otherwise it would mix two workspaces' rows, or fail to read the
stored secrets (datastore credentials, endpoint keys) later, at the worst moment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openaml.errors import ConflictError

if TYPE_CHECKING:
    from openaml.store._secrets import SecretBox
    from openaml.store._store import MetadataStore

__all__ = ["claim_workspace", "redact_url", "workspace_of"]

_ID, _NAME, _KEY_CHECK = "workspace_id", "workspace_name", "secret_key_check"
_PROBE = "openaml workspace key"


def redact_url(url: str) -> str:
    """``url`` with its password hidden (``postgresql://u:***@host/db``), for messages and ``show``."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy parses: say nothing of it
        return url.split("@")[-1] if "@" in url else url


def workspace_of(store: MetadataStore) -> dict[str, str] | None:
    """``{"id", "name"}`` of the workspace the database holds; None for a new database."""
    wid = store.get_meta(_ID)
    if wid is None:
        return None
    return {"id": wid, "name": store.get_meta(_NAME) or ""}


def claim_workspace(store: MetadataStore, info: dict[str, Any], box: SecretBox, *, where: str) -> None:
    """Record that the database holds workspace ``info`` (``id``, ``name``), or check that it does.

    Args:
        info: the folder's ``workspace.json``.
        box: the folder's secret box (``secret.key``).
        where: the database, for messages (a URL without its password, or a path).

    Raises:
        ConflictError: the database holds another workspace (by id), or its secrets were sealed with
            another ``secret.key`` (the fix is named: which folder's key to copy).
    """
    held = workspace_of(store)
    if held is None:
        store.set_meta(_NAME, str(info["name"]))
        store.set_meta(_KEY_CHECK, box.seal(_PROBE))
        store.set_meta(_ID, str(info["id"]))  # last: a claim is complete once the id is there
        return
    if held["id"] != str(info["id"]):
        raise ConflictError(
            f"the metadata database {where} holds workspace {held['name']!r} (id {held['id']}), not this folder's "
            f"workspace {info['name']!r} (id {info['id']}); to serve that workspace from this host create a folder "
            f"for it: openaml workspace create --name {held['name']} --database-url URL --secret-key-file "
            "<a folder of that workspace>/secret.key", details={"field": "database_url"})
    check = store.get_meta(_KEY_CHECK)
    if check is not None:
        try:
            ok = box.open(check) == _PROBE
        except Exception:  # noqa: BLE001 - any decryption failure: the wrong key
            ok = False
        if not ok:
            raise ConflictError(
                f"{box.key_file} is not the key workspace {held['name']!r} sealed its secrets with in {where}; copy "
                "secret.key from a folder of that workspace (e.g. the first server's) into this one",
                details={"field": "secret_key"})
