"""``outband engine --platform qemu``: an engine launched from a VM file, and one attached to a QEMU someone else
started (``--qmp``), both driven like AMT devices."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from tests.qemu._kit import MESSAGE, QEMU, WAIT, read_until, require, require_qemu
from tests.qemu.test_boot_device import CD_BANNER, CD_MESSAGE, arm
from tests.qemu.test_kvm import VGA_TEXT
from tests.qemu.test_power_events import power_state, request_power
from tests.redir._kit import eventually, set_redirection
from tests.redir._mediakit import enable_kvm

from outband.client.amt import AmtClient
from outband.client.kvm import KvmSession
from outband.client.redirection import SolSession
from outband.engine.launcher import LaunchOptions, launch
from outband.engine.platforms.qemu import QemuMachine
from outband.testing.engine import RunningEngine
from outband.testing.images import disk_image, iso_image

PASSWORD = "Launch!pass9"
BANNER = MESSAGE.encode() + b"\r\n"


def options(tmp_path: Path, **extra: object) -> LaunchOptions:
    return LaunchOptions(http_port=0, tls_port=None, redirection_port=0, redirection_tls_port=None,
                         state_dir=tmp_path / "state", admin_password=PASSWORD, **extra)  # type: ignore[arg-type]


async def test_an_engine_launched_from_a_vm_file_runs_the_vm_and_shows_its_screen(tmp_path: Path) -> None:
    require_qemu()
    (tmp_path / "disk.img").write_bytes(disk_image(MESSAGE))
    qemu_img = require("qemu-img", "qemu-utils")
    created = await asyncio.create_subprocess_exec(qemu_img, "create", "-q", "-f", "qcow2",
                                                   str(tmp_path / "data.qcow2"), "10M")
    assert await created.wait() == 0
    (tmp_path / "VM.toml").write_text('name = "from-file"\naccel = "tcg"\nmemory_mb = 32\n'
                                      '[[disks]]\npath = "disk.img"\n'
                                      '[[disks]]\npath = "data.qcow2"\ninterface = "virtio"\n')
    launched = await launch(options(tmp_path, vm=tmp_path / "VM.toml"))
    try:
        engine = launched.engines["127.0.0.1"]
        assert isinstance(engine.platform, QemuMachine)
        assert engine.config.hostname == "from-file"
        env = RunningEngine(engine, launched.server, engine.platform, PASSWORD)  # type: ignore[arg-type]
        await set_redirection(env)
        await enable_kvm(env)
        async with SolSession(env.host, password=PASSWORD, port=env.redirection_port) as sol:
            assert await request_power(env, 2) == 0
            await read_until(sol, BANNER)
        async with KvmSession(env.host, password=PASSWORD, port=env.redirection_port, timeout=WAIT) as kvm:
            await kvm.wait_for(lambda k: (k.framebuffer.width, k.framebuffer.height) == VGA_TEXT)
        amt = AmtClient(env.host, transport=env.transport())
        disks = await amt.enumerate("CIM_MediaAccessDevice")
        assert sorted(d["MaxMediaSize"] for d in disks) == [1048, 10485]  # the qcow2's size as QEMU reports it
        for transport in env.transports:
            await transport.close()
    finally:
        await launched.server.stop()
        launched.database.close()
    assert engine.platform.power_state.name == "OFF_SOFT"  # stopping the engine powered the VM off


async def test_an_engine_attached_to_a_running_qemu_resumes_pauses_and_resets_it(tmp_path: Path) -> None:
    require_qemu()
    (tmp_path / "disk.img").write_bytes(disk_image(MESSAGE))
    (tmp_path / "cd.iso").write_bytes(iso_image(CD_MESSAGE))
    (tmp_path / "VM.toml").write_text('name = "theirs"\nsoft_off = "immediate"\n')
    qmp, serial, vnc = tmp_path / "qmp.sock", tmp_path / "serial.sock", tmp_path / "vnc.sock"
    qemu = await asyncio.create_subprocess_exec(
        QEMU, "-nodefaults", "-S", "-machine", "pc", "-accel", "tcg", "-m", "32", "-display", "none",
        "-qmp", f"unix:{qmp},server=on,wait=off", "-serial", f"unix:{serial},server=on,wait=off",
        "-device", "VGA", "-vnc", f"unix:{vnc}",
        "-drive", f"file={tmp_path / 'disk.img'},if=none,id=d0,format=raw", "-device", "ide-hd,drive=d0,id=disk0",
        "-drive", f"file={tmp_path / 'cd.iso'},if=none,id=d1,format=raw,media=cdrom",
        "-device", "ide-cd,drive=d1,id=disk1",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await eventually(lambda: qmp.exists() and serial.exists() and vnc.exists(), within=WAIT)
        launched = await launch(options(tmp_path, vm=tmp_path / "VM.toml", qmp=qmp))
        try:
            engine = launched.engines["127.0.0.1"]
            env = RunningEngine(engine, launched.server, engine.platform, PASSWORD)  # type: ignore[arg-type]
            await set_redirection(env)
            async with SolSession(env.host, password=PASSWORD, port=env.redirection_port) as sol:
                assert await power_state(env) == 8  # a QEMU waiting at -S is off
                assert await request_power(env, 2) == 0  # cont
                seen = await read_until(sol, BANNER)
                assert await power_state(env) == 2
                assert await request_power(env, 8) == 0  # off: stopped at the reset vector
                assert await power_state(env) == 8
                assert await request_power(env, 2) == 0  # on again: the firmware boots from the start
                seen = await read_until(sol, BANNER + b".*" + BANNER, seen=seen)
                await arm(env, "Intel(r) AMT: Force CD/DVD Boot")  # its devices have the engine's ids
                assert await request_power(env, 10) == 0  # a reset of a running firmware (and its echo)
                seen = await read_until(sol, BANNER + b".*" + CD_BANNER, seen=seen)
                await default_order_back(engine.platform)  # type: ignore[arg-type]  # once the echo is over
                assert await request_power(env, 10) == 0
                await read_until(sol, CD_BANNER + b".*" + BANNER, seen=seen)
            await enable_kvm(env)  # its display, found through QMP
            async with KvmSession(env.host, password=PASSWORD, port=env.redirection_port, timeout=WAIT) as kvm:
                await kvm.wait_for(lambda k: (k.framebuffer.width, k.framebuffer.height) == VGA_TEXT)
            for transport in env.transports:
                await transport.close()
        finally:
            await launched.server.stop()
            launched.database.close()
        assert qemu.returncode is None  # the engine leaves running a QEMU it did not start
    finally:
        with contextlib.suppress(ProcessLookupError):
            qemu.kill()
        await qemu.wait()


async def default_order_back(machine: QemuMachine) -> None:
    """Until the VM's disk is first in the firmware's boot order again."""
    vm = machine._vm
    assert vm is not None
    for _ in range(int(WAIT * 10)):
        if await vm.monitor.execute("qom-get", {"path": "/machine/peripheral/disk0", "property": "bootindex"}) == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the default boot order did not come back")
