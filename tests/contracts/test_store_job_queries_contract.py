"""The studio's job queries of the metadata store (store/_job_queries.py) on every backend (SQLite,
PostgreSQL): one sorted, filtered page and its total; the pipeline jobs that ran a component version.
Fixtures (``store``) are in conftest.py."""

from __future__ import annotations

from typing import Any

from openaml.store import JobQuery, MetadataStore


def _job(store: MetadataStore, name: str, *, type: str = "command", status: str = "Completed",
         experiment: str = "e1", parent: str | None = None, runtime: dict[str, Any] | None = None) -> None:
    store.create_job(name=name, type_=type, status=status, experiment_name=experiment, compute="local",
                     spec={"tags": {"team": name[-1]}}, display_name=name, parent_name=parent, runtime=runtime or {})


def test_page_jobs_sorts_filters_pages_and_counts(store: MetadataStore) -> None:
    for i in range(7):
        _job(store, f"job{i}", status="Failed" if i % 2 else "Completed", experiment="e2" if i >= 5 else "e1")
    _job(store, "child", parent="job0")
    rows, total = store.page_jobs(JobQuery(per_page=3))
    assert total == 7 and [r["name"] for r in rows] == ["job6", "job5", "job4"]  # newest first, top-level only
    assert rows[0]["created_at"].tzinfo is not None
    rows, total = store.page_jobs(JobQuery(sort="name", desc=False, page=3, per_page=3))
    assert total == 7 and [r["name"] for r in rows] == ["job6"]
    rows, total = store.page_jobs(JobQuery(status="Failed", experiment="e1"))
    assert total == 2 and {r["name"] for r in rows} == {"job1", "job3"}
    rows, total = store.page_jobs(JobQuery(tag="team=4"))
    assert [r["name"] for r in rows] == ["job4"] and total == 1
    assert store.page_jobs(JobQuery(tag="team"))[1] == 7
    assert [r["name"] for r in store.page_jobs(JobQuery(parent="job0"))[0]] == ["child"]


def test_jobs_using_component(store: MetadataStore) -> None:
    def plan(*nodes: tuple[str, str, str]) -> dict[str, Any]:
        return {"plan": {"nodes": {n: {"component": {"name": c, "version": v}} for n, c, v in nodes}}}

    _job(store, "p1", type="pipeline", runtime=plan(("a", "train", "1"), ("b", "train", "2")))
    _job(store, "p2", type="pipeline", runtime=plan(("x", "train", "1"), ("y", "train", "1")))
    _job(store, "p3", type="pipeline", runtime=plan(("z", "trainer", "1")))
    _job(store, "c1", runtime={"plan": {"nodes": {"a": {"component": {"name": "train", "version": "1"}}}}})
    used = store.jobs_using_component("train", "1")
    assert [(u["job"], u["nodes"]) for u in used] == [("p2", ["x", "y"]), ("p1", ["a"])]  # newest first
    assert used[0]["created_at"].tzinfo is not None and used[0]["status"] == "Completed"
    assert [u["job"] for u in store.jobs_using_component("train", "2")] == ["p1"]
    assert store.jobs_using_component("train", "3") == []
    assert [u["job"] for u in store.jobs_using_component("train", "1", limit=1)] == ["p2"]


def test_page_jobs_sorts_by_duration(store: MetadataStore) -> None:
    """Regression (studio review): the Duration column sorted by start time. Durations (end - start, a
    running job's up to now) order the page; a job not started yet comes last either way."""
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    # started in this order, durations in another: 50 s, 5 s, 500 s, running for ~ days
    for name, start, secs in (("a", 0, 50), ("b", 10, 5), ("c", 20, 500), ("run", 30, None)):
        _job(store, name)
        store.update_job(name, start_time=t0 + timedelta(seconds=start),
                         end_time=None if secs is None else t0 + timedelta(seconds=start + secs))
    _job(store, "queued")
    rows, _ = store.page_jobs(JobQuery(sort="duration", desc=False))
    assert [r["name"] for r in rows] == ["b", "a", "c", "run", "queued"]
    rows, _ = store.page_jobs(JobQuery(sort="duration", desc=True))
    assert [r["name"] for r in rows] == ["run", "c", "a", "b", "queued"]
