"""Alembic environment: migrations run on the connection handed over by
:mod:`passerelle.storage.migrate` (so the async engine and SQLite in-memory
databases work the same way)."""

from alembic import context

from passerelle.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `passerelle migrate`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
