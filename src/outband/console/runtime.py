"""One running console: its settings, database, secret key, metrics, device connector and background tasks.

:func:`open_runtime` is the start-up sequence, every step of which must succeed before the console serves:
create the data directory, migrate the database, load (or on a fresh database generate) the secret key and
prove it decrypts what is stored, create the first admin account, and close what a previous process left
half-done.  The API app (``api.app.create_app``), ``outband console`` and ``outband up`` all start here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .auth import bootstrap_admin
from .config import Settings
from .db.database import Database
from .db.migrate import upgrade
from .devices.connect import DeviceConnector
from .devices.discovery import fail_interrupted
from .logs import register_secret
from .metrics import ConsoleMetrics
from .secrets import SecretBox, check_key, load_box, stored_credentials

log = logging.getLogger("outband.console")


class Service(Protocol):
    """Long-running work the console owns (job runner, health poller, schedule clock, MPS): started once the
    runtime is open, stopped before the database closes."""

    name: str

    async def start(self, runtime: Runtime) -> None: ...

    async def stop(self) -> None: ...


@dataclass(eq=False)
class Runtime:
    settings: Settings
    db: Database
    box: SecretBox
    metrics: ConsoleMetrics
    connector: DeviceConnector
    key_file: Path | None = None
    """Where the secret key came from (None: the environment)."""
    generated_admin_password: str | None = None
    """Set on the first start when no admin password was given: show it once, then forget it."""
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _services: list[Service] = field(default_factory=list)

    async def start_service(self, service: Service) -> None:
        """Start a service now and stop it (in reverse order of starting) when the runtime closes."""
        await service.start(self)
        self._services.append(service)
        log.info("started %s", service.name)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run background work owned by the console: cancelled and awaited on close, failures logged."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def task(self, name: str) -> asyncio.Task[Any] | None:
        """The running background task of that name, if any."""
        return next((t for t in self._tasks if t.get_name() == name and not t.done()), None)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    def service(self, name: str) -> Service | None:
        return next((s for s in self._services if s.name == name), None)

    async def close(self) -> None:
        while self._services:
            service = self._services.pop()
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %s failed", service.name)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.connector.close()
        await self.db.close()


async def open_runtime(settings: Settings) -> Runtime:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = Database(settings.database_url)
    try:
        await upgrade(db)
        box, key_file = load_box(settings, may_generate=await stored_credentials(db) == 0)
        await check_key(db, box)
        admin_password = settings.admin_password.get_secret_value() if settings.admin_password else None
        if admin_password:
            register_secret(admin_password)
        generated = await bootstrap_admin(db, admin_password)
        if generated:
            register_secret(generated)
        interrupted = await fail_interrupted(db)
        if interrupted:
            log.warning("%d discovery scan(s) were interrupted by the last shutdown", interrupted)
    except BaseException:
        await db.close()
        raise
    metrics = ConsoleMetrics()
    connector = DeviceConnector(metrics, concurrency=settings.device_concurrency, timeout=settings.device_timeout,
                                connect_timeout=settings.device_connect_timeout)
    log.info("console database ready", extra={"database": db.engine.url.render_as_string(hide_password=True),
                                              "key_id": box.key_id, "keys": box.key_count})
    return Runtime(settings, db, box, metrics, connector, key_file, generated)
