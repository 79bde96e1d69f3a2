"""vncdotool (PyPI, on Twisted) against the engine's port 5900, as any VNC tool would use AMT's: it logs in with
VNC Authentication and captures the screen, which must be the engine's text screen pixel for pixel; it types at
the machine; a wrong password is refused with our reason and opens nothing.  vncdotool runs as a subprocess (its
own Python process: its DES still comes from a deprecated import, which must not touch our warnings-as-errors)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image
from tests.redir.test_vnc_port import RFB_PASSWORD, audit_ids, enable_vnc, vnc_engine, vnc_port

from outband.engine.platforms.framebuffer import VGA_PALETTE, TextFramebuffer
from outband.engine.services import sessions
from outband.testing.engine import RunningEngine
from outband.testing.peers import PeerRun, require_program, run_peer

pytestmark = pytest.mark.peer


@pytest.fixture
async def env() -> AsyncIterator[RunningEngine]:
    async with vnc_engine() as running:
        await enable_vnc(running)
        yield running


async def vncdo(env: RunningEngine, password: str, *commands: str) -> PeerRun:
    program = require_program("vncdo")
    return await run_peer([program, "-s", f"{env.host}::{vnc_port(env)}", "-p", password, *commands], kill_after=90)


QUANTISATION = 8
"""How far a channel may stray from the VGA palette: vncdotool keeps AMT's 16-bit RGB565 and widens 5-bit red and
blue its own way (170 comes back as 172).  VGA levels are 85 apart, so every colour still names one entry."""


def screen_indices(env: RunningEngine) -> tuple[tuple[int, int], bytes]:
    """The engine's text screen drawn afresh: its size and VGA palette index per pixel."""
    picture = TextFramebuffer(env.machine.console.screen)
    return (picture.width, picture.height), picture.region(0, 0, picture.width, picture.height)


def png_indices(path: Path) -> tuple[tuple[int, int], bytes]:
    """A captured PNG's size and, per pixel, the one VGA palette entry its colour stands for."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        size, rgb = image.size, image.convert("RGB").tobytes()
    pixels = [rgb[i : i + 3] for i in range(0, len(rgb), 3)]
    entry: dict[bytes, int] = {}
    for colour in set(pixels):
        near = [n for n, vga in enumerate(VGA_PALETTE)
                if max(abs(a - b) for a, b in zip(colour, vga, strict=True)) <= QUANTISATION]
        assert len(near) == 1, f"colour {colour.hex()} is no VGA colour"
        entry[colour] = near[0]
    return size, bytes(entry[p] for p in pixels)


async def test_vncdotool_logs_in_and_captures_the_screen_pixel_for_pixel(env: RunningEngine, tmp_path: Path) -> None:
    shot = tmp_path / "screen.png"
    run = await vncdo(env, RFB_PASSWORD, "capture", str(shot))
    assert run.returncode == 0, run.describe()
    size, indices = png_indices(shot)
    assert (size, indices) == screen_indices(env)
    assert len(set(indices)) > 1  # text on a background, not a blank picture
    assert sessions.open_sessions(env.engine) == []
    assert audit_ids(env)[-2:] == [1808, 1809]


async def test_vncdotool_types_at_the_machine(env: RunningEngine, tmp_path: Path) -> None:
    shot = tmp_path / "typed.png"
    run = await vncdo(env, RFB_PASSWORD, "type", "echo typed-by-vncdotool", "key", "enter", "pause", "0.5",
                      "capture", str(shot))
    assert run.returncode == 0, run.describe()
    lines = env.machine.console.screen.text()
    assert sum("typed-by-vncdotool" in line for line in lines) == 2, lines  # the command and its output
    assert png_indices(shot) == screen_indices(env)


async def test_vncdotool_with_a_wrong_password_is_refused_with_our_reason(env: RunningEngine, tmp_path: Path) -> None:
    shot = tmp_path / "never.png"
    run = await vncdo(env, "Wrong#99", "capture", str(shot))
    assert run.returncode != 0, run.describe()
    assert "authentication failed" in run.stderr, run.describe()
    assert not shot.exists()
    assert 1808 not in audit_ids(env)
    assert sessions.open_sessions(env.engine) == []
