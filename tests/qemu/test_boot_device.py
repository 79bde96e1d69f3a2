"""The one-time boot device and options AMT consoles set, applied to a real VM's firmware (SeaBIOS)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.engine.test_boot import change_boot_order, put_settings, set_role, source
from tests.qemu._kit import MESSAGE, machine_of, qemu_engine, read_until, spec
from tests.qemu.test_power_events import request_power

from outband.client.redirection import SolSession
from outband.engine.platforms.base import EventKind, PlatformEvent
from outband.testing.engine import RunningEngine
from outband.testing.images import iso_image

CD_MESSAGE = "the installation CD says hello"
BANNER = MESSAGE.encode() + b"\r\n"
CD_BANNER = CD_MESSAGE.encode() + b"\r\n"
SEABIOS = b"SeaBIOS (version"


async def arm(env: RunningEngine, source_id: str | None = None, **options: object) -> None:
    """MeshCommander's order: clear the boot order, Put the options, make the configuration next, set a source."""
    assert await change_boot_order(env) == 0
    await put_settings(env, **options)
    assert await set_role(env, 1) == 0
    if source_id is not None:
        assert await change_boot_order(env, source(source_id)) == 0


def with_cd(tmp_path: Path) -> list[dict[str, object]]:
    from outband.testing.images import disk_image

    (tmp_path / "disk.img").write_bytes(disk_image(MESSAGE))
    (tmp_path / "install.iso").write_bytes(iso_image(CD_MESSAGE))
    return [{"path": "disk.img"}, {"path": "install.iso", "media": "cdrom"}]


async def test_a_forced_cd_boot_is_used_once(tmp_path: Path) -> None:
    async with qemu_engine(spec(tmp_path, disks=with_cd(tmp_path))) as env, \
            SolSession(env.host, password=env.password, port=env.redirection_port) as sol:
        assert await request_power(env, 2) == 0  # the default order: the disk
        seen = await read_until(sol, BANNER)
        await arm(env, "Intel(r) AMT: Force CD/DVD Boot")
        assert await request_power(env, 10) == 0
        seen = await read_until(sol, BANNER + b".*" + CD_BANNER, seen=seen)
        assert await request_power(env, 10) == 0  # spent: the disk again
        await read_until(sol, CD_BANNER + b".*" + BANNER, seen=seen)


async def test_sol_during_boot_shows_the_firmware_and_its_menu_answers_sol_keys(tmp_path: Path) -> None:
    async with qemu_engine(spec(tmp_path, disks=with_cd(tmp_path))) as env, \
            SolSession(env.host, password=env.password, port=env.redirection_port) as sol:
        events: list[PlatformEvent] = []
        machine_of(env).add_listener(events.append)
        assert await request_power(env, 2) == 0
        seen = await read_until(sol, BANNER)
        assert SEABIOS not in seen  # the firmware's screen stays off the serial port unless asked

        await arm(env, UseSOL=True, BIOSSetup=True)  # other firmware options: QEMU restarts, as a reset
        assert await request_power(env, 10) == 0
        seen = await read_until(sol, re.escape(SEABIOS) + b".*Press ESC for boot menu", seen=seen)
        await sol.write(b"\x1b")
        seen = await read_until(sol, b"Select boot device:.*1\\. .*2\\. ", seen=seen)
        await sol.write(b"2")  # the CD-ROM, second in the VM's default order
        await read_until(sol, b"Select boot device:.*" + CD_BANNER, seen=seen)
        kinds = [e.kind for e in events]
        assert kinds == [EventKind.POWER_ON, EventKind.BOOT, EventKind.RESET, EventKind.BOOT]


async def test_a_forced_pxe_boot_runs_the_nics_boot_rom(tmp_path: Path) -> None:
    async with qemu_engine(spec(tmp_path, nics=[{"model": "e1000"}])) as env, \
            SolSession(env.host, password=env.password, port=env.redirection_port) as sol:
        await arm(env, "Intel(r) AMT: Force PXE Boot", UseSOL=True)
        assert await request_power(env, 2) == 0
        seen = await read_until(sol, rb"Booting from ROM.*iPXE")  # the NIC's boot ROM (QEMU's ipxe-qemu)
        assert BANNER not in seen
