"""The JobRunner seam, and LocalRunner: fleet jobs run inside the console process on asyncio.

:class:`JobRunner` is what the API, the scheduler and the CLI see: ``submit`` a job (an operation, its
parameters, the devices), ``enqueue`` one already stored, ``cancel`` it, follow it through ``events``.  Two
implementations share the task bodies (:mod:`.execute`) and the rows (:mod:`.store`): :class:`LocalRunner`
here (the default, SQLite or PostgreSQL, one console process) and ``ProcrastinateRunner`` (PostgreSQL, many
worker processes).

Theory of operation (LocalRunner).  Each job has one driver task that walks the job's pending rows page by page
and starts one task per device, at most ``concurrency`` tasks per job.  A device task waits for a global slot
(``concurrency`` devices in flight across all jobs: the console's connection budget), then for the device's
lock (one conversation per device, shared with the health poller), then *claims* its row (committed before the
device is contacted) and runs one attempt.  The outcome is committed (with what the operation stores and the
device's learnt state) before its event is published, so whatever a subscriber sees can be read back.  A
transient failure puts the row back to pending and re-queues the device after a backoff; everything else is
final.  The driver ends when no row is pending, running or waiting for a retry, and closes the job.

Cancel: rows not yet claimed are cancelled at once (their tasks are stopped while they still wait); devices
already being talked to finish their call and keep their real outcome.  Stop (console shutdown): the same,
but nothing is marked; the rows stay as they are and the next start resumes the job.  A hard kill leaves
claimed rows ``running``; on the next start they run again if the operation may be repeated and are reported
as ``interrupted`` otherwise (:func:`.store.resume_interrupted`), so every device ends with exactly one
outcome and no non-repeatable operation reaches a device twice.

LocalRunner assumes it is the only runner on its database: use ProcrastinateRunner to run jobs from several
processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.base import utcnow
from ..db.database import Database
from ..db.models import Device, Job, Status
from ..devices.connect import DeviceTarget
from ..devices.repository import chunks
from ..metrics import LATENCY_BUCKETS, ConsoleMetrics
from ..runtime import Runtime
from ..secrets import SecretBox, SecretKeyError
from . import execute, store
from .events import Event, JobEvents
from .locks import DeviceLocks
from .operations import OPERATIONS, Operation
from .store import JobSpec, Outcome, Unit
from .writer import BatchWriter

log = logging.getLogger("outband.console.jobs")

TARGET_BATCH: Final = 500
STOP_GRACE: Final = 10.0
ALL_ROWS: Final = 2**31 - 1
"""The largest row id (ids are 32-bit integers on every database)."""


@dataclass(frozen=True, slots=True)
class Rows:
    """The part of a job one driver runs: rows ``first``..``last`` by row id (LocalRunner: all of them)."""

    job_id: int
    first: int = 0
    last: int = ALL_ROWS


@dataclass(frozen=True, slots=True)
class JobRequest:
    operation: str
    params: Mapping[str, Any]
    """Already validated against the operation's parameter model (JSON-ready)."""
    device_ids: Sequence[int]
    created_by: str | None = None
    created_by_id: int | None = None
    schedule_id: int | None = None


@runtime_checkable
class JobRunner(Protocol):
    """What runs jobs.  A runner is a console service (``runtime.start_service``) named ``jobs``."""

    name: str
    events: JobEvents
    locks: DeviceLocks
    """This process's device locks: hold one to talk to a device outside a job (the health poller does)."""

    async def start(self, runtime: Runtime) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, request: JobRequest) -> int:
        """Store the job with one row per device and start it; returns its id."""
        ...

    async def enqueue(self, job_id: int) -> None:
        """Start (or resume) a job already stored, e.g. by the scheduler in its own transaction."""
        ...

    async def cancel(self, job_id: int) -> Status | None:
        """Ask a job to stop; returns its status when asked (None: no such job)."""
        ...


class JobMetrics:
    """The runner's instruments beside the console's job counters (``ConsoleMetrics``)."""

    def __init__(self, base: ConsoleMetrics) -> None:
        self.base = base
        registry = base.registry
        self.attempt_seconds = Histogram(
            "outband_job_device_attempt_seconds", "Time of one attempt of an operation on one device.",
            ["operation"], buckets=LATENCY_BUCKETS, registry=registry)
        self.retries = Counter("outband_job_retries", "Device attempts that failed transiently and were retried.",
                               ["operation", "reason"], registry=registry)
        self.in_flight = Gauge("outband_job_devices_in_flight", "Devices being talked to by jobs right now.",
                               registry=registry)
        self.waiting_retry = Gauge("outband_job_devices_waiting_retry", "Devices waiting for a retry.",
                                   registry=registry)


_METRICS: weakref.WeakKeyDictionary[ConsoleMetrics, JobMetrics] = weakref.WeakKeyDictionary()


def job_metrics(base: ConsoleMetrics) -> JobMetrics:
    """One set of job instruments per console registry, whichever runner asks first."""
    found = _METRICS.get(base)
    if found is None:
        found = _METRICS[base] = JobMetrics(base)
    return found


def job_event(job_id: int, status: Status, counts: Mapping[str, int], total: int,
              waiting_offline: int | None = None) -> Event:
    """A job's progress; ``waiting_offline`` only where it was counted (the API's snapshots, not the runner)."""
    event: Event = {"type": "job", "job_id": job_id, "status": status.value, "counts": dict(counts), "total": total}
    if waiting_offline is not None:
        event["waiting_offline"] = waiting_offline
    return event


async def load_targets(session: AsyncSession, box: SecretBox, units: Sequence[Unit]) -> dict[int, DeviceTarget | str]:
    """Connection details per device id, or why there are none (the device was deleted, its credential does
    not decrypt)."""
    wanted = sorted({u.device_id for u in units if u.device_id is not None})
    found: dict[int, DeviceTarget | str] = {}
    for part in chunks(wanted):
        for device in (await session.execute(select(Device).where(Device.id.in_(part)))).scalars():
            try:
                found[device.id] = DeviceTarget.of(device, box.decrypt(device.password_enc))
            except SecretKeyError as exc:
                found[device.id] = str(exc)
    return found


@dataclass(slots=True)
class Waiting:
    """A device waiting for its retry: the timer, and the wish to be woken when it dials in (CIRA)."""

    timer: asyncio.TimerHandle
    forget_online: Callable[[], None] | None = None

    def cancel(self) -> None:
        self.timer.cancel()
        if self.forget_online is not None:
            self.forget_online()


@dataclass(eq=False)
class LiveJob:
    """A job's rows being driven in this process: what is ready, running, waiting for a retry."""

    rows: Rows
    spec: JobSpec
    operation: Operation
    params: Any
    counts: dict[str, int]
    total: int
    ready: deque[Unit] = field(default_factory=deque)
    tasks: dict[asyncio.Task[None], Unit] = field(default_factory=dict)
    delayed: dict[int, Waiting] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_loaded: int = 0
    exhausted: bool = False
    """Every pending row has been loaded at least once (later ones come back through retries)."""
    cancelling: bool = False
    stopping: bool = False

    def halted(self) -> bool:
        """Cancelled or stopping: start nothing new."""
        return self.cancelling or self.stopping

    def move(self, old: Status, new: Status) -> None:
        self.counts[old.value] -= 1
        self.counts[new.value] += 1

    @property
    def done(self) -> bool:
        return not self.ready and not self.tasks and not self.delayed and self.exhausted


class LocalRunner:
    """Jobs on the console's own event loop.  ``concurrency`` defaults to the console's ``device_concurrency``."""

    name = "jobs"

    def __init__(self, *, concurrency: int | None = None, retry: execute.RetryPolicy | None = None,
                 stop_grace: float = STOP_GRACE) -> None:
        self.events = JobEvents()
        self.locks = DeviceLocks()
        self.retry = retry or execute.RetryPolicy()
        self._concurrency = concurrency
        self._stop_grace = stop_grace
        self._jobs: dict[Rows, LiveJob] = {}
        self._drivers: dict[Rows, asyncio.Task[None]] = {}
        self._runtime: Runtime | None = None
        self._writer: BatchWriter | None = None
        self._slots = asyncio.Semaphore(1)
        self._stopping = False

    # ------------------------------------------------------------------------------------------ service

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the job runner is not started")
        return self._runtime

    @property
    def writer(self) -> BatchWriter:
        if self._writer is None:
            raise RuntimeError("the job runner is not started")
        return self._writer

    @property
    def concurrency(self) -> int:
        return self._concurrency or self.runtime.settings.device_concurrency

    async def start(self, runtime: Runtime) -> None:
        self._prepare(runtime)
        async with runtime.db.read() as session:
            unfinished = await store.unfinished_jobs(session)
        for job_id in unfinished:
            await self.enqueue(job_id)
        if unfinished:
            log.info("resuming %d unfinished job(s)", len(unfinished))

    def _prepare(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._slots = asyncio.Semaphore(self.concurrency)
        self._writer = BatchWriter(runtime.db)
        self._writer.start()
        self.metrics = job_metrics(runtime.metrics)

    async def stop(self) -> None:
        self._stopping = True
        for live in self._jobs.values():
            live.stopping = True
            self._stop_waiting(live)
            self._drop_delayed(live)  # their rows stay pending: the next start resumes them
            live.wake.set()
        drivers = list(self._drivers.values())
        if drivers:
            _, late = await asyncio.wait(drivers, timeout=self._stop_grace)
            if late:  # devices still mid-call: abandon them (their rows stay claimed; the next start settles them)
                devices = [task for live in self._jobs.values() for task in live.tasks]
                for task in [*devices, *late]:
                    task.cancel()
                await asyncio.gather(*devices, *late, return_exceptions=True)
        if self._writer is not None:
            await self._writer.close()

    # ------------------------------------------------------------------------------------------ the seam

    async def submit(self, request: JobRequest) -> int:
        if request.operation not in OPERATIONS:
            raise ValueError(f"no operation {request.operation!r}")
        async with self.runtime.db.write() as session:
            job_id = await store.create_job(
                session, operation=request.operation, params=request.params, device_ids=request.device_ids,
                created_by=request.created_by, created_by_id=request.created_by_id, schedule_id=request.schedule_id)
        self.runtime.metrics.jobs_submitted.labels(operation=request.operation).inc()
        await self.enqueue(job_id)
        return job_id

    async def enqueue(self, job_id: int) -> None:
        if self._stopping:
            return  # stored: the next start resumes it
        rows = Rows(job_id)
        if rows not in self._drivers:
            task = asyncio.create_task(self._drive(rows), name=f"job-{job_id}")
            self._drivers[rows] = task
            task.add_done_callback(functools.partial(self._driver_done, rows))

    async def cancel(self, job_id: int) -> Status | None:
        async with self.runtime.db.write() as session:
            status = await store.request_cancel(session, job_id)
        running_here = [live for rows, live in self._jobs.items() if rows.job_id == job_id]
        for live in running_here:
            self._cancel_live(live)
        if not running_here and status is not None and not status.finished \
                and not any(rows.job_id == job_id for rows in self._drivers):
            async with self.runtime.db.write() as session:
                await store.finish(session, job_id)
        return status

    def _cancel_live(self, live: LiveJob) -> None:
        live.cancelling = True
        self._stop_waiting(live)
        self._drop_delayed(live)
        live.ready.clear()
        live.exhausted = True
        live.wake.set()

    # ------------------------------------------------------------------------------------------ driving

    def _driver_done(self, rows: Rows, task: asyncio.Task[None]) -> None:
        self._drivers.pop(rows, None)
        self._jobs.pop(rows, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("job %d stopped on an error; it resumes at the next start", rows.job_id,
                      exc_info=task.exception())

    async def _drive(self, rows: Rows) -> None:
        job_id = rows.job_id
        live = await self._open(rows)
        if live is None:
            return
        self._jobs[rows] = live
        self.runtime.metrics.jobs_running.inc()
        try:
            self.events.publish(job_id, job_event(job_id, Status.RUNNING, live.counts, live.total))
            await self._feed(live)
        finally:
            self.runtime.metrics.jobs_running.dec()
        if live.stopping:
            return
        status = await self.writer.write(lambda s: store.finish(s, job_id))
        async with self.runtime.db.read() as session:
            live.counts = await store.counts(session, job_id)
        self.events.publish(job_id, job_event(job_id, status, live.counts, live.total))
        log.info("job %d (%s) %s: %s", job_id, live.operation.name, status.value,
                 ", ".join(f"{n} {s}" for s, n in live.counts.items() if n))

    async def _open(self, rows: Rows) -> LiveJob | None:
        """Take the job, settle what a previous process left half-done, and load its first page."""
        job_id = rows.job_id
        async with self.runtime.db.write() as session:
            spec = await store.begin(session, job_id)
            if spec is None:
                return None
            operation = OPERATIONS.get(spec.operation)
            params: Any = None
            problem = None
            if operation is None:
                problem = f"no operation {spec.operation!r} in this console version"
            else:
                try:
                    params = operation.parse(spec.params)
                except ValidationError as exc:
                    problem = f"the job's parameters are not valid for {spec.operation}: {exc.errors()[0]['msg']}"
            if operation is None or problem is not None:
                await store.fail_unfinished(session, job_id, reason="bad_params", error=problem or "")
                await store.finish(session, job_id)
                return None
            interrupted = await self._settle_interrupted(session, rows, repeatable=operation.repeatable(params))
            if interrupted:
                log.warning("job %d: %d device(s) were interrupted mid-call and are not repeated", job_id, interrupted)
            counts = await store.counts(session, job_id)
        return LiveJob(rows, spec, operation, params, counts, total=sum(counts.values()))

    async def _settle_interrupted(self, session: AsyncSession, rows: Rows, *, repeatable: bool) -> int:
        """Rows another (dead) process left claimed: this runner is the only one, so every such row is."""
        return await store.resume_interrupted(session, rows.job_id, repeatable=repeatable, first=rows.first,
                                              last=rows.last)

    async def _feed(self, live: LiveJob) -> None:
        if live.spec.cancel_requested:
            live.cancelling = True
        while not live.halted():
            if not live.ready and not live.exhausted:
                await self._load_page(live)
                continue
            while live.ready and len(live.tasks) < self.concurrency:
                if live.ready[0].target is None and live.ready[0].problem is None:
                    await self._load_targets(live)
                    if live.halted() or not live.ready:
                        break
                unit = live.ready.popleft()
                task = asyncio.create_task(self._unit(live, unit), name=f"job-{live.spec.id}-device-{unit.device_id}")
                live.tasks[task] = unit
                task.add_done_callback(functools.partial(self._unit_done, live))
            if live.done:
                return
            if not live.ready and not live.exhausted:
                continue
            # Nothing to start until a device finishes, a retry falls due, or a cancel/stop arrives; the state
            # was just read with no await since, so clearing here loses no wake-up.
            live.wake.clear()
            await self._idle(live)
        if live.tasks:  # devices already claimed finish their call; the waiting ones were stopped
            await asyncio.wait(list(live.tasks))

    async def _idle(self, live: LiveJob) -> None:
        """Wait for something to do (a device finished, a retry fell due, a cancel)."""
        await live.wake.wait()

    async def _load_page(self, live: LiveJob) -> None:
        after = max(live.last_loaded, live.rows.first - 1)
        async with self.runtime.db.read() as session:
            page = await store.pending_units(session, live.spec.id, after=after, last=live.rows.last)
        if not page:
            live.exhausted = True
            return
        live.last_loaded = page[-1].row_id
        live.ready.extend(page)

    async def _load_targets(self, live: LiveJob) -> None:
        batch = [u for _, u in zip(range(TARGET_BATCH), live.ready, strict=False) if u.target is None and not u.problem]
        async with self.runtime.db.read() as session:
            targets = await load_targets(session, self.runtime.box, batch)
        for unit in batch:
            found = targets.get(unit.device_id) if unit.device_id is not None else None
            if isinstance(found, DeviceTarget):
                unit.target = found
            else:
                unit.problem = found or "the device was deleted"

    def _stop_waiting(self, live: LiveJob) -> None:
        """Stop the device tasks that have not claimed their row yet (they hold nothing that needs undoing)."""
        for task, unit in live.tasks.items():
            if not unit.started:
                task.cancel()

    def _drop_delayed(self, live: LiveJob) -> None:
        for waiting in live.delayed.values():
            waiting.cancel()
        self.metrics.waiting_retry.dec(len(live.delayed))
        live.delayed.clear()

    def _unit_done(self, live: LiveJob, task: asyncio.Task[None]) -> None:
        live.tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("job %d: a device task failed", live.spec.id, exc_info=task.exception())
        live.wake.set()

    # ------------------------------------------------------------------------------------------ one device

    async def _unit(self, live: LiveJob, unit: Unit) -> None:
        async with self._slots:
            if live.halted():
                return
            if unit.target is None or unit.device_id is None:
                await self._record(live, unit, Outcome(Status.FAILED, reason="no_device",
                                                       error=unit.problem or "the device was deleted"),
                                   was=Status.PENDING)
                return
            async with self.locks.hold(unit.device_id):
                if live.halted():
                    return
                unit.started = True
                if not await self.writer.write_item(store.claim, unit.row_id):
                    return  # cancelled meanwhile
                unit.attempts += 1
                unit.first_try = unit.first_try or utcnow()
                live.move(Status.PENDING, Status.RUNNING)
                self.metrics.in_flight.inc()
                try:
                    outcome, seconds = await execute.attempt(
                        self.runtime.connector, live.operation, live.params, unit.target,
                        attempt_number=unit.attempts, policy=self.retry, first_try=unit.first_try)
                finally:
                    self.metrics.in_flight.dec()
                self.metrics.attempt_seconds.labels(operation=live.operation.name).observe(seconds)
                await self._record(live, unit, outcome, was=Status.RUNNING)

    async def _record(self, live: LiveJob, unit: Unit, outcome: Outcome, *, was: Status) -> None:
        try:
            stored = await self.writer.write_item(execute.persist, (unit, live.operation, outcome))
        except Exception as exc:
            log.exception("job %d: storing the outcome for device %s failed", live.spec.id, unit.device_name)
            stored = Outcome(Status.FAILED, reason="error", error=f"console error storing the outcome: {exc}")
            await self.writer.write(lambda s: store.record(s, [(unit, stored)]))
        live.move(was, stored.status)
        name = live.operation.name
        if stored.status is Status.PENDING:
            self.metrics.retries.labels(operation=name, reason=stored.reason or "unknown").inc()
            if not stored.counted:
                unit.attempts -= 1
            delay = max(0.0, (stored.retry_at - utcnow()).total_seconds()) if stored.retry_at else 0.0
            self._retry_later(live, unit, delay, sooner_if_online=stored.reason == "offline")
            self.events.publish(live.spec.id, {
                "type": "retry", "job_id": live.spec.id, "device_id": unit.device_id, "device_name": unit.device_name,
                "attempts": unit.attempts, "reason": stored.reason, "error": stored.error, "retry_in": round(delay, 3),
                "counts": dict(live.counts),
            })
            return
        self.runtime.metrics.job_device_results.labels(operation=name, status=stored.status.value).inc()
        self.events.publish(live.spec.id, {
            "type": "device", "job_id": live.spec.id, "device_id": unit.device_id, "device_name": unit.device_name,
            "status": stored.status.value, "attempts": unit.attempts, "result": stored.result, "error": stored.error,
            "reason": stored.reason, "counts": dict(live.counts),
        })

    def _retry_later(self, live: LiveJob, unit: Unit, delay: float, *, sooner_if_online: bool = False) -> None:
        """Run the device again after ``delay``, or (an offline CIRA device) as soon as it dials in."""
        unit.started = False
        if live.halted():
            return  # the row stays pending: cancelled when the job closes, or resumed after a restart

        def due() -> None:
            waiting = live.delayed.pop(unit.row_id, None)
            if waiting is not None:
                waiting.cancel()
                self.metrics.waiting_retry.dec()
                live.ready.appendleft(unit)
                live.wake.set()

        waiting = Waiting(asyncio.get_running_loop().call_later(delay, due))
        if sooner_if_online and unit.target is not None:
            waiting.forget_online = self.runtime.connector.when_online(unit.target, due)
        live.delayed[unit.row_id] = waiting
        self.metrics.waiting_retry.inc()


async def wait_for_job(db: Database, events: JobEvents, job_id: int) -> Event:
    """Follow a job until it finishes (tests, the CLI; bound it with ``asyncio.timeout``); returns its final
    ``job`` event."""
    async with events.subscribe(job_id) as subscription:
        while True:
            async with db.read() as session:
                job = await session.get(Job, job_id)
                if job is None:
                    raise LookupError(f"no job {job_id}")
                if job.status.finished:
                    return job_event(job_id, job.status, await store.counts(session, job_id), job.total)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # the job may be run elsewhere (no events here): look again
                    while True:
                        event = await subscription.get()
                        if event["type"] in ("job", "lagged") and event.get("status") != Status.RUNNING.value:
                            break
