"""The console's MPS with real engines dialling it over TLS: who may log in (shared or per-device credentials,
unknown devices refused or auto-registered), presence in the database (online, node, peer, connected since,
keepalives), and WS-MAN through the tunnel by way of the device connector, as every console feature uses it."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.console._mpskit import (
    WITHIN,
    add_cira_device,
    device_row,
    dial,
    dialling_engine,
    presence,
    sim_machine,
    start_mps,
    stored_online,
    tunnels,
    until,
)

from outband.aio.errors import ConnectError
from outband.console.db.models import AuditEntry, Device, Transport
from outband.console.devices.connect import DeviceOffline, DeviceTarget
from outband.console.mps import MpsService
from outband.console.mps.presence import MPS_RESTARTED, REPLACED
from outband.console.runtime import Runtime

AMT_PASSWORD = "Amt!pass-1234"


async def target_of(runtime: Runtime, device_id: int) -> DeviceTarget:
    device = await device_row(runtime, device_id)
    return DeviceTarget.of(device, runtime.box.decrypt(device.password_enc))


async def refusals(runtime: Runtime) -> list[dict[str, object]]:
    async with runtime.db.read() as session:
        rows = (await session.execute(select(AuditEntry).where(AuditEntry.action == "cira.login"))).scalars()
        return [dict(row.detail, outcome=row.outcome) for row in rows]


async def test_an_engine_dials_in_comes_online_and_answers_wsman_through_its_tunnel(runtime: Runtime,
                                                                                   tmp_path: Path) -> None:
    mps = await start_mps(runtime)
    machine = sim_machine("online")
    device_id = await add_cira_device(runtime, "cira-1", machine, AMT_PASSWORD)
    async with dialling_engine(tmp_path, dial(mps), machine, AMT_PASSWORD):
        row = await stored_online(runtime, device_id, True)
        assert (row.mps_node, row.peer) == ("node-a", "127.0.0.1")
        assert row.connected_since is not None
        assert device_id in mps.registry
        assert (await device_row(runtime, device_id)).reachable is True

        amt = runtime.connector.client(await target_of(runtime, device_id), operation="test")
        try:
            settings = await amt.get("AMT_GeneralSettings")
            assert settings["HostName"] == "cira-sim"  # the engine's, reached only through the tunnel
            system = await amt.get("CIM_ComputerSystemPackage")
            assert system["PlatformGUID"]
        finally:
            await amt.close()

        first_keepalive = row.last_keepalive
        assert first_keepalive is not None

        async def keepalive_stored() -> bool:
            later = await presence(runtime, device_id)
            return later is not None and later.last_keepalive is not None and later.last_keepalive > first_keepalive

        await until(keepalive_stored)  # the device's keepalives (every second here) reach the database
    row = await stored_online(runtime, device_id, False)  # the engine stopped: its tunnel ended
    assert row.disconnected_at is not None
    assert row.last_error
    device = await device_row(runtime, device_id)
    assert device.reachable is False
    assert device.last_error
    assert "CIRA tunnel closed" in device.last_error
    assert device_id not in mps.registry


async def test_a_device_without_a_tunnel_is_offline_not_a_console_error(runtime: Runtime) -> None:
    machine = sim_machine("never-dials")
    device_id = await add_cira_device(runtime, "cira-away", machine, AMT_PASSWORD)
    target = await target_of(runtime, device_id)
    for expected in ("this console runs no MPS", "not connected to any MPS node"):
        amt = runtime.connector.client(target, operation="test")
        try:
            with pytest.raises(DeviceOffline, match=expected):
                await amt.get("AMT_GeneralSettings")
        finally:
            await amt.close()
        with pytest.raises(DeviceOffline, match=expected):
            await runtime.connector.redirection_streams(target, 1.0)()
        if expected.startswith("this console"):
            await start_mps(runtime)


async def test_logins_are_checked_and_refusals_audited(runtime: Runtime, tmp_path: Path) -> None:
    mps = await start_mps(runtime)
    shared = sim_machine("shared")
    own = sim_machine("own")
    stranger = sim_machine("stranger")
    shared_id = await add_cira_device(runtime, "shared", shared, AMT_PASSWORD)
    own_id = await add_cira_device(runtime, "own", own, AMT_PASSWORD, cira_login=("own-user", "Own!secret-1"))

    async with dialling_engine(tmp_path, dial(mps, password="Wrong!pass-1"), shared, AMT_PASSWORD) as env:
        async with asyncio.timeout(WITHIN):
            await env.client.wait_until(lambda s: s.failures >= 2)
        assert not env.client.status.connected
    async with dialling_engine(tmp_path, dial(mps), own, AMT_PASSWORD) as env:  # the shared login is not its own
        async with asyncio.timeout(WITHIN):
            await env.client.wait_until(lambda s: s.failures >= 1)
    async with dialling_engine(tmp_path, dial(mps), stranger, AMT_PASSWORD) as env:  # not registered
        async with asyncio.timeout(WITHIN):
            await env.client.wait_until(lambda s: s.failures >= 1)
        assert "InvalidCredentials" in env.client.status.last_error

    reasons = {(str(entry["uuid"]), str(entry["reason"])) for entry in await refusals(runtime)}
    assert (shared.profile.system_uuid, "wrong shared MPS credentials") in reasons
    assert (own.profile.system_uuid, "wrong device MPS credentials") in reasons
    assert (stranger.profile.system_uuid, f"unknown device {stranger.profile.system_uuid} (auto-registration is "
                                          "off)") in reasons
    assert all(entry["outcome"] == "failed" and "Own!secret-1" not in str(entry) for entry in await refusals(runtime))
    assert len(mps.registry) == 0
    async with runtime.db.read() as session:
        assert len((await session.execute(select(Device.id))).all()) == 2  # the stranger was not added

    async with dialling_engine(tmp_path, dial(mps, user="own-user", password="Own!secret-1"), own, AMT_PASSWORD), \
            dialling_engine(tmp_path, dial(mps), shared, AMT_PASSWORD):
        await stored_online(runtime, own_id, True)
        await stored_online(runtime, shared_id, True)


async def test_auto_registration_adds_an_unknown_device_that_knows_the_shared_login(runtime: Runtime,
                                                                                   tmp_path: Path) -> None:
    mps = await start_mps(runtime, mps_auto_register=True, mps_amt_password=AMT_PASSWORD)
    machine = sim_machine("newcomer")
    async with dialling_engine(tmp_path, dial(mps), machine, AMT_PASSWORD):
        async with asyncio.timeout(WITHIN):
            await mps.registry.wait_until(lambda registry: len(registry) == 1)
        async with runtime.db.read() as session:
            device = (await session.execute(select(Device))).scalar_one()
        assert (device.name, device.uuid, device.transport) == (
            f"cira-{machine.profile.system_uuid}", machine.profile.system_uuid, Transport.CIRA)
        amt = runtime.connector.client(DeviceTarget.of(device, runtime.box.decrypt(device.password_enc)))
        try:
            assert (await amt.get("AMT_GeneralSettings"))["HostName"] == "cira-sim"
        finally:
            await amt.close()


async def test_a_newer_tunnel_of_the_same_device_replaces_the_older(runtime: Runtime, tmp_path: Path) -> None:
    """AMT that lost its link without a word dials again before the MPS notices: the new tunnel wins, and the
    old one's end does not mark the device offline."""
    mps = await start_mps(runtime)
    machine = sim_machine("twice")
    device_id = await add_cira_device(runtime, "twice", machine, AMT_PASSWORD)
    async with dialling_engine(tmp_path / "a", dial(mps), machine, AMT_PASSWORD):
        first = await stored_online(runtime, device_id, True)
        old_tunnel = mps.registry.get(device_id)
        async with dialling_engine(tmp_path / "b", dial(mps), machine, AMT_PASSWORD):
            async with asyncio.timeout(WITHIN):
                await mps.registry.wait_until(lambda registry: registry.get(device_id) not in (None, old_tunnel))
            assert old_tunnel is not None
            await old_tunnel.wait_closed()
            await mps.presence.flushed()
            row = await presence(runtime, device_id)
            assert row is not None
            assert row.online
            assert row.connected_since != first.connected_since
            older, newer, *later = await tunnels(runtime, device_id)  # (engine a may redial and win back)
            assert (older.connected_at, older.reason) == (first.connected_since, REPLACED)
            assert older.disconnected_at == newer.connected_at  # it ended when the newer one came
            assert newer.mps_node == "node-a"
            assert [t.disconnected_at is None for t in (newer, *later)][-1]  # the newest lasts


async def test_a_restarted_node_marks_its_devices_offline(runtime: Runtime, tmp_path: Path) -> None:
    mps = await start_mps(runtime)
    machine = sim_machine("restart")
    device_id = await add_cira_device(runtime, "restart", machine, AMT_PASSWORD)
    async with dialling_engine(tmp_path, dial(mps), machine, AMT_PASSWORD):
        await stored_online(runtime, device_id, True)
        await mps.presence.close()  # as if the process died: nothing more is stored, the row says online
        restarted = MpsService(mps.settings)  # the same node, started again
        await restarted.start(runtime)
        try:
            row = await presence(runtime, device_id)
            assert row is not None
            assert row.online is False
            assert row.last_error == MPS_RESTARTED
            assert (await device_row(runtime, device_id)).reachable is False
            [tunnel] = await tunnels(runtime, device_id)
            assert tunnel.reason == MPS_RESTARTED
            assert tunnel.disconnected_at is not None
        finally:
            await restarted.stop()


async def test_the_mps_certificate_is_generated_once_and_verifies_as_the_engine_checks_it(runtime: Runtime,
                                                                                         tmp_path: Path) -> None:
    mps = await start_mps(runtime)
    assert mps.cert_file == runtime.settings.data_dir / "mps" / "cert.pem"
    fingerprint = mps.fingerprint
    context = ssl.create_default_context(cafile=str(mps.cert_file))
    _, writer = await asyncio.open_connection("127.0.0.1", mps.port, ssl=context, server_hostname="127.0.0.1")
    writer.close()
    await mps.stop()
    again = MpsService(mps.settings)
    await again.start(runtime)
    try:
        assert again.fingerprint == fingerprint  # kept: AMT keeps trusting it
    finally:
        await again.stop()


async def test_a_taken_port_fails_when_chosen(runtime: Runtime) -> None:
    mps = await start_mps(runtime)
    with pytest.raises(OSError, match="the MPS cannot listen"):
        await start_mps(runtime, mps_listen=f"127.0.0.1:{mps.port}")


async def test_tls_redirection_pin_is_checked_over_the_tunnel(runtime: Runtime, tmp_path: Path) -> None:
    mps = await start_mps(runtime)
    machine = sim_machine("pinned")
    device_id = await add_cira_device(runtime, "pinned", machine, AMT_PASSWORD)
    async with dialling_engine(tmp_path, dial(mps), machine, AMT_PASSWORD):
        await stored_online(runtime, device_id, True)
        target = await target_of(runtime, device_id)
        wrong = DeviceTarget(target.device_id, target.name, target.host, target.username, target.password,
                             use_tls=True, fingerprint="00" * 32, transport=Transport.CIRA)
        with pytest.raises(ConnectError, match="pinned fingerprint"):
            await runtime.connector.redirection_streams(wrong, 5.0)()
