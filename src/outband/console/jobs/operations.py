"""Fleet operations: what a job does to each device, as plain async functions over an :class:`AmtClient`.

Each :class:`Operation` in :data:`OPERATIONS` names the permission it needs, the parameters it takes (a
pydantic model, which is also its API schema), its body ``run(client, params) -> dict`` and, for operations
that keep what they read, a ``store(session, device_id, raw) -> dict`` step that the runner calls inside the
same transaction as the device's result row (so a snapshot or log record is stored exactly when its result is).

The WS-MAN sequences are the ones real consoles send to real firmware (AMT-PROTOCOLS.md §3.3):

* power: ``CIM_PowerManagementService.RequestPowerStateChange`` with on 2, off 8, soft-off 12 (graceful, needs
  the OS agent), reset 10, cycle 5; state from ``CIM_ServiceAvailableToElement``.  AMT answers 2 to a power-on
  of a host that is on (and an off of one that is off); that is reported as done with ``changed: false``.
* next boot: Get ``AMT_BootSettingData`` -> Put with the options -> ``CIM_BootService.SetBootConfigRole(1)`` ->
  ``CIM_BootConfigSetting.ChangeBootOrder`` (a forced source, or none for IDE-R and BIOS setup), as MPS does.
* inventory: the hardware classes MeshCommander's hardware page reads, stored as an ``InventorySnapshot``.
* logs: ``AMT_AuditLog.ReadRecords`` and ``AMT_MessageLog.GetRecords``, decoded with :mod:`outband.proto.amtlog`
  and merged idempotently (:mod:`.devicelogs`).
* alarms: ``AMT_AlarmClockService.AddAlarm``, enumerate and delete ``IPS_AlarmClockOccurrence``.
* consent: ``IPS_OptInService`` ``StartOptIn`` / ``SendOptInCode`` / ``CancelOptIn``.
* features: ``AMT_RedirectionService`` (Put ``ListenerEnabled``, ``RequestStateChange`` 32768 + IDE-R + 2·SOL)
  and ``CIM_KVMRedirectionSAP.RequestStateChange`` (2 on, 3 off).

``repeatable(params)`` says whether the operation may run again when an earlier attempt's outcome is unknown
(the connection dropped after the request went out, or the console died mid-call): reads and operations that
converge on a state (power on/off, boot settings, feature switches) may; a reset, a cycle or an added alarm
may not, and such a device is reported instead of being acted on twice.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, StringConstraints, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from ...client import AmtClient, services
from ...proto.cim.model import CimDateTime, CimObject
from ...proto.wsman import EndpointReference
from ...proto.wsman.faults import ActionNotSupported, DestinationUnreachable
from ...proto.wsman.namespaces import resource_uri
from ..db.models import InventorySnapshot
from ..devices.connect import MAX_FACT_LENGTH, platform_uuid
from ..metrics import power_state_name
from ..permissions import Permission
from . import devicelogs


class OperationRefused(Exception):
    """The device answered and said no (a ReturnValue other than success, or a state that rules the operation
    out): final, never retried."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


RunFn = Callable[[AmtClient, Any], Awaitable[dict[str, Any]]]
StoreFn = Callable[[AsyncSession, int, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    permission: Permission
    params: type[BaseModel]
    run: RunFn
    summary: str
    repeatable: Callable[[Any], bool]
    store: StoreFn | None = None

    def parse(self, raw: Mapping[str, Any]) -> BaseModel:
        """The stored parameters of a job, validated again (a job outlives the request that made it)."""
        return self.params.model_validate(dict(raw))


def _always(params: Any) -> bool:
    return True


def _never(params: Any) -> bool:
    return False


def require_success(output: CimObject, what: str, meanings: Mapping[int, str] | None = None) -> None:
    """Refuse unless the method's ReturnValue is 0, naming the value's meaning (ours, else the catalog's)."""
    value = output.get("ReturnValue")
    if not isinstance(value, int) or isinstance(value, bool):
        raise OperationRefused(f"{what}: the reply carries no ReturnValue")
    if value != 0:
        meaning = (meanings or {}).get(value) or _catalog_meaning(output, value)
        raise OperationRefused(f"{what} refused: ReturnValue {value}" + (f" ({meaning})" if meaning else ""))


def _catalog_meaning(output: CimObject, value: int) -> str | None:
    cls = output.cls
    method = cls.method(output.method_name or "") if cls is not None else None
    return method.returns.get(value) if method is not None else None


# ---------------------------------------------------------------------------------------------- power

POWER_SERVICE: Final = "CIM_PowerManagementService"


class PowerAction(enum.StrEnum):
    ON = "on"
    OFF = "off"
    SOFT_OFF = "soft_off"
    RESET = "reset"
    CYCLE = "cycle"
    STATE = "state"


POWER_REQUESTS: Final = {
    PowerAction.ON: 2, PowerAction.OFF: 8, PowerAction.SOFT_OFF: 12, PowerAction.RESET: 10, PowerAction.CYCLE: 5,
}
"""RequestPowerStateChange values (DSP1027 as AMT uses them; 12 needs the in-OS agent)."""
SETTLED_BY_REQUEST: Final = frozenset({PowerAction.ON, PowerAction.OFF})
"""Transitions the firmware has made once it accepts them (no OS involved): the accepted state is the new one,
and the device's last known power state is updated without another round trip."""
OFF_STATES: Final = frozenset({6, 8, 12, 13})
ON_STATE: Final = 2
NOT_POSSIBLE_NOW: Final = 2
"""AMT's ReturnValue for a transition the host's current state rules out (power-on while on)."""
_POWER_MEANINGS: Final = {1: "not supported", 2: "not possible in the host's current power state",
                          5: "invalid parameter"}


class PowerParams(_Params):
    action: PowerAction = Field(description="on, off (8), soft_off (12, graceful, needs the OS agent), reset (10), "
                                            "cycle (5), or state (read only).")


def _state(value: int) -> dict[str, Any]:
    return {"power_state": value, "power": power_state_name(value)}


async def request_power(client: AmtClient, action: PowerAction) -> dict[str, Any]:
    """Ask for a transition; a power-on of a host already on (off of one off) is done, unchanged."""
    requested = POWER_REQUESTS[action]
    value = await services.request_power(client, requested)
    if value == 0:
        result: dict[str, Any] = {"action": action.value, "requested_state": requested, "changed": True}
        if action in SETTLED_BY_REQUEST:
            result.update(_state(requested))
        return result
    if value == NOT_POSSIBLE_NOW and action in (PowerAction.ON, PowerAction.OFF):
        current = await services.power_state(client)
        if (current == ON_STATE) if action is PowerAction.ON else (current in OFF_STATES):
            return {"action": action.value, "requested_state": requested, "changed": False, **_state(current)}
    meaning = _POWER_MEANINGS.get(value, "failed")
    raise OperationRefused(f"power {action.value} refused: ReturnValue {value} ({meaning})")


async def power(client: AmtClient, params: PowerParams) -> dict[str, Any]:
    if params.action is PowerAction.STATE:
        return {"action": "state", **_state(await services.power_state(client))}
    return await request_power(client, params.action)


def _power_repeatable(params: PowerParams) -> bool:
    return params.action in (PowerAction.STATE, PowerAction.ON, PowerAction.OFF)


# ---------------------------------------------------------------------------------------------- next boot

BOOT_SETTINGS: Final = "AMT_BootSettingData"
BOOT_CONFIG_ID: Final = "Intel(r) AMT: Boot Configuration 0"
BOOT_SERVICE_NAME: Final = "Intel(r) AMT Boot Service"
ROLE_NEXT_SINGLE_USE: Final = 1


class BootDevice(enum.StrEnum):
    PXE = "pxe"
    DISK = "disk"
    CD = "cd"
    IDER_CD = "ider_cd"
    IDER_FLOPPY = "ider_floppy"
    BIOS_SETUP = "bios_setup"


BOOT_SOURCES: Final = {
    BootDevice.PXE: "Intel(r) AMT: Force PXE Boot",
    BootDevice.DISK: "Intel(r) AMT: Force Hard-drive Boot",
    BootDevice.CD: "Intel(r) AMT: Force CD/DVD Boot",
}
"""CIM_BootSourceSetting InstanceIDs of the forced sources (IDE-R and BIOS setup force none)."""

_BOOT_OPTIONS: Final = ("UseIDER", "BIOSSetup", "BIOSPause", "UseSOL")
"""Options this operation sets; each is reset first so an earlier request does not linger."""


class BootParams(_Params):
    device: BootDevice = Field(description="What the next boot starts from: pxe, disk, cd, ider_cd, ider_floppy "
                                           "(the medium a console serves over IDE-R), bios_setup.")
    sol: bool = Field(False, description="Redirect the BIOS text console to Serial-over-LAN for this boot.")
    then: Literal["none", "on", "reset", "auto"] = Field(
        "none", description="Afterwards: nothing (the next boot, whenever it happens), power on, reset, or auto "
                            "(power on if off, else reset).")


def boot_config_epr() -> EndpointReference:
    return EndpointReference.to(resource_uri("CIM_BootConfigSetting"), {"InstanceID": BOOT_CONFIG_ID})


async def set_next_boot(client: AmtClient, device: BootDevice, *, sol: bool = False) -> None:
    settings = await client.get(BOOT_SETTINGS)
    for option in _BOOT_OPTIONS:
        settings[option] = False
    settings["UseIDER"] = device in (BootDevice.IDER_CD, BootDevice.IDER_FLOPPY)
    settings["IDERBootDevice"] = 1 if device is BootDevice.IDER_CD else 0
    settings["BIOSSetup"] = device is BootDevice.BIOS_SETUP
    settings["UseSOL"] = sol
    await client.put(settings)
    output = await client.invoke("CIM_BootService", "SetBootConfigRole",
                                 {"BootConfigSetting": boot_config_epr(), "Role": ROLE_NEXT_SINGLE_USE},
                                 {"Name": BOOT_SERVICE_NAME})
    require_success(output, "SetBootConfigRole")
    source = BOOT_SOURCES.get(device)
    order: dict[str, Any] = {}
    if source is not None:
        order["Source"] = EndpointReference.to(resource_uri("CIM_BootSourceSetting"), {"InstanceID": source})
    output = await client.invoke("CIM_BootConfigSetting", "ChangeBootOrder", order, {"InstanceID": BOOT_CONFIG_ID})
    require_success(output, "ChangeBootOrder")


async def boot(client: AmtClient, params: BootParams) -> dict[str, Any]:
    await set_next_boot(client, params.device, sol=params.sol)
    result: dict[str, Any] = {"device": params.device.value, "sol": params.sol}
    if params.then == "none":
        return result
    action = PowerAction.ON if params.then == "on" else PowerAction.RESET
    if params.then == "auto":
        action = PowerAction.RESET if await services.power_state(client) == ON_STATE else PowerAction.ON
    result["power"] = await request_power(client, action)
    return result


def _boot_repeatable(params: BootParams) -> bool:
    return params.then in ("none", "on")


# ---------------------------------------------------------------------------------------------- inventory

INVENTORY_CLASSES: Final = (
    "CIM_ComputerSystemPackage", "CIM_Chassis", "CIM_Card", "CIM_BIOSElement", "CIM_Processor", "CIM_Chip",
    "CIM_PhysicalMemory", "CIM_MediaAccessDevice", "CIM_PhysicalPackage", "CIM_SoftwareIdentity",
    "AMT_GeneralSettings", "AMT_EthernetPortSettings",
)
"""What MeshCommander's hardware and network pages read (AMT-PROTOCOLS.md §3.2)."""


class NoParams(_Params):
    pass


async def inventory(client: AmtClient, params: NoParams) -> dict[str, Any]:
    data: dict[str, list[dict[str, Any]]] = {}
    for cls in INVENTORY_CLASSES:
        try:
            items = await client.enumerate(cls)
        except (DestinationUnreachable, ActionNotSupported):
            items = []  # not on this firmware (or this platform has none)
        data[cls] = [_properties(item) for item in items]
    return {"snapshot": data, **inventory_summary(data)}


def _properties(obj: CimObject) -> dict[str, Any]:
    props: dict[str, Any] = obj.to_json()["properties"]
    props["__class"] = obj.class_name
    return props


def inventory_summary(data: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The few facts a device list shows, from a snapshot."""
    def first(cls: str, prop: str) -> Any:
        items = data.get(cls) or []
        return items[0].get(prop) if items else None

    versions = {item.get("InstanceID"): item.get("VersionString") for item in data.get("CIM_SoftwareIdentity", [])}
    guid = first("CIM_ComputerSystemPackage", "PlatformGUID")
    memory = sum(m["Capacity"] for m in data.get("CIM_PhysicalMemory", []) if isinstance(m.get("Capacity"), int))
    version = versions.get("AMT")
    try:
        uuid = platform_uuid(guid) if isinstance(guid, str) else None
    except ValueError:
        uuid = None
    return {
        "uuid": uuid,
        "amt_version": version[:MAX_FACT_LENGTH] if isinstance(version, str) and version else None,
        "hostname": first("AMT_GeneralSettings", "HostName"),
        "manufacturer": first("CIM_Chassis", "Manufacturer"),
        "model": first("CIM_Chassis", "Model"),
        "serial": first("CIM_Chassis", "SerialNumber"),
        "bios": first("CIM_BIOSElement", "Version"),
        "processors": len(data.get("CIM_Processor", [])),
        "memory_bytes": memory,
        "disks": len(data.get("CIM_MediaAccessDevice", [])),
        "mac": first("AMT_EthernetPortSettings", "MACAddress"),
    }


async def store_inventory(session: AsyncSession, device_id: int, raw: dict[str, Any]) -> dict[str, Any]:
    snapshot = InventorySnapshot(device_id=device_id, data=raw.pop("snapshot"))
    session.add(snapshot)
    await session.flush()
    return {"snapshot_id": snapshot.id, **raw}


# ---------------------------------------------------------------------------------------------- logs

class LogKindName(enum.StrEnum):
    AUDIT = "audit"
    EVENT = "event"


class LogsParams(_Params):
    logs: list[LogKindName] = Field(default_factory=lambda: [LogKindName.AUDIT, LogKindName.EVENT], min_length=1,
                                    max_length=2, description="Which logs to pull: audit, event or both.")


async def pull_logs(client: AmtClient, params: LogsParams) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if LogKindName.AUDIT in params.logs:
        raw["audit"] = await devicelogs.read_audit_log(client)
    if LogKindName.EVENT in params.logs:
        raw["event"] = await devicelogs.read_event_log(client)
    return raw


async def store_logs(session: AsyncSession, device_id: int, raw: dict[str, Any]) -> dict[str, Any]:
    return {kind: await devicelogs.merge(session, device_id, kind, records) for kind, records in raw.items()}


# ---------------------------------------------------------------------------------------------- alarms

ALARM_SERVICE: Final = "AMT_AlarmClockService"
ALARM_OCCURRENCE: Final = "IPS_AlarmClockOccurrence"
ALARM_SERVICE_NAME: Final = "Intel(r) AMT Alarm Clock Service"
AlarmName = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[\x20-\x7e]+$")]


def _future_minute(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("give the time zone (e.g. 2030-01-01T07:00:00Z)")
    if value.second or value.microsecond:
        raise ValueError("alarms start on a whole minute")
    return value.astimezone(dt.UTC)


class AlarmAdd(_Params):
    action: Literal["add"]
    name: AlarmName
    start: Annotated[dt.datetime, AfterValidator(_future_minute)] = Field(
        description="First wake-up (UTC or with an offset, whole minutes, in the future).")
    interval_minutes: int = Field(0, ge=0, le=99_999 * 1440, description="Repeat every this many minutes; 0: once.")
    delete_on_completion: bool = Field(True, description="A one-shot alarm is deleted once it has fired.")


class AlarmList(_Params):
    action: Literal["list"]


class AlarmDelete(_Params):
    action: Literal["delete"]
    name: AlarmName = Field(description="The alarm's name (ElementName) or InstanceID.")


class AlarmParams(RootModel[Annotated[AlarmAdd | AlarmList | AlarmDelete, Field(discriminator="action")]]):
    """``{"action": "add", "name": ..., "start": ...}``, ``{"action": "list"}`` or
    ``{"action": "delete", "name": ...}``."""


def alarm_interval(minutes: int) -> str:
    """``PnDTnHnM`` with hours 0-23 and minutes 0-59, the form AMT accepts."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"P{days}DT{hours}H{mins}M"


def _alarm_json(obj: CimObject) -> dict[str, Any]:
    start = obj.get("StartTime")
    interval = obj.get("Interval")
    return {
        "id": obj.get("InstanceID"),
        "name": obj.get("ElementName"),
        "start": start.text if isinstance(start, CimDateTime) else None,
        "interval": interval.text if isinstance(interval, CimDateTime) else None,
        "delete_on_completion": obj.get("DeleteOnCompletion"),
    }


async def list_alarms(client: AmtClient) -> list[dict[str, Any]]:
    return [_alarm_json(obj) for obj in await client.enumerate(ALARM_OCCURRENCE)]


async def alarms(client: AmtClient, params: AlarmParams) -> dict[str, Any]:
    request = params.root
    if isinstance(request, AlarmList):
        return {"alarms": await list_alarms(client)}
    if isinstance(request, AlarmAdd):
        template = CimObject.new(ALARM_OCCURRENCE, ElementName=request.name, InstanceID=request.name,
                                 StartTime=CimDateTime.of(request.start),
                                 DeleteOnCompletion=request.delete_on_completion)
        if request.interval_minutes:
            template["Interval"] = CimDateTime("Interval", alarm_interval(request.interval_minutes))
        output = await client.invoke(ALARM_SERVICE, "AddAlarm", {"AlarmTemplate": template},
                                     {"Name": ALARM_SERVICE_NAME})
        require_success(output, "AddAlarm")
        return {"added": request.name, "alarms": await list_alarms(client)}
    current = await list_alarms(client)
    match = next((a for a in current if request.name in (a["id"], a["name"])), None)
    if match is None:
        raise OperationRefused(f"no alarm named {request.name!r} on the device")
    await client.delete(ALARM_OCCURRENCE, {"InstanceID": match["id"]})
    return {"deleted": match["id"], "alarms": [a for a in current if a is not match]}


def _alarms_repeatable(params: AlarmParams) -> bool:
    return isinstance(params.root, AlarmList)


# ---------------------------------------------------------------------------------------------- consent

OPT_IN_SERVICE: Final = "IPS_OptInService"
OPT_IN_STATES: Final = {0: "not_started", 1: "requested", 2: "displayed", 3: "received", 4: "in_session"}
_OPT_IN_MEANINGS: Final = {1: "internal error", 2: "invalid state", 3: "blocked after wrong codes",
                           4: "failed", 0x812: "wrong code"}


class ConsentParams(_Params):
    action: Literal["start", "submit", "cancel"] = Field(
        description="start: show a code on the device's screen; submit: send the code the user read out; "
                    "cancel: withdraw the request or the consent.")
    code: int | None = Field(None, ge=0, le=999_999, description="The six-digit code (submit only).")

    @model_validator(mode="after")
    def _code_with_submit(self) -> ConsentParams:
        if (self.action == "submit") != (self.code is not None):
            raise ValueError("give the code with submit, and only with submit")
        return self


async def consent(client: AmtClient, params: ConsentParams) -> dict[str, Any]:
    method, inputs = {
        "start": ("StartOptIn", {}),
        "submit": ("SendOptInCode", {"OptInCode": params.code}),
        "cancel": ("CancelOptIn", {}),
    }[params.action]
    require_success(await client.invoke(OPT_IN_SERVICE, method, inputs), method, _OPT_IN_MEANINGS)
    service = await client.get(OPT_IN_SERVICE)
    state = service.get("OptInState")
    return {"action": params.action, "opt_in_state": state,
            "state": OPT_IN_STATES.get(state, "unknown") if isinstance(state, int) else "unknown",
            "opt_in_required": service.get("OptInRequired")}


# ---------------------------------------------------------------------------------------------- features

REDIRECTION_SERVICE: Final = "AMT_RedirectionService"
KVM_SAP: Final = "CIM_KVMRedirectionSAP"
REDIRECTION_BASE: Final = 32768
IDER_BIT: Final = 1
SOL_BIT: Final = 2
KVM_ON: Final = 2
KVM_OFF: Final = 3
KVM_ON_STATES: Final = frozenset({2, 6})
"""CIM_KVMRedirectionSAP EnabledState values that mean KVM is on (6: enabled, no session; MeshCommander)."""


class FeatureParams(_Params):
    """Switches left out stay as they are."""

    sol: bool | None = None
    ider: bool | None = None
    kvm: bool | None = None
    listener: bool | None = Field(None, description="The redirection listener (ports 16994/16995).")

    @model_validator(mode="after")
    def _something(self) -> FeatureParams:
        if self.sol is None and self.ider is None and self.kvm is None and self.listener is None:
            raise ValueError("switch at least one of sol, ider, kvm, listener")
        return self


async def features(client: AmtClient, params: FeatureParams) -> dict[str, Any]:
    redirection = await client.get(REDIRECTION_SERVICE)
    listener = redirection.get("ListenerEnabled")
    if params.listener is not None and params.listener != listener:
        redirection["ListenerEnabled"] = params.listener
        redirection = await client.put(redirection)
        listener = redirection.get("ListenerEnabled")
    state = redirection.get("EnabledState")
    bits = state - REDIRECTION_BASE if isinstance(state, int) and REDIRECTION_BASE <= state <= 32771 else 0
    sol, ider = bool(bits & SOL_BIT), bool(bits & IDER_BIT)
    wanted_sol = sol if params.sol is None else params.sol
    wanted_ider = ider if params.ider is None else params.ider
    if (wanted_sol, wanted_ider) != (sol, ider):
        requested = REDIRECTION_BASE + (IDER_BIT if wanted_ider else 0) + (SOL_BIT if wanted_sol else 0)
        require_success(await client.invoke(REDIRECTION_SERVICE, "RequestStateChange", {"RequestedState": requested}),
                        "AMT_RedirectionService.RequestStateChange")
        sol, ider = wanted_sol, wanted_ider
    kvm_state = (await client.get(KVM_SAP)).get("EnabledState")
    kvm = kvm_state in KVM_ON_STATES
    if params.kvm is not None and params.kvm != kvm:
        require_success(await client.invoke(KVM_SAP, "RequestStateChange",
                                            {"RequestedState": KVM_ON if params.kvm else KVM_OFF}),
                        "CIM_KVMRedirectionSAP.RequestStateChange")
        kvm = params.kvm
    return {"listener": listener, "sol": sol, "ider": ider, "kvm": kvm}


# ---------------------------------------------------------------------------------------------- the table

OPERATIONS: Final[Mapping[str, Operation]] = {op.name: op for op in (
    Operation("power", Permission.POWER, PowerParams, power,
              "Power on, off, soft-off, reset, cycle, or read the power state.", _power_repeatable),
    Operation("boot", Permission.BOOT, BootParams, boot,
              "Choose what the next boot starts from (PXE, disk, CD, IDE-R, BIOS setup).", _boot_repeatable),
    Operation("inventory", Permission.INVENTORY, NoParams, inventory,
              "Read the hardware inventory and store it as a snapshot.", _always, store_inventory),
    Operation("logs", Permission.LOGS, LogsParams, pull_logs,
              "Pull the audit and event logs; new records are decoded and stored.", _always, store_logs),
    Operation("alarms", Permission.ALARMS, AlarmParams, alarms,
              "Add, list or delete alarm-clock wake-ups.", _alarms_repeatable),
    Operation("consent", Permission.CONSENT, ConsentParams, consent,
              "User consent: start (show a code), submit the code, cancel.", _never),
    Operation("features", Permission.FEATURES, FeatureParams, features,
              "Switch SOL, IDE-R, KVM and the redirection listener on or off.", _always),
)}

STATE_KEYS: Final = ("power_state", "amt_version", "uuid")
"""Result keys the runner writes back to the device's last known state."""


def device_state(result: Mapping[str, Any]) -> dict[str, Any]:
    """What a result teaches about the device (a power state read on the way, the inventory's facts)."""
    state = {key: result[key] for key in STATE_KEYS if result.get(key) is not None}
    power = result.get("power")
    if isinstance(power, dict) and isinstance(power.get("power_state"), int):
        state.setdefault("power_state", power["power_state"])
    return state

