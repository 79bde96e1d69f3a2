"""AMT's clock over real HTTP: MeshCommander's read-and-set exchange, the offset it leaves, its audit record."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from tests.engine._remote_control import audit_records, exchange, get, invoke, untyped_input, user_transport
from tests.engine._shape import assert_same_shape

from outband.proto.amt import PTStatus, Realm
from outband.proto.cim.model import CimObject
from outband.proto.wsman import EnumerateResponse
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine, running_engine

SERVICE = "AMT_TimeSynchronizationService"
NOW = 1_704_586_865.4


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def ta0(env: RunningEngine) -> int:
    out = await invoke(env.transport(), SERVICE, "GetLowAccuracyTimeSynch")
    assert out["ReturnValue"] == 0
    value = out["Ta0"]
    assert isinstance(value, int)
    return value


async def set_time(env: RunningEngine, ta0: int, tm1: int, tm2: int) -> int:
    out = await invoke(env.transport(), SERVICE, "SetHighAccuracyTimeSynch", Ta0=ta0, Tm1=tm1, Tm2=tm2)
    return int(out["ReturnValue"])  # type: ignore[arg-type]


async def test_time_service_answers_in_the_captured_shapes(engine_env: RunningEngine, conformance_dir: Path) -> None:
    captures = conformance_dir / "amt/timesynchronization"
    t = engine_env.transport()
    raw, _ = await exchange(t, msg.get(SERVICE))
    assert_same_shape(raw, captures / "get.xml")
    raw, reply = await exchange(t, msg.enumerate_(SERVICE))
    assert_same_shape(raw, captures / "enumerate.xml")
    assert isinstance(reply.body, EnumerateResponse)
    assert reply.body.context is not None
    raw, _ = await exchange(t, msg.pull(SERVICE, reply.body.context))
    assert_same_shape(raw, captures / "pull.xml")
    raw, _ = await exchange(t, msg.invoke(CimObject.method_input(SERVICE, "GetLowAccuracyTimeSynch")))
    assert_same_shape(raw, captures / "getlowaccuracytimesynch.xml")
    now = await ta0(engine_env)
    raw, _ = await exchange(t, msg.invoke(CimObject.method_input(SERVICE, "SetHighAccuracyTimeSynch",
                                                                 Ta0=now, Tm1=now, Tm2=now)))
    assert_same_shape(raw, captures / "sethighaccuracytimesynch.xml")


async def test_meshcommander_sync_moves_amt_time_and_is_audited() -> None:
    clock = Clock()
    async with running_engine(clock=clock) as env:
        assert await ta0(env) == int(NOW)
        assert (await get(env.transport(), SERVICE))["TimeSource"] == 0  # never set: the RTC's time
        console = int(NOW) + 3600  # the console's clock is an hour ahead
        clock.now += 2  # two seconds pass between the two calls, none of them spent by the console
        assert await set_time(env, int(NOW), console, console) == 0
        # The unseen round trip (2 s) is split evenly: the console's time was console + 1 when AMT got the call.
        assert await ta0(env) == console + 1
        clock.now += 60
        assert await ta0(env) == console + 61
        assert (await get(env.transport(), SERVICE))["TimeSource"] == 1
        record = audit_records(env.engine)[-1]
        assert (record.full_id, record.initiator, record.address) == (2100, "admin", "127.0.0.1")
        assert record.extended == struct.pack(">I", console + 1)


async def test_a_set_time_survives_a_restart(tmp_path: Path) -> None:
    state, clock = tmp_path / "s.db", Clock()
    async with running_engine(state=state, clock=clock) as env:
        assert await set_time(env, int(NOW), int(NOW) - 500, int(NOW) - 500) == 0
    clock.now += 10
    async with running_engine(state=state, clock=clock) as env:
        assert await ta0(env) == int(NOW) - 500 + 10


@pytest.mark.parametrize(("delta_ta0", "tm1", "tm2"), [
    (+100, 0, 0),  # a Ta0 this clock has not reached yet
    (0, 10, 5),  # the console's clock ran backwards between its two timestamps
])
async def test_inconsistent_timestamps_are_refused(delta_ta0: int, tm1: int, tm2: int) -> None:
    async with running_engine(clock=Clock()) as env:
        now = await ta0(env)
        assert await set_time(env, now + delta_ta0, now + tm1, now + tm2) == PTStatus.INVALID_PARAMETER
        assert await ta0(env) == now
        assert audit_records(env.engine) == []


@pytest.mark.parametrize(("params", "detail"), [
    ({"Ta0": 1, "Tm1": 1}, "MissingValues"),
    ({"Ta0": "soon", "Tm1": 1, "Tm2": 1}, "InvalidValues"),
    ({"Ta0": "4294967296", "Tm1": 1, "Tm2": 1}, "InvalidValues"),  # beyond uint32
])
async def test_malformed_set_requests_fault(engine_env: RunningEngine, params: dict[str, object],
                                            detail: str) -> None:
    typed = {name: str(value) for name, value in params.items()}
    reply = await engine_env.transport().send(msg.invoke(untyped_input(SERVICE, "SetHighAccuracyTimeSynch", **typed)))
    assert isinstance(reply.fault, F.InvalidRepresentation)
    assert reply.fault.detail == F.detail_uri(detail)


async def test_the_clock_needs_the_network_time_realm(engine_env: RunningEngine) -> None:
    viewer = user_transport(engine_env, [Realm.GENERAL_INFO], "viewer")
    for request in (msg.get(SERVICE), msg.invoke(CimObject.method_input(SERVICE, "GetLowAccuracyTimeSynch"))):
        assert isinstance((await viewer.send(request)).fault, F.AccessDenied)
    keeper = user_transport(engine_env, [Realm.NETWORK_TIME])
    out = await invoke(keeper, SERVICE, "GetLowAccuracyTimeSynch")
    assert out["ReturnValue"] == 0
