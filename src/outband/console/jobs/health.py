"""The health poller: keeps every device's reachability and power state fresh without piling up.

Theory of operation: one task keeps a heap of (due time, device).  A device is first polled at a random moment
within one interval of being seen (a console starting with 100,000 devices does not poll them all at once),
then again ``interval`` (± ``jitter``) after its previous poll *ended*, so a slow or unreachable device is
never polled twice at once and polls never queue up behind each other: when the fleet is larger than the
interval allows at the given concurrency, polls simply happen later (``outband_health_poll_lag_seconds``
says how much).  At most ``concurrency`` polls run at once, each holding the device's lock without waiting
for it: a device a job is talking to is skipped (the job learns the same and more) and looked at again a
quarter interval later.  The device list is re-read every ``refresh`` seconds; deleted devices drop out.

A poll is the power-state read every console makes (Enumerate ``CIM_ServiceAvailableToElement``); it writes
``reachable``, ``power_state``, ``last_checked_at`` and, on success, ``last_seen_at`` (on failure
``last_error``).  Writes go through the group-commit writer.

A CIRA device is polled only by the console process whose MPS holds its tunnel: its reachability is its
tunnel's, which the MPS writes as the tunnel comes and goes (and the poller reads its power state as it dials
in), so other processes would only add relayed polls -- a TLS connection to the holding node each -- or, for a
device that is away, learn nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Final

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import select

from ...client import services
from ..db.models import Device
from ..devices.connect import DeviceTarget
from ..devices.repository import record_state
from ..metrics import LATENCY_BUCKETS
from ..runtime import Runtime
from ..secrets import SecretKeyError
from .execute import classify
from .locks import DeviceLocks
from .runner import JobRunner
from .writer import BatchWriter

log = logging.getLogger("outband.console.health")

DEFAULT_INTERVAL: Final = 60.0
BUSY_RETRY: Final = 0.25
"""Fraction of the interval after which a device skipped because a job held it is looked at again."""


class HealthMetrics:
    def __init__(self, runtime: Runtime) -> None:
        registry = runtime.metrics.registry
        self.polls = Counter("outband_health_polls", "Health polls of devices, by outcome.", ["outcome"],
                             registry=registry)
        self.seconds = Histogram("outband_health_poll_seconds", "Time of one health poll.",
                                 buckets=LATENCY_BUCKETS, registry=registry)
        self.skipped_elsewhere = Counter(
            "outband_health_skipped_elsewhere", "Polls of CIRA devices skipped because their tunnel is not here.",
            registry=registry)
        self.skipped_busy = Counter("outband_health_skipped_busy", "Polls skipped because a job held the device.",
                                    registry=registry)
        self.lag = Gauge("outband_health_poll_lag_seconds", "How late the last poll started after it was due.",
                         registry=registry)
        self.devices = Gauge("outband_health_devices", "Devices the poller looks after.", registry=registry)
        self.in_flight = Gauge("outband_health_polls_in_flight", "Health polls running now.", registry=registry)


class HealthPoller:
    name = "health"

    def __init__(self, *, interval: float = DEFAULT_INTERVAL, jitter: float = 0.1, concurrency: int = 32,
                 refresh: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        if interval <= 0 or not 0 <= jitter < 1 or concurrency < 1:
            raise ValueError("interval > 0, 0 <= jitter < 1, concurrency >= 1")
        self.interval = interval
        self.jitter = jitter
        self.concurrency = concurrency
        self.refresh = refresh
        self.clock = clock
        self._due: list[tuple[float, int]] = []
        self._known: dict[int, float] = {}
        """Device id -> its entry's due time in the heap (older heap entries of the device are stale)."""
        self._polling: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._runtime: Runtime | None = None
        self._writer: BatchWriter | None = None
        self._own_locks = DeviceLocks()
        self.polls_done = 0

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the health poller is not started")
        return self._runtime

    @property
    def locks(self) -> DeviceLocks:
        """The job runner's device locks, so a poll and a job never talk to one device at once."""
        runner = self.runtime.service("jobs")
        return runner.locks if isinstance(runner, JobRunner) else self._own_locks

    async def start(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.metrics = HealthMetrics(runtime)
        self._writer = BatchWriter(runtime.db)
        self._writer.start()
        self._loop_task = asyncio.create_task(self._loop(), name="health-poller")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._writer is not None:
            await self._writer.close()

    def poll_soon(self, device_id: int) -> None:
        """Poll a device at the next opportunity (e.g. just added)."""
        self._schedule(device_id, self.clock())
        self._wake.set()

    # ------------------------------------------------------------------------------------------ schedule

    def _schedule(self, device_id: int, due: float) -> None:
        self._known[device_id] = due
        heapq.heappush(self._due, (due, device_id))

    async def _refresh(self) -> None:
        async with self.runtime.db.read() as session:
            ids = set((await session.execute(select(Device.id))).scalars())
        now = self.clock()
        for device_id in ids - self._known.keys():
            self._schedule(device_id, now + random.uniform(0, self.interval))  # noqa: S311 -- spreading load
        for device_id in self._known.keys() - ids:
            del self._known[device_id]
        self.metrics.devices.set(len(self._known))

    async def _loop(self) -> None:
        next_refresh = self.clock()
        while True:
            now = self.clock()
            if now >= next_refresh:
                try:
                    await self._refresh()
                except Exception:
                    log.exception("reading the device list failed")
                next_refresh = now + self.refresh
            while self._due and self._due[0][0] <= self.clock():
                due, device_id = heapq.heappop(self._due)
                if self._known.get(device_id) != due or device_id in self._polling:
                    continue  # stale entry (deleted device, or rescheduled since)
                await self._slots.acquire()
                self.metrics.lag.set(max(0.0, self.clock() - due))
                self._polling.add(device_id)
                task = asyncio.create_task(self._poll(device_id), name=f"health-{device_id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            wait = next_refresh - self.clock()
            if self._due:
                wait = min(wait, self._due[0][0] - self.clock())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, 0.0)):
                    await self._wake.wait()

    # ------------------------------------------------------------------------------------------ one poll

    def _next_due(self) -> float:
        return self.clock() + self.interval * random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311

    async def _poll(self, device_id: int) -> None:
        next_due: float | None = None
        self.metrics.in_flight.inc()
        try:
            async with self.locks.try_hold(device_id) as held:
                if not held:
                    self.metrics.skipped_busy.inc()
                    next_due = self.clock() + self.interval * BUSY_RETRY
                    return
                target = await self._target(device_id)
                if target is None:
                    return
                if isinstance(target, DeviceTarget) and not self.runtime.connector.reachable_now(target):
                    self.metrics.skipped_elsewhere.inc()  # a CIRA device whose tunnel is not here: see above
                    return
                await self._check(device_id, target)
        finally:
            self.metrics.in_flight.dec()
            self._polling.discard(device_id)
            self._slots.release()
            if device_id in self._known:
                self._schedule(device_id, next_due if next_due is not None else self._next_due())
            self.polls_done += 1

    async def _target(self, device_id: int) -> DeviceTarget | str | None:
        async with self.runtime.db.read() as session:
            device = await session.get(Device, device_id)
            if device is None:
                self._known.pop(device_id, None)
                return None
            try:
                return DeviceTarget.of(device, self.runtime.box.decrypt(device.password_enc))
            except SecretKeyError as exc:
                return str(exc)

    async def _check(self, device_id: int, target: DeviceTarget | str) -> None:
        assert self._writer is not None
        started = time.perf_counter()
        if isinstance(target, str):
            outcome, error, power = "error", target, None
        else:
            client = self.runtime.connector.client(target, operation="health")
            try:
                power = await services.power_state(client)
                outcome, error = "ok", None
            except Exception as exc:
                reason, _ = classify(exc)
                if reason == "error":
                    log.exception("health poll of %s failed", target.name)
                outcome, error, power = reason, str(exc) or type(exc).__name__, None
            finally:
                await client.close()
        self.metrics.seconds.observe(time.perf_counter() - started)
        self.metrics.polls.labels(outcome=outcome).inc()
        reachable = outcome in ("ok", "refused", "bad_response")
        state: dict[str, Any] = {"power_state": power} if power is not None else {}
        await self._writer.write(lambda s: record_state(s, device_id, reachable=reachable, error=error, **state))
