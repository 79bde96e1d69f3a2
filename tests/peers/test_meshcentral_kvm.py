"""MeshCentral's bundled AMT KVM stack (npm meshcentral: public/scripts/amt-redir-ws-0.1.0.js under
amt-desktop-0.0.2.js, loaded unmodified by meshcentral_kvm.js) opens a remote desktop on the engine with its
digest login, headless: in AMT's default RGB565, in its 8-bit colour mode, and with zlib switched on through
the Intel extension.  The picture MeshCentral's decoder drew is read back, glyph by glyph, into the console's
text -- including what was typed with the desktop's own key events."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from tests.peers._peerkit import PEERS_DIR, assert_steps_ok
from tests.redir._kit import audit_ids, eventually
from tests.redir._mediakit import media_engine

from outband.engine.platforms.framebuffer import VGA_PALETTE, TextFramebuffer
from outband.proto.redir.session import AuthType
from outband.proto.rfb import RGB332, RGB565
from outband.testing.peers import peer_password, run_node_json

pytestmark = pytest.mark.peer

SCRIPT = PEERS_DIR / "meshcentral_kvm.js"
TYPED = "echo mesh-kvm"


def _fix(c: int) -> int:
    return c + 32 if c > 127 else c


def shown_colour(index: int, bpp: int) -> tuple[int, int, int]:
    """The canvas colour amt-desktop draws for a VGA palette entry (its _setPixel16 / _setPixel8 arithmetic)."""
    if bpp == 2:
        v = RGB565.value_of(VGA_PALETTE[index])
        return (v >> 8) & 248, (v >> 3) & 252, (v & 31) << 3
    v = RGB332.value_of(VGA_PALETTE[index])
    return v & 224, (v & 28) << 3, _fix((v & 3) << 6)


@pytest.mark.parametrize(("options", "bpp"), [([], 2), (["--bpp", "1"], 1), (["--zlib"], 2)],
                         ids=["rgb565", "rgb332", "zlib"])
async def test_meshcentral_opens_kvm_and_its_picture_shows_the_console(options: list[str], bpp: int) -> None:
    async with media_engine(password=peer_password()) as r:
        report: dict[str, Any] = await run_node_json(
            SCRIPT, ["--host", r.host, "--port", str(r.port), "--type", TYPED, *options],
            env={"PEER_PASSWORD": r.password}, kill_after=60)
        assert_steps_ok(report["results"], peer="MeshCentral KVM")
        assert report["authTypes"] == [AuthType.QUERY, AuthType.DIGEST, AuthType.DIGEST]
        assert (report["width"], report["height"]) == (720, 400)
        index_of: dict[tuple[int, int, int], int] = {}
        for index in range(len(VGA_PALETTE)):
            index_of.setdefault(shown_colour(index, bpp), index)
        rgb = base64.b64decode(report["rgb"])
        indices = bytes(index_of[(rgb[k], rgb[k + 1], rgb[k + 2])] for k in range(0, len(rgb), 3))
        grid = r.machine.console.screen
        seen = TextFramebuffer(grid).read_text(indices)
        assert seen[0].startswith(f"root@outband-sim:~# {TYPED}")
        assert seen[1].rstrip() == "mesh-kvm"
        assert seen == grid.text()
        await eventually(lambda: 1809 in audit_ids(r))
        assert audit_ids(r)[-2:] == [1808, 1809]
