"""Alembic environment: runs on the connection Warden hands it (see ``core.store.migrate``)."""

from __future__ import annotations

from alembic import context

from core.store import (  # noqa: F401 - each area's tables join the metadata
    schema_budgets,
    schema_costs,
    schema_delta,
    schema_evidence,
    schema_links,
)
from core.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `python app.py db upgrade`")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
