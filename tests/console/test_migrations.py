"""Migrations: from an empty database to the models exactly, down and up again, and on every start."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from outband.console.db.base import Base
from outband.console.db.database import Database
from outband.console.db.migrate import downgrade, head_revision, revision_of, upgrade
from outband.console.db.models import Tag, User
from outband.console.runtime import open_runtime


def _differences(connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def test_upgrade_from_empty_matches_the_models(db_url):
    db = Database(db_url)
    try:
        assert await revision_of(db) is None
        await upgrade(db)
        assert await revision_of(db) == head_revision()
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert tables == set(Base.metadata.tables) | {"alembic_version"}
        await upgrade(db)  # again: nothing to do
        await downgrade(db, "base")
        async with db.engine.connect() as conn:
            assert await conn.run_sync(lambda c: inspect(c).get_table_names()) == ["alembic_version"]
        await upgrade(db)
        assert await revision_of(db) == head_revision()
    finally:
        await db.close()


async def test_every_start_migrates_and_keeps_the_data(settings):
    first = await open_runtime(settings)
    await first.close()
    second = await open_runtime(settings)
    try:
        async with second.db.read() as session:
            assert list((await session.execute(select(User.username))).scalars()) == ["admin"]
        assert await revision_of(second.db) == head_revision()
    finally:
        await second.close()


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(runtime):
    if not runtime.db.is_sqlite:
        pytest.skip("SQLite settings")
    async with runtime.db.read() as session:
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await session.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await session.execute(text("PRAGMA busy_timeout"))).scalar() >= 1000


async def test_concurrent_read_then_write_transactions_all_commit(runtime):
    """Each writer reads, yields to the others, then writes: on SQLite that fails with "database is locked"
    unless write transactions take the lock up front."""

    async def writer(i: int) -> None:
        async with runtime.db.write() as session:
            await session.execute(select(Tag.id))
            await asyncio.sleep(0.005)
            session.add(Tag(name=f"t{i}"))

    await asyncio.gather(*(writer(i) for i in range(30)))
    async with runtime.db.read() as session:
        assert len((await session.execute(select(Tag.id))).all()) == 30
