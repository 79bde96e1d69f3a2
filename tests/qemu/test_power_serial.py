"""A real VM under the engine: power on from AMT, its boot sector's message over SOL (our client, amtterm), keys
echoed back, a serial break seen by the guest."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.peers.test_amtterm import ESCAPE, amtterm
from tests.qemu._kit import MESSAGE, WAIT, machine_of, qemu_engine, read_until, spec

from outband.client.redirection import SolSession
from outband.engine.platforms.base import PowerAction, PowerState
from outband.testing.peers import peer_password


async def test_power_on_boots_the_disk_and_sol_carries_com1_both_ways(tmp_path: Path) -> None:
    async with qemu_engine(spec(tmp_path)) as env:
        machine = machine_of(env)
        assert machine.power_state is PowerState.OFF_SOFT
        async with SolSession(env.host, password=env.password, port=env.redirection_port) as sol:
            assert await machine.request_power(PowerAction.ON)
            assert machine.power_state is PowerState.ON
            seen = await read_until(sol, MESSAGE.encode() + b"\r\n")
            await sol.write(b"typed over SOL")
            seen = await read_until(sol, b"typed over SOL", seen=seen)
            await sol.send_break()
            seen = await read_until(sol, MESSAGE.encode() + rb"\r\ntyped over SOL!", seen=seen)
            await sol.write(b"\xfe\xff\xfb")  # telnet's IAC and WILL bytes reach the guest as data
            await read_until(sol, rb"!\x00?\xfe\xff\xfb", seen=seen)  # (the break also left a NUL)
        assert await machine.request_power(PowerAction.OFF_HARD)
        assert machine.power_state is PowerState.OFF_SOFT


@pytest.mark.peer
async def test_amtterm_sees_the_vm_boot_and_types_to_it(tmp_path: Path) -> None:
    async with qemu_engine(spec(tmp_path), password=peer_password()) as env:
        console = SimpleNamespace(host=env.host, port=env.redirection_port, password=env.password)
        async with amtterm(console) as term:  # type: ignore[arg-type]
            seen = await term.expect(rb"serial-over-lan redirection ok")
            seen = await term.expect(rb"powered off", after=seen)
            assert await machine_of(env).request_power(PowerAction.ON)
            seen = await term.expect(MESSAGE.encode() + rb"\r+\n", after=seen, within=WAIT)
            term.type(b"typed in amtterm")
            await term.expect(rb"typed in amtterm", after=seen, within=WAIT)
            term.type(ESCAPE)
            async with asyncio.timeout(WAIT):
                assert await term.process.wait() == 0, term.text()
