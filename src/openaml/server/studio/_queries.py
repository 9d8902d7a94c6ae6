"""Server-side paging of the job list (one SQL query per page, whatever the number of jobs).

The job service's ``list`` loads whole records; the studio's list needs a sorted, filtered page of
a table that may hold 100,000 jobs, so it asks the metadata store for exactly one page (LIMIT/OFFSET
on an indexed order) and the total count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, select

from openaml.store._tables import JobRow

__all__ = ["JobQuery", "SORTS", "page_jobs", "experiment_names"]

#: sort key -> column (the list's sortable headers)
SORTS = {"created": JobRow.seq, "name": JobRow.name, "status": JobRow.status, "type": JobRow.type,
         "experiment": JobRow.experiment_name, "compute": JobRow.compute, "started": JobRow.start_time}


@dataclass
class JobQuery:
    """Filters of the job list (None: any). ``tag`` is ``key`` or ``key=value``; dates are ISO days."""

    status: str | None = None
    type: str | None = None
    experiment: str | None = None
    tag: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    parent: str | None = None
    sort: str = "created"
    desc: bool = True
    page: int = 1
    per_page: int = 50
    extra: dict[str, Any] = field(default_factory=dict)


def _where(q: Any, jq: JobQuery) -> Any:
    if jq.parent:
        q = q.where(JobRow.parent_name == jq.parent)
    else:
        q = q.where(JobRow.parent_name.is_(None))
    q = q.where(JobRow.archived.is_(False))
    if jq.status:
        q = q.where(JobRow.status == jq.status)
    if jq.type:
        q = q.where(JobRow.type == jq.type)
    if jq.experiment:
        q = q.where(JobRow.experiment_name == jq.experiment)
    if jq.since:
        q = q.where(JobRow.created_at >= jq.since)
    if jq.until:
        q = q.where(JobRow.created_at < jq.until)
    if jq.tag:
        key, eq, value = jq.tag.partition("=")
        # tags live in the job's spec (JSON); match the serialized pair (portable across SQLite and PostgreSQL)
        needle = f'"{key}": "{value}"' if eq else f'"{key}":'
        q = q.where(cast(JobRow.spec, String).contains(needle))
    return q


def page_jobs(store: Any, jq: JobQuery) -> tuple[list[dict[str, Any]], int]:
    """One page of jobs (store rows, as :meth:`MetadataStore.list_jobs` gives) and the total matching."""
    column = SORTS.get(jq.sort, JobRow.seq)
    with store._session() as s:
        total = int(s.scalar(_where(select(func.count()).select_from(JobRow), jq)) or 0)
        q = _where(select(JobRow), jq).order_by(column.desc() if jq.desc else column.asc(), JobRow.seq.desc())
        q = q.offset(max(0, jq.page - 1) * jq.per_page).limit(jq.per_page)
        rows = [store._job(r) for r in s.scalars(q)]
    return rows, total


def experiment_names(tracking: Any) -> list[str]:
    """Names of the workspace's active experiments (MLflow's experiments table: small, unlike the jobs
    table that a distinct over job rows would scan), sorted; MLflow's ``Default`` left out."""
    from mlflow.store.tracking.dbmodels.models import SqlExperiment

    with tracking.store.ManagedSessionMaker() as session:
        q: Any = select(SqlExperiment.name).where(SqlExperiment.lifecycle_stage == "active")
        return sorted(str(n) for n in session.scalars(q) if n != "Default")
