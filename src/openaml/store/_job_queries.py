"""Read-only queries of the jobs table for the studio: one sorted, filtered page, and the pipeline
jobs that use a component version.

The job service's ``list`` loads whole records; the studio's job list needs a sorted, filtered page
of a table that may hold 100,000 jobs, so :meth:`JobQueries.page_jobs` asks for exactly one page
(LIMIT/OFFSET on an indexed order) and the total count. :class:`MetadataStore` has these methods
(it inherits this mixin), so they share its engine and its contract (plain dicts, UTC datetimes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from openaml.store._tables import JobRow

__all__ = ["JobQuery", "JobQueries", "JOB_SORTS"]

#: sort key -> column (the studio's sortable job list headers)
JOB_SORTS: dict[str, Any] = {"created": JobRow.seq, "name": JobRow.name, "status": JobRow.status, "type": JobRow.type,
             "experiment": JobRow.experiment_name, "compute": JobRow.compute, "started": JobRow.start_time,
             "duration": None}  # computed per dialect: end (or now, while running) minus start (_duration)


def _duration(dialect: str) -> Any:
    """Seconds from a job's start to its end (now while it runs); NULL before it starts. SQLite stores
    UTC date-times as text (``julianday`` reads them); PostgreSQL subtracts timestamps."""
    if dialect == "sqlite":
        end = func.coalesce(JobRow.end_time, func.datetime("now"))
        return (func.julianday(end) - func.julianday(JobRow.start_time)) * 86400.0
    end = func.coalesce(JobRow.end_time, func.now())
    return func.extract("epoch", end - JobRow.start_time)


@dataclass
class JobQuery:
    """Filters of a job page (None: any). ``tag`` is ``key`` or ``key=value``; ``since``/``until``
    bound ``created_at`` (``until`` exclusive); ``parent`` gives one job's children (else top-level
    jobs only); ``sort`` is a key of :data:`JOB_SORTS`; ``page`` counts from 1."""

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


class JobQueries:
    """The studio's queries of jobs; mixed into :class:`openaml.store.MetadataStore`."""

    def _session(self) -> Session:  # provided by MetadataStore
        raise NotImplementedError

    @staticmethod
    def _job(row: JobRow) -> dict[str, Any]:  # provided by MetadataStore
        raise NotImplementedError

    def page_jobs(self, jq: JobQuery) -> tuple[list[dict[str, Any]], int]:
        """One page of jobs (records as :meth:`list_jobs` gives) and the total number matching ``jq``.
        Two queries whatever the table's size (a count and an indexed LIMIT/OFFSET)."""
        with self._session() as s:
            column: Any = JOB_SORTS.get(jq.sort) or JobRow.seq
            if jq.sort == "duration":
                column = _duration(s.get_bind().dialect.name)
            total = int(s.scalar(_where(select(func.count()).select_from(JobRow), jq)) or 0)
            order = (column.desc() if jq.desc else column.asc()).nulls_last()
            q = _where(select(JobRow), jq).order_by(order, JobRow.seq.desc())
            q = q.offset(max(0, jq.page - 1) * jq.per_page).limit(jq.per_page)
            rows = [self._job(r) for r in s.scalars(q)]
        return rows, total

    def jobs_using_component(self, name: str, version: str, limit: int = 200) -> list[dict[str, Any]]:
        """Pipeline jobs, newest first (at most ``limit``), one of whose nodes runs component
        ``name`` at ``version``: ``[{"job", "display_name", "status", "created_at", "nodes": [node]}]``.

        The nodes are those of the pipeline's compiled plan (``runtime.plan.nodes``), where a
        reference such as ``azureml:name@latest`` is already resolved to the version that ran
        (Azure ML studio's component page, "Jobs" tab)."""
        needle = f'"name": "{name}"'
        out: list[dict[str, Any]] = []
        with self._session() as s:
            q = (select(JobRow.name, JobRow.display_name, JobRow.status, JobRow.created_at, JobRow.runtime)
                 .where(JobRow.type == "pipeline", cast(JobRow.runtime, String).contains(needle))
                 .order_by(JobRow.seq.desc()))
            for job, display, status, created, runtime in s.execute(q):
                nodes = ((runtime or {}).get("plan") or {}).get("nodes") or {}
                used = [n for n, nd in nodes.items() if isinstance(nd, dict)
                        and (nd.get("component") or {}).get("name") == name
                        and str((nd.get("component") or {}).get("version")) == str(version)]
                if used:
                    out.append({"job": job, "display_name": display, "status": status,
                                "created_at": created.replace(tzinfo=UTC) if created and created.tzinfo is None else created,
                                "nodes": sorted(used)})
                    if len(out) >= limit:
                        break
        return out
