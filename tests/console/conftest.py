"""Console fixtures: a console on a fresh database (SQLite in a temporary directory, or the PostgreSQL URL in
OUTBAND_TEST_DB, which these tests wipe), HTTP clients signed in with each role, and engines to manage."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tests.console._kit import ADMIN_PASSWORD, USER_PASSWORD, asgi_client, create_user, login

from outband.console.config import Settings, async_db_url
from outband.console.db.base import Base
from outband.console.permissions import Role
from outband.console.runtime import Runtime, open_runtime
from outband.console.secrets import generate_key

TEST_DB_ENV = "OUTBAND_TEST_DB"


async def wipe_database(url: str) -> None:
    """Drop everything in the database named by OUTBAND_TEST_DB (it belongs to the tests): console tables, and on
    PostgreSQL whatever else a test left (procrastinate's queue tables, functions and types)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            else:
                await conn.run_sync(Base.metadata.drop_all)
                await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        await engine.dispose()


@pytest.fixture
async def db_url(tmp_path: Path) -> str:
    shared = os.environ.get(TEST_DB_ENV)
    if not shared:
        return f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    url = async_db_url(shared)
    await wipe_database(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", db=db_url, admin_password=ADMIN_PASSWORD,
                    secret_key=generate_key(), device_timeout=5, device_connect_timeout=2, discovery_timeout=1)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = await open_runtime(settings)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def anon(runtime: Runtime) -> AsyncIterator[httpx2.AsyncClient]:
    async with asgi_client(runtime) as client:
        yield client


@pytest.fixture
async def admin(runtime: Runtime) -> AsyncIterator[httpx2.AsyncClient]:
    async with asgi_client(runtime) as client:
        yield await login(client, "admin", ADMIN_PASSWORD)


@dataclass
class Clients:
    """One signed-in client per role (sessions with CSRF headers)."""

    runtime: Runtime
    by_role: dict[Role, httpx2.AsyncClient]

    def __getitem__(self, role: Role) -> httpx2.AsyncClient:
        return self.by_role[role]


@pytest.fixture
async def clients(runtime: Runtime) -> AsyncIterator[Clients]:
    made: dict[Role, httpx2.AsyncClient] = {}
    try:
        for role in Role:
            client = asgi_client(runtime)
            made[role] = client
            if role is Role.ADMIN:
                await login(client, "admin", ADMIN_PASSWORD)
            else:
                await create_user(runtime, role.value, role)
                await login(client, role.value, USER_PASSWORD)
        yield Clients(runtime, made)
    finally:
        for client in made.values():
            await client.aclose()


