"""Alembic environment: runs against the connection handed over by gemwatch.events.store."""

from __future__ import annotations

from alembic import context

from gemwatch.events.schema import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("gemwatch migrations run through gemwatch.events.store.migrate()")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
