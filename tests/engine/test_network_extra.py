"""IPv6 port settings, HTTP proxies and the wired 802.1x profile over HTTP: capture shapes, MeshCommander's and
RPS's edits, refusals that change nothing, persistence, audit and realms."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

from tests.engine._netauth_kit import store_client, store_root
from tests.engine._shape import ADDRESSING, assert_same_shape, load
from tests.engine._shape_inventory import add_user, enumerate_raw, get_object, invoke, pull_objects

from outband.aio.wsman_client import WsmanTransport
from outband.engine.platforms.profile import HardwareProfile, Nic
from outband.engine.platforms.sim import SimMachine
from outband.engine.services import network_extra
from outband.proto.amt import PTStatus, Realm
from outband.proto.amtlog import AuditRecord
from outband.proto.cim.model import CimObject
from outband.proto.wsman import EndpointReference
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.proto.wsman.namespaces import resource_uri
from outband.testing.engine import RunningEngine, running_engine

IPV6 = "IPS_IPv6PortSettings"
ESD = "CIM_ElementSettingData"
PROXY_SERVICE = "IPS_HTTPProxyService"
PROXY = "IPS_HTTPProxyAccessPoint"
PROFILE = "AMT_8021XProfile"
IPS_8021X = "IPS_IEEE8021xSettings"
WIRED_IPV6 = {"InstanceID": "Intel(r) IPS IPv6 Settings 0"}


def audits(env: RunningEngine) -> list[int]:
    return [AuditRecord.decode(r).full_id for r in env.engine.store.read_log("audit")]


async def put(env: RunningEngine, cls: str, changes: dict[str, object], selectors: dict[str, str] | None = None,
              *, drop: tuple[str, ...] = ()) -> CimObject | F.WsmanFault:
    """Get-modify-Put as consoles do it: the reply body, or its fault."""
    t = env.transport()
    current = await get_object(t, cls, selectors)
    for name in drop:
        if name in current:
            del current[name]
    for name, value in changes.items():
        current[name] = value
    reply = await t.send(msg.put(current, selectors))
    if reply.fault is not None:
        return reply.fault
    assert isinstance(reply.body, CimObject)
    return reply.body


# ============================================================================================== IPv6


async def ipv6_association(env: RunningEngine, port: int = 0) -> CimObject:
    setting = EndpointReference.to(resource_uri(IPV6), {"InstanceID": f"Intel(r) IPS IPv6 Settings {port}"})
    found = [a for a in await pull_objects(env.transport(), ESD) if a.get("SettingData") == setting]
    assert len(found) == 1, found
    return found[0]


async def switch_ipv6(env: RunningEngine, on: bool, port: int = 0, t: WsmanTransport | None = None
                      ) -> CimObject | F.WsmanFault:
    """MeshCommander's showIPv6StateDlgOk: Clone the association, set IsCurrent, Put it by both references."""
    association = await ipv6_association(env, port)
    association["IsCurrent"] = 1 if on else 2
    selectors = {"ManagedElement": association["ManagedElement"], "SettingData": association["SettingData"]}
    reply = await (t or env.transport()).send(msg.put(association, selectors))
    if reply.fault is not None:
        return reply.fault
    assert isinstance(reply.body, CimObject)
    return reply.body


async def test_ipv6_is_off_by_default_and_tied_to_the_ethernet_port(engine_env: RunningEngine) -> None:
    got = await get_object(engine_env.transport(), IPV6, WIRED_IPV6)
    assert (got["InterfaceIDType"], got["IPv6Address"], got["DefaultRouter"]) == (1, "::", "::")
    assert "CurrentAddressInfo" not in got
    association = await ipv6_association(engine_env)
    assert association["IsCurrent"] == 2
    port = association["ManagedElement"]
    assert isinstance(port, EndpointReference)
    assert port.selector_dict == {"CreationClassName": "CIM_EthernetPort", "DeviceID": "Ethernet Port 0",
                                  "SystemCreationClassName": "CIM_ComputerSystem", "SystemName": "Intel(r) AMT"}
    # The boot configuration's association still comes first (a Get without selectors returns it).
    first = await get_object(engine_env.transport(), ESD)
    assert first["SettingData"].class_name == "CIM_BootConfigSetting"  # type: ignore[union-attr]


async def test_enabling_ipv6_gives_the_eui64_link_local_address_and_is_audited(engine_env: RunningEngine) -> None:
    env = engine_env
    result = await switch_ipv6(env, True)
    assert isinstance(result, CimObject)
    assert result["IsCurrent"] == 1
    got = await get_object(env.transport(), IPV6, WIRED_IPV6)
    # MAC a4-ae-12-00-00-01 -> modified EUI-64 a6ae:12ff:fe00:0001 (universal/local bit flipped)
    assert got["CurrentAddressInfo"] == ["fe80::a6ae:12ff:fe00:1,0,1"]
    assert audits(env) == [2205]
    assert await switch_ipv6(env, True) == result  # no change, no second record
    assert audits(env) == [2205]


async def test_manual_addresses_as_meshcommander_sets_them_persist(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    async with running_engine(state=state) as env:
        await switch_ipv6(env, True)
        result = await put(env, IPV6, {"IPv6Address": "2001:DB8::50", "DefaultRouter": "2001:db8::1",
                                       "PrimaryDNS": "2001:db8::53", "SecondaryDNS": "::"}, WIRED_IPV6)
        assert isinstance(result, CimObject)
        assert (result["IPv6Address"], result["SecondaryDNS"]) == ("2001:db8::50", "::")
        assert result["CurrentAddressInfo"][1] == "2001:db8::50,3,1"  # type: ignore[index]
        assert (result["CurrentDefaultRouter"], result["CurrentPrimaryDNS"]) == ("2001:db8::1", "2001:db8::53")
    async with running_engine(state=state) as env:
        got = await get_object(env.transport(), IPV6, WIRED_IPV6)
        assert (got["IPv6Address"], got["DefaultRouter"]) == ("2001:db8::50", "2001:db8::1")
        assert (await ipv6_association(env))["IsCurrent"] == 1


async def test_interface_id_types(engine_env: RunningEngine) -> None:
    env = engine_env
    await switch_ipv6(env, True)
    manual = await put(env, IPV6, {"InterfaceIDType": 2, "ManualInterfaceID": "0:0:0:1234"}, WIRED_IPV6)
    assert isinstance(manual, CimObject)
    assert manual["CurrentAddressInfo"] == ["fe80::1234,0,1"]
    random = await put(env, IPV6, {"InterfaceIDType": 0}, WIRED_IPV6, drop=("ManualInterfaceID",))
    assert isinstance(random, CimObject)
    infos = random["CurrentAddressInfo"]
    assert isinstance(infos, list)
    address = ipaddress.IPv6Address(str(infos[0]).split(",")[0])
    assert address.is_link_local
    assert address != ipaddress.IPv6Address("fe80::a6ae:12ff:fe00:1"), "not the EUI-64 of the MAC"
    again = await get_object(env.transport(), IPV6, WIRED_IPV6)
    assert again["CurrentAddressInfo"] == random["CurrentAddressInfo"], "a random ID is stable"


async def test_bad_ipv6_puts_fault_and_change_nothing(engine_env: RunningEngine) -> None:
    env = engine_env
    for changes in ({"IPv6Address": "192.168.0.5"}, {"DefaultRouter": "ff02::1"}, {"InterfaceIDType": 7},
                    {"InterfaceIDType": 2, "ManualInterfaceID": "nothex"}):
        assert isinstance(await put(env, IPV6, changes, WIRED_IPV6), F.InvalidRepresentation), changes
    association = await ipv6_association(env)
    association["IsCurrent"] = 3
    reply = await env.transport().send(msg.put(association, {"ManagedElement": association["ManagedElement"],
                                                             "SettingData": association["SettingData"]}))
    assert isinstance(reply.fault, F.InvalidRepresentation)
    assert audits(env) == []
    assert (await get_object(env.transport(), IPV6, WIRED_IPV6))["IPv6Address"] == "::"


async def test_wireless_port_has_settings_but_no_manual_addresses() -> None:
    wifi = Nic(mac="66-77-88-99-aa-bb", wireless=True)
    machine = SimMachine(dataclasses.replace(HardwareProfile(), nics=(Nic(), wifi)))
    async with running_engine(machine=machine) as env:
        ids = [o["InstanceID"] for o in await pull_objects(env.transport(), IPV6)]
        assert ids == ["Intel(r) IPS IPv6 Settings 0", "Intel(r) IPS IPv6 Settings 1"]
        wireless = {"InstanceID": "Intel(r) IPS IPv6 Settings 1"}
        assert isinstance(await put(env, IPV6, {"IPv6Address": "2001:db8::9"}, wireless), F.InvalidRepresentation)
        assert isinstance(await switch_ipv6(env, True, port=1), CimObject)


async def test_switching_ipv6_needs_pt_administration(engine_env: RunningEngine) -> None:
    viewer = add_user(engine_env, "viewer", "Viewer!Pass1", {Realm.GENERAL_INFO})
    assert (await viewer.send(msg.get(IPV6, WIRED_IPV6))).fault is None
    assert isinstance(await switch_ipv6(engine_env, True, t=viewer), F.AccessDenied)
    assert (await ipv6_association(engine_env))["IsCurrent"] == 2


# ============================================================================================== HTTP proxies


async def add_proxy(env: RunningEngine, host: str = "proxy.corp.example", info_format: int = 201, port: int = 8080,
                    suffix: str = "corp.example") -> CimObject:
    return await invoke(env.transport(), PROXY_SERVICE, "AddProxyAccessPoint", AccessInfo=host,
                        InfoFormat=info_format, Port=port, NetworkDnsSuffix=suffix)


async def test_proxies_are_added_listed_and_deleted_as_meshcommander_does(engine_env: RunningEngine) -> None:
    env = engine_env
    out = await add_proxy(env)
    assert out["ReturnValue"] == 0
    created = out["ProxyAccessPoint"]
    assert isinstance(created, EndpointReference)
    assert created.selector_dict["Name"] == "Intel(r) AMT HTTP Proxy Access Point 0"
    assert (await add_proxy(env, "10.0.0.8", 3, 3128, "lab.example"))["ReturnValue"] == 0
    proxies = await pull_objects(env.transport(), PROXY)
    assert [(p["AccessInfo"], p["Port"], p["NetworkDnsSuffix"], p["Type"]) for p in proxies] == [
        ("proxy.corp.example", 8080, "corp.example", 0), ("10.0.0.8", 3128, "lab.example", 0)]
    assert proxies[0]["Priority"] < proxies[1]["Priority"]  # type: ignore[operator]
    assert [(p.host, p.dns_suffix) for p in network_extra.http_proxies(env.engine)] == [
        ("proxy.corp.example", "corp.example"), ("10.0.0.8", "lab.example")]
    reply = await env.transport().send(msg.delete(PROXY, {"Name": proxies[0]["Name"]}))  # Name only, as MC sends
    assert reply.fault is None
    assert [p["AccessInfo"] for p in await pull_objects(env.transport(), PROXY)] == ["10.0.0.8"]


async def test_bad_proxies_are_refused(engine_env: RunningEngine) -> None:
    env = engine_env
    assert (await add_proxy(env))["ReturnValue"] == 0
    assert (await add_proxy(env))["ReturnValue"] == PTStatus.DUPLICATE
    assert (await add_proxy(env, host="not an ip", info_format=3))["ReturnValue"] == PTStatus.INVALID_PARAMETER
    assert (await add_proxy(env, port=0))["ReturnValue"] == PTStatus.INVALID_PARAMETER
    assert (await add_proxy(env, suffix="bad suffix!"))["ReturnValue"] == PTStatus.INVALID_PARAMETER
    for n in range(1, network_extra.MAX_PROXIES):
        assert (await add_proxy(env, port=9000 + n))["ReturnValue"] == 0
    assert (await add_proxy(env, port=9999))["ReturnValue"] == PTStatus.MAX_LIMIT_REACHED
    assert len(await pull_objects(env.transport(), PROXY)) == network_extra.MAX_PROXIES


async def test_proxy_service_sync_switch_persists(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    async with running_engine(state=state) as env:
        got = await get_object(env.transport(), PROXY_SERVICE)
        assert (got["SyncEnabled"], got["SystemName"]) == (False, "Intel(r) AMT")
        assert isinstance(await put(env, PROXY_SERVICE, {"SyncEnabled": True}), CimObject)
    async with running_engine(state=state) as env:
        assert (await get_object(env.transport(), PROXY_SERVICE))["SyncEnabled"] is True


# ============================================================================================== wired 802.1x


async def test_8021x_classes_have_the_capture_shapes(engine_env: RunningEngine, conformance_dir: Path) -> None:
    t = engine_env.transport()
    amt, ips = conformance_dir / "amt/ieee8021x", conformance_dir / "ips/ieee8021x"
    _, body = await t.post(msg.get(PROFILE).to_bytes())
    assert_same_shape(body, amt / "profile/get.xml")
    assert_same_shape(await enumerate_raw(t, PROFILE), amt / "profile/pull.xml")
    _, body = await t.post(msg.enumerate_(PROFILE).to_bytes())
    assert_same_shape(body, amt / "profile/enumerate.xml")
    current = await get_object(t, PROFILE)
    current["ActiveInS0"], current["PxeTimeout"] = False, 120
    _, body = await t.post(msg.put(current).to_bytes())
    assert_same_shape(body, amt / "profile/put.xml")
    assert_same_shape(await enumerate_raw(t, "AMT_8021xCredentialContext"), amt / "credentialcontext/pull.xml")
    _, body = await t.post(msg.get(IPS_8021X).to_bytes())
    assert_same_shape(body, ips / "settings/get.xml")
    assert_same_shape(await enumerate_raw(t, IPS_8021X), ips / "settings/pull.xml")
    _, body = await t.post(msg.enumerate_("IPS_8021xCredentialContext").to_bytes())
    assert_same_shape(body, ips / "credentialcontext/enumerate.xml")


async def test_rps_wired_profile_with_certificates(engine_env: RunningEngine, conformance_dir: Path) -> None:
    """RPS: Put IPS_IEEE8021xSettings (EAP-TLS), add the certificates, SetCertificates; both views agree and the
    certificates are linked through both credential contexts."""
    env = engine_env
    t = env.transport()
    result = await put(env, IPS_8021X, {"Enabled": 2, "AvailableInS0": True, "PxeTimeout": 120,
                                        "AuthenticationProtocol": 0, "Username": "amt-client",
                                        "Password": "Radius!Pass1"})
    assert isinstance(result, CimObject)
    assert (result["Enabled"], result["Username"]) == (2, "amt-client")
    assert "Password" not in result
    root, client = await store_root(t), await store_client(t)
    status, body = await t.post(msg.invoke(CimObject.method_input(
        IPS_8021X, "SetCertificates", ServerCertificateIssuer=root, ClientCertificate=client)).to_bytes())
    assert status == 200
    # The go-wsman-messages fixture was edited by hand: firmware answers <action>Response like every method.
    capture = load(conformance_dir / "ips/ieee8021x/settings/setcertificates.xml")
    action = capture.find(f".//{{{ADDRESSING}}}Action")
    assert action is not None
    action.text = (action.text or "").strip() + "Response"
    assert_same_shape(body, capture)
    profile = await get_object(t, PROFILE)
    assert (profile["Enabled"], profile["ActiveInS0"], profile["AuthenticationProtocol"]) == (True, True, 0)
    assert (profile["ClientCertificate"], profile["ServerCertificateIssuer"]) == (client, root)
    for cls, provider in (("AMT_8021xCredentialContext", PROFILE), ("IPS_8021xCredentialContext", IPS_8021X)):
        links = await pull_objects(t, cls)
        assert {str(link["ElementInContext"]) for link in links} == {str(client), str(root)}
        assert {link["ElementProvidingContext"].class_name for link in links} == {provider}  # type: ignore[union-attr]
    assert env.engine.store.get(network_extra.WIRED_KEY)["credentials"]["secrets"] == {"Password": "Radius!Pass1"}


async def test_meshcommander_profile_put_replaces_and_keeps_the_password(engine_env: RunningEngine) -> None:
    env = engine_env
    t = env.transport()
    root = await store_root(t)
    first = await put(env, PROFILE, {"Enabled": True, "AuthenticationProtocol": 2, "Username": "u1", "Domain": "CORP",
                                     "Password": "Peap!Pass1", "ServerCertificateIssuer": root})
    assert isinstance(first, CimObject)
    assert (first["Domain"], first["ServerCertificateIssuer"]) == ("CORP", root)
    # MeshCommander deletes a field to clear it; the password is not shown, so it is kept.
    second = await put(env, PROFILE, {"Username": "u2"}, drop=("Domain", "ServerCertificateIssuer"))
    assert isinstance(second, CimObject)
    assert (second["Username"], "Domain" in second, "ServerCertificateIssuer" in second) == ("u2", False, False)
    assert network_extra.wired_profile(env.engine).credentials.secrets == {"Password": "Peap!Pass1"}


async def test_bad_8021x_changes_are_refused(engine_env: RunningEngine) -> None:
    env = engine_env
    t = env.transport()
    client = await store_client(t)
    assert isinstance(await put(env, IPS_8021X, {"Enabled": 2}), F.InvalidRepresentation)  # no EAP method
    assert isinstance(await put(env, IPS_8021X, {"Enabled": 1}), F.InvalidRepresentation)
    assert isinstance(await put(env, PROFILE, {"AuthenticationProtocol": 6}), F.InvalidRepresentation)
    assert isinstance(await put(env, PROFILE, {"PxeTimeout": 90000}), F.InvalidRepresentation)
    # A client certificate is not a trusted root, and a root has no key to be a client identity.
    assert isinstance(await put(env, PROFILE, {"ServerCertificateIssuer": client}), F.InvalidRepresentation)
    out = await invoke(t, IPS_8021X, "SetCertificates", ServerCertificateIssuer=client)
    assert out["ReturnValue"] == PTStatus.INVALID_PARAMETER
    assert (await invoke(t, IPS_8021X, "SetCertificates"))["ReturnValue"] == PTStatus.INVALID_PARAMETER
    assert env.engine.store.get(network_extra.WIRED_KEY) is None


async def test_wired_profile_persists_and_needs_pt_administration(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    async with running_engine(state=state) as env:
        assert isinstance(await put(env, PROFILE, {"Enabled": True, "AuthenticationProtocol": 1}), CimObject)
        viewer = add_user(env, "viewer", "Viewer!Pass1", {Realm.GENERAL_INFO, Realm.REDIRECTION})
        assert isinstance((await viewer.send(msg.get(PROFILE))).fault, F.AccessDenied)
    async with running_engine(state=state) as env:
        got = await get_object(env.transport(), IPS_8021X)
        assert (got["Enabled"], got["AuthenticationProtocol"]) == (2, 1)
