"""Bring the database schema to the newest revision; the console does this on every start.

On SQLite, foreign keys are switched off while migrating (batch migrations rebuild tables, and dropping the
old copy would otherwise cascade deletes) and checked afterwards.  On PostgreSQL an advisory lock keeps two
consoles starting at once from migrating together.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from .database import Database

_MIGRATION_LOCK: Final = 0x6F75_7462  # "outb"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("outband.console.db") / "migrations"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _downgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


def _set_sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    # Outside any transaction (the driver runs in autocommit mode, see database.py), where the pragma works.
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"migration left {len(problems)} broken foreign key(s), first: {problems[0]}")


async def upgrade(db: Database, revision: str = "head") -> None:
    await _migrate(db, revision, down=False)


async def downgrade(db: Database, revision: str) -> None:
    await _migrate(db, revision, down=True)


async def _migrate(db: Database, revision: str, *, down: bool) -> None:
    step = _downgrade if down else _upgrade
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.run_sync(_set_sqlite_foreign_keys, False)
        try:
            writer = await conn.execution_options(outband_write=True)
            async with writer.begin():
                await writer.run_sync(step, revision)
                if db.is_sqlite:
                    await writer.run_sync(_check_sqlite_foreign_keys)
        finally:
            if db.is_sqlite:
                await conn.run_sync(_set_sqlite_foreign_keys, True)


async def revision_of(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(current_revision)
