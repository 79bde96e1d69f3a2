"""ProcrastinateRunner: fleet jobs on a PostgreSQL queue (procrastinate), worked by every console process.

The outgrown setup (DESIGN.md): PostgreSQL instead of SQLite, and as many console processes on as many hosts as
the fleet needs, all running this runner (``OUTBAND_JOB_RUNNER=procrastinate``).  It needs the optional
``procrastinate`` package and a PostgreSQL database.

Theory of operation.  A job is stored exactly as LocalRunner stores it (:mod:`.store`); then its pending rows
are cut into batches of ``batch_size`` consecutive rows and each batch becomes one procrastinate job
(``outband.run_rows(job_id, first, last)``) with ``lock`` = its own name, so no two copies of a batch ever run
at once, and ``queueing_lock`` = its name too, so a batch is queued at most once.  A job of one device gets
``lock = "outband-device-<id>"`` instead (ECOSYSTEM.md B6: interactive single-device actions).  Any console
process's worker picks batches up and runs them with LocalRunner's machinery restricted to the batch's rows:
the same task bodies, claims, retries, writes and events (events reach subscribers of the process that runs
the batch; the API's event stream also re-reads the job every two seconds, so it sees every process's work).

One conversation per device across processes: a device is held with a PostgreSQL session advisory lock on
one connection per process (:class:`PgDeviceLocks`) on top of the in-process lock.  Advisory locks die with
the session, so a crashed process frees its devices by itself, which is also how a row left ``running`` is
recognised as interrupted: only when its device's advisory lock can be taken is nobody still talking to it.
Cancel is a flag on the job row, which running batches re-read every ``cancel_poll`` seconds.  A janitor pass
(at start and every ``janitor_seconds``) settles interrupted rows and queues batches again for unfinished jobs
that have none queued or running, so a job survives the death of every process that worked on it.

The procrastinate schema is applied on the first start (guarded by an advisory lock); upgrading procrastinate
later may need its migrations (``procrastinate schema --migrations-path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import psycopg
from procrastinate import App, PsycopgConnector, exceptions
from procrastinate import worker as procrastinate_worker
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import Job, JobDevice, Status
from ..runtime import Runtime
from . import store
from .execute import RetryPolicy
from .locks import DeviceLocks
from .runner import LiveJob, LocalRunner, Rows

log = logging.getLogger("outband.console.jobs")

TASK: Final = "outband.run_rows"
QUEUE: Final = "outband-direct"
"""Devices any worker can reach.  CIRA devices will get a queue per MPS node (``outband-mps-<node>``)."""
LOCK_CLASS: Final = 0x4F42
"""First key of the two-key advisory locks held per device ("OB")."""
SCHEMA_LOCK: Final = 0x4F42_0001
BATCH: Final = 500


def conninfo(database_url: str) -> str:
    """A libpq connection string from the console's SQLAlchemy URL (``postgresql+psycopg://`` -> ``postgresql://``)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError("the procrastinate job runner needs PostgreSQL (set OUTBAND_DB to a postgresql:// URL)")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def batch_name(job_id: int, first: int) -> str:
    return f"outband-job-{job_id}-{first}"


def batches(row_ids: Sequence[int], size: int) -> list[tuple[int, int]]:
    """(first, last) row ids of consecutive batches of at most ``size`` rows."""
    return [(part[0], part[-1]) for part in (row_ids[i:i + size] for i in range(0, len(row_ids), size))]


class PgDeviceLocks(DeviceLocks):
    """Device locks shared by every process on the database: the in-process lock, then a session advisory lock
    taken on this process's lock connection (released when the block ends, or when the process dies)."""

    def __init__(self, info: str, *, poll: float = 0.2) -> None:
        super().__init__()
        self._info = info
        self._poll = poll
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._use = asyncio.Lock()

    async def open(self) -> None:
        self._connection = await psycopg.AsyncConnection.connect(self._info, autocommit=True)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _call(self, function: str, device_id: int) -> bool:
        async with self._use:
            if self._connection is None or self._connection.closed:
                # a lost connection took every lock it held with it; a new one starts with none
                self._connection = await psycopg.AsyncConnection.connect(self._info, autocommit=True)
            cursor = await self._connection.execute(f"SELECT {function}(%s, %s)", (LOCK_CLASS, device_id))
            row = await cursor.fetchone()
        return bool(row and row[0])

    async def _try_shared(self, device_id: int) -> bool:
        return await self._call("pg_try_advisory_lock", device_id)

    async def _release_shared(self, device_id: int) -> None:
        if self._connection is None or self._connection.closed:
            return  # the session ended: its locks are gone already
        try:
            await self._call("pg_advisory_unlock", device_id)
        except psycopg.OperationalError:
            log.warning("the device lock connection was lost; its locks went with it")

    async def free_elsewhere(self, device_id: int) -> bool:
        """Whether no process holds the device (takes and gives back its advisory lock)."""
        if self.busy(device_id) or not await self._try_shared(device_id):
            return False
        await self._release_shared(device_id)
        return True

    @asynccontextmanager
    async def hold(self, device_id: int) -> AsyncIterator[None]:
        async with super().hold(device_id):
            delay = self._poll / 4
            while not await self._try_shared(device_id):
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._poll)
            try:
                yield
            finally:
                await self._release_shared(device_id)

    @asynccontextmanager
    async def try_hold(self, device_id: int) -> AsyncIterator[bool]:
        async with super().try_hold(device_id) as held:
            if not held or not await self._try_shared(device_id):
                yield False
                return
            try:
                yield True
            finally:
                await self._release_shared(device_id)


class ProcrastinateRunner(LocalRunner):
    """Jobs in batches on procrastinate's queue; this process works ``worker_batches`` batches at a time."""

    def __init__(self, *, concurrency: int | None = None, retry: RetryPolicy | None = None, batch_size: int = BATCH,
                 worker_batches: int = 4, cancel_poll: float = 2.0, janitor_seconds: float = 60.0,
                 stop_grace: float = 10.0) -> None:
        super().__init__(concurrency=concurrency, retry=retry, stop_grace=stop_grace)
        self.batch_size = batch_size
        self.worker_batches = worker_batches
        self.cancel_poll = cancel_poll
        self.janitor_seconds = janitor_seconds
        self.app: App | None = None
        self._worker: procrastinate_worker.Worker | None = None
        self._side: list[asyncio.Task[None]] = []

    async def start(self, runtime: Runtime) -> None:
        info = conninfo(runtime.settings.database_url)
        self.locks = PgDeviceLocks(info)
        await self.locks.open()
        app = App(connector=PsycopgConnector(conninfo=info, min_size=1, max_size=8))
        await app.open_async()
        self.app = app
        await apply_schema(info)

        async def run_rows(job_id: int, first: int, last: int) -> None:
            await self._run_rows(Rows(job_id, first, last))

        app.task(name=TASK, queue=QUEUE)(run_rows)
        self._prepare(runtime)  # LocalRunner's start without its resume: the janitor's first pass resumes
        self._worker = procrastinate_worker.Worker(
            app=app, queues=[QUEUE], concurrency=self.worker_batches, install_signal_handlers=False,
            listen_notify=True, delete_jobs="successful", name="outband")
        self._side = [asyncio.create_task(self._worker.run(), name="procrastinate-worker"),  # type: ignore[no-untyped-call]
                      asyncio.create_task(self._janitor(), name="job-janitor")]

    async def stop(self) -> None:
        await super().stop()  # halts the batches running here (their rows stay for the next pass)
        if self._worker is not None:
            self._worker.stop()  # type: ignore[no-untyped-call]
        janitor = self._side[1:] if self._side else []
        for task in janitor:
            task.cancel()
        if self._side:
            await asyncio.gather(*self._side, return_exceptions=True)
        if self.app is not None:
            await self.app.close_async()
        if isinstance(self.locks, PgDeviceLocks):
            await self.locks.close()

    # ------------------------------------------------------------------------------------------ queueing

    async def enqueue(self, job_id: int) -> None:
        if self._stopping or self.app is None:
            return
        async with self.runtime.db.read() as session:
            rows = [(row_id, device_id) for row_id, device_id in await session.execute(
                select(JobDevice.id, JobDevice.device_id).where(JobDevice.job_id == job_id,
                                                                JobDevice.status == Status.PENDING)
                .order_by(JobDevice.id))]
        if not rows:
            async with self.runtime.db.write() as session:
                await store.finish(session, job_id)
            return
        task = self.app.tasks[TASK]
        for first, last in batches([row_id for row_id, _ in rows], self.batch_size):
            name = batch_name(job_id, first)
            lock = f"outband-device-{rows[0][1]}" if len(rows) == 1 else name
            with contextlib.suppress(exceptions.AlreadyEnqueued):
                await task.configure(lock=lock, queueing_lock=name).defer_async(job_id=job_id, first=first,
                                                                                last=last)

    async def _run_rows(self, rows: Rows) -> None:
        if rows in self._drivers or self._stopping:
            return
        current = asyncio.current_task()
        assert current is not None
        self._drivers[rows] = current
        try:
            await self._drive(rows)
        finally:
            self._drivers.pop(rows, None)
            self._jobs.pop(rows, None)

    # ------------------------------------------------------------------------------------------ other processes

    async def _settle_interrupted(self, session: AsyncSession, rows: Rows, *, repeatable: bool) -> int:
        """Only rows whose device nobody holds were interrupted (their claimer died with its locks); rows of
        a device another process is talking to are that process's business."""
        claimed = list((await session.execute(
            select(JobDevice.device_id).where(JobDevice.job_id == rows.job_id, JobDevice.status == Status.RUNNING,
                                              JobDevice.id.between(rows.first, rows.last)))).scalars())
        assert isinstance(self.locks, PgDeviceLocks)
        dead = [d for d in claimed if d is not None and await self.locks.free_elsewhere(d)]
        if not dead:
            return 0
        return await store.resume_interrupted(session, rows.job_id, repeatable=repeatable, first=rows.first,
                                              last=rows.last, devices=dead)

    async def _idle(self, live: LiveJob) -> None:
        """Also re-read the job's cancel flag: a cancel may have been asked of another process."""
        while not live.wake.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cancel_poll):
                    await live.wake.wait()
            if not live.wake.is_set():
                async with self.runtime.db.read() as session:
                    cancelled = (await session.execute(
                        select(Job.cancel_requested).where(Job.id == live.spec.id))).scalar_one_or_none()
                if cancelled:
                    self._cancel_live(live)

    async def _janitor(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("the job janitor pass failed; trying again later")
            await asyncio.sleep(self.janitor_seconds)

    async def sweep(self) -> None:
        """Queue batches again for unfinished jobs none of whose batches is queued or running anywhere."""
        assert self.app is not None
        busy: set[int] = set()
        for status in ("todo", "doing"):
            for queued in await self.app.job_manager.list_jobs_async(task=TASK, status=status):
                job_id = queued.task_kwargs.get("job_id")
                if isinstance(job_id, int):
                    busy.add(job_id)
        async with self.runtime.db.read() as session:
            unfinished = await store.unfinished_jobs(session)
        for job_id in unfinished:
            if job_id in busy:
                continue
            async with self.runtime.db.write() as session:
                spec = await store.begin(session, job_id)
                if spec is None:
                    continue
            await self._settle_all(job_id)
            await self.enqueue(job_id)

    async def _settle_all(self, job_id: int) -> None:
        from .operations import OPERATIONS

        async with self.runtime.db.write() as session:
            job = await session.get(Job, job_id)
            operation = OPERATIONS.get(job.operation) if job is not None else None
            if job is None or operation is None:
                return
            try:
                repeatable = operation.repeatable(operation.parse(job.params))
            except ValueError:
                repeatable = False
            await self._settle_interrupted(session, Rows(job_id), repeatable=repeatable)


async def apply_schema(info: str) -> None:
    """Create procrastinate's tables unless present; one process at a time (advisory lock)."""
    from procrastinate.schema import SchemaManager

    async with await psycopg.AsyncConnection.connect(info, autocommit=True) as connection:
        await connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            cursor = await connection.execute("SELECT to_regclass('procrastinate_jobs')")
            row = await cursor.fetchone()
            if row is None or row[0] is None:
                await connection.execute(SchemaManager.get_schema())
                log.info("procrastinate schema applied")
        finally:
            await connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
