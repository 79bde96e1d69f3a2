"""Fixtures for the relay, image and web UI tests: a console served on 127.0.0.1 with a fresh SQLite database,
and aiohttp sessions signed in with each role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from tests.console._kit import ADMIN_PASSWORD, USER_PASSWORD, create_user
from tests.web._kit import Served, served_console, signed_in

from outband.console.api.deps import CSRF_HEADER
from outband.console.config import Settings
from outband.console.permissions import Role
from outband.console.secrets import generate_key


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", db=f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
                    admin_password=ADMIN_PASSWORD, secret_key=generate_key(), device_timeout=10,
                    device_connect_timeout=3)


@pytest.fixture
async def console(settings: Settings) -> AsyncIterator[Served]:
    async with served_console(settings) as served:
        yield served


async def _session(console: Served, role: Role) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies for 127.0.0.1
    if role is Role.ADMIN:
        csrf = await signed_in(http, console.url, "admin", ADMIN_PASSWORD)
    else:
        await create_user(console.runtime, role.value, role)
        csrf = await signed_in(http, console.url, role.value, USER_PASSWORD)
    http.headers[CSRF_HEADER] = csrf  # type: ignore[index]
    return http


@pytest.fixture
async def admin(console: Served) -> AsyncIterator[aiohttp.ClientSession]:
    http = await _session(console, Role.ADMIN)
    try:
        yield http
    finally:
        await http.close()


@pytest.fixture
async def viewer(console: Served) -> AsyncIterator[aiohttp.ClientSession]:
    http = await _session(console, Role.VIEWER)
    try:
        yield http
    finally:
        await http.close()
