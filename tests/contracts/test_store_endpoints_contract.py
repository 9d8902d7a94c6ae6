"""The metadata store's repositories beside ``MetadataStore``, on every backend (SQLite, PostgreSQL).

- ``EndpointRepository`` (store/_endpoints.py): online endpoints (spec incl. traffic, auth keys),
  their deployments, read-modify-write updates that never lose a concurrent change;
- ``UserRepository`` (store/_users.py): users by name and by token hash;
- secrets at rest (store/_secrets.py): with a ``SecretBox`` set on the store, endpoint keys and
  datastore credentials are sealed in the database (a raw read finds no clear value) and come
  back in clear through the repositories.

The contract is the one of ``openaml.store._store``'s module docstring: thread-safe, plain dicts
out (detached), UTC datetimes. Fixtures (``store``) are in conftest.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from openaml.errors import ConflictError, NotFoundError
from openaml.store import EndpointRepository, MetadataStore, SecretBox, UserRepository
from tests.contracts._helpers import run_threads


def _assert_utc(dt: Any) -> None:
    assert isinstance(dt, datetime)
    assert dt.tzinfo is not None and dt.utcoffset() == timedelta(0), dt
    assert abs(datetime.now(UTC) - dt) < timedelta(minutes=5)


# secrets with characters base64 never has, so no ciphertext can contain them by chance
KEY1, KEY2, TOKEN_SECRET = "primary key: K1!", "secondary key: K2!", "token secret: T!"
AUTH = {"primary_key": KEY1, "secondary_key": KEY2, "token_secret": TOKEN_SECRET}
SPEC = {"auth_mode": "key", "description": "d", "tags": {"team": "a"}, "traffic": {}, "mirror_traffic": {}}


@pytest.fixture
def repo(store: MetadataStore) -> EndpointRepository:
    return EndpointRepository(store)


# ---------------------------------------------------------------------------------------------- endpoints


def test_endpoint_create_get_list(repo: EndpointRepository) -> None:
    assert repo.list_endpoints() == []
    ep = repo.create_endpoint("ep-b", SPEC, AUTH, "Succeeded")
    assert {k: ep[k] for k in ("name", "provisioning_state", "spec", "auth")} == {
        "name": "ep-b", "provisioning_state": "Succeeded", "spec": SPEC, "auth": AUTH}
    _assert_utc(ep["created_at"])
    _assert_utc(ep["updated_at"])
    repo.create_endpoint("ep-a", {}, {}, "Creating")
    assert repo.get_endpoint("ep-b") == ep
    assert [e["name"] for e in repo.list_endpoints()] == ["ep-a", "ep-b"]


def test_endpoint_duplicate_conflicts_and_keeps_the_first(repo: EndpointRepository) -> None:
    repo.create_endpoint("ep", SPEC, AUTH, "Succeeded")
    with pytest.raises(ConflictError, match="online endpoint 'ep' already exists"):
        repo.create_endpoint("ep", {}, {"primary_key": "other"}, "Creating")
    assert repo.get_endpoint("ep")["auth"] == AUTH


def test_endpoint_not_found_names_the_existing_ones(repo: EndpointRepository) -> None:
    with pytest.raises(NotFoundError, match=r"online endpoint 'nope' not found; endpoints: \(none\)"):
        repo.get_endpoint("nope")
    repo.create_endpoint("b", {}, {}, "Succeeded")
    repo.create_endpoint("a", {}, {}, "Succeeded")
    with pytest.raises(NotFoundError, match="endpoints: a, b") as e:
        repo.get_endpoint("nope")
    assert e.value.details == {"name": "nope"}
    with pytest.raises(NotFoundError, match="'nope'"):
        repo.update_endpoint("nope", lambda _e: {"provisioning_state": "Failed"})


def test_endpoint_returned_dicts_are_detached(repo: EndpointRepository) -> None:
    ep = repo.create_endpoint("ep", {"traffic": {"blue": 100}}, dict(AUTH), "Succeeded")
    ep["spec"]["traffic"]["blue"] = 0
    ep["auth"]["primary_key"] = "changed"
    got = repo.get_endpoint("ep")
    assert got["spec"] == {"traffic": {"blue": 100}} and got["auth"]["primary_key"] == KEY1


def test_update_endpoint_sets_only_the_returned_fields(repo: EndpointRepository) -> None:
    first = repo.create_endpoint("ep", SPEC, AUTH, "Creating")
    seen: list[dict[str, Any]] = []

    def traffic(e: dict[str, Any]) -> dict[str, Any]:
        seen.append(e)
        return {"spec": {**e["spec"], "traffic": {"blue": 90, "green": 10}}, "provisioning_state": "Succeeded"}

    after = repo.update_endpoint("ep", traffic)
    assert seen[0]["auth"] == AUTH and seen[0]["spec"] == SPEC, "fn sees the current endpoint, keys in clear"
    assert after["spec"]["traffic"] == {"blue": 90, "green": 10} and after["provisioning_state"] == "Succeeded"
    assert after["auth"] == AUTH and after["created_at"] == first["created_at"]
    assert after["updated_at"] >= first["updated_at"]
    # a key regeneration changes auth only; None changes nothing but the time
    regen = repo.update_endpoint("ep", lambda e: {"auth": {**e["auth"], "primary_key": "new key: K3!"}})
    assert regen["auth"] == {**AUTH, "primary_key": "new key: K3!"} and regen["spec"] == after["spec"]
    assert repo.update_endpoint("ep", lambda _e: None)["auth"] == regen["auth"]
    # unknown fields are ignored (the repository sets spec, auth and provisioning_state only)
    assert repo.update_endpoint("ep", lambda _e: {"name": "other"})["name"] == "ep"


def test_update_endpoint_error_in_fn_changes_nothing(repo: EndpointRepository) -> None:
    repo.create_endpoint("ep", SPEC, AUTH, "Succeeded")

    def bad(_e: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("traffic does not add up")

    with pytest.raises(ValueError, match="add up"):
        repo.update_endpoint("ep", bad)
    assert repo.get_endpoint("ep")["spec"] == SPEC


@pytest.mark.parametrize("threads", [8])
def test_concurrent_endpoint_updates_lose_nothing(repo: EndpointRepository, threads: int) -> None:
    """Read-modify-write under the row lock: each thread's traffic entry and key survive."""
    repo.create_endpoint("ep", {"traffic": {}}, {}, "Succeeded")

    def update(i: int) -> None:
        repo.update_endpoint("ep", lambda e: {"spec": {"traffic": {**e["spec"]["traffic"], f"d{i}": i}},
                                              "auth": {**e["auth"], f"k{i}": f"key {i}!"}})

    run_threads(threads, update)
    ep = repo.get_endpoint("ep")
    assert ep["spec"]["traffic"] == {f"d{i}": i for i in range(threads)}
    assert ep["auth"] == {f"k{i}": f"key {i}!" for i in range(threads)}


@pytest.mark.parametrize("threads", [6])
def test_update_endpoint_is_a_compare_and_set_through_fn(repo: EndpointRepository, threads: int) -> None:
    """``fn`` runs on the row as locked: a transition guarded on the current state has one winner."""
    repo.create_endpoint("ep", {}, {}, "Updating")
    winners: list[int] = []

    def finish(i: int) -> None:
        def guarded(e: dict[str, Any]) -> dict[str, Any]:
            if e["provisioning_state"] != "Updating":
                raise ConflictError(f"endpoint is {e['provisioning_state']}")
            return {"provisioning_state": "Succeeded", "spec": {"finished_by": i}}

        try:
            repo.update_endpoint("ep", guarded)
            winners.append(i)
        except ConflictError:
            pass

    run_threads(threads, finish)
    assert len(winners) == 1
    ep = repo.get_endpoint("ep")
    assert ep["provisioning_state"] == "Succeeded" and ep["spec"] == {"finished_by": winners[0]}


def test_delete_endpoint_removes_its_deployments_only(repo: EndpointRepository) -> None:
    repo.create_endpoint("ep", {}, {}, "Succeeded")
    repo.create_endpoint("other", {}, {}, "Succeeded")
    repo.create_deployment("ep", "blue", {}, "Succeeded")
    repo.create_deployment("other", "blue", {}, "Succeeded")
    repo.delete_endpoint("ep")
    repo.delete_endpoint("ep")  # deleting again is not an error
    assert [e["name"] for e in repo.list_endpoints()] == ["other"]
    assert [(d["endpoint_name"], d["name"]) for d in repo.list_deployments()] == [("other", "blue")]


# ---------------------------------------------------------------------------------------------- deployments


def test_deployment_create_get_list(repo: EndpointRepository) -> None:
    repo.create_endpoint("ep", {}, {}, "Succeeded")
    repo.create_endpoint("ep2", {}, {}, "Succeeded")
    dep = repo.create_deployment("ep", "green", {"model": "azureml:m:1", "instance_count": 2}, "Creating")
    assert {k: dep[k] for k in ("name", "endpoint_name", "provisioning_state", "spec", "runtime", "error")} == {
        "name": "green", "endpoint_name": "ep", "provisioning_state": "Creating",
        "spec": {"model": "azureml:m:1", "instance_count": 2}, "runtime": {}, "error": None}
    _assert_utc(dep["created_at"])
    repo.create_deployment("ep", "blue", {}, "Creating")
    repo.create_deployment("ep2", "blue", {}, "Creating")
    assert repo.get_deployment("ep", "green") == dep
    # listed in creation order per endpoint; all endpoints' when none is named
    assert [d["name"] for d in repo.list_deployments("ep")] == ["green", "blue"]
    assert [(d["endpoint_name"], d["name"]) for d in repo.list_deployments()] == [
        ("ep", "green"), ("ep", "blue"), ("ep2", "blue")]
    assert repo.list_deployments("none") == []


def test_deployment_duplicate_conflicts(repo: EndpointRepository) -> None:
    repo.create_deployment("ep", "blue", {"v": 1}, "Creating")
    with pytest.raises(ConflictError, match="deployment 'blue' of endpoint 'ep' already exists"):
        repo.create_deployment("ep", "blue", {"v": 2}, "Creating")
    assert repo.get_deployment("ep", "blue")["spec"] == {"v": 1}
    repo.create_deployment("ep2", "blue", {}, "Creating")  # the name is unique per endpoint only


def test_deployment_not_found_names_the_endpoints_deployments(repo: EndpointRepository) -> None:
    with pytest.raises(NotFoundError, match=r"deployment 'x' of online endpoint 'ep' not found; "
                                            r"its deployments: \(none\)"):
        repo.get_deployment("ep", "x")
    repo.create_deployment("ep", "blue", {}, "Creating")
    repo.create_deployment("other", "red", {}, "Creating")
    with pytest.raises(NotFoundError, match="its deployments: blue$"):
        repo.get_deployment("ep", "x")
    with pytest.raises(NotFoundError):
        repo.update_deployment("ep", "x", provisioning_state="Failed")


def test_update_deployment_sets_the_named_fields(repo: EndpointRepository) -> None:
    first = repo.create_deployment("ep", "blue", {"v": 1}, "Creating")
    after = repo.update_deployment("ep", "blue", provisioning_state="Failed", error="boom",
                                   runtime={"env": "abc", "port": 5})
    assert (after["provisioning_state"], after["error"], after["runtime"], after["spec"]) == (
        "Failed", "boom", {"env": "abc", "port": 5}, {"v": 1})
    assert after["updated_at"] >= first["updated_at"] and after["created_at"] == first["created_at"]
    cleared = repo.update_deployment("ep", "blue", spec={"v": 2}, error=None, provisioning_state="Succeeded")
    assert (cleared["spec"], cleared["error"], cleared["runtime"]) == ({"v": 2}, None, {"env": "abc", "port": 5})
    with pytest.raises(TypeError, match="cannot set created_at"):
        repo.update_deployment("ep", "blue", created_at=datetime.now(UTC))


def test_delete_deployment(repo: EndpointRepository) -> None:
    repo.create_deployment("ep", "blue", {}, "Creating")
    repo.create_deployment("ep", "green", {}, "Creating")
    repo.delete_deployment("ep", "blue")
    repo.delete_deployment("ep", "blue")  # again: no error
    assert [d["name"] for d in repo.list_deployments("ep")] == ["green"]
    repo.create_deployment("ep", "blue", {}, "Creating")  # the name can be used again


# ---------------------------------------------------------------------------------------------- users


def test_users_create_get_list_delete(store: MetadataStore) -> None:
    users = UserRepository(store)
    assert users.list() == [] and users.get("ann") is None and users.by_token_hash("h1") is None
    ann = users.create("ann", "AzureML Data Scientist", "h1", created_by="owner")
    assert {k: ann[k] for k in ("name", "role", "created_by")} == {
        "name": "ann", "role": "AzureML Data Scientist", "created_by": "owner"}
    assert "token_hash" not in ann, "the hash never leaves the repository"
    _assert_utc(ann["created_at"])
    users.create("bob", "Reader", "h2", created_by=None)
    assert users.get("ann") == ann and users.by_token_hash("h1") == ann
    assert users.by_token_hash("h2")["name"] == "bob"  # type: ignore[index]
    assert [u["name"] for u in users.list()] == ["ann", "bob"]
    users.delete("ann")
    assert users.get("ann") is None and users.by_token_hash("h1") is None
    with pytest.raises(NotFoundError, match="user 'ann' not found; users: bob") as e:
        users.delete("ann")
    assert e.value.details == {"name": "ann"}


def test_users_name_and_token_hash_are_unique(store: MetadataStore) -> None:
    users = UserRepository(store)
    users.create("ann", "Reader", "h1", created_by=None)
    with pytest.raises(ConflictError, match="user 'ann' already exists"):
        users.create("ann", "Owner", "h2", created_by=None)
    with pytest.raises(ConflictError):
        users.create("bob", "Owner", "h1", created_by=None)  # one token, one user
    assert users.get("ann")["role"] == "Reader"  # type: ignore[index]
    assert [u["name"] for u in users.list()] == ["ann"]


# ---------------------------------------------------------------------------------------------- secrets at rest


def _raw(store: MetadataStore, sql: str) -> str:
    """Every value a raw SQL read returns, as one string (what a copy of the database shows)."""
    with store._session() as s:  # (not the rows' repr: SQLAlchemy shortens long values there)
        return json.dumps([list(row) for row in s.execute(text(sql)).all()], default=str)


def test_endpoint_keys_are_sealed_at_rest_and_open_through_the_repository(
        store: MetadataStore, tmp_path: Path) -> None:
    store.secret_box = SecretBox(tmp_path / "secret.key")
    repo = EndpointRepository(store)
    assert repo.create_endpoint("ep", SPEC, AUTH, "Succeeded")["auth"] == AUTH
    repo.update_endpoint("ep", lambda e: {"auth": {**e["auth"], "secondary_key": "regenerated: K4!"}})
    raw = _raw(store, "SELECT auth, spec FROM online_endpoints")
    for secret in (KEY1, "regenerated: K4!", TOKEN_SECRET, KEY2):
        assert secret not in raw
    assert raw.count("enc:v1:") == 3
    assert repo.get_endpoint("ep")["auth"] == {**AUTH, "secondary_key": "regenerated: K4!"}
    assert repo.list_endpoints()[0]["auth"]["primary_key"] == KEY1
    # another store on the same database with the same key file reads them; without a box, only sealed values
    other = MetadataStore(store.url).start()
    try:
        assert EndpointRepository(other).get_endpoint("ep")["auth"]["primary_key"].startswith("enc:v1:")
        other.secret_box = SecretBox(tmp_path / "secret.key")
        assert EndpointRepository(other).get_endpoint("ep")["auth"]["primary_key"] == KEY1
    finally:
        other.close()


def test_datastore_credentials_are_sealed_at_rest(store: MetadataStore, tmp_path: Path) -> None:
    store.secret_box = SecretBox(tmp_path / "secret.key")
    account_key = "account key: AK!"
    spec = {"account_name": "acct", "container_name": "c", "credentials": {"account_key": account_key}}
    assert store.put_datastore("blob", "azure_blob", spec)["credentials"] == {"account_key": account_key}
    raw = _raw(store, "SELECT spec FROM datastores")
    assert account_key not in raw and "enc:v1:" in raw and "acct" in raw, "only the credentials are sealed"
    assert store.get_datastore("blob")["credentials"] == {"account_key": account_key}
    assert store.list_datastores()[0]["credentials"] == {"account_key": account_key}
    assert store.seal_plain_datastore_credentials() == 0


def test_values_stored_in_clear_are_sealed_by_seal_plain(store: MetadataStore, tmp_path: Path) -> None:
    """A database written before secrets were sealed: the server seals its values at start."""
    repo = EndpointRepository(store)
    repo.create_endpoint("old", SPEC, AUTH, "Succeeded")  # no box yet: in clear
    store.put_datastore("blob", "azure_blob", {"credentials": {"account_key": "account key: AK!"}})
    assert KEY1 in _raw(store, "SELECT auth FROM online_endpoints")
    store.secret_box = SecretBox(tmp_path / "secret.key")
    assert repo.seal_plain() == 1 and repo.seal_plain() == 0
    assert store.seal_plain_datastore_credentials() == 1 and store.seal_plain_datastore_credentials() == 0
    raw = _raw(store, "SELECT auth FROM online_endpoints") + _raw(store, "SELECT spec FROM datastores")
    assert KEY1 not in raw and "account key: AK!" not in raw
    assert repo.get_endpoint("old")["auth"] == AUTH
    assert store.get_datastore("blob")["credentials"] == {"account_key": "account key: AK!"}


def test_sealed_values_need_the_same_key(store: MetadataStore, tmp_path: Path) -> None:
    store.secret_box = SecretBox(tmp_path / "secret.key")
    EndpointRepository(store).create_endpoint("ep", {}, AUTH, "Succeeded")
    store.secret_box = SecretBox(tmp_path / "another.key")
    with pytest.raises(ValueError, match="cannot be decrypted with .*another.key"):
        EndpointRepository(store).get_endpoint("ep")
