"""ProcrastinateRunner on PostgreSQL: jobs cut into batches on procrastinate's queue, worked by several console
processes (here: several runtimes on one database) with one conversation per device across all of them.

These tests need PostgreSQL: they run in the suite's second pass (OUTBAND_TEST_DB, see scripts/test.sh)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from tests.console.jobs._fleet import Fleet, running_fleet

from outband.console.db.models import Device, Job, JobDevice, Status
from outband.console.jobs import store
from outband.console.jobs.execute import RetryPolicy
from outband.console.jobs.runner import JobRequest, wait_for_job
from outband.console.runtime import open_runtime
from outband.proto.amtlog import AuditApp

procrastinate = pytest.importorskip("procrastinate")

from outband.console.jobs.procrastinate import (  # noqa: E402 -- after the optional import
    PgDeviceLocks,
    ProcrastinateRunner,
    batches,
    conninfo,
)


@pytest.fixture
async def pg_url(db_url: str) -> str:
    if make_url(db_url).get_backend_name() != "postgresql":
        pytest.skip("needs PostgreSQL (runs in the PostgreSQL pass: OUTBAND_TEST_DB)")
    import psycopg

    async with await psycopg.AsyncConnection.connect(conninfo(db_url), autocommit=True) as connection:
        cursor = await connection.execute("SELECT to_regclass('procrastinate_jobs')")
        if (await cursor.fetchone())[0] is not None:  # a previous test's queue: its job ids mean nothing now
            await connection.execute("TRUNCATE procrastinate_jobs, procrastinate_workers CASCADE")
    return db_url


@pytest.fixture
async def consoles(pg_url, settings):
    """Two console runtimes on the same database, each with a ProcrastinateRunner (small batches)."""
    made = []
    for _ in range(2):
        runtime = await open_runtime(settings)
        runner = ProcrastinateRunner(batch_size=8, retry=RetryPolicy(base=0.05), cancel_poll=0.2,
                                     janitor_seconds=3600)
        await runtime.start_service(runner)
        made.append((runtime, runner))
    try:
        yield made
    finally:
        for runtime, _ in made:
            await runtime.close()


@pytest.fixture
async def fleet(tmp_path, consoles) -> Fleet:
    runtime = consoles[0][0]
    async with running_fleet(40, tmp_path / "fleet") as running:
        async with runtime.db.write() as session:
            for i, address in enumerate(running.addresses):
                session.add(Device(name=f"pc-{i}", host=address, http_port=running.port(address),
                                   password_enc=runtime.box.encrypt(running.password)))
        yield running


async def all_ids(runtime) -> list[int]:
    async with runtime.db.read() as session:
        return list((await session.execute(select(Device.id).order_by(Device.id))).scalars())


def test_batches_cover_every_row_once():
    assert batches([3, 4, 9, 10, 11], 2) == [(3, 4), (9, 10), (11, 11)]
    assert batches([], 5) == []
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        conninfo("sqlite+aiosqlite:///x.db")
    assert conninfo("postgresql+psycopg://u:p@h:5/db") == "postgresql://u:p@h:5/db"


async def test_a_job_in_batches_worked_by_two_processes_runs_each_device_once(consoles, fleet):
    (first, runner), _ = consoles
    job_id = await runner.submit(JobRequest("power", {"action": "on"}, await all_ids(first)))
    async with asyncio.timeout(60):
        final = await wait_for_job(first.db, runner.events, job_id)
    assert final["status"] == "succeeded"
    assert final["counts"]["succeeded"] == 40
    assert [fleet.audit_events(a, AuditApp.REMOTE_CONTROL, 0) for a in fleet.addresses] == [1] * 40
    async with first.db.read() as session:
        rows = list((await session.execute(select(JobDevice).where(JobDevice.job_id == job_id))).scalars())
    assert {row.attempts for row in rows} == {1}


async def test_device_locks_hold_across_processes(pg_url):
    info = conninfo(pg_url)
    a, b = PgDeviceLocks(info), PgDeviceLocks(info)
    await a.open()
    await b.open()
    b_holds, b_done = asyncio.Event(), asyncio.Event()

    async def b_waits_then_holds() -> None:
        async with b.hold(7):
            b_holds.set()
            await b_done.wait()

    try:
        async with a.hold(7):
            async with b.try_hold(7) as held:
                assert not held
            assert not await b.free_elsewhere(7)
            waiter = asyncio.create_task(b_waits_then_holds())
            await asyncio.sleep(0.3)
            assert not b_holds.is_set()
        async with asyncio.timeout(5):
            await b_holds.wait()
        async with a.try_hold(7) as held:
            assert not held  # b holds it now
        b_done.set()
        await waiter
        async with a.try_hold(7) as held:
            assert held
    finally:
        await a.close()
    async with b.hold(8):
        await b.close()  # a dead process's locks go with its session
    c = PgDeviceLocks(info)
    await c.open()
    try:
        assert await c.free_elsewhere(8)
    finally:
        await c.close()


async def test_the_janitor_settles_rows_of_dead_processes_only(consoles, fleet):
    (runtime, runner), _ = consoles
    ids = await all_ids(runtime)
    async with runtime.db.write() as session:
        job_id = await store.create_job(session, operation="power", params={"action": "cycle"}, device_ids=ids[:3])
        await session.execute(update(Job).where(Job.id == job_id).values(status=Status.RUNNING))
        await session.execute(update(JobDevice).where(JobDevice.job_id == job_id, JobDevice.device_id.in_(ids[:2]))
                              .values(status=Status.RUNNING, attempts=1))
    alive = PgDeviceLocks(conninfo(runtime.settings.database_url))
    await alive.open()
    try:
        async with alive.hold(ids[1]):  # a live process is mid-call on the second device
            await runner.sweep()
            async with runtime.db.read() as session:
                states = {row.device_id: row.status for row in await session.execute(
                    select(JobDevice.device_id, JobDevice.status).where(JobDevice.job_id == job_id))}
            assert states[ids[0]] is Status.FAILED  # its claimer is gone: interrupted, a cycle is not repeated
            assert states[ids[1]] is Status.RUNNING  # someone is still talking to it
    finally:
        await alive.close()


async def test_a_cancel_asked_of_another_process_stops_the_batches(consoles, tmp_path):
    (first, runner), (second, other) = consoles
    from tests.console.jobs._faults import black_hole

    async with black_hole() as silent:
        async with first.db.write() as session:
            for i in range(24):
                session.add(Device(name=f"slow-{i}", host="127.0.0.1", http_port=silent.port,
                                   password_enc=first.box.encrypt("Any-pass-1!")))
        job_id = await runner.submit(JobRequest("power", {"action": "on"}, await all_ids(first)))
        async with asyncio.timeout(10):
            await silent.arrived.wait()
        assert await other.cancel(job_id) is Status.RUNNING
        async with asyncio.timeout(30):
            final = await wait_for_job(second.db, other.events, job_id)
    assert final["status"] == "cancelled"
    assert final["counts"]["cancelled"] >= 1
