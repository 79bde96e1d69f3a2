"""KVM of a real VM: QEMU's VNC display re-served as AMT KVM by the engine's own KVM kind, keys typed into the
VM's keyboard."""

from __future__ import annotations

from pathlib import Path

from tests.qemu._kit import MESSAGE, WAIT, machine_of, qemu_engine, read_until, spec
from tests.redir._mediakit import enable_kvm

from outband.client.kvm import KvmSession
from outband.client.redirection import SolSession
from outband.engine.platforms.base import PowerAction
from outband.proto.rfb.pixels import RGB888

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VGA_TEXT = (720, 400)
"""QEMU's VGA in text mode (what SeaBIOS and the boot sector leave it in)."""


def colours(session: KvmSession) -> set[bytes]:
    rgb = session.rfb.rgb()
    return {rgb[i : i + 3] for i in range(0, len(rgb), 3)}


async def test_a_kvm_screenshot_of_the_vm_shows_its_screen_and_keys_reach_it(tmp_path: Path) -> None:
    async with qemu_engine(spec(tmp_path)) as env, \
            SolSession(env.host, password=env.password, port=env.redirection_port) as sol:
        await enable_kvm(env)
        assert await machine_of(env).request_power(PowerAction.ON)
        seen = await read_until(sol, MESSAGE.encode() + b"\r\n")
        async with KvmSession(env.host, password=env.password, port=env.redirection_port, pixel_format=RGB888,
                              timeout=WAIT) as kvm:
            await kvm.wait_for(lambda k: (k.framebuffer.width, k.framebuffer.height) == VGA_TEXT
                               and len(colours(k)) > 1)
            screenshot = kvm.screenshot()
            assert screenshot.startswith(PNG_SIGNATURE)
            assert len(screenshot) > 1000
            await kvm.key(ord("a"))  # press and release: scancodes 1E and 9E (set 1) on COM1
            await read_until(sol, b"\x1e\x9e", seen=seen)
