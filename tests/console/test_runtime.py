"""Start-up and shut-down: the first admin account, background tasks and services."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr
from tests.console._kit import asgi_client, login

from outband.console.runtime import Runtime, open_runtime


async def test_first_start_generates_the_admin_password_once(settings):
    unset = settings.model_copy(update={"admin_password": None})
    first = await open_runtime(unset)
    try:
        generated = first.generated_admin_password
        assert generated is not None
        assert len(generated) >= 16
        async with asgi_client(first) as client:
            await login(client, "admin", generated)
    finally:
        await first.close()
    second = await open_runtime(unset)
    try:
        assert second.generated_admin_password is None  # accounts exist: nothing shown again
    finally:
        await second.close()


async def test_a_weak_bootstrap_password_is_refused(settings):
    with pytest.raises(ValueError, match="10 to 256"):
        await open_runtime(settings.model_copy(update={"admin_password": SecretStr("short")}))


class Recorder:
    def __init__(self, name: str, journal: list[str]) -> None:
        self.name, self.journal = name, journal

    async def start(self, runtime: Runtime) -> None:
        self.journal.append(f"start {self.name}")

    async def stop(self) -> None:
        self.journal.append(f"stop {self.name}")


async def test_services_and_tasks_end_with_the_runtime(settings):
    runtime = await open_runtime(settings)
    journal: list[str] = []
    await runtime.start_service(Recorder("jobs", journal))
    await runtime.start_service(Recorder("poller", journal))
    assert runtime.service("jobs") is not None
    forever = runtime.spawn(asyncio.sleep(3600), name="sleeper")
    assert runtime.task("sleeper") is forever
    await runtime.close()
    assert journal == ["start jobs", "start poller", "stop poller", "stop jobs"]
    assert forever.cancelled()
