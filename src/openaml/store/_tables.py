"""ORM tables. Rows stay inside the store; repositories return plain dicts/entities."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "DatastoreRow", "DataRow", "EnvironmentRow", "ComputeRow", "JobRow", "MetaRow", "ComponentRow",
           "StepCacheRow", "ScheduleRow"]


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    __tablename__ = "workspace_meta"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class DatastoreRow(Base):
    __tablename__ = "datastores"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict] = mapped_column(JSON)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DataRow(Base):
    __tablename__ = "data_assets"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_data_name_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[str] = mapped_column(String(64))
    version_num: Mapped[int | None] = mapped_column(Integer, nullable=True)
    type: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict] = mapped_column(JSON)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EnvironmentRow(Base):
    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_env_name_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[str] = mapped_column(String(64))
    version_num: Mapped[int | None] = mapped_column(Integer, nullable=True)
    spec_hash: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict] = mapped_column(JSON)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ComputeRow(Base):
    __tablename__ = "computes"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    max_instances: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JobRow(Base):
    __tablename__ = "jobs"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), index=True)
    experiment_name: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    compute: Mapped[str] = mapped_column(String(64), index=True)
    parent_name: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    spec: Mapped[dict] = mapped_column(JSON)
    runtime: Mapped[dict] = mapped_column(JSON, default=dict)
    status_history: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    start_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)


class ComponentRow(Base):
    __tablename__ = "components"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_component_name_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[str] = mapped_column(String(64))
    version_num: Mapped[int | None] = mapped_column(Integer, nullable=True)
    spec: Mapped[dict] = mapped_column(JSON)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StepCacheRow(Base):
    """A pipeline step that completed by running: what later identical steps reuse.

    ``reuse_key`` hashes everything that decides the outputs (component, code, environment, input
    contents, parameters); ``identity`` names the step across runs (experiment + node) so a step
    that runs again can say what changed since its last successful run.
    """

    __tablename__ = "pipeline_step_cache"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reuse_key: Mapped[str] = mapped_column(String(64), index=True)
    identity: Mapped[str] = mapped_column(String(512), index=True)
    job_name: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ScheduleRow(Base):
    __tablename__ = "schedules"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    spec: Mapped[dict] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
