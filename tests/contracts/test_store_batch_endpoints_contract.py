"""``BatchEndpointRepository`` (store/_batch_endpoints.py, migration 0005_batch_endpoints) on every backend
(SQLite, PostgreSQL): batch endpoints and their deployments, plain dicts out, UTC datetimes, put_deployment
creating or replacing, deleting an endpoint deleting its deployments. Fixtures (``store``) are in conftest.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from openaml.errors import ConflictError, NotFoundError
from openaml.store import BatchEndpointRepository, MetadataStore
from tests.contracts._helpers import run_threads


@pytest.fixture
def repo(store: MetadataStore) -> BatchEndpointRepository:
    return BatchEndpointRepository(store)


def test_endpoints_and_deployments(repo: BatchEndpointRepository) -> None:
    assert repo.list_endpoints() == []
    ep = repo.create_endpoint("be", {"auth_mode": "aad_token", "defaults": {}}, "Succeeded")
    assert ep["spec"]["auth_mode"] == "aad_token" and ep["created_at"].tzinfo is not None
    assert abs(datetime.now(UTC) - ep["updated_at"]) < timedelta(minutes=5)
    with pytest.raises(ConflictError):
        repo.create_endpoint("be", {}, "Succeeded")
    with pytest.raises(NotFoundError) as exc:
        repo.get_endpoint("nope")
    assert "be" in exc.value.message  # the endpoints that exist are listed
    d = repo.put_deployment("be", "d1", {"mini_batch_size": 10}, {"mode": "mlflow"}, "Succeeded")
    assert d["spec"] == {"mini_batch_size": 10} and d["runtime"] == {"mode": "mlflow"}
    d = repo.put_deployment("be", "d1", {"mini_batch_size": 20}, {}, "Succeeded")  # replaced, not duplicated
    assert [x["spec"]["mini_batch_size"] for x in repo.list_deployments("be")] == [20]
    repo.put_deployment("be", "d2", {}, {}, "Succeeded")
    with pytest.raises(NotFoundError) as exc:
        repo.get_deployment("be", "d3")
    assert "d1, d2" in exc.value.message
    repo.update_endpoint("be", lambda e: {"spec": {**e["spec"], "defaults": {"deployment_name": "d2"}}})
    assert repo.get_endpoint("be")["spec"]["defaults"] == {"deployment_name": "d2"}
    repo.delete_deployment("be", "d2")
    assert [x["name"] for x in repo.list_deployments("be")] == ["d1"]
    repo.delete_endpoint("be")
    assert repo.list_endpoints() == [] and repo.list_deployments("be") == []


def test_concurrent_updates_lose_nothing(repo: BatchEndpointRepository) -> None:
    repo.create_endpoint("bc", {"tags": {}}, "Succeeded")

    def tag(i: int) -> None:
        repo.update_endpoint("bc", lambda e: {"spec": {**e["spec"], "tags": {**e["spec"]["tags"], f"t{i}": "1"}}})

    run_threads(8, tag)
    assert len(repo.get_endpoint("bc")["spec"]["tags"]) == 8
