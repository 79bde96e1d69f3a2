"""A live console (``outband up``'s ``console_with_fleet``) served from a background thread, so synchronous
clients -- the ``outband fleet`` CLI, schemathesis -- can call it over real HTTP from the test's thread."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

from outband.cli.up import FleetPlan, Running, console_with_fleet
from outband.console.config import Settings
from outband.console.db.models import Transport
from outband.console.mps import MpsSettings
from outband.console.secrets import generate_key

ADMIN_PASSWORD = "Admin-pass-1234"
START_SECONDS = 60


def console_settings(data_dir: Path, **overrides: object) -> Settings:
    return Settings(data_dir=data_dir, listen="127.0.0.1:0", admin_password=ADMIN_PASSWORD,
                    secret_key=generate_key(), device_timeout=5, device_connect_timeout=2, **overrides)


def random_fleet_base() -> str:
    """A loopback /16 of our own, so parallel runs (and a developer's `outband up`) do not collide."""
    return f"127.{random.randint(100, 250)}.{random.randint(0, 250)}.1"


class LiveConsole:
    """``with LiveConsole(settings, engines) as live: live.url``; engines on a random loopback range (retried
    if taken), dialling the console's MPS (on an ephemeral port) unless ``transport`` is direct.  Leaving the
    block stops the console and the engines."""

    def __init__(self, settings: Settings, engines: int = 0, transport: Transport = Transport.CIRA) -> None:
        self.settings = settings
        self.engines = engines
        self.transport = transport
        self.mps = MpsSettings(mps_listen="127.0.0.1:0" if engines and transport is Transport.CIRA else "off")
        self.running: Running | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)

    @property
    def url(self) -> str:
        assert self.running is not None
        return self.running.server.url

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            for attempt in range(5):
                try:
                    plan = FleetPlan(self.engines, random_fleet_base(), transport=self.transport)
                    async with console_with_fleet(self.settings, plan, self.mps) as running:
                        self.running = running
                        self._ready.set()
                        await self._stop.wait()
                    return
                except OSError:
                    if attempt == 4:
                        raise
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def __enter__(self) -> LiveConsole:
        self._thread.start()
        if not self._ready.wait(START_SECONDS):
            raise TimeoutError("the console did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_SECONDS)
        self._loop.close()
