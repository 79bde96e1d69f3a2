"""IDE-R into a real VM: our IDE-R client serves an image, the engine hands its blocks to QEMU over NBD, and the
VM boots from it -- the boot code on the image speaks over SOL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.qemu._kit import MESSAGE, WAIT, machine_of, qemu_engine, read_until, spec
from tests.qemu.test_power_events import request_power
from tests.redir._kit import eventually

from outband.client.amt import AmtClient
from outband.client.ider import IderSession, boot_from_ider
from outband.client.redirection import SolSession
from outband.engine.platforms.base import BootDevice, EventKind, PlatformEvent
from outband.proto.redir.scsi import DriveKind
from outband.testing.engine import RunningEngine
from outband.testing.images import floppy_image, iso_image

FROM_MEDIUM = "booted from the console's image"


@pytest.mark.parametrize(("drive", "image", "name"), [
    (DriveKind.CDROM, iso_image(FROM_MEDIUM, label="IDER CD"), "boot.iso"),
    (DriveKind.FLOPPY, floppy_image(FROM_MEDIUM, label="IDER FD"), "boot.img"),
])
async def test_the_vm_boots_from_the_image_the_console_serves(tmp_path: Path, drive: DriveKind, image: bytes,
                                                              name: str) -> None:
    (tmp_path / name).write_bytes(image)
    medium = {"cd": tmp_path / name} if drive is DriveKind.CDROM else {"floppy": tmp_path / name}
    async with qemu_engine(spec(tmp_path)) as env, \
            SolSession(env.host, password=env.password, port=env.redirection_port) as sol, \
            IderSession(env.host, password=env.password, port=env.redirection_port, **medium) as ider:
        machine = machine_of(env)
        events: list[PlatformEvent] = []
        machine.add_listener(events.append)
        amt = AmtClient(env.host, transport=env.transport())
        assert await boot_from_ider(amt, drive) == 0  # arm the one-time IDE-R boot, power on
        seen = await read_until(sol, FROM_MEDIUM.encode() + b"\r\n")
        assert MESSAGE.encode() not in seen
        boot = next(e for e in events if e.kind is EventKind.BOOT)
        device = BootDevice.IDER_CD if drive is DriveKind.CDROM else BootDevice.IDER_FLOPPY
        assert boot.data["device"] == device.value
        assert ider.progress.bytes_sent > 0  # the blocks came from our client, over the session

        assert await request_power(env, 10) == 0  # a reset: the one-time boot is spent, the disk boots
        await read_until(sol, FROM_MEDIUM.encode() + b"\r\n.*" + MESSAGE.encode(), seen=seen)


async def test_a_running_vm_gets_the_medium_when_the_session_starts_and_loses_it_when_it_ends(tmp_path: Path) -> None:
    (tmp_path / "boot.iso").write_bytes(iso_image(FROM_MEDIUM, label="LIVE"))
    async with qemu_engine(spec(tmp_path)) as env, \
            SolSession(env.host, password=env.password, port=env.redirection_port) as sol:
        machine = machine_of(env)
        assert await request_power(env, 2) == 0
        await read_until(sol, MESSAGE.encode())
        assert await ider_medium(env) is None
        async with IderSession(env.host, password=env.password, port=env.redirection_port,
                               cd=tmp_path / "boot.iso") as ider:
            await eventually(lambda: "ider-cd" in machine._vm.media, within=WAIT)  # type: ignore[union-attr]
            medium = await ider_medium(env)
            assert medium is not None
            assert medium["image"]["virtual-size"] == len(iso_image(FROM_MEDIUM))
            assert ider.progress.commands > 0  # QEMU opened it: TEST UNIT READY, READ CAPACITY
        await eventually(lambda: "ider-cd" not in machine._vm.media, within=WAIT)  # type: ignore[union-attr]
        assert await ider_medium(env) is None


async def ider_medium(env: RunningEngine) -> dict[str, Any] | None:
    """What QEMU has in the VM's IDE-R CD-ROM drive (query-block's ``inserted``), None when it is empty."""
    vm = machine_of(env)._vm
    assert vm is not None
    for block in await vm.monitor.execute("query-block"):
        if block.get("qdev") == "ider-cd":
            inserted = block.get("inserted")
            return inserted if isinstance(inserted, dict) else None
    raise AssertionError("the VM has no IDE-R CD-ROM drive")
