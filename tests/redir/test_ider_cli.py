"""``outband ider`` and ``outband kvm`` against an engine on loopback (the CLI runs its own event loop, so it
is invoked in a worker thread while the engine runs in the test's loop)."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from tests.redir._kit import eventually
from tests.redir._mediakit import media_engine
from typer.testing import CliRunner, Result

from outband.cli.main import app
from outband.engine.platforms.base import BootDevice, PowerState
from outband.testing.images import floppy_image, iso_image


def outband(*args: str, password: str | None = None) -> Result:
    env = {"AMT_PASSWORD": password, "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)


async def test_ider_serves_a_cd_until_the_host_ejects_it(tmp_path: Path) -> None:
    image = tmp_path / "rescue.iso"
    image.write_bytes(iso_image("rescue system starting", label="RESCUE"))
    async with media_engine() as r:
        run = asyncio.ensure_future(asyncio.to_thread(
            outband, "ider", r.host, "--redir-port", str(r.port), "--cd", str(image), "--idle", "30",
            password=r.password))
        storage = r.machine.console.storage
        await eventually(lambda: storage.port is not None, within=10)
        lines: list[str] = []
        assert await storage.boot(BootDevice.IDER_CD, lines.append) is not None
        result = await asyncio.wait_for(run, 20)
        assert result.exit_code == 0, result.output
        assert lines[0] == "Booted from IDE-R CD-ROM: RESCUE"
        assert "serving CD rescue.iso" in result.stderr
        assert "the host ejected the medium" in result.stderr


async def test_ider_boot_resets_the_machine_into_the_served_floppy(tmp_path: Path) -> None:
    image = tmp_path / "boot.img"
    image.write_bytes(floppy_image("booted by outband ider", label="CLIBOOT"))
    async with media_engine() as r:
        serial = bytearray()
        r.machine.console.add_serial_listener(serial.extend)
        boots = r.machine.boot_count
        result = await asyncio.to_thread(
            outband, "ider", r.host, "--port", str(r.env.server.bound_port()), "--redir-port", str(r.port),
            "--floppy", str(image), "--boot", "--idle", "20", password=r.password)
        assert result.exit_code == 0, result.output
        assert "boot from IDE-R requested" in result.stderr
        assert "the host ejected the medium" in result.stderr
        assert r.machine.boot_count == boots + 1
        assert r.machine.last_boot is not None
        assert r.machine.last_boot.device is BootDevice.IDER_FLOPPY
        assert r.machine.power_state is PowerState.ON
        await eventually(lambda: b"login:" in serial)  # the firmware reports the boot after the eject
        assert "Booted from IDE-R floppy: CLIBOOT\r\nbooted by outband ider" in serial.decode()


def test_ider_and_kvm_say_what_they_need() -> None:
    assert outband("ider", "127.0.0.1", password="x").exit_code == 2
    assert "give an image" in outband("ider", "127.0.0.1", password="x").output
    missing = outband("ider", "127.0.0.1", "--cd", "/nonexistent.iso", password="x")
    assert missing.exit_code == 2
    assert "no such file" in missing.output
    assert "--screenshot FILE or --vnc" in outband("kvm", "127.0.0.1", password="x").output
    bad = outband("kvm", "127.0.0.1", "--vnc", "nowhere", password="x")
    assert bad.exit_code == 2
    assert "ADDRESS:PORT" in bad.output
    exposed = outband("kvm", "127.0.0.1", "--vnc", "0.0.0.0:5901", password="x")
    assert exposed.exit_code == 2
    assert "loopback address only" in exposed.output


async def test_kvm_screenshot_writes_the_screen_as_png(tmp_path: Path) -> None:
    out = tmp_path / "screen.png"
    async with media_engine() as r:
        result = await asyncio.to_thread(outband, "kvm", r.host, "--redir-port", str(r.port), "--screenshot",
                                         str(out), password=r.password)
        assert result.exit_code == 0, result.output
        data = out.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack_from(">II", data, 16) == (720, 400)
        assert "720x400 screen" in result.output


async def test_a_refused_session_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    async with media_engine() as r:
        result = await asyncio.to_thread(outband, "kvm", r.host, "--redir-port", str(r.port), "--screenshot",
                                         str(tmp_path / "x.png"), password="wrong-password")
        assert result.exit_code == 1
        assert result.output.startswith("error: ")
        assert "Traceback" not in result.output
