"""MeshCentral's bundled Intel AMT stack (npm meshcentral, node_modules/meshcentral/amt) against the engine, on
plain HTTP and on TLS with the engine's self-signed certificate, driven through the flows MeshCentral's
amtmanager.js and its bundled MeshCommander run (see meshcentral_wsman.js)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.peers._peerkit import PEERS_DIR, Step, assert_steps_ok, step_data

from outband.engine.platforms.base import BootDevice, PowerState
from outband.testing.engine import RunningEngine
from outband.testing.peers import run_node_json

pytestmark = pytest.mark.peer

SCRIPT = PEERS_DIR / "meshcentral_wsman.js"


async def meshcentral(env: RunningEngine, *groups: str, tls: bool = False) -> tuple[dict[str, Any], list[Step]]:
    args = ["--host", env.host, "--port", str(env.tls_port if tls else env.port), "--groups", ",".join(groups)]
    report: dict[str, Any] = await run_node_json(
        SCRIPT, [*args, *(["--tls"] if tls else [])], env={"PEER_PASSWORD": env.password})
    assert_steps_ok(report["results"], peer=f"MeshCentral {'TLS' if tls else 'HTTP'} {','.join(groups)}")
    assert report["amtVersion"] == env.engine.amt_version, "MeshCentral reads the version from the Server header"
    return report, report["results"]


@pytest.mark.parametrize(
    "group", ["contact", "version", "clock", "status", "settings", "tls", "cira", "accounts", "alarms", "logs"])
async def test_flow(peer_env: RunningEngine, group: str) -> None:
    await meshcentral(peer_env, group)


async def test_inventory_as_meshcentral_stores_it(peer_env: RunningEngine) -> None:
    _, steps = await meshcentral(peer_env, "inventory")
    profile = peer_env.machine.profile
    hw = step_data(steps, "hardware inventory")
    assert uuid.UUID(hw["product_uuid"]) == uuid.UUID(profile.system_uuid)
    assert (hw["board_vendor"], hw["board_name"], hw["board_serial"]) == (
        profile.board.manufacturer, profile.board.product, profile.board.serial)
    assert (hw["bios_vendor"], hw["bios_version"]) == (profile.bios.vendor, profile.bios.version)
    assert hw["cpu_name"] == profile.cpus[0].brand
    assert [m["Capacity"] for m in hw["memory"]] == [m.capacity_bytes for m in profile.memory]
    assert [d["Size"] for d in hw["storage_devices"]] == [d.size_kb * 1000 for d in profile.disks]
    wired = step_data(steps, "network")
    assert wired["mac"] == profile.nics[0].mac.replace("-", ":").upper()


async def test_power_on_and_off(peer_env: RunningEngine) -> None:
    await meshcentral(peer_env, "power")
    assert peer_env.machine.power_state is PowerState.OFF_SOFT
    assert peer_env.machine.boot_count == 1


async def test_reset_to_pxe(peer_env: RunningEngine) -> None:
    await meshcentral(peer_env, "pxe")
    machine = peer_env.machine
    assert machine.power_state is PowerState.ON
    assert machine.boot_count == 2, "power-up, then the reset into PXE"
    assert machine.last_boot is not None
    assert machine.last_boot.device is BootDevice.PXE
    assert machine.next_boot.device is BootDevice.DEFAULT


async def test_over_tls(peer_tls_env: RunningEngine) -> None:
    """16993 as MeshCentral connects to it: TLS, certificate not checked (amtmanager sets xtlsFingerprint 0)."""
    report, _ = await meshcentral(peer_tls_env, "contact", "status", "inventory", "power", tls=True)
    assert report["tls"] is True
    assert report["tlsCheck"] == 3, "an untrusted (self-signed) certificate, accepted without pinning"
    assert peer_tls_env.machine.power_state is PowerState.OFF_SOFT
    assert peer_tls_env.machine.boot_count == 1
