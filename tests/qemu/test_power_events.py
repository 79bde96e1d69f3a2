"""Power control of a real VM through AMT's WS-MAN, and what reaches the logs: console power actions, the
guest's own reboots, power-offs and panics, and a QEMU that dies under the engine."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.qemu._kit import MESSAGE, WAIT, machine_of, qemu_engine, read_until, spec
from tests.redir._kit import eventually

from outband.client.amt import AmtClient
from outband.client.redirection import SolSession
from outband.engine.platforms.base import EventKind, PlatformEvent, PowerState
from outband.engine.services.boot import host_epr
from outband.proto.amtlog import SENSOR_FIRMWARE_PROGRESS, SENSOR_OS_LOCKUP, AuditRecord, EventRecord
from outband.testing.engine import RunningEngine
from outband.testing.images import GUEST_PANIC, GUEST_POWER_OFF, GUEST_RESET

BOOT_STARTED = 0x13
"""Firmware progress "Starting operating system boot process"."""
BANNER = MESSAGE.encode() + b"\r\n"


async def request_power(env: RunningEngine, state: int) -> int:
    amt = AmtClient(env.host, transport=env.transport())
    out = await amt.invoke("CIM_PowerManagementService", "RequestPowerStateChange",
                           {"PowerState": state, "ManagedElement": host_epr()})
    return int(out["ReturnValue"])  # type: ignore[arg-type]


async def power_state(env: RunningEngine) -> int:
    amt = AmtClient(env.host, transport=env.transport())
    return int((await amt.get("CIM_AssociatedPowerManagementService"))["PowerState"])  # type: ignore[arg-type]


async def event_log(env: RunningEngine) -> list[EventRecord]:
    """AMT_MessageLog read the way MeshCommander reads it (whole log in one GetRecords), oldest first."""
    amt = AmtClient(env.host, transport=env.transport())
    out = await amt.invoke("AMT_MessageLog", "GetRecords", {"IterationIdentifier": "1", "MaxReadRecords": 390})
    return [EventRecord.decode(r) for r in reversed(out.getlist("RecordArray")) if isinstance(r, bytes)]


def boots(records: list[EventRecord]) -> int:
    return sum(1 for r in records if r.sensor_type == SENSOR_FIRMWARE_PROGRESS and r.data[1] == BOOT_STARTED)


def crashes(records: list[EventRecord]) -> int:
    return sum(1 for r in records if r.sensor_type == SENSOR_OS_LOCKUP)


def audit_ids(env: RunningEngine) -> list[int]:
    return [AuditRecord.decode(raw).full_id for raw in env.engine.store.read_log("audit")]


async def test_console_power_actions_show_in_the_power_state_and_the_logs(tmp_path: Path) -> None:
    async with qemu_engine(spec(tmp_path)) as env, \
            SolSession(env.host, password=env.password, port=env.redirection_port) as sol:
        assert await power_state(env) == 8
        assert await request_power(env, 2) == 0  # power on
        assert await power_state(env) == 2
        seen = await read_until(sol, BANNER)
        assert boots(await event_log(env)) == 1

        assert await request_power(env, 10) == 0  # reset: the boot sector runs again
        seen = await read_until(sol, BANNER + b".*" + BANNER, seen=seen)
        assert await power_state(env) == 2
        assert boots(await event_log(env)) == 2

        assert await request_power(env, 11) == 0  # an NMI: QEMU delivers it, the halted boot code ignores it
        assert await power_state(env) == 2

        assert await request_power(env, 5) == 0  # power cycle: a new QEMU, a third boot
        await read_until(sol, BANNER + b".*" + BANNER + b".*" + BANNER, seen=seen)
        assert boots(await event_log(env)) == 3

        assert await request_power(env, 8) == 0  # soft off: ACPI, which a boot sector ignores, then the cut
        assert await power_state(env) == 2
        await eventually(lambda: machine_of(env).power_state is PowerState.OFF_SOFT, within=WAIT)
        assert await power_state(env) == 8
        assert await request_power(env, 10) == 2  # no reset while off
        assert audit_ids(env)[-5:] == [1700, 1703, 1703, 1702, 1701]  # up, reset, NMI, cycle, down
        assert crashes(await event_log(env)) == 0


async def test_the_guest_reboots_powers_off_and_panics_on_its_own(tmp_path: Path) -> None:
    async with qemu_engine(spec(tmp_path)) as env, \
            SolSession(env.host, password=env.password, port=env.redirection_port) as sol:
        machine = machine_of(env)
        events: list[PlatformEvent] = []
        machine.add_listener(events.append)
        assert await request_power(env, 2) == 0
        seen = await read_until(sol, BANNER)

        await sol.write(GUEST_RESET)  # the firmware resets again by itself: still one reset, one boot
        seen = await read_until(sol, BANNER + b".*" + BANNER, seen=seen)
        await eventually(lambda: boots_seen(events) == 2, within=WAIT)
        assert [e.kind for e in events].count(EventKind.RESET) == 1
        assert machine.power_state is PowerState.ON

        await sol.write(GUEST_PANIC)
        await eventually(lambda: crashes_seen(events) == 1, within=WAIT)
        assert machine.power_state is PowerState.ON  # a panicked PC is still on
        assert crashes(await event_log(env)) == 1

        assert await request_power(env, 10) == 0  # a reset brings a panicked guest back
        seen = await read_until(sol, BANNER + b".*" + BANNER + b".*" + BANNER, seen=seen)
        await sol.write(GUEST_POWER_OFF)
        await eventually(lambda: machine.power_state is PowerState.OFF_SOFT, within=WAIT)
        assert events[-1].kind is EventKind.POWER_OFF
        assert crashes_seen(events) == 1  # the guest's own power-off is no crash
        assert await power_state(env) == 8


def boots_seen(events: list[PlatformEvent]) -> int:
    return sum(1 for e in events if e.kind is EventKind.BOOT)


def crashes_seen(events: list[PlatformEvent]) -> int:
    return sum(1 for e in events if e.kind is EventKind.CRASH)


async def test_a_killed_qemu_is_off_logged_and_the_engine_serves_on(tmp_path: Path) -> None:
    async with qemu_engine(spec(tmp_path)) as env, \
            SolSession(env.host, password=env.password, port=env.redirection_port) as sol:
        machine = machine_of(env)
        events: list[PlatformEvent] = []
        machine.add_listener(events.append)
        assert await request_power(env, 2) == 0
        seen = await read_until(sol, BANNER)
        vm = machine._vm
        assert vm is not None
        assert vm.process is not None
        assert vm.process.pid is not None
        os.kill(vm.process.pid, signal.SIGKILL)

        await eventually(lambda: machine.power_state is PowerState.OFF_SOFT, within=WAIT)
        assert await power_state(env) == 8
        assert [e.kind for e in events][-2:] == [EventKind.CRASH, EventKind.POWER_OFF]
        assert "killed by SIGKILL" in events[-2].detail
        assert crashes(await event_log(env)) == 1

        assert await request_power(env, 2) == 0  # the engine is still there, and so is a new QEMU
        await read_until(sol, BANNER + b".*" + BANNER, seen=seen)
        assert await power_state(env) == 2
