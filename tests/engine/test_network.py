"""AMT_EthernetPortSettings over HTTP: capture shapes, the three IPv4 modes, Put validation that changes
nothing when it refuses, audit records, the wireless port and its link preference, persistence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from tests.engine._shape_inventory import add_user, assert_same_shape, enumerate_raw, get_object, invoke

from outband.engine.platforms.base import PowerAction
from outband.engine.platforms.profile import HardwareProfile, Nic
from outband.engine.platforms.sim import SimMachine
from outband.proto.amt import PTStatus, Realm
from outband.proto.amtlog import AuditRecord
from outband.proto.cim.model import CimObject
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine, running_engine

PORTS = "AMT_EthernetPortSettings"
WIRED = {"InstanceID": "Intel(r) AMT Ethernet Port Settings 0"}
WIRELESS = {"InstanceID": "Intel(r) AMT Ethernet Port Settings 1"}
STATIC = {"DHCPEnabled": False, "IpSyncEnabled": False, "IPAddress": "192.168.0.50", "SubnetMask": "255.255.255.0",
          "DefaultGateway": "192.168.0.1", "PrimaryDNS": "192.168.0.1", "SecondaryDNS": "8.8.8.8"}
WIFI = Nic(mac="66-77-88-99-aa-bb", wireless=True, ipv4="10.1.2.3", subnet_mask="255.255.0.0", gateway="10.1.0.1",
           dns=("10.1.0.2",))


class Mistyped(str):
    """Text sent where the class declares another type (the model refuses to build it, so it is patched in)."""


def machine(*nics: Nic) -> SimMachine:
    return SimMachine(dataclasses.replace(HardwareProfile(), nics=nics))


def audits(env: RunningEngine) -> list[int]:
    return [AuditRecord.decode(r).full_id for r in env.engine.store.read_log("audit")]


async def wired(env: RunningEngine) -> CimObject:
    return await get_object(env.transport(), PORTS, WIRED)


async def put(env: RunningEngine, changes: dict[str, object], selectors: dict[str, str] = WIRED,
              *, drop: tuple[str, ...] = ()) -> CimObject | F.WsmanFault:
    """Get-modify-Put as consoles do it; the reply body, or its fault."""
    t = env.transport()
    current = await get_object(t, PORTS, selectors)
    for name in drop:
        if name in current:
            del current[name]
    for name, value in changes.items():
        if isinstance(value, Mistyped):
            for field in current.fields:
                field.value = str(value) if field.name == name else field.value
        else:
            current[name] = value
    reply = await t.send(msg.put(current, selectors))
    if reply.fault is not None:
        return reply.fault
    assert isinstance(reply.body, CimObject)
    return reply.body


# ---------------------------------------------------------------------------------------------- shapes


async def test_get_enumerate_and_put_have_the_capture_shapes(conformance_dir: Path) -> None:
    nic = Nic(mac="c8-d9-d2-7a-1e-33", dns=("68.105.28.11", "68.105.29.11"))
    async with running_engine(machine=machine(nic)) as env:
        t = env.transport()
        status, body = await t.post(msg.get(PORTS).to_bytes())
        assert status == 200
        # The capture leaves out the DHCP address, which AMT reports ("Get reports the acquired IP address
        # whether in static or DHCP mode", and the Put capture shows it): compare everything else.
        assert_same_shape(body, conformance_dir / "amt/ethernetport/get.xml", ignore=("IPAddress",))
        status, body = await t.post(msg.enumerate_(PORTS).to_bytes())
        assert_same_shape(body, conformance_dir / "amt/ethernetport/enumerate.xml")

        current = await get_object(t, PORTS)
        current["SharedStaticIp"] = True
        current["LinkPolicy"] = [1, 14, 16]
        status, body = await t.post(msg.put(current, WIRED).to_bytes())
        assert status == 200
        assert_same_shape(body, conformance_dir / "amt/ethernetport/put.xml")


async def test_pull_with_a_wireless_port_has_the_capture_shape(conformance_dir: Path) -> None:
    offline_wifi = dataclasses.replace(WIFI, link_up=False)
    async with running_engine(machine=machine(Nic(dns=("192.168.6.1",)), offline_wifi)) as env:
        body = await enumerate_raw(env.transport(), PORTS)
        assert_same_shape(body, conformance_dir / "amt/ethernetport/pull.xml", ignore=("IPAddress",))


# ---------------------------------------------------------------------------------------------- modes


async def test_dhcp_mode_reports_the_lease(engine_env: RunningEngine) -> None:
    port = await wired(engine_env)
    nic = engine_env.machine.profile.nics[0]
    assert (port["DHCPEnabled"], port["IpSyncEnabled"], port["LinkPolicy"]) == (True, True, [1, 14])
    assert (port["IPAddress"], port["SubnetMask"], port["DefaultGateway"]) == (nic.ipv4, nic.subnet_mask, nic.gateway)
    assert (port["MACAddress"], port["LinkIsUp"]) == (nic.mac, True)
    assert "SecondaryDNS" not in port  # the lease has one DNS server


async def test_static_configuration_is_applied_audited_and_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    async with running_engine(state=state) as env:
        result = await put(env, STATIC)
        assert isinstance(result, CimObject)
        assert {k: result[k] for k in STATIC} == STATIC
        assert audits(env) == [2200]
        record = AuditRecord.decode(env.engine.store.read_log("audit")[-1])
        assert (record.initiator, record.address) == ("admin", "127.0.0.1")
    async with running_engine(state=state) as env:
        port = await wired(env)
        assert {k: port[k] for k in STATIC} == STATIC
        # Back to DHCP as MeshCommander does it: the address fields deleted from the instance.
        result = await put(env, {"DHCPEnabled": True, "IpSyncEnabled": True}, drop=tuple(STATIC))
        assert isinstance(result, CimObject)
        assert result["IPAddress"] == env.machine.profile.nics[0].ipv4
    async with running_engine(state=state) as env:
        assert (await wired(env))["DHCPEnabled"] is True


async def test_a_static_put_clears_optional_fields_it_leaves_out(engine_env: RunningEngine) -> None:
    assert isinstance(await put(engine_env, STATIC), CimObject)
    # MeshCommander sends a blank gateway as an empty string and leaves blank DNS fields out.
    result = await put(engine_env, {"DefaultGateway": "", "IPAddress": "192.168.0.51"},
                       drop=("PrimaryDNS", "SecondaryDNS"))
    assert isinstance(result, CimObject)
    assert result["IPAddress"] == "192.168.0.51"
    assert not {"DefaultGateway", "PrimaryDNS", "SecondaryDNS"} & set(result.names())


async def test_ip_sync_takes_the_host_address(engine_env: RunningEngine) -> None:
    result = await put(engine_env, {"DHCPEnabled": False, "IpSyncEnabled": True, "SharedStaticIp": True})
    assert isinstance(result, CimObject)
    assert (result["DHCPEnabled"], result["IpSyncEnabled"]) == (False, True)
    assert result["IPAddress"] == engine_env.machine.profile.nics[0].ipv4
    refused = await put(engine_env, {"IPAddress": "192.168.0.77"})
    assert isinstance(refused, F.InvalidRepresentation)


async def test_get_modify_put_echoing_the_lease_is_accepted_without_an_audit(engine_env: RunningEngine) -> None:
    result = await put(engine_env, {})
    assert isinstance(result, CimObject)
    assert audits(engine_env) == []


async def test_link_policy_change_is_audited_on_its_own(engine_env: RunningEngine) -> None:
    result = await put(engine_env, {"LinkPolicy": [224, 1, 14, 16]})
    assert isinstance(result, CimObject)
    assert result["LinkPolicy"] == [1, 14, 16, 224]
    assert audits(engine_env) == [2204]


# ---------------------------------------------------------------------------------------------- refusals

REFUSALS = [
    pytest.param({"DHCPEnabled": None}, "MissingValues", id="no-DHCPEnabled"),
    pytest.param({**STATIC, "IPAddress": None}, "MissingValues", id="static-without-address"),
    pytest.param({**STATIC, "SubnetMask": None}, "MissingValues", id="static-without-mask"),
    pytest.param({**STATIC, "IPAddress": "300.1.1.1"}, "InvalidValues", id="octet-out-of-range"),
    pytest.param({**STATIC, "IPAddress": "192.168.000.50"}, "InvalidValues", id="leading-zeros"),
    pytest.param({**STATIC, "IPAddress": "amt.example.com"}, "InvalidValues", id="a-name"),
    pytest.param({**STATIC, "IPAddress": "127.0.0.1"}, "InvalidValues", id="loopback"),
    pytest.param({**STATIC, "IPAddress": "192.168.0.0"}, "InvalidValues", id="network-address"),
    pytest.param({**STATIC, "IPAddress": "192.168.0.255"}, "InvalidValues", id="broadcast-address"),
    pytest.param({**STATIC, "SubnetMask": "255.0.255.0"}, "InvalidValues", id="non-contiguous-mask"),
    pytest.param({**STATIC, "SubnetMask": "255.255.255.254"}, "InvalidValues", id="mask-without-hosts"),
    pytest.param({**STATIC, "DefaultGateway": "10.0.0.1"}, "InvalidValues", id="gateway-off-subnet"),
    pytest.param({**STATIC, "DefaultGateway": "192.168.0.50"}, "InvalidValues", id="gateway-is-self"),
    pytest.param({**STATIC, "PrimaryDNS": "224.0.0.1"}, "InvalidValues", id="multicast-dns"),
    pytest.param({"IPAddress": "192.168.0.99"}, "InvalidValues", id="address-in-dhcp-mode"),
    pytest.param({"LinkPolicy": [1, 3]}, "InvalidValues", id="unknown-link-policy"),
    pytest.param({"DHCPEnabled": Mistyped("yes")}, "InvalidValues", id="mistyped-boolean"),
    pytest.param({"InstanceID": "Intel(r) AMT Ethernet Port Settings 9"}, "InvalidValues", id="key-change"),
]


@pytest.mark.parametrize(("changes", "detail"), REFUSALS)
async def test_bad_puts_are_refused_and_change_nothing(
    engine_env: RunningEngine, changes: dict[str, object], detail: str
) -> None:
    before = await wired(engine_env)
    drop = tuple(k for k, v in changes.items() if v is None)
    fault = await put(engine_env, {k: v for k, v in changes.items() if v is not None}, drop=drop)
    assert isinstance(fault, F.InvalidRepresentation), fault
    assert fault.detail == F.detail_uri(detail)
    assert await wired(engine_env) == before
    assert audits(engine_env) == []


# ---------------------------------------------------------------------------------------------- wireless


async def test_wireless_port_is_dhcp_only() -> None:
    async with running_engine(machine=machine(Nic(), WIFI)) as env:
        port = await get_object(env.transport(), PORTS, WIRELESS)
        assert (port["DHCPEnabled"], port["IPAddress"], port["PhysicalConnectionType"]) == (True, "10.1.2.3", 3)
        refused = await put(env, {"DHCPEnabled": False}, WIRELESS)
        assert isinstance(refused, F.InvalidRepresentation)
        refused = await put(env, {"ConsoleTcpMaxRetransmissions": 9}, WIRELESS)
        assert isinstance(refused, F.InvalidRepresentation)
        result = await put(env, {"ConsoleTcpMaxRetransmissions": 7}, WIRELESS)
        assert isinstance(result, CimObject)
        assert result["ConsoleTcpMaxRetransmissions"] == 7


async def test_a_machine_without_wired_lan_shows_a_null_wired_port() -> None:
    async with running_engine(machine=machine(WIFI)) as env:
        port = await wired(env)
        assert (port["MACAddress"], port["LinkIsUp"]) == ("00-00-00-00-00-00", False)
        assert "IPAddress" not in port


async def test_link_preference_goes_to_the_me_for_its_timeout_then_back(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    async with running_engine(machine=machine(Nic(), WIFI), clock=lambda: now[0], state=tmp_path / "s.db") as env:
        t = env.transport()
        await env.machine.request_power(PowerAction.ON)
        port = await get_object(t, PORTS, WIRELESS)
        assert (port["LinkPreference"], port["LinkControl"]) == (2, 2)
        out = await invoke(t, PORTS, "SetLinkPreference", LinkPreference=1, Timeout=60)
        assert out["ReturnValue"] == PTStatus.SUCCESS
        port = await get_object(t, PORTS, WIRELESS)
        assert (port["LinkPreference"], port["LinkControl"]) == (1, 1)
    now[0] += 30
    async with running_engine(machine=machine(Nic(), WIFI), clock=lambda: now[0], state=tmp_path / "s.db") as env:
        t = env.transport()
        assert (await get_object(t, PORTS, WIRELESS))["LinkPreference"] == 1  # persisted across the restart
        now[0] += 31
        await env.machine.request_power(PowerAction.ON)
        port = await get_object(t, PORTS, WIRELESS)
        assert (port["LinkPreference"], port["LinkControl"]) == (2, 2)
        out = await invoke(t, PORTS, "SetLinkPreference", WIRELESS, LinkPreference=1, Timeout=600)
        assert out["ReturnValue"] == PTStatus.SUCCESS
        out = await invoke(t, PORTS, "SetLinkPreference", WIRELESS, LinkPreference=2, Timeout=0)
        assert out["ReturnValue"] == PTStatus.SUCCESS
        assert (await get_object(t, PORTS, WIRELESS))["LinkPreference"] == 2


async def test_set_link_preference_refusals(engine_env: RunningEngine) -> None:
    t = engine_env.transport()
    out = await invoke(t, PORTS, "SetLinkPreference", LinkPreference=1, Timeout=60)
    assert out["ReturnValue"] == PTStatus.UNSUPPORTED  # no wireless NIC on the default machine
    async with running_engine(machine=machine(Nic(), WIFI)) as env:
        t = env.transport()
        out = await invoke(t, PORTS, "SetLinkPreference", WIRED, LinkPreference=1, Timeout=60)
        assert out["ReturnValue"] == PTStatus.UNSUPPORTED
        for bad in ({"LinkPreference": 3, "Timeout": 60}, {"LinkPreference": 1, "Timeout": 0}, {"Timeout": 5}):
            out = await invoke(t, PORTS, "SetLinkPreference", WIRELESS, **bad)
            assert out["ReturnValue"] == PTStatus.INVALID_PARAMETER, bad
        assert (await get_object(t, PORTS, WIRELESS))["LinkPreference"] == 2


async def test_reading_needs_general_info_and_changing_pt_administration(engine_env: RunningEngine) -> None:
    reader = add_user(engine_env, "reader", "Passw0rd!r", [Realm.GENERAL_INFO])
    port = await get_object(reader, PORTS, WIRED)
    reply = await reader.send(msg.put(port, WIRED))
    assert isinstance(reply.fault, F.AccessDenied)
    outsider = add_user(engine_env, "outsider", "Passw0rd!o", [Realm.HARDWARE_ASSET])
    assert isinstance((await outsider.send(msg.get(PORTS))).fault, F.AccessDenied)
