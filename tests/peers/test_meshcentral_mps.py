"""A real MPS: our engine dials MeshCentral's (npm meshcentral, started on loopback here), which lists the device
as connected over CIRA and reads its power state through the tunnel; a cut tunnel is seen and redialled.

The MeshCentral server runs from a temporary data path: a config.json (WAN mode so its MPS listens; a server name
with a dot, else MeshCentral falls back to LAN mode and starts no MPS; its MPS and web ports on 127.0.0.1; an MPS
password; the engine's admin password as an Intel AMT admin account), an admin user made with
``--createaccount``/``--adminaccount``, and an agentless (Intel AMT only) device group made with meshctrl.  The
engine is configured over WS-MAN as a console configures real AMT: MeshCentral's root certificate as trusted
root, its MPS (CN = the server name), a periodic policy.  MeshCentral takes the CIRA user name as the first 16
characters of the device group id (``@``/``$`` written as ``X``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from tests.cira._kit import CiraEnv, cira_engine, configure_cira

from outband.engine import cira
from outband.engine.platforms.base import PowerState
from outband.engine.platforms.console import ConsoleTiming, SimConsole
from outband.engine.platforms.sim import SimMachine
from outband.testing.peers import PeerFailed, node_modules, require_program, run_peer

pytestmark = pytest.mark.peer

SERVER_NAME = "mps.outband.test"
ADMIN_USER, ADMIN_PASSWORD = "admin", "Mesh.Admin." + secrets.token_hex(4)
MPS_PASSWORD = "Mps!" + secrets.token_hex(6)
AMT_PASSWORD = "Amt!" + secrets.token_hex(6)
STARTUP = 120.0
"""MeshCentral makes five certificates on first start; a busy 2-core machine needs time for that."""
CONNECTED = 2
"""MeshCentral's connectivity bit for Intel AMT CIRA."""
MESH_POWER = {PowerState.ON: 1, PowerState.OFF_SOFT: 6}
"""MeshCentral's power states (S0 on, S5 soft-off) for the machine's; before it reads one it shows 7, "present"."""


@dataclass
class MeshCentral:
    datapath: Path
    port: int
    mps_port: int
    process: asyncio.subprocess.Process
    log: deque[str]

    @property
    def root_der(self) -> bytes:
        pem = (self.datapath / "root-cert-public.crt").read_bytes()
        return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)

    async def ctl(self, *args: str) -> str:
        """Run meshctrl against this server as its admin; returns stdout."""
        modules = node_modules()
        run = await run_peer([require_program("node"), str(modules / "meshcentral" / "meshctrl.js"), *args,
                              "--url", f"wss://127.0.0.1:{self.port}", "--loginuser", ADMIN_USER,
                              "--loginpass", ADMIN_PASSWORD], cwd=modules / "meshcentral", kill_after=30)
        if run.returncode != 0:
            raise PeerFailed(f"meshctrl failed\n{run.describe()}")
        return run.stdout

    async def devices(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(await self.ctl("listdevices", "--json") or "[]")
        return found

    async def wait_for_device(self, node_id: str, condition: str, test: Any, within: float = 60.0
                              ) -> dict[str, Any]:
        """Poll MeshCentral (it has no push to us) until the device satisfies ``test``."""
        seen: dict[str, Any] | None = None
        try:
            async with asyncio.timeout(within):
                while True:
                    seen = next((d for d in await self.devices() if d["_id"] == node_id), None)
                    if seen is not None and test(seen):
                        return seen
                    await asyncio.sleep(0.3)
        except TimeoutError:
            raise AssertionError(f"MeshCentral never showed the device {condition}; last seen {seen}\n"
                                 + "\n".join(list(self.log)[-60:])) from None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_config(datapath: Path, port: int, mps_port: int) -> None:
    datapath.mkdir(parents=True, exist_ok=True)
    (datapath / "config.json").write_text(json.dumps(_config(port, mps_port)))


def _config(port: int, mps_port: int) -> dict[str, Any]:
    return {
        "settings": {
            "cert": SERVER_NAME, "WANonly": True, "port": port, "portBind": "127.0.0.1", "redirPort": 0,
            "mpsPort": mps_port, "mpsPortBind": "127.0.0.1", "mpsPass": MPS_PASSWORD, "selfUpdate": False,
            "exactPorts": True, "amtScanner": False, "meshScanner": False,
            "sessionKey": secrets.token_hex(16),
        },
        "domains": {"": {"title": "outband peer test",
                         "amtManager": {"adminAccounts": [{"user": "admin", "pass": AMT_PASSWORD}]}}},
    }


@asynccontextmanager
async def meshcentral(datapath: Path) -> AsyncIterator[MeshCentral]:
    node = require_program("node")
    script = str(node_modules() / "meshcentral" / "meshcentral.js")
    port, mps_port = _free_port(), _free_port()
    _write_config(datapath, port, mps_port)
    for args in (["--createaccount", ADMIN_USER, "--pass", ADMIN_PASSWORD], ["--adminaccount", ADMIN_USER]):
        run = await run_peer([node, script, "--datapath", str(datapath), *args], kill_after=60)
        if run.returncode != 0:
            raise PeerFailed(f"MeshCentral account setup failed\n{run.describe()}")
    process = await asyncio.create_subprocess_exec(
        node, script, "--datapath", str(datapath), "--debug", "amt,mps", stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    log: deque[str] = deque(maxlen=2000)
    started = asyncio.Event()

    async def read_log() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            text = line.decode("utf-8", "replace").rstrip()
            log.append(text)
            if "HTTPS server running" in text:
                started.set()

    reader = asyncio.create_task(read_log())
    try:
        try:
            async with asyncio.timeout(STARTUP):
                await started.wait()
        except TimeoutError:
            raise PeerFailed("MeshCentral did not start:\n" + "\n".join(log)) from None
        if not any("Intel(R) AMT server running" in line for line in log):
            raise PeerFailed("MeshCentral started without its MPS:\n" + "\n".join(log))
        yield MeshCentral(datapath, port, mps_port, process, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        await reader


def cira_username(mesh_id: str) -> str:
    """What MeshCentral expects as the CIRA user name of a device in this group."""
    return mesh_id.split("/")[-1][:16].replace("@", "X").replace("$", "X")


def node_id_of(system_uuid: str) -> str:
    """MeshCentral's id of an agentless device: its UUID (as MeshCentral decodes PROTOCOL_VERSION) three times."""
    raw = uuid.UUID(system_uuid).bytes * 3
    return "node//" + base64.b64encode(raw).decode().replace("+", "@").replace("/", "$")


@asynccontextmanager
async def engine_in_meshcentral(tmp_path: Path, server: MeshCentral, tuning: cira.CiraTuning,
                                power: PowerState = PowerState.OFF_SOFT) -> AsyncIterator[CiraEnv]:
    mesh_id = (await server.ctl("adddevicegroup", "--name", "cira devices", "--amtonly")).split()[-1]
    assert mesh_id.startswith("mesh//"), mesh_id
    machine = SimMachine(power_state=power, console=SimConsole(timing=ConsoleTiming.instant()))
    async with cira_engine(tmp_path, None, tuning=tuning, password=AMT_PASSWORD, machine=machine) as env:
        await configure_cira(env, root_der=server.root_der, host="127.0.0.1", port=server.mps_port,
                             username=cira_username(mesh_id), password=MPS_PASSWORD, common_name=SERVER_NAME)
        yield env


@pytest.mark.parametrize("power", [PowerState.OFF_SOFT, PowerState.ON], ids=["soft-off", "on"])
async def test_meshcentral_lists_the_engine_over_cira_and_reads_its_power_state(tmp_path: Path,
                                                                                power: PowerState) -> None:
    async with meshcentral(tmp_path / "meshcentral") as server, \
            engine_in_meshcentral(tmp_path, server, cira.CiraTuning(config_poll=0.2), power) as env:
        node_id = node_id_of(env.system_uuid)  # the UUID arrived in AMT's byte order
        device = await server.wait_for_device(node_id, "connected over CIRA",
                                              lambda d: d.get("conn", 0) & CONNECTED)
        assert device["mtype"] == 1  # agentless: an Intel AMT device
        # MeshCentral's AMT manager logs in through the tunnel with the configured admin account and reads
        # CIM_ServiceAvailableToElement, and for a machine that is on (AMT 10 and later) IPS_PowerManagementService's
        # OSPowerSavingState: "present" (7) becomes the machine's real state.
        device = await server.wait_for_device(node_id, "with its power state read through the tunnel",
                                              lambda d: d.get("pwr") == MESH_POWER[power])
        assert device["conn"] & CONNECTED
        assert env.client.status.connects == 1


async def test_meshcentral_sees_a_cut_tunnel_and_the_redial(tmp_path: Path) -> None:
    slow = cira.CiraTuning(backoff=cira.Backoff(base=4.0, cap=8.0), config_poll=0.2)  # offline long enough to see
    async with meshcentral(tmp_path / "meshcentral") as server, \
            engine_in_meshcentral(tmp_path, server, slow) as env:
        node_id = node_id_of(env.system_uuid)
        await server.wait_for_device(node_id, "connected over CIRA", lambda d: d.get("conn", 0) & CONNECTED)
        assert env.client.tunnel is not None
        env.client.tunnel.abort()  # the TCP connection dies
        await server.wait_for_device(node_id, "offline after the cut", lambda d: not d.get("conn", 0) & CONNECTED)
        await server.wait_for_device(node_id, "back over CIRA", lambda d: d.get("conn", 0) & CONNECTED)
        assert env.client.status.connects == 2
