"""A real VM under the engine: power on from AMT, its boot sector's message over SOL, keys echoed back."""

from __future__ import annotations

from pathlib import Path

from tests.qemu._kit import MESSAGE, machine_of, qemu_engine, read_until, spec

from outband.client.redirection import SolSession
from outband.engine.platforms.base import PowerAction, PowerState


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
            await read_until(sol, MESSAGE.encode() + rb"\r\ntyped over SOL!", seen=seen)
        assert await machine.request_power(PowerAction.OFF_HARD)
        assert machine.power_state is PowerState.OFF_SOFT
