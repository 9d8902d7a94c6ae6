"""Alembic environment: runs on the connection the store hands over (no engine of its own)."""

from __future__ import annotations

from alembic import context

from openaml.store._tables import Base

connection = context.config.attributes.get("connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
