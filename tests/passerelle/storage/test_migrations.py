"""Migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from passerelle.storage import Base
from passerelle.storage.migrate import current_revision, head_revision, is_up_to_date


async def test_migrated_schema_matches_the_models(hub_engine):
    assert await current_revision(hub_engine) == head_revision()
    assert await is_up_to_date(hub_engine)

    def differences(connection):
        return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)

    async with hub_engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_a_fresh_database_is_not_up_to_date(tmp_path):
    from passerelle.storage import make_engine

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        assert await current_revision(engine) is None
        assert not await is_up_to_date(engine)
    finally:
        await engine.dispose()
