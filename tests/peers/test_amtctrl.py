"""amtctrl, the command line of the ``amt`` PyPI package, against the engine.

amtctrl always dials port 16992 and reads its hosts from ~/.config/amtctrl/hosts.cfg (written by ``amtctrl
add``), so each test serves an engine on a loopback address of its own with the standard port and gives
amtctrl a private HOME.  amtctrl exits 0 even when a call fails: it prints ``Error: ...`` for an HTTP error and
dumps the reply XML for a non-zero ReturnValue, so a successful action prints nothing and the machine's state
is what the tests check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from outband.engine.platforms.base import BootDevice, PowerState
from outband.engine.platforms.sim import SimMachine
from outband.testing.engine import RunningEngine
from outband.testing.peers import (
    PeerRun,
    engine_on_standard_ports,
    isolated_home,
    peer_password,
    require_program,
    run_peer,
)

pytestmark = pytest.mark.peer


@dataclass
class Amtctrl:
    env: RunningEngine
    run: Callable[..., Awaitable[PeerRun]]

    async def action(self, command: str) -> None:
        """Run ``amtctrl pc <command>`` and require amtctrl's silent success."""
        result = await self.run("pc", command)
        quiet = result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip()
        assert quiet, f"amtctrl {command} did not succeed quietly\n{result.describe()}"

    async def status(self) -> str:
        result = await self.run("pc", "status")
        assert result.returncode == 0, result.describe()
        assert not result.stderr.strip(), result.describe()
        return result.stdout.strip()


async def amtctrl_against(home: Path, machine: SimMachine) -> AsyncIterator[Amtctrl]:
    async with engine_on_standard_ports(password=peer_password(), machine=machine) as env:
        program, environment = require_program("amtctrl"), isolated_home(home)

        async def run(*args: str) -> PeerRun:
            return await run_peer([program, *args], env=environment, kill_after=20)

        added = await run("add", "pc", env.host, env.password)
        assert added.returncode == 0, added.describe()
        assert (home / ".config" / "amtctrl" / "hosts.cfg").is_file(), "amtctrl add wrote no hosts.cfg"
        yield Amtctrl(env, run)


@pytest.fixture
async def amtctrl_off(tmp_path: Path) -> AsyncIterator[Amtctrl]:
    async for ctl in amtctrl_against(tmp_path / "off", SimMachine(power_state=PowerState.OFF_SOFT)):
        yield ctl


@pytest.fixture
async def amtctrl_on(tmp_path: Path) -> AsyncIterator[Amtctrl]:
    async for ctl in amtctrl_against(tmp_path / "on", SimMachine(power_state=PowerState.ON)):
        yield ctl


async def test_status_reports_power(amtctrl_off: Amtctrl, amtctrl_on: Amtctrl) -> None:
    assert await amtctrl_off.status() == "off"
    assert await amtctrl_on.status() == "on"


async def test_power_on(amtctrl_off: Amtctrl) -> None:
    await amtctrl_off.action("on")
    machine = amtctrl_off.env.machine
    assert machine.power_state is PowerState.ON
    assert machine.boot_count == 1
    assert await amtctrl_off.status() == "on"


async def test_power_off(amtctrl_on: Amtctrl) -> None:
    await amtctrl_on.action("off")
    assert amtctrl_on.env.machine.power_state is PowerState.OFF_SOFT
    assert await amtctrl_on.status() == "off"


async def test_reboot(amtctrl_on: Amtctrl) -> None:
    await amtctrl_on.action("reboot")
    machine = amtctrl_on.env.machine
    assert machine.power_state is PowerState.ON
    assert machine.boot_count == 1
    assert machine.last_boot is not None
    assert machine.last_boot.device is BootDevice.DEFAULT


async def test_pxe_next_boot_only(amtctrl_on: Amtctrl) -> None:
    """pxeboot = ChangeBootOrder(PXE) + SetBootConfigRole(1) + power cycle; the boot after that is normal."""
    await amtctrl_on.action("pxeboot")
    machine = amtctrl_on.env.machine
    assert machine.boot_count == 1
    assert machine.last_boot is not None
    assert machine.last_boot.device is BootDevice.PXE
    await amtctrl_on.action("reboot")
    assert machine.boot_count == 2
    assert machine.last_boot.device is BootDevice.DEFAULT
