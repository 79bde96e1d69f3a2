"""Job fixtures: a console whose job runner (fast retries), scheduler and clients per role are running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from tests.console._kit import ADMIN_PASSWORD, login
from tests.console.jobs._kit import client, role_clients

from outband.console.config import Settings
from outband.console.jobs.execute import RetryPolicy
from outband.console.jobs.runner import LocalRunner
from outband.console.jobs.scheduler import Scheduler
from outband.console.permissions import Role
from outband.console.runtime import Runtime
from outband.console.secrets import generate_key

FAST_RETRY = RetryPolicy(max_attempts=3, base=0.05, cap=0.2)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Short device timeouts: fault tests wait for them."""
    return Settings(data_dir=tmp_path / "data", db=db_url, admin_password=ADMIN_PASSWORD, secret_key=generate_key(),
                    device_timeout=1.0, device_connect_timeout=1.0, device_concurrency=64)


@pytest.fixture
async def runner(runtime: Runtime) -> LocalRunner:
    started = LocalRunner(retry=FAST_RETRY)
    await runtime.start_service(started)
    return started


@pytest.fixture
async def scheduler(runtime: Runtime, runner: LocalRunner) -> Scheduler:
    started = Scheduler()
    await runtime.start_service(started)
    return started


@pytest.fixture
async def roles(runtime: Runtime, runner: LocalRunner) -> AsyncIterator[dict[Role, httpx2.AsyncClient]]:
    made = await role_clients(runtime)
    try:
        yield made
    finally:
        for c in made.values():
            await c.aclose()


@pytest.fixture
async def api(runtime: Runtime, runner: LocalRunner) -> AsyncIterator[httpx2.AsyncClient]:
    """The admin's client."""
    async with client(runtime) as admin:
        yield await login(admin, "admin", ADMIN_PASSWORD)
