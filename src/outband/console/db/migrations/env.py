"""Alembic environment for the console database.

The console runs migrations itself on start (``console.db.migrate``) and hands its own connection over in
``config.attributes["connection"]``.  Run by the ``alembic`` command instead (developing a new revision), it
connects to ``sqlalchemy.url`` with the async driver.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import outband.console.db.models  # noqa: F401  (registers the tables)
from outband.console.db.base import Base, UtcDateTime

config = context.config
target_metadata = Base.metadata


def render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Revisions name plain SQLAlchemy types, never our Python-side wrappers (they may change later)."""
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_on)
    finally:
        await engine.dispose()


given = config.attributes.get("connection")
if given is not None:
    run_on(given)
elif context.is_offline_mode():
    url = config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=bool(url and url.startswith("sqlite")))
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_online(config.get_main_option("sqlalchemy.url") or ""))
