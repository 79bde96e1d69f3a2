"""One-shot boot control over real HTTP: the flows MPS and MeshCommander run, AMT's refusals, consent, restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from tests.engine._remote_control import audit_records, exchange, get, invoke, output, user_transport
from tests.engine._shape import assert_same_shape, load, with_action

from outband.engine.platforms.base import BootDevice, BootRequest, PowerState
from outband.engine.platforms.sim import SimMachine
from outband.engine.services.boot import CONFIG_ID, boot_config_epr, host_epr
from outband.proto.amt import Realm
from outband.proto.cim.model import CimObject
from outband.proto.wsman import EndpointReference, EnumerateResponse, PullResponse
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.proto.wsman.namespaces import Action, resource_uri
from outband.testing.engine import RunningEngine, running_engine

SETTINGS = "AMT_BootSettingData"
PXE = "Intel(r) AMT: Force PXE Boot"
ALL_CONSENT = 0xFFFFFFFF


def source(instance_id: str, class_name: str = "CIM_BootSourceSetting") -> EndpointReference:
    return EndpointReference.to(resource_uri(class_name), {"InstanceID": instance_id})


async def put_settings(env: RunningEngine, **changes: object) -> msg.Envelope:
    """MPS's way: Get the instance, change fields, Put the whole instance back."""
    t = env.transport()
    current = await get(t, SETTINGS)
    for name, value in changes.items():
        current[name] = value
    return await t.send(msg.put(current))


async def set_role(env: RunningEngine, role: int, config: EndpointReference | None = None) -> int:
    out = await invoke(env.transport(), "CIM_BootService", "SetBootConfigRole",
                       BootConfigSetting=config or boot_config_epr(), Role=role)
    return int(out["ReturnValue"])  # type: ignore[arg-type]


async def change_boot_order(env: RunningEngine, *sources: EndpointReference) -> int:
    params = {"Source": list(sources)} if sources else {}
    out = await invoke(env.transport(), "CIM_BootConfigSetting", "ChangeBootOrder", **params)
    return int(out["ReturnValue"])  # type: ignore[arg-type]


async def power(env: RunningEngine, state: int) -> int:
    out = await invoke(env.transport(), "CIM_PowerManagementService", "RequestPowerStateChange",
                       PowerState=state, ManagedElement=host_epr())
    return int(out["ReturnValue"])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- shapes


async def test_boot_classes_answer_in_the_captured_shapes(engine_env: RunningEngine, conformance_dir: Path) -> None:
    t = engine_env.transport()
    for class_name, directory in (("AMT_BootCapabilities", "amt/boot/capabilities"),
                                  (SETTINGS, "amt/boot/settingdata"),
                                  ("CIM_BootService", "cim/boot/service"),
                                  ("CIM_BootConfigSetting", "cim/boot/configsetting"),
                                  ("CIM_BootSourceSetting", "cim/boot/sourcesetting")):
        captures = conformance_dir / directory
        raw, _ = await exchange(t, msg.get(class_name))
        assert_same_shape(raw, captures / "get.xml")
        raw, reply = await exchange(t, msg.enumerate_(class_name))
        assert_same_shape(raw, captures / "enumerate.xml")
        assert isinstance(reply.body, EnumerateResponse)
        assert reply.body.context is not None
        raw, _ = await exchange(t, msg.pull(class_name, reply.body.context, max_elements=10))
        assert_same_shape(raw, captures / "pull.xml")

    raw, _ = await exchange(t, msg.put(await get(t, SETTINGS)))  # Put answers the instance as Get does
    assert_same_shape(raw, with_action(conformance_dir / "amt/boot/settingdata/get.xml", Action.PUT_RESPONSE))

    raw, _ = await exchange(t, msg.invoke(CimObject.method_input("CIM_BootConfigSetting", "ChangeBootOrder")))
    assert_same_shape(raw, conformance_dir / "cim/boot/configsetting/changebootorder.xml")

    # The capture's Action lacks "Response" (hand-made: its MessageID is "0"); AMT, and §11, answer the request
    # action plus Response, as every other capture shows.
    service_uri = resource_uri("CIM_BootService")
    capture = with_action(conformance_dir / "cim/boot/service/setbootconfigrole.xml",
                          Action.method(service_uri, "SetBootConfigRoleResponse"))
    raw, _ = await exchange(t, msg.invoke(CimObject.method_input(
        "CIM_BootService", "SetBootConfigRole", BootConfigSetting=boot_config_epr(), Role=1)))
    assert_same_shape(raw, capture)


async def test_sources_and_capabilities_are_what_consoles_hard_code(engine_env: RunningEngine) -> None:
    t = engine_env.transport()
    reply = await t.send(msg.enumerate_("CIM_BootSourceSetting", optimize=True, max_elements=5))
    assert isinstance(reply.body, EnumerateResponse)
    assert [(o["InstanceID"], o["StructuredBootString"]) for o in reply.body.items if isinstance(o, CimObject)] == [
        ("Intel(r) AMT: Force Hard-drive Boot", "CIM:Hard-Disk:1"),
        ("Intel(r) AMT: Force PXE Boot", "CIM:Network:1"),
        ("Intel(r) AMT: Force CD/DVD Boot", "CIM:CD/DVD:1"),
    ]
    capabilities = await get(t, "AMT_BootCapabilities")
    assert capabilities["IDER"] is True
    assert capabilities["ForcePXEBoot"] is True
    assert capabilities["BIOSReflash"] is False
    settings = await get(t, SETTINGS)
    assert settings["InstanceID"] == "Intel(r) AMT:BootSettingData 0"
    assert settings["OptionsCleared"] is True


# ---------------------------------------------------------------------------------------------- flows


async def test_mps_ider_flow_boots_once_from_the_ider_cd_with_sol() -> None:
    async with running_engine(machine=SimMachine(power_state=PowerState.ON)) as env:
        assert output(await put_settings(env, UseIDER=True, IDERBootDevice=1, UseSOL=True))["OptionsCleared"] is False
        assert await set_role(env, 1) == 0
        assert await change_boot_order(env) == 0
        assert await power(env, 10) == 0
        assert env.machine.last_boot == BootRequest(BootDevice.IDER_CD, use_sol=True)
        assert [r.full_id for r in audit_records(env.engine)] == [1704, 1703]

        settings = await get(env.transport(), SETTINGS)  # used up by that boot
        assert (settings["UseIDER"], settings["UseSOL"], settings["OptionsCleared"]) == (False, False, True)
        assert await power(env, 10) == 0
        assert env.machine.last_boot == BootRequest()


async def test_meshcommander_pxe_flow_forces_the_source_for_one_boot(engine_env: RunningEngine) -> None:
    assert await change_boot_order(engine_env) == 0  # MeshCommander clears first
    assert output(await put_settings(engine_env, UseSOL=False)).get("UseSOL") is False
    assert await set_role(engine_env, 1) == 0
    assert await change_boot_order(engine_env, source(PXE)) == 0
    assert await power(engine_env, 2) == 0
    assert engine_env.machine.last_boot == BootRequest(BootDevice.PXE)
    assert await power(engine_env, 5) == 0
    assert engine_env.machine.last_boot == BootRequest()


@pytest.mark.parametrize(("changes", "expected"), [
    ({"BIOSSetup": True}, BootRequest(BootDevice.BIOS_SETUP)),
    ({"UseIDER": True}, BootRequest(BootDevice.IDER_FLOPPY)),
    ({"BIOSPause": True, "LockKeyboard": True, "FirmwareVerbosity": 2},
     BootRequest(bios_pause=True, lock_keyboard=True, verbosity=2)),
])
async def test_each_option_reaches_the_platform(engine_env: RunningEngine, changes: dict[str, object],
                                                expected: BootRequest) -> None:
    output(await put_settings(engine_env, **changes))
    assert await set_role(engine_env, 1) == 0
    assert engine_env.machine.next_boot == expected
    assert await power(engine_env, 2) == 0
    assert engine_env.machine.last_boot == expected


async def test_options_wait_for_the_role_and_any_boot_clears_them(engine_env: RunningEngine) -> None:
    output(await put_settings(engine_env, BIOSSetup=True))
    assert engine_env.machine.next_boot == BootRequest()  # not armed yet
    assert await set_role(engine_env, 1) == 0
    assert engine_env.machine.next_boot.device is BootDevice.BIOS_SETUP
    assert await set_role(engine_env, 32768) == 0  # disarmed: the options stay, the next boot is plain
    assert engine_env.machine.next_boot == BootRequest()
    assert await power(engine_env, 2) == 0
    assert engine_env.machine.last_boot == BootRequest()
    assert (await get(engine_env.transport(), SETTINGS))["BIOSSetup"] is False


async def test_element_setting_data_shows_whether_the_configuration_is_next(engine_env: RunningEngine) -> None:
    t = engine_env.transport()
    association = await get(t, "CIM_ElementSettingData")
    assert association["SettingData"] == boot_config_epr()
    assert association["ManagedElement"] == host_epr()
    assert association["IsNext"] == 2
    assert await set_role(engine_env, 1) == 0
    assert (await get(t, "CIM_ElementSettingData"))["IsNext"] == 3
    association["IsNext"] = 2
    reply = await t.send(msg.put(association, {"ManagedElement": host_epr(), "SettingData": boot_config_epr()}))
    assert isinstance(reply.fault, F.ActionNotSupported)  # only SetBootConfigRole changes it


# ---------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("changes", [
    {"ReflashBIOS": True}, {"SecureErase": True}, {"PlatformErase": True}, {"FirmwareVerbosity": 7},
    {"IDERBootDevice": 2}, {"BootMediaIndex": 1}, {"InstanceID": "Intel(r) AMT:BootSettingData 1"},
])
async def test_unsupported_or_invalid_options_are_refused_and_nothing_changes(
    engine_env: RunningEngine, changes: dict[str, object]
) -> None:
    reply = await put_settings(engine_env, **changes)
    assert isinstance(reply.fault, F.InvalidRepresentation)
    assert engine_env.engine.store.keys("settings/AMT_BootSettingData") == []


async def test_read_only_fields_a_console_echoes_are_ignored(engine_env: RunningEngine) -> None:
    settings = output(await put_settings(engine_env, BootguardStatus=1, OptionsCleared=False, UseSOL=True))
    assert settings["BootguardStatus"] == 127
    assert settings["OptionsCleared"] is False  # because UseSOL is set, not because the console said so
    assert settings["UseSOL"] is True


@pytest.mark.parametrize(("config", "role", "expected"), [
    (None, 2, 5),
    (None, 0, 5),
    (EndpointReference.to(resource_uri("CIM_BootConfigSetting"), {"InstanceID": "Intel(r) AMT: Boot Configuration 1"}),
     1, 4),
    (EndpointReference.to(resource_uri("CIM_BootSourceSetting"), {"InstanceID": CONFIG_ID}), 1, 4),
])
async def test_set_boot_config_role_refusals(engine_env: RunningEngine, config: EndpointReference | None,
                                             role: int, expected: int) -> None:
    assert await set_role(engine_env, role, config) == expected
    assert engine_env.engine.store.get("boot/role") is None


async def test_change_boot_order_refusals(engine_env: RunningEngine) -> None:
    assert await change_boot_order(engine_env, source("Intel(r) AMT: Force Diagnostic Boot")) == 4
    assert await change_boot_order(engine_env, source(PXE, "CIM_BootConfigSetting")) == 4
    assert await change_boot_order(engine_env, source(PXE), source(PXE)) == 5
    output(await put_settings(engine_env, UseIDER=True))
    assert await change_boot_order(engine_env, source(PXE)) == 5  # IDE-R rules out a forced source
    assert engine_env.engine.store.get("boot/source") is None


# ---------------------------------------------------------------------------------------------- consent, realms


async def optin(env: RunningEngine, method: str, **params: object) -> int:
    return int(str((await invoke(env.transport(), "IPS_OptInService", method, **params))["ReturnValue"]))


async def set_consent_policy(env: RunningEngine, policy: int) -> None:
    service = await get(env.transport(), "IPS_OptInService")
    service["OptInRequired"] = policy
    output(await env.transport().send(msg.put(service)))


async def test_boot_options_need_consent_when_the_policy_asks_for_it(engine_env: RunningEngine) -> None:
    await set_consent_policy(engine_env, ALL_CONSENT)
    assert isinstance((await put_settings(engine_env, UseSOL=True)).fault, F.AccessDenied)
    assert await change_boot_order(engine_env, source(PXE)) == 6
    assert await change_boot_order(engine_env) == 0  # clearing needs no consent
    output(await put_settings(engine_env, UseSOL=False))  # neither does a plain boot (MPS Puts this every time)
    assert await set_role(engine_env, 1) == 0
    assert engine_env.engine.store.get("boot/source") is None

    assert await optin(engine_env, "StartOptIn") == 0  # the code appears on the host's screen
    code = int(engine_env.machine.screen_messages[-1].rsplit(" ", 1)[-1])
    assert await optin(engine_env, "SendOptInCode", OptInCode=code) == 0  # the user read it out
    output(await put_settings(engine_env, UseSOL=True))
    assert await change_boot_order(engine_env) == 0
    assert await optin(engine_env, "CancelOptIn") == 0  # consent withdrawn
    assert await set_role(engine_env, 1) == 6

    await set_consent_policy(engine_env, 1)  # KVM only: boot control is free
    assert await set_role(engine_env, 1) == 0
    assert engine_env.machine.next_boot == BootRequest(use_sol=True)


async def test_boot_control_needs_the_remote_control_realm(engine_env: RunningEngine) -> None:
    viewer = user_transport(engine_env, [Realm.GENERAL_INFO, Realm.HARDWARE_ASSET], "viewer")
    for request in (msg.get(SETTINGS), msg.get("AMT_BootCapabilities"), msg.enumerate_("CIM_BootSourceSetting"),
                    msg.invoke(CimObject.method_input("CIM_BootConfigSetting", "ChangeBootOrder"))):
        assert isinstance((await viewer.send(request)).fault, F.AccessDenied)
    operator = user_transport(engine_env, [Realm.REMOTE_CONTROL])
    out = await invoke(operator, "CIM_BootService", "SetBootConfigRole", BootConfigSetting=boot_config_epr(), Role=1)
    assert out["ReturnValue"] == 0
    record = audit_records(engine_env.engine)[-1]
    assert (record.full_id, record.initiator) == (1704, "operator")


# ---------------------------------------------------------------------------------------------- persistence


async def test_an_armed_boot_survives_an_engine_restart(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    async with running_engine(state=state) as env:
        output(await put_settings(env, UseIDER=True, IDERBootDevice=1))
        assert await set_role(env, 1) == 0
    async with running_engine(state=state) as env:
        assert await power(env, 2) == 0  # the first request after the restart is the power-on itself
        assert env.machine.last_boot == BootRequest(BootDevice.IDER_CD)
    async with running_engine(state=state) as env:
        assert (await get(env.transport(), SETTINGS))["UseIDER"] is False
        assert await power(env, 2) == 0
        assert env.machine.last_boot == BootRequest()


def test_capture_source_instances_match(conformance_dir: Path) -> None:
    """The three forced sources are the ones real firmware lists, in its order."""
    root = load(conformance_dir / "cim/boot/sourcesetting/pull.xml")
    ids = [el.text for el in root.iter() if isinstance(el.tag, str) and etree.QName(el).localname == "InstanceID"]
    assert ids == ["Intel(r) AMT: Force Hard-drive Boot", PXE, "Intel(r) AMT: Force CD/DVD Boot"]


async def test_enumerated_settings_pull_in_one_go(engine_env: RunningEngine) -> None:
    t = engine_env.transport()
    reply = await t.send(msg.enumerate_(SETTINGS))
    assert isinstance(reply.body, EnumerateResponse)
    assert reply.body.context is not None
    pulled = await t.send(msg.pull(SETTINGS, reply.body.context))
    assert isinstance(pulled.body, PullResponse)
    assert pulled.body.end_of_sequence
