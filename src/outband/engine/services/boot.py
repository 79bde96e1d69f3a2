"""One-shot boot control: AMT_BootSettingData, CIM_BootService, CIM_BootConfigSetting (AMT-PROTOCOLS.md §3.3).

Theory of operation.  A console arms the next boot in up to three steps, in either of two orders (MPS: Put,
SetBootConfigRole, ChangeBootOrder; MeshCommander: ChangeBootOrder(clear), Put, SetBootConfigRole,
ChangeBootOrder), then asks for a power-on or reset:

* **options** -- AMT_BootSettingData, changed with Get-modify-Put (IDE-R and its device, BIOS setup, SOL...);
* **source** -- ChangeBootOrder names one CIM_BootSourceSetting (hard disk, PXE, CD/DVD) or clears it;
* **role** -- SetBootConfigRole(1, "is next single use") arms the boot configuration; 32768 disarms it.

All three persist.  After each change the engine recomputes the :class:`BootRequest` the platform will use at
its next boot: the options and source when armed, a plain boot otherwise.  When the platform reports a boot,
AMT's one-shot rule applies: options, source and role are cleared, whatever started the boot.

Options the platform cannot honour (AMT_BootCapabilities says which) are refused rather than silently dropped.
Boot options need the local user's consent when the opt-in policy asks for it for everything (not for KVM
only): Put is then refused with AccessDenied and the methods return 6 (Access Denied), as Intel documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ...proto.amt import Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimObject
from ...proto.wsman import EndpointReference
from ...proto.wsman import faults as F
from ...proto.wsman.namespaces import class_name_of, resource_uri
from ..core import Engine
from ..platforms.base import BootDevice, BootRequest, EventKind, PlatformEvent
from ..registry import Context, PutFn, Service
from ..settings import SettingsClass
from . import optin
from .support import HOST_SYSTEM_NAME, me_service, method_output

service = Service("boot")

CONFIG_ID: Final = "Intel(r) AMT: Boot Configuration 0"
SETTINGS_ID: Final = "Intel(r) AMT:BootSettingData 0"
CAPABILITIES_ID: Final = "Intel(r) AMT:BootCapabilities 0"
BOOT_SERVICE_NAME: Final = "Intel(r) AMT Boot Service"

ROLE_NEXT_SINGLE_USE: Final = 1
ROLE_NOT_NEXT: Final = 32768
ROLE_KEY: Final = "boot/role"
SOURCE_KEY: Final = "boot/source"

# DMTF boot-control ReturnValues (DSP1012; GWM pkg/wsman/cim/boot/decoder.go).
COMPLETED: Final = 0
INVALID_REFERENCE: Final = 4
INVALID_PARAMETER: Final = 5
ACCESS_DENIED: Final = 6

AUDIT_SET_BOOT_OPTIONS: Final = 4
"""Event 4 of the Remote Control application: 1704, Set Boot Options."""


SOURCES: Final[dict[str, tuple[str, BootDevice]]] = {
    "Intel(r) AMT: Force Hard-drive Boot": ("CIM:Hard-Disk:1", BootDevice.HDD),
    "Intel(r) AMT: Force PXE Boot": ("CIM:Network:1", BootDevice.PXE),
    "Intel(r) AMT: Force CD/DVD Boot": ("CIM:CD/DVD:1", BootDevice.CD),
}
"""CIM_BootSourceSetting instances, by InstanceID: StructuredBootString and the device it forces."""

CAPABILITIES: Final[dict[str, bool]] = {
    "BIOSPause": True, "BIOSReflash": False, "BIOSSecureBoot": False, "BIOSSetup": True,
    "ConfigurationDataReset": False, "ForceCDorDVDBoot": True, "ForceDiagnosticBoot": False,
    "ForceHardDriveBoot": True, "ForceHardDriveSafeModeBoot": False, "ForcePXEBoot": True,
    "ForcedProgressEvents": False, "IDER": True, "KeyboardLock": True, "PowerButtonLock": False,
    "ResetButtonLock": False, "SOL": True, "SecureErase": False, "SleepButtonLock": False,
    "UserPasswordBypass": False, "VerbosityQuiet": True, "VerbosityScreenBlank": True, "VerbosityVerbose": True,
}
"""What a platform can honour through a BootRequest (device, SOL, BIOS pause, keyboard lock, verbosity)."""

_OPTION_CAPABILITY: Final[dict[str, str | None]] = {
    "UseSOL": "SOL", "UseIDER": "IDER", "BIOSSetup": "BIOSSetup", "BIOSPause": "BIOSPause",
    "ReflashBIOS": "BIOSReflash", "UseSafeMode": "ForceHardDriveSafeModeBoot",
    "UserPasswordBypass": "UserPasswordBypass", "LockKeyboard": "KeyboardLock",
    "LockPowerButton": "PowerButtonLock", "LockResetButton": "ResetButtonLock", "LockSleepButton": "SleepButtonLock",
    "ForcedProgressEvents": "ForcedProgressEvents", "ConfigurationDataReset": "ConfigurationDataReset",
    "SecureErase": "SecureErase", "EnforceSecureBoot": "BIOSSecureBoot", "PlatformErase": None,
}
"""Each boolean boot option and the capability that allows setting it (None: no capability, never allowed)."""

_VERBOSITY_CAPABILITY: Final = {1: "VerbosityQuiet", 2: "VerbosityVerbose", 3: "VerbosityScreenBlank"}
_EXCLUDES_SOURCE: Final = ("UseIDER", "ReflashBIOS", "BIOSPause", "BIOSSetup")
"""Options that rule out a forced boot source (Intel class reference, CIM_BootSourceSetting)."""


def _settings_defaults(engine: Engine) -> Mapping[str, Any]:
    return {
        "BIOSLastStatus": [2, 0],
        "BootMediaIndex": 0,
        "BootguardStatus": 127,
        "ElementName": "Intel(r) AMT Boot Configuration Settings",
        "FirmwareVerbosity": 0,
        "IDERBootDevice": 0,
        "InstanceID": SETTINGS_ID,
        "OptionsCleared": True,
        "OwningEntity": "Intel(r) AMT",
        "RPEEnabled": False,
        "RSEPassword": "",
        "SecureBootControlEnabled": False,
        "UEFIHTTPSBootEnabled": False,
        "UEFILocalPBABootEnabled": False,
        "UefiBootNumberOfParams": 0,
        "WinREBootEnabled": False,
        **dict.fromkeys(_OPTION_CAPABILITY, False),
    }


SETTINGS = SettingsClass(
    "AMT_BootSettingData", SETTINGS_ID, _settings_defaults,
    frozenset({*_OPTION_CAPABILITY, "FirmwareVerbosity", "IDERBootDevice", "BootMediaIndex"}),
)


# ---------------------------------------------------------------------------------------------- state


def options_set(values: Mapping[str, Any]) -> bool:
    """Whether any boot option differs from a plain boot."""
    return any(values.get(name) is True for name in _OPTION_CAPABILITY) or bool(values.get("FirmwareVerbosity")) \
        or bool(values.get("BootMediaIndex"))


def _role(engine: Engine) -> int:
    return int(engine.store.get(ROLE_KEY, ROLE_NOT_NEXT))


def _source(engine: Engine) -> str | None:
    source = engine.store.get(SOURCE_KEY)
    return source if isinstance(source, str) else None


def next_boot_request(engine: Engine) -> BootRequest:
    """The boot the armed configuration asks for (a plain boot when it is not armed)."""
    if _role(engine) != ROLE_NEXT_SINGLE_USE:
        return BootRequest()
    values = SETTINGS.values(engine)
    source = _source(engine)
    if values["BIOSSetup"]:
        device = BootDevice.BIOS_SETUP
    elif values["UseIDER"]:
        device = BootDevice.IDER_CD if values["IDERBootDevice"] == 1 else BootDevice.IDER_FLOPPY
    elif source is not None:
        device = SOURCES[source][1]
    else:
        device = BootDevice.DEFAULT
    return BootRequest(device, use_sol=bool(values["UseSOL"]), bios_pause=bool(values["BIOSPause"]),
                       lock_keyboard=bool(values["LockKeyboard"]), verbosity=int(values["FirmwareVerbosity"]))


def _apply(engine: Engine) -> None:
    engine.platform.set_next_boot(next_boot_request(engine))


def consent_missing(engine: Engine) -> bool:
    """Whether boot options need the user's consent and do not have it (the opt-in service decides: consent
    gates boot control only under the "all" policy, and is given once the user's code came back)."""
    return not optin.consent_granted(engine, optin.Purpose.BOOT)


def _clear_after_boot(engine: Engine, event: PlatformEvent) -> None:
    """AMT's one-shot rule: the boot that just happened used up the options, the source and the role."""
    if event.kind is not EventKind.BOOT:
        return
    store = engine.store
    if store.get(SETTINGS.store_key) is None and store.get(SOURCE_KEY) is None and store.get(ROLE_KEY) is None:
        return
    with store.transaction():
        store.delete(SETTINGS.store_key)
        store.delete(SOURCE_KEY)
        store.delete(ROLE_KEY)
    _apply(engine)


@service.on_attach
def attach(engine: Engine) -> None:
    """Hand the stored boot configuration to the platform and clear it after each boot."""
    engine.add_event_listener(lambda event: _clear_after_boot(engine, event))
    _apply(engine)


# ---------------------------------------------------------------------------------------------- instances


def boot_config_epr() -> EndpointReference:
    return EndpointReference.to(resource_uri("CIM_BootConfigSetting"), {"InstanceID": CONFIG_ID})


def host_epr() -> EndpointReference:
    """The host's CIM_ComputerSystem, the element AMT powers and boots."""
    return EndpointReference.to(resource_uri("CIM_ComputerSystem"), {"CreationClassName": "CIM_ComputerSystem",
                                                       "Name": HOST_SYSTEM_NAME})


@service.instances("AMT_BootCapabilities", realm=Realm.REMOTE_CONTROL)
def boot_capabilities(engine: Engine) -> Iterable[CimObject]:
    return [CimObject.new("AMT_BootCapabilities", CAPABILITIES, ElementName="Intel(r) AMT: Boot Capabilities",
                          InstanceID=CAPABILITIES_ID)]


@service.instances("AMT_BootSettingData", realm=Realm.REMOTE_CONTROL)
def boot_setting_data(engine: Engine) -> Iterable[CimObject]:
    obj = SETTINGS.instance(engine)
    obj["OptionsCleared"] = not options_set(SETTINGS.values(engine))
    return [obj]


@service.put("AMT_BootSettingData")
async def put_boot_setting_data(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    engine = ctx.engine
    changes = SETTINGS.changes_from_put(current, new)
    resulting = {**SETTINGS.values(engine), **changes}
    _check_supported(resulting)
    if options_set(resulting) and consent_missing(engine):
        raise F.AccessDenied("boot options need the user's consent (IPS_OptInService) first")
    with engine.store.transaction():
        SETTINGS.update(engine, changes)
    _apply(engine)
    return next(iter(boot_setting_data(engine)))


def _check_supported(values: Mapping[str, Any]) -> None:
    for option, capability in _OPTION_CAPABILITY.items():
        if values.get(option) is True and (capability is None or not CAPABILITIES[capability]):
            raise F.InvalidRepresentation(f"{option} is not supported on this platform (see AMT_BootCapabilities)",
                                          detail=F.detail_uri("InvalidValues"))
    verbosity = values.get("FirmwareVerbosity")
    capability = _VERBOSITY_CAPABILITY.get(verbosity) if isinstance(verbosity, int) else None
    if verbosity != 0 and (capability is None or not CAPABILITIES[capability]):
        raise F.InvalidRepresentation(f"FirmwareVerbosity {verbosity!r} is not supported (0-3)",
                                      detail=F.detail_uri("InvalidValues"))
    if values.get("IDERBootDevice") not in (0, 1):
        raise F.InvalidRepresentation("IDERBootDevice is 0 (floppy) or 1 (CD)", detail=F.detail_uri("InvalidValues"))
    if values.get("BootMediaIndex") != 0:
        raise F.InvalidRepresentation("BootMediaIndex: this platform boots its default drive only (0)",
                                      detail=F.detail_uri("InvalidValues"))


@service.instances("CIM_BootService", realm=Realm.REMOTE_CONTROL)
def boot_service(engine: Engine) -> Iterable[CimObject]:
    return [me_service("CIM_BootService", BOOT_SERVICE_NAME, EnabledState=2, OperationalStatus=[0],
                       RequestedState=12)]


@service.method("CIM_BootService", "SetBootConfigRole", realm=Realm.REMOTE_CONTROL)
async def set_boot_config_role(ctx: Context, target: CimObject | None, params: CimObject) -> CimObject:
    engine = ctx.engine
    method = "SetBootConfigRole"
    config = params.get("BootConfigSetting")
    role = params.get("Role")
    if not isinstance(config, EndpointReference) or role not in (ROLE_NEXT_SINGLE_USE, ROLE_NOT_NEXT):
        return method_output("CIM_BootService", method, INVALID_PARAMETER)
    if not _refers_to(config, "CIM_BootConfigSetting", {CONFIG_ID}):
        return method_output("CIM_BootService", method, INVALID_REFERENCE)
    armed_something = options_set(SETTINGS.values(engine)) or _source(engine) is not None
    if role == ROLE_NEXT_SINGLE_USE and armed_something and consent_missing(engine):
        return method_output("CIM_BootService", method, ACCESS_DENIED)
    with engine.store.transaction():
        engine.store.set(ROLE_KEY, role)
        if role == ROLE_NEXT_SINGLE_USE:
            engine.audit(AuditApp.REMOTE_CONTROL, AUDIT_SET_BOOT_OPTIONS, account=ctx.account, address=ctx.peer)
    _apply(engine)
    return method_output("CIM_BootService", method, COMPLETED)


@service.instances("CIM_BootConfigSetting", realm=Realm.REMOTE_CONTROL)
def boot_config_setting(engine: Engine) -> Iterable[CimObject]:
    return [CimObject.new("CIM_BootConfigSetting", ElementName="Intel(r) AMT: Boot Configuration",
                          InstanceID=CONFIG_ID)]


@service.method("CIM_BootConfigSetting", "ChangeBootOrder", realm=Realm.REMOTE_CONTROL)
async def change_boot_order(ctx: Context, target: CimObject | None, params: CimObject) -> CimObject:
    """One source forces the next boot's device; none clears it (MeshCommander clears before each action)."""
    engine = ctx.engine
    method = "ChangeBootOrder"
    sources = params.getlist("Source")
    if len(sources) > 1 or not all(isinstance(s, EndpointReference) for s in sources):
        return method_output("CIM_BootConfigSetting", method, INVALID_PARAMETER)
    chosen: str | None = None
    if sources:
        epr = sources[0]
        assert isinstance(epr, EndpointReference)
        if not _refers_to(epr, "CIM_BootSourceSetting", set(SOURCES)):
            return method_output("CIM_BootConfigSetting", method, INVALID_REFERENCE)
        chosen = str(epr.selector_dict["InstanceID"])
        values = SETTINGS.values(engine)
        if any(values.get(option) is True for option in _EXCLUDES_SOURCE):
            return method_output("CIM_BootConfigSetting", method, INVALID_PARAMETER)
        if consent_missing(engine):
            return method_output("CIM_BootConfigSetting", method, ACCESS_DENIED)
    with engine.store.transaction():
        if chosen is None:
            engine.store.delete(SOURCE_KEY)
        else:
            engine.store.set(SOURCE_KEY, chosen)
    _apply(engine)
    return method_output("CIM_BootConfigSetting", method, COMPLETED)


def _refers_to(epr: EndpointReference, class_name: str, instance_ids: set[str]) -> bool:
    selectors = epr.selector_dict
    return (epr.resource_uri == resource_uri(class_name) and set(selectors) == {"InstanceID"}
            and selectors["InstanceID"] in instance_ids)


@service.instances("CIM_BootSourceSetting", realm=Realm.REMOTE_CONTROL)
def boot_source_settings(engine: Engine) -> Iterable[CimObject]:
    return [
        CimObject.new("CIM_BootSourceSetting", ElementName="Intel(r) AMT: Boot Source", FailThroughSupported=2,
                      InstanceID=instance_id, StructuredBootString=boot_string)
        for instance_id, (boot_string, _) in SOURCES.items()
    ]


# ---------------------------------------------------------------------------------------------- element settings


@dataclass(frozen=True, slots=True)
class ElementSettings:
    """The CIM_ElementSettingData instances one area contributes, by the SettingData class they point at.

    CIM_ElementSettingData ties settings to the elements they configure across areas (boot configuration to
    the host, IPv6 settings to a port, power schemes to the host: Intel class reference), and MeshCommander
    reads it on every status refresh, so one handler serves every area's instances.
    """

    setting_class: str
    instances: Callable[[Engine], Iterable[CimObject]]
    put: PutFn | None = None


ELEMENT_SETTINGS: list[ElementSettings] = []


def add_element_settings(provider: ElementSettings) -> None:
    ELEMENT_SETTINGS.append(provider)


def _boot_config_association(engine: Engine) -> Iterable[CimObject]:
    """Intel's "next single use" association: IsNext 3 while armed, 2 ("is not next") otherwise."""
    is_next = 3 if _role(engine) == ROLE_NEXT_SINGLE_USE else 2
    return [CimObject.new("CIM_ElementSettingData", IsNext=is_next, ManagedElement=host_epr(),
                          SettingData=boot_config_epr())]


add_element_settings(ElementSettings("CIM_BootConfigSetting", _boot_config_association))


@service.instances("CIM_ElementSettingData", realm=None, write_realm=None)
def element_setting_data(engine: Engine) -> Iterable[CimObject]:
    """Association metadata only, readable by any user; the settings it points at keep their own realms."""
    return [obj for provider in ELEMENT_SETTINGS for obj in provider.instances(engine)]


@service.put("CIM_ElementSettingData")
async def put_element_setting_data(ctx: Context, current: CimObject, new: CimObject) -> CimObject | None:
    """Handed to the area that owns the setting; the boot association changes only with SetBootConfigRole."""
    setting = current.get("SettingData")
    owner = class_name_of(setting.resource_uri or "") if isinstance(setting, EndpointReference) else ""
    for provider in ELEMENT_SETTINGS:
        if provider.setting_class == owner and provider.put is not None:
            return await provider.put(ctx, current, new)
    raise F.ActionNotSupported(f"the {owner} association is changed through its own service, not with Put")
