"""Wireless over HTTP: absent without a wireless NIC; with one, the capture shapes, MeshCommander's and RPS's
AddWiFiSettings (PSK and 802.1x with certificates), the refusals with AddWiFiSettings' own return values, the
port state, the configuration policies, profile removal, persistence and audit."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.engine._netauth_kit import store_client, store_root
from tests.engine._shape import ADDRESSING, assert_same_shape, load
from tests.engine._shape_inventory import add_user, enumerate_raw, get_object, invoke, pull_objects

from outband.engine.core import EngineConfig, all_services
from outband.engine.platforms.profile import HardwareProfile, Nic
from outband.engine.platforms.sim import SimMachine
from outband.engine.services import wireless
from outband.proto.amt import Realm
from outband.proto.amtlog import AuditRecord
from outband.proto.cim.model import CimObject, Field
from outband.proto.wsman import EndpointReference
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.proto.wsman.namespaces import resource_uri
from outband.testing.engine import RunningEngine, running_engine

CONFIG = "AMT_WiFiPortConfigurationService"
PORT = "CIM_WiFiPort"
SETTINGS = "CIM_WiFiEndpointSettings"
IEEE = "CIM_IEEE8021xSettings"
CONTEXT = "CIM_CredentialContext"
WIFI = Nic(mac="66-77-88-99-aa-bb", wireless=True)
ENDPOINT = EndpointReference.to(resource_uri("CIM_WiFiEndpoint"), {"Name": "WiFi Endpoint 0"})
WIFI_CLASSES = (CONFIG, PORT, SETTINGS, IEEE, CONTEXT, "CIM_WiFiEndpoint", "CIM_WiFiPortCapabilities")


def machine_with_wifi(wifi: Nic = WIFI) -> SimMachine:
    return SimMachine(dataclasses.replace(HardwareProfile(), nics=(Nic(), wifi)))


@pytest.fixture
async def env() -> AsyncIterator[RunningEngine]:
    async with running_engine(machine=machine_with_wifi()) as running:
        yield running


def audits(env: RunningEngine) -> list[int]:
    return [AuditRecord.decode(r).full_id for r in env.engine.store.read_log("audit")]


def psk_profile(name: str = "home", priority: int = 1, **overrides: Any) -> CimObject:
    """MeshCommander's addWifiProfile for WPA2-PSK/CCMP."""
    fields: dict[str, Any] = {"ElementName": name, "InstanceID": f"Intel(r) AMT:WiFi Endpoint Settings {name}",
                              "AuthenticationMethod": 6, "EncryptionMethod": 4, "SSID": f"ssid-{name}",
                              "Priority": priority, "PSKPassPhrase": "Wireless!Pass1"}
    fields.update(overrides)
    return CimObject.new(SETTINGS, {k: v for k, v in fields.items() if v is not None})


def tls_8021x(name: str) -> CimObject:
    return CimObject.new(IEEE, ElementName=name, AuthenticationProtocol=0, Username="amt-wifi")


async def add(env: RunningEngine, settings: CimObject, **params: Any) -> CimObject:
    return await invoke(env.transport(), CONFIG, "AddWiFiSettings", WiFiEndpoint=params.pop("endpoint", ENDPOINT),
                        WiFiEndpointSettingsInput=settings, **params)


async def add_8021x(env: RunningEngine, name: str, priority: int, *, ca: bool = True) -> CimObject:
    t = env.transport()
    params: dict[str, Any] = {"IEEE8021xSettingsInput": tls_8021x(name),
                              "ClientCredential": await store_client(t, f"client-{name}")}
    if ca:
        params["CACredential"] = await store_root(t)
    return await add(env, psk_profile(name, priority, AuthenticationMethod=7, PSKPassPhrase=None), **params)


# ---------------------------------------------------------------------------------------------- presence


async def test_no_wireless_nic_no_wireless_classes(engine_env: RunningEngine) -> None:
    t = engine_env.transport()
    for cls in WIFI_CLASSES:
        assert await pull_objects(t, cls) == [], cls
        assert isinstance((await t.send(msg.get(cls))).fault, F.DestinationUnreachable), cls
    reply = await t.send(msg.invoke(CimObject.method_input(CONFIG, "AddWiFiSettings", WiFiEndpoint=ENDPOINT,
                                                           WiFiEndpointSettingsInput=psk_profile())))
    assert isinstance(reply.fault, F.DestinationUnreachable)


# ---------------------------------------------------------------------------------------------- shapes


async def test_configuration_service_and_port_have_the_capture_shapes(conformance_dir: Path) -> None:
    config = EngineConfig(services=all_services(), amt_version="15.0.45.2411")  # the capture predates CSME 16
    # A MAC of digits only, like the capture's 000000000000, so both PermanentAddress values read as numbers.
    digits = dataclasses.replace(WIFI, mac="00-11-22-33-44-55")
    async with running_engine(machine=machine_with_wifi(digits), config=config) as env:
        t = env.transport()
        captures = conformance_dir / "amt/wifiportconfiguration"
        _, body = await t.post(msg.get(CONFIG).to_bytes())
        assert_same_shape(body, captures / "get.xml")
        assert_same_shape(await enumerate_raw(t, CONFIG), captures / "pull.xml")
        current = await get_object(t, CONFIG)
        current["localProfileSynchronizationEnabled"] = 3
        _, body = await t.post(msg.put(current).to_bytes())
        assert_same_shape(body, captures / "put.xml")
        ports = conformance_dir / "cim/wifi/port"
        _, body = await t.post(msg.get(PORT).to_bytes())
        assert_same_shape(body, ports / "get.xml")
        assert_same_shape(await enumerate_raw(t, PORT), ports / "pull.xml")
        _, body = await t.post(msg.invoke(CimObject.method_input(PORT, "RequestStateChange",
                                                                 RequestedState=32769)).to_bytes())
        assert_same_shape(body, ports / "requeststatechange.xml")


async def test_profiles_have_the_capture_shapes(env: RunningEngine, conformance_dir: Path) -> None:
    t = env.transport()
    assert (await add(env, psk_profile()))["ReturnValue"] == 0
    captures = conformance_dir / "cim/wifi/endpointsettings"
    assert_same_shape(await enumerate_raw(t, SETTINGS), captures / "pull.xml")
    _, body = await t.post(msg.enumerate_(SETTINGS).to_bytes())
    assert_same_shape(body, captures / "enumerate.xml")
    assert (await add_8021x(env, "tls1", 2))["ReturnValue"] == 0
    assert (await add_8021x(env, "tls2", 3, ca=False))["ReturnValue"] == 0
    # The capture is a first Pull of a longer enumeration: one item and the context to continue.
    assert_same_shape(await enumerate_raw(t, IEEE, max_elements=1), conformance_dir / "cim/ieee8021x/settings/pull.xml")
    _, body = await t.post(msg.enumerate_(IEEE).to_bytes())
    assert_same_shape(body, conformance_dir / "cim/ieee8021x/settings/enumerate.xml")
    _, body = await t.post(msg.enumerate_(CONTEXT).to_bytes())
    assert_same_shape(body, conformance_dir / "cim/credential/context/enumerate.xml")
    assert_same_shape(await enumerate_raw(t, CONTEXT, max_elements=1), _first_of(
        conformance_dir / "cim/credential/context/pull.xml"))
    _, body = await t.post(msg.delete(SETTINGS, {"InstanceID": "Intel(r) AMT:WiFi Endpoint Settings home"}).to_bytes())
    # The go-wsman-messages fixture was written by hand: it carries the request's Action and a ReturnValue in the
    # Body.  Every other Delete capture (alarm occurrences, certificates, MPS) is DeleteResponse with an empty Body.
    capture = load(captures / "delete.xml")
    action = capture.find(f".//{{{ADDRESSING}}}Action")
    capture_body = capture.find("{http://www.w3.org/2003/05/soap-envelope}Body")
    assert action is not None
    assert capture_body is not None
    action.text = (action.text or "").strip() + "Response"
    for child in list(capture_body):
        capture_body.remove(child)
    assert_same_shape(body, capture)


def _first_of(capture: Path) -> Any:
    """The context capture ended its sequence after one link; with three links the first Pull continues."""
    root = load(capture)
    enumeration = "{http://schemas.xmlsoap.org/ws/2004/09/enumeration}"
    response = root.find(f".//{enumeration}PullResponse")
    end = root.find(f".//{enumeration}EndOfSequence")
    assert response is not None
    assert end is not None
    response.remove(end)
    context = response.makeelement(f"{enumeration}EnumerationContext", {})
    context.text = "00000000-0000-0000-0000-000000000000"
    response.insert(0, context)
    return root


# ---------------------------------------------------------------------------------------------- profiles


async def test_psk_profile_is_stored_audited_and_its_secret_never_shown(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    async with running_engine(machine=machine_with_wifi(), state=state) as env:
        out = await add(env, psk_profile())
        assert out["ReturnValue"] == 0
        assert out["WiFiEndpointSettings"] == EndpointReference.to(
            resource_uri(SETTINGS), {"InstanceID": "Intel(r) AMT:WiFi Endpoint Settings home"})
        assert "IEEE8021xSettings" not in out
        assert audits(env) == [2700]
        assert env.engine.store.get("wifi/profile/home")["secrets"] == {"passphrase": "Wireless!Pass1"}
    async with running_engine(machine=machine_with_wifi(), state=state) as env:
        (profile,) = await pull_objects(env.transport(), SETTINGS)
        assert (profile["ElementName"], profile["SSID"], profile["Priority"], profile["BSSType"]) == (
            "home", "ssid-home", 1, 3)
        assert "PSKPassPhrase" not in profile
        assert await pull_objects(env.transport(), IEEE) == []


async def test_8021x_profile_links_its_certificates(env: RunningEngine) -> None:
    out = await add_8021x(env, "corp", 5)
    assert out["ReturnValue"] == 0
    ieee_epr = out["IEEE8021xSettings"]
    assert isinstance(ieee_epr, EndpointReference)
    assert ieee_epr.selector_dict == {"InstanceID": "Intel(r) AMT:IEEE 802.1x Settings corp"}
    (settings,) = await pull_objects(env.transport(), IEEE)
    assert (settings["ElementName"], settings["AuthenticationProtocol"], settings["Username"]) == (
        "corp", 0, "amt-wifi")
    links = await pull_objects(env.transport(), CONTEXT)
    assert len(links) == 2
    assert {link["ElementProvidingContext"] for link in links} == {ieee_epr}  # type: ignore[misc]
    assert {link["ElementInContext"].class_name for link in links} == {"AMT_PublicKeyCertificate"}  # type: ignore[union-attr]
    assert (await invoke(env.transport(), CONFIG, "DeleteAllITProfiles"))["ReturnValue"] == 0
    assert await pull_objects(env.transport(), SETTINGS) == []
    assert await pull_objects(env.transport(), CONTEXT) == []
    assert audits(env)[-1] == 2701


@pytest.mark.parametrize(("settings", "params", "code"), [
    (psk_profile(AuthenticationMethod=6, EncryptionMethod=2), {}, 3),  # WPA2 with WEP
    (psk_profile(PSKPassPhrase="short"), {}, 3),
    (psk_profile(SSID="s" * 33), {}, 3),
    (psk_profile(Priority=0), {}, 3),
    (psk_profile(name=""), {}, 3),
    (psk_profile(AuthenticationMethod=7, PSKPassPhrase=None), {}, 3),  # 802.1x without its settings
    (psk_profile(), {"IEEE8021xSettingsInput": tls_8021x("x")}, 3),  # 802.1x settings on a PSK profile
    (psk_profile(), {"endpoint": EndpointReference.to(resource_uri("CIM_WiFiEndpoint"), {"Name": "WiFi Endpoint 9"})},
     4),
    (psk_profile(AuthenticationMethod=7, PSKPassPhrase=None),
     {"IEEE8021xSettingsInput": tls_8021x("x"),
      "ClientCredential": EndpointReference.to(resource_uri("AMT_PublicKeyCertificate"),
                                               {"InstanceID": "Intel(r) AMT Certificate: Handle: 42"})}, 4),
])
async def test_bad_profiles_are_refused_with_the_methods_return_values(
        env: RunningEngine, settings: CimObject, params: dict[str, Any], code: int) -> None:
    assert (await add(env, settings, **params))["ReturnValue"] == code
    assert await pull_objects(env.transport(), SETTINGS) == []
    assert audits(env) == []


async def test_names_and_priorities_are_unique_and_profiles_limited(env: RunningEngine) -> None:
    assert (await add(env, psk_profile("a", 1)))["ReturnValue"] == 0
    assert (await add(env, psk_profile("a", 2)))["ReturnValue"] == 3
    assert (await add(env, psk_profile("b", 1)))["ReturnValue"] == 3
    for n in range(2, wireless.MAX_PROFILES + 1):
        assert (await add(env, psk_profile(f"p{n}", n)))["ReturnValue"] == 0
    assert (await add(env, psk_profile("full", 200)))["ReturnValue"] == 2
    ordered = [p["Priority"] for p in await pull_objects(env.transport(), SETTINGS)]
    assert ordered == sorted(ordered)


async def test_meshcommander_removes_a_profile_by_instance_id(env: RunningEngine) -> None:
    await add(env, psk_profile("a", 1))
    await add(env, psk_profile("b", 2))
    reply = await env.transport().send(msg.delete(SETTINGS, {"InstanceID": "Intel(r) AMT:WiFi Endpoint Settings a"}))
    assert reply.fault is None
    assert [p["ElementName"] for p in await pull_objects(env.transport(), SETTINGS)] == ["b"]
    assert audits(env) == [2700, 2700, 2701]


# ---------------------------------------------------------------------------------------------- port, configuration


async def test_port_state_changes_and_persists(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    async with running_engine(machine=machine_with_wifi(), state=state) as env:
        t = env.transport()
        port = await get_object(t, PORT)
        assert (port["EnabledState"], port["PermanentAddress"]) == (3, "66778899aabb")
        assert (await get_object(t, "CIM_WiFiEndpoint"))["EnabledState"] == 3
        assert (await invoke(t, PORT, "RequestStateChange", RequestedState=2))["ReturnValue"] == 5
        assert (await invoke(t, PORT, "RequestStateChange", RequestedState=32769))["ReturnValue"] == 0
    async with running_engine(machine=machine_with_wifi(), state=state) as env:
        t = env.transport()
        port = await get_object(t, PORT)
        assert (port["EnabledState"], port["RequestedState"]) == (32769, 32769)
        assert (await get_object(t, "CIM_WiFiEndpoint"))["EnabledState"] == 2


async def test_configuration_policies_as_meshcommander_puts_them(env: RunningEngine) -> None:
    t = env.transport()
    current = await get_object(t, CONFIG)
    assert (current["localProfileSynchronizationEnabled"], current["UEFIWiFiProfileShareEnabled"]) == (1, False)
    current["localProfileSynchronizationEnabled"] = 3
    # UefiWifiCoExDlg sends the radio button's "1" where the class has a boolean.
    current.fields = [Field(f.name, "1", f.ns) if f.name == "UEFIWiFiProfileShareEnabled" else f
                      for f in current.fields]
    reply = await t.send(msg.put(current))
    assert reply.fault is None, reply.fault
    got = await get_object(t, CONFIG)
    assert (got["localProfileSynchronizationEnabled"], got["UEFIWiFiProfileShareEnabled"]) == (3, True)
    assert audits(env) == [2703, 2705]
    got["localProfileSynchronizationEnabled"] = 2  # vendor reserved
    assert isinstance((await t.send(msg.put(got))).fault, F.InvalidRepresentation)
    assert audits(env) == [2703, 2705]


async def test_profiles_need_pt_administration(env: RunningEngine) -> None:
    viewer = add_user(env, "viewer", "Viewer!Pass1", {Realm.GENERAL_INFO})
    assert (await viewer.send(msg.get(PORT))).fault is None
    assert isinstance((await viewer.send(msg.enumerate_(SETTINGS))).fault, F.AccessDenied)
    reply = await viewer.send(msg.invoke(CimObject.method_input(PORT, "RequestStateChange", RequestedState=32768)))
    assert isinstance(reply.fault, F.AccessDenied)
