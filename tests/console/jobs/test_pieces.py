"""The small parts jobs stand on: merging pulled logs, group commit, the event queue, device locks."""

from __future__ import annotations

import asyncio
import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text

from outband.console.db.models import Device, LogKind
from outband.console.jobs.devicelogs import decode, new_records
from outband.console.jobs.events import JobEvents
from outband.console.jobs.locks import DeviceLocks
from outband.console.jobs.writer import BatchWriter
from outband.proto.amtlog import AuditRecord, EventRecord, InitiatorType

A, B, C, D, E = (bytes([i]) * 3 for i in range(5))


@pytest.mark.parametrize(("stored", "pulled", "first_new"), [
    ([], [A, B], 0),  # nothing stored: all new
    ([A, B], [A, B], 2),  # pulled again: nothing new
    ([A, B], [A, B, C], 2),  # one appended
    ([A, B], [B, C, D], 1),  # A rolled off the front
    ([A, B], [C, D], 0),  # cleared (or rolled past all we hold): all new
    ([A], [A, A], 1),  # an identical record appended is new
    ([A, A], [A, A, A], 2),
    ([B, C], [A, B, C, B, C], 3),  # the earliest full match of the stored tail wins
])
def test_new_records(stored, pulled, first_new):
    assert new_records(stored, pulled) == first_new


@given(st.lists(st.sampled_from([A, B, C]), max_size=30), st.integers(0, 30), st.integers(0, 10))
def test_a_sliding_log_is_stored_once(history, seen, rolled):
    """Store what a first pull saw, let the log grow and roll, pull again: stored + new == the history."""
    seen = min(seen, len(history))
    stored = history[:seen]
    rolled = min(rolled, seen)
    pulled = history[rolled:]
    fresh = pulled[new_records(stored[-32:], pulled):]
    if len(set(history)) == len(history) or not stored:  # unambiguous histories merge exactly
        assert stored + fresh == history


def test_records_decode_or_say_why():
    audit = AuditRecord(17, 0, InitiatorType.HTTP_DIGEST, "admin", 1_700_000_000, 0, "10.0.0.9")
    decoded = decode(LogKind.AUDIT, audit.encode())
    assert (decoded["description"], decoded["initiator"], decoded["address"]) == ("Performed Power Up", "admin",
                                                                                  "10.0.0.9")
    assert decoded["time"] == "2023-11-14T22:13:20+00:00"
    event = decode(LogKind.EVENT, EventRecord(1_700_000_000, 6, entity=38).encode())
    assert (event["sensor_type"], event["entity_name"]) == (6, "Intel ME")
    broken = decode(LogKind.AUDIT, b"\x00\x11\x00")
    assert "truncated" in broken["error"]
    assert base64.b64decode(broken["raw"]) == b"\x00\x11\x00"
    assert "21 bytes" in decode(LogKind.EVENT, b"\x00" * 20)["error"]


async def test_group_commit_batches_and_isolates_a_failing_write(runtime):
    writer = BatchWriter(runtime.db)
    writer.start()
    try:
        async def add(session, name):
            session.add(Device(name=name, host="192.0.2.1", password_enc="x"))
            return name

        async def fail(session):
            await session.execute(text("SELECT * FROM no_such_table"))

        names = await asyncio.gather(*(writer.write(lambda s, n=f"d{i}": add(s, n)) for i in range(50)))
        assert names == [f"d{i}" for i in range(50)]
        assert writer.commits < 50  # writes submitted together share transactions
        mixed = await asyncio.gather(writer.write(lambda s: add(s, "x1")), writer.write(fail),
                                     writer.write(lambda s: add(s, "x2")), return_exceptions=True)
        assert mixed[0] == "x1"
        assert mixed[2] == "x2"
        assert "no_such_table" in str(mixed[1])
    finally:
        await writer.close()
    async with runtime.db.read() as session:
        assert len((await session.execute(select(Device.id))).all()) == 52
    with pytest.raises(RuntimeError, match="not running"):
        await writer.write(fail)


async def test_a_slow_subscriber_loses_old_events_and_is_told():
    events = JobEvents(queue=3)
    async with events.subscribe(1) as slow, events.subscribe(2) as other:
        for i in range(5):
            events.publish(1, {"type": "device", "n": i})
        assert await slow.get() == {"type": "lagged", "job_id": 1, "dropped": 2}
        assert [(await slow.get())["n"] for _ in range(3)] == [2, 3, 4]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await other.get()  # other jobs' events never reach it
    events.publish(1, {"type": "device"})  # nobody listens: nothing kept


async def test_device_locks():
    locks = DeviceLocks()
    order: list[str] = []

    async def job(name: str) -> None:
        async with locks.hold(1):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    async with locks.hold(1):
        waiting = [asyncio.create_task(job("a")), asyncio.create_task(job("b"))]
        await asyncio.sleep(0.01)
        async with locks.try_hold(1) as held:
            assert not held
        async with locks.try_hold(2) as held:
            assert held
            assert locks.busy(2)
    await asyncio.gather(*waiting)
    assert order == ["a in", "a out", "b in", "b out"]
    assert len(locks) == 0  # nothing kept for idle devices
