"""MeshCentral's bundled AMT IDE-R stack (npm meshcentral: amt/amt-ider-module.js inside amt/amt-redir-mesh.js,
unmodified, see meshcentral_ider.js) serves a CD and a floppy image built by the test to the engine with its
digest login, and the simulated firmware boots from them through the engine's IDE-R session."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.peers._peerkit import PEERS_DIR, assert_steps_ok, step_data
from tests.redir._kit import audit_ids, eventually
from tests.redir._mediakit import media_engine

from outband.engine.platforms.base import BootDevice
from outband.proto.redir.session import AuthType
from outband.testing.images import floppy_image, iso_image
from outband.testing.peers import peer_password, run_node_json

pytestmark = pytest.mark.peer

SCRIPT = PEERS_DIR / "meshcentral_ider.js"


@pytest.mark.parametrize(("device", "option", "image", "booted"), [
    (BootDevice.IDER_CD, "--cd", lambda: iso_image("served by MeshCentral", label="MESHCD"),
     ["Booted from IDE-R CD-ROM: MESHCD", "served by MeshCentral"]),
    (BootDevice.IDER_FLOPPY, "--floppy", lambda: floppy_image("floppy from MeshCentral", label="MESHFD"),
     ["Booted from IDE-R floppy: MESHFD", "floppy from MeshCentral"]),
], ids=["cd", "floppy"])
async def test_meshcentral_serves_images_the_firmware_boots_from(tmp_path: Path, device: BootDevice, option: str,
                                                                 image, booted: list[str]) -> None:
    path = tmp_path / "image.bin"
    path.write_bytes(image())
    async with media_engine(password=peer_password(), standard_ports=True) as r:
        peer = asyncio.ensure_future(run_node_json(SCRIPT, ["--host", r.host, option, str(path), "--wait", "20"],
                                                   env={"PEER_PASSWORD": r.password}, kill_after=60))
        storage = r.machine.console.storage
        await eventually(lambda: storage.port is not None or peer.done(), within=20)
        assert storage.port is not None, (await peer)["results"]
        lines: list[str] = []
        assert await storage.boot(device, lines.append) is not None, lines
        assert lines == booted
        await r.listener.aclose()  # the firmware is done: the session ends, and MeshCentral's stack with it
        report: dict[str, Any] = await peer
        assert_steps_ok(report["results"], peer="MeshCentral IDE-R")
        assert report["authTypes"] == [AuthType.QUERY, AuthType.DIGEST, AuthType.DIGEST]
        assert report["iderinfo"]["readbfr"] == 8192
        reads = step_data(report["results"], "served")
        assert reads[0][0] == ("cd" if device is BootDevice.IDER_CD else "floppy")
        await eventually(lambda: 1801 in audit_ids(r))
