"""The MetadataStore contract, run against every backend (SQLite and PostgreSQL).

Every public method is covered; the contract itself is written in ``openaml.store._store``'s
module docstring. Fixtures (``store``: a started store on an empty database) are in conftest.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from openaml.errors import ConflictError, NotFoundError, ValidationError
from openaml.store import MetadataStore
from tests.contracts._helpers import run_threads


def _assert_utc(dt: datetime | None) -> None:
    assert isinstance(dt, datetime)
    assert dt.tzinfo is not None and dt.utcoffset() == timedelta(0), dt
    assert abs(datetime.now(UTC) - dt) < timedelta(minutes=5)


# ---------------------------------------------------------------------------------------------- lifecycle


def test_methods_outside_start_and_close_raise(store_url: str) -> None:
    s = MetadataStore(store_url)
    with pytest.raises(RuntimeError, match="start"):
        s.list_datastores()
    with pytest.raises(RuntimeError, match="start"):
        s.set_meta("k", "v")
    s.start()
    s.set_meta("k", "v")
    s.close()
    with pytest.raises(RuntimeError, match="start"):
        s.get_meta("k")
    assert s.start().get_meta("k") == "v", "a closed store can start again"
    s.close()


def test_meta_get_set(store: MetadataStore) -> None:
    assert store.get_meta("missing") is None
    store.set_meta("schema_owner", "a")
    assert store.get_meta("schema_owner") == "a"
    store.set_meta("schema_owner", "b")
    assert store.get_meta("schema_owner") == "b"


# ---------------------------------------------------------------------------------------------- datastores


def test_datastores_put_get_list(store: MetadataStore) -> None:
    assert store.list_datastores() == []
    ds = store.put_datastore("workspaceblobstore", "local", {"path": "/ws/blobs"}, is_default=True)
    assert ds == {"path": "/ws/blobs", "name": "workspaceblobstore", "type": "local", "is_default": True}
    store.put_datastore("archive", "s3", {"url": "s3://bucket/prefix", "endpoint_url": "http://127.0.0.1:9000"})

    assert store.get_datastore("archive") == {"url": "s3://bucket/prefix", "endpoint_url": "http://127.0.0.1:9000",
                                              "name": "archive", "type": "s3", "is_default": False}
    assert [d["name"] for d in store.list_datastores()] == ["archive", "workspaceblobstore"]

    # put replaces the whole datastore (an upsert), it does not merge the spec
    store.put_datastore("archive", "s3", {"url": "s3://other"}, is_default=False)
    assert store.get_datastore("archive") == {"url": "s3://other", "name": "archive", "type": "s3",
                                              "is_default": False}
    assert len(store.list_datastores()) == 2


def test_datastore_returned_dicts_are_detached(store: MetadataStore) -> None:
    ds = store.put_datastore("d", "local", {"path": "/a"})
    ds["path"] = "/changed"
    got = store.get_datastore("d")
    got["path"] = "/changed-again"
    assert store.get_datastore("d")["path"] == "/a"


def test_datastore_not_found_names_the_existing_ones(store: MetadataStore) -> None:
    with pytest.raises(NotFoundError, match=r"datastore 'nope' not found; datastores: \(none\)"):
        store.get_datastore("nope")
    store.put_datastore("b", "local", {})
    store.put_datastore("a", "local", {})
    with pytest.raises(NotFoundError, match="datastore 'nope' not found; datastores: a, b") as e:
        store.get_datastore("nope")
    assert e.value.details == {"field": "datastore", "value": "nope"}


# ---------------------------------------------------------------------------------------------- versioned assets

ASSET_KINDS = ["data", "environment"]


def _columns(kind: str) -> dict[str, Any]:
    """The kind-specific columns each asset table requires."""
    if kind == "data":
        return {"type": "uri_file", "path": "azureml://datastores/workspaceblobstore/paths/x.csv"}
    return {"spec_hash": "0" * 64}


def _create(store: MetadataStore, kind: str, name: str, version: str | None = None,
            spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return store.create_asset(kind, name, version, spec if spec is not None else {"description": f"{name}"},
                              **_columns(kind))


@pytest.mark.parametrize("kind", ASSET_KINDS)
def test_asset_create_explicit_and_auto_versions(store: MetadataStore, kind: str) -> None:
    first = _create(store, kind, "iris", spec={"description": "first", "tags": {"a": "1"}})
    assert first["name"] == "iris" and first["version"] == "1" and first["archived"] is False
    assert first["description"] == "first" and first["tags"] == {"a": "1"}
    _assert_utc(datetime.fromisoformat(first["created_at"]))
    _assert_utc(datetime.fromisoformat(store.get_asset(kind, "iris", "1")["created_at"]))

    assert _create(store, kind, "iris")["version"] == "2"
    assert _create(store, kind, "iris", "10")["version"] == "10"
    assert _create(store, kind, "iris")["version"] == "11", "auto version is max(numeric versions) + 1"
    assert _create(store, kind, "iris", "v-beta")["version"] == "v-beta"
    assert _create(store, kind, "iris")["version"] == "12", "non-numeric versions do not count"
    assert _create(store, kind, "other")["version"] == "1", "numbering is per name"
    assert store.create_asset(kind, "iris", 20, {}, **_columns(kind))["version"] == "20"  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ASSET_KINDS)
def test_asset_versions_are_immutable(store: MetadataStore, kind: str) -> None:
    _create(store, kind, "iris", "1", spec={"description": "original"})
    with pytest.raises(ConflictError, match=r"iris:1 already exists and versions are immutable") as e:
        _create(store, kind, "iris", "1", spec={"description": "replacement"})
    assert e.value.details == {"name": "iris", "version": "1"}
    assert store.get_asset(kind, "iris", "1")["description"] == "original"
    assert [a["version"] for a in store.list_assets(kind, "iris")] == ["1"]


@pytest.mark.parametrize("kind", ASSET_KINDS)
def test_latest_is_a_label_never_a_version(store: MetadataStore, kind: str) -> None:
    """Review minor: `--version latest` was stored as a literal version, shadowing the label."""
    _create(store, kind, "iris", "1")
    _create(store, kind, "iris", "2")
    with pytest.raises(ValidationError, match=r"'latest' is not a version but the label of the newest one") as e:
        _create(store, kind, "iris", "latest")
    assert e.value.details == {"field": "version", "value": "latest"}
    assert [a["version"] for a in store.list_assets(kind, "iris")] == ["2", "1"]
    assert store.get_asset(kind, "iris", "latest")["version"] == "2"  # --version latest: the label


@pytest.mark.parametrize("kind", ASSET_KINDS)
def test_asset_get_latest_skips_archived(store: MetadataStore, kind: str) -> None:
    for _ in range(3):
        _create(store, kind, "iris")
    assert store.get_asset(kind, "iris")["version"] == "3"
    assert store.get_asset(kind, "iris", label="latest")["version"] == "3"

    assert store.set_asset_archived(kind, "iris", "3", True) == 1
    assert store.get_asset(kind, "iris")["version"] == "2"
    assert store.get_asset(kind, "iris", label="latest")["version"] == "2"

    explicit = store.get_asset(kind, "iris", "3")
    assert explicit["version"] == "3" and explicit["archived"] is True, "an archived version stays reachable"
    assert store.get_asset(kind, "iris", 1)["version"] == "1"  # type: ignore[arg-type]

    # a new version after an archived one still counts the archived one
    assert _create(store, kind, "iris")["version"] == "4"


@pytest.mark.parametrize("kind", ASSET_KINDS)
def test_asset_not_found_lists_versions(store: MetadataStore, kind: str) -> None:
    with pytest.raises(NotFoundError, match=f"^{kind} 'iris' not found$"):
        store.get_asset(kind, "iris")
    with pytest.raises(NotFoundError, match=f"^{kind} 'iris' not found$"):
        store.get_asset(kind, "iris", "1")

    for _ in range(3):
        _create(store, kind, "iris")
    store.set_asset_archived(kind, "iris", "2", True)
    with pytest.raises(NotFoundError, match=rf"{kind} iris:7 not found; versions: 1, 2 \(archived\), 3") as e:
        store.get_asset(kind, "iris", "7")
    assert e.value.details["versions"] == ["1", "2", "3"]

    store.set_asset_archived(kind, "iris", None, True)
    with pytest.raises(NotFoundError, match=r"'iris' has no unarchived version; versions: 1 \(archived\), "
                                            r"2 \(archived\), 3 \(archived\)"):
        store.get_asset(kind, "iris")


def test_asset_unsupported_label_and_kind(store: MetadataStore) -> None:
    _create(store, "data", "iris")
    with pytest.raises(ValidationError, match="label 'stable' is not supported; only 'latest' is"):
        store.get_asset("data", "iris", label="stable")
    with pytest.raises(ValueError, match="unknown asset kind 'model'; kinds: data, environment"):
        store.get_asset("model", "iris")


@pytest.mark.parametrize("kind", ASSET_KINDS)
def test_asset_list_latest_per_name_and_versions_of_one(store: MetadataStore, kind: str) -> None:
    assert store.list_assets(kind) == []
    for name, n in (("zeta", 2), ("alpha", 3), ("mid", 1)):
        for _ in range(n):
            _create(store, kind, name)

    latest = store.list_assets(kind)
    assert [(a["name"], a["version"]) for a in latest] == [("alpha", "3"), ("mid", "1"), ("zeta", "2")]

    assert [a["version"] for a in store.list_assets(kind, "alpha")] == ["3", "2", "1"], "newest first"
    assert store.list_assets(kind, "absent") == []

    store.set_asset_archived(kind, "alpha", "3", True)  # latest of alpha archived: the previous one shows
    store.set_asset_archived(kind, "mid", None, True)  # every version of mid archived: mid disappears
    assert [(a["name"], a["version"]) for a in store.list_assets(kind)] == [("alpha", "2"), ("zeta", "2")]
    assert [(a["name"], a["version"], a["archived"]) for a in store.list_assets(kind, include_archived=True)] == [
        ("alpha", "3", True), ("mid", "1", True), ("zeta", "2", False)]
    assert [a["version"] for a in store.list_assets(kind, "alpha")] == ["2", "1"]
    assert [a["version"] for a in store.list_assets(kind, "alpha", include_archived=True)] == ["3", "2", "1"]


@pytest.mark.parametrize("kind", ASSET_KINDS)
def test_asset_archive_and_restore(store: MetadataStore, kind: str) -> None:
    for _ in range(2):
        _create(store, kind, "iris")
    assert store.set_asset_archived(kind, "iris", "2", True) == 1
    assert store.get_asset(kind, "iris", "2")["archived"] is True
    assert store.set_asset_archived(kind, "iris", "2", True) == 1, "archiving twice is harmless"
    assert store.set_asset_archived(kind, "iris", "2", False) == 1
    assert store.get_asset(kind, "iris")["version"] == "2"

    assert store.set_asset_archived(kind, "iris", None, True) == 2, "no version: every version"
    assert store.list_assets(kind) == []
    assert store.set_asset_archived(kind, "iris", None, False) == 2
    assert [a["version"] for a in store.list_assets(kind, "iris")] == ["2", "1"]

    with pytest.raises(NotFoundError, match=r"iris:9 not found; versions: 1, 2"):
        store.set_asset_archived(kind, "iris", "9", True)
    with pytest.raises(NotFoundError, match=f"{kind} 'ghost' not found"):
        store.set_asset_archived(kind, "ghost", None, True)


def test_asset_returned_dicts_are_detached(store: MetadataStore) -> None:
    created = _create(store, "data", "iris", spec={"tags": {"k": "v"}})
    created["tags"]["k"] = "changed"
    got = store.get_asset("data", "iris")
    got["tags"]["k"] = "changed"
    assert store.get_asset("data", "iris")["tags"] == {"k": "v"}


def test_concurrent_auto_versions_are_distinct_and_consecutive(store: MetadataStore) -> None:
    _create(store, "data", "iris", "1")
    versions = run_threads(8, lambda i: _create(store, "data", "iris", spec={"thread": i})["version"])
    assert sorted(versions, key=int) == [str(v) for v in range(2, 10)]
    stored = store.list_assets("data", "iris")
    assert sorted(int(a["version"]) for a in stored) == list(range(1, 10))
    assert sorted(a["thread"] for a in stored if a["version"] != "1") == list(range(8))


# ---------------------------------------------------------------------------------------------- computes


def test_computes_put_get_list_delete(store: MetadataStore) -> None:
    assert store.list_computes() == []
    c = store.put_compute("local", "local", 2, {"description": "this machine"})
    assert c == {"description": "this machine", "name": "local", "type": "local", "max_instances": 2}
    store.put_compute("cpu-cluster", "ray", 4, {"address": "ray://127.0.0.1:10001"})
    assert store.get_compute("cpu-cluster") == {"address": "ray://127.0.0.1:10001", "name": "cpu-cluster",
                                                "type": "ray", "max_instances": 4}
    assert [c["name"] for c in store.list_computes()] == ["cpu-cluster", "local"]

    store.put_compute("local", "local", 8, {})  # replaces
    assert store.get_compute("local") == {"name": "local", "type": "local", "max_instances": 8}

    store.delete_compute("cpu-cluster")
    assert [c["name"] for c in store.list_computes()] == ["local"]
    with pytest.raises(NotFoundError, match="compute 'cpu-cluster' not found; computes in this workspace: local"):
        store.get_compute("cpu-cluster")


def test_compute_not_found_names_the_existing_ones(store: MetadataStore) -> None:
    with pytest.raises(NotFoundError, match=r"compute 'gpu' not found; computes in this workspace: \(none\)"):
        store.get_compute("gpu")
    store.put_compute("b", "local", 1, {})
    store.put_compute("a", "local", 1, {})
    with pytest.raises(NotFoundError, match="compute 'gpu' not found; computes in this workspace: a, b") as e:
        store.get_compute("gpu")
    assert e.value.details == {"field": "compute", "value": "gpu"}
    with pytest.raises(NotFoundError, match="compute 'gpu' not found; computes in this workspace: a, b"):
        store.delete_compute("gpu")


# ---------------------------------------------------------------------------------------------- jobs


def _job(store: MetadataStore, name: str, *, status: str = "Queued", compute: str = "local",
         parent: str | None = None, **kw: Any) -> dict[str, Any]:
    return store.create_job(name=name, type_="command", status=status, experiment_name="exp", compute=compute,
                            spec={"command": "echo hi", "tags": {"t": "1"}}, parent_name=parent, **kw)


def test_job_create_and_get(store: MetadataStore) -> None:
    job = _job(store, "brave_lion_1", status="NotStarted", display_name="first", runtime={"pid": None})
    assert job["name"] == "brave_lion_1" and job["type"] == "command" and job["status"] == "NotStarted"
    assert job["experiment_name"] == "exp" and job["display_name"] == "first" and job["compute"] == "local"
    assert job["parent_name"] is None and job["archived"] is False
    assert job["spec"] == {"command": "echo hi", "tags": {"t": "1"}} and job["runtime"] == {"pid": None}
    assert job["start_time"] is None and job["end_time"] is None and job["exit_code"] is None
    assert job["error"] is None and isinstance(job["seq"], int)
    _assert_utc(job["created_at"])
    assert [h["status"] for h in job["status_history"]] == ["NotStarted"]
    _assert_utc(datetime.fromisoformat(job["status_history"][0]["time"]))

    fetched = store.get_job("brave_lion_1")
    assert fetched == job
    _assert_utc(fetched["created_at"])  # read back from the database, not the object just written
    with pytest.raises(NotFoundError, match="job 'missing' not found"):
        store.get_job("missing")


def test_job_duplicate_name_conflicts(store: MetadataStore) -> None:
    _job(store, "j1")
    with pytest.raises(ConflictError, match="a job named 'j1' already exists"):
        _job(store, "j1", compute="other")
    assert store.get_job("j1")["compute"] == "local"
    assert len(store.list_jobs()) == 1


def test_job_list_filters_and_order(store: MetadataStore) -> None:
    _job(store, "a", status="Queued", compute="cpu")
    _job(store, "b", status="Running", compute="gpu")
    _job(store, "c", status="Queued", compute="cpu", parent="a")
    _job(store, "d", status="Completed", compute="cpu", parent="a")
    _job(store, "e", status="Failed", compute="gpu")
    store.update_job("e", archived=True)

    def names(**kw: Any) -> list[str]:
        return [j["name"] for j in store.list_jobs(**kw)]

    assert names() == ["d", "c", "b", "a"], "newest first, archived left out"
    assert names(ascending=True) == ["a", "b", "c", "d"]
    assert names(include_archived=True) == ["e", "d", "c", "b", "a"]
    assert names(status=["Queued"]) == ["c", "a"]
    assert names(status=("Queued", "Running")) == ["c", "b", "a"]
    assert names(status=[]) == []
    assert names(compute="gpu") == ["b"]
    assert names(compute="gpu", include_archived=True) == ["e", "b"]
    assert names(parent_name="a") == ["d", "c"]
    assert names(parent_name="a", status=["Completed"]) == ["d"]
    assert names(parent_name="a", top_level_only=True) == ["d", "c"], "parent_name wins over top_level_only"
    assert names(top_level_only=True) == ["b", "a"]
    assert names(limit=2) == ["d", "c"]
    assert names(limit=2, ascending=True) == ["a", "b"]
    assert names(limit=0) == []
    assert names(compute="cpu", status=["Queued"], top_level_only=True) == ["a"]


def test_count_jobs(store: MetadataStore) -> None:
    assert store.count_jobs(status=["Queued"]) == 0
    _job(store, "a", status="Queued", compute="cpu")
    _job(store, "b", status="Running", compute="cpu")
    _job(store, "c", status="Queued", compute="gpu")
    assert store.count_jobs(status=["Queued"]) == 2
    assert store.count_jobs(status=["Queued", "Running"]) == 3
    assert store.count_jobs(status=["Queued", "Running"], compute="cpu") == 2
    assert store.count_jobs(status=["Queued"], compute="none") == 0
    assert store.count_jobs(status=[]) == 0


def test_transition_job_compare_and_set(store: MetadataStore) -> None:
    _job(store, "j", status="Queued")
    before = store.get_job("j")

    lost = store.transition_job("j", "Running", from_statuses=["NotStarted", "Preparing"],
                                runtime_update={"pid": 1}, error="should not be written")
    assert lost is None
    assert store.get_job("j") == before, "a lost compare-and-set changes nothing"

    started = datetime.now(UTC)
    won = store.transition_job("j", "Running", from_statuses=["Queued"], runtime_update={"pid": 42},
                               start_time=started)
    assert won is not None and won["status"] == "Running" and won["runtime"] == {"pid": 42}
    assert [h["status"] for h in won["status_history"]] == ["Queued", "Running"]
    assert won["start_time"] == started
    _assert_utc(won["start_time"])
    assert store.get_job("j") == won
    _assert_utc(store.get_job("j")["start_time"])

    # same status again: fields change, history does not repeat the status
    again = store.transition_job("j", "Running", runtime_update={"host": "h"})
    assert again is not None and again["runtime"] == {"pid": 42, "host": "h"}
    assert [h["status"] for h in again["status_history"]] == ["Queued", "Running"]

    # no from_statuses: unconditional
    ended = store.transition_job("j", "Failed", exit_code=3, error="boom", end_time=datetime.now(UTC))
    assert ended is not None and ended["status"] == "Failed" and ended["exit_code"] == 3
    assert ended["error"] == "boom"
    _assert_utc(ended["end_time"])
    _assert_utc(store.get_job("j")["end_time"])
    assert [h["status"] for h in ended["status_history"]] == ["Queued", "Running", "Failed"]

    with pytest.raises(NotFoundError, match="job 'ghost' not found"):
        store.transition_job("ghost", "Running", from_statuses=["Queued"])
    with pytest.raises(TypeError, match="cannot set status_history"):
        store.transition_job("j", "Running", status_history=[])


@pytest.mark.parametrize("threads", [2, 8])
def test_transition_race_has_exactly_one_winner(store: MetadataStore, threads: int) -> None:
    rounds = 4
    for r in range(rounds):
        _job(store, f"race{r}", status="Queued")
    for r in range(rounds):
        results = run_threads(threads, lambda i, r=r: store.transition_job(
            f"race{r}", "Running", from_statuses=["Queued"], runtime_update={"winner": i}))
        winners = [i for i, res in enumerate(results) if res is not None]
        assert len(winners) == 1, f"round {r}: {len(winners)} winners"
        job = store.get_job(f"race{r}")
        assert job["runtime"] == {"winner": winners[0]}
        assert [h["status"] for h in job["status_history"]] == ["Queued", "Running"]


def test_update_job_merges_runtime_and_spec(store: MetadataStore) -> None:
    _job(store, "j", runtime={"pid": 1, "host": "a"})
    updated = store.update_job("j", runtime_update={"host": "b", "port": 80},
                               spec_update={"tags": {"new": "x"}, "description": "d"}, display_name="renamed")
    assert updated["runtime"] == {"pid": 1, "host": "b", "port": 80}
    assert updated["spec"] == {"command": "echo hi", "tags": {"new": "x"}, "description": "d"}, \
        "top-level keys are replaced, not deep-merged"
    assert updated["display_name"] == "renamed"
    assert updated["status"] == "Queued" and [h["status"] for h in updated["status_history"]] == ["Queued"]
    assert store.get_job("j") == updated

    assert store.update_job("j", archived=True)["archived"] is True
    assert store.update_job("j")["runtime"] == updated["runtime"], "nothing to update is harmless"

    with pytest.raises(NotFoundError, match="job 'ghost' not found"):
        store.update_job("ghost", display_name="x")
    with pytest.raises(TypeError, match="update_job\\(\\) cannot set status; .* transition_job"):
        store.update_job("j", status="Running")
    with pytest.raises(TypeError, match="cannot set bogus"):
        store.update_job("j", bogus=1)


def test_concurrent_updates_lose_nothing(store: MetadataStore) -> None:
    _job(store, "j")
    run_threads(8, lambda i: store.update_job("j", runtime_update={f"k{i}": i}))
    assert store.get_job("j")["runtime"] == {f"k{i}": i for i in range(8)}


def test_job_returned_dicts_are_detached(store: MetadataStore) -> None:
    job = _job(store, "j", runtime={"a": {"b": 1}})
    job["spec"]["tags"]["t"] = "changed"
    job["runtime"]["a"]["b"] = 2
    job["status_history"].append({"status": "fake"})
    fresh = store.get_job("j")
    assert fresh["spec"]["tags"] == {"t": "1"} and fresh["runtime"] == {"a": {"b": 1}}
    assert len(fresh["status_history"]) == 1


def test_update_schedule_is_a_compare_and_set_on_state(store: MetadataStore) -> None:
    """Two schedulers recording one fire: exactly one wins; the spec is left untouched."""
    store.put_schedule("nightly", {"trigger": {"type": "cron"}}, state={"next_fire_time": "t0", "fire_count": 0})
    wins = run_threads(8, lambda i: store.update_schedule(
        "nightly", state_update={"next_fire_time": "t1", "fire_count": 1, "by": i},
        expect_state={"next_fire_time": "t0"}))
    assert sum(w is not None for w in wins) == 1
    row = store.get_schedule("nightly")
    assert row["state"]["next_fire_time"] == "t1" and row["state"]["fire_count"] == 1
    assert row["spec"] == {"trigger": {"type": "cron"}} and row["enabled"] is True
    off = store.update_schedule("nightly", enabled=False)
    assert off is not None and off["enabled"] is False and off["state"]["fire_count"] == 1
    with pytest.raises(NotFoundError):
        store.update_schedule("missing", enabled=True)
