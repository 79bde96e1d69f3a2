"""Out-of-band power control: CIM_PowerManagementService and friends (AMT-PROTOCOLS.md §3.2, §3.3, §3.4 b-c).

Consoles read the host's power state from CIM_AssociatedPowerManagementService, which MPS reaches by
enumerating CIM_ServiceAvailableToElement and MeshCommander by a Get of the subclass URI, so both URIs answer.
Its AvailableRequestedPowerStates is what the firmware will accept *now*: real AMT lists 10,8,5,11,4,7,14,12
while the host is on and 8,2,5 while it sleeps (FX ``cim/service/availabletoelement/pull.xml``; MPS
``wsmanResponses.ts``), and clients refuse actions it does not list (§11).  The engine lists AMT's values for
the host's state, kept to those the platform reports it can take.

RequestPowerStateChange answers with DMTF return codes (§2.6): 0 done; 1 for a value AMT never performs out of
band (3, 6, 9, 13, 15, 16, or anything else); 2 for a value AMT knows but cannot take from the current state,
e.g. power-on while on or reset while off.  Real firmware answers 2 there (sdague/amt issues 16 and 28, the
MeshCentral fix #2426 that read it as "NOT READY"), not DSP1027's 4097, and consoles only test for 0.
5 means the ManagedElement is not the host.  Every action taken is audited (1700-1703) with the caller; what
the host then does (boot progress, failures) reaches the event log through the logs service.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Protocol, runtime_checkable

from ...proto.amt import Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimDateTime, CimObject, Value
from ...proto.wsman import EndpointReference
from ...proto.wsman import faults as F
from ...proto.wsman.namespaces import resource_uri
from ..core import Engine
from ..platforms.base import PowerAction, PowerState
from ..registry import Context, Service
from . import boot
from .support import HOST_SYSTEM_NAME, ME_SYSTEM_NAME, me_service, method_output

service = Service("power")

POWER_SERVICE: Final = "CIM_PowerManagementService"
IPS_POWER_SERVICE: Final = "IPS_PowerManagementService"
ASSOCIATION: Final = "CIM_AssociatedPowerManagementService"
NAME: Final = "Intel(r) AMT Power Management Service"

# DMTF ReturnValues (AMT-PROTOCOLS.md §2.6).
COMPLETED: Final = 0
NOT_SUPPORTED: Final = 1
FAILED_IN_STATE: Final = 2
INVALID_PARAMETER: Final = 5

P = PowerState
_ASLEEP: Final = frozenset({P.SLEEP_LIGHT, P.SLEEP_DEEP})
_OFFERED: Final[dict[str, tuple[int, ...]]] = {
    "on": (10, 8, 5, 11, 4, 7, 14, 12),
    "asleep": (8, 2, 5),
    "off": (2, 5),
}
"""What AMT offers per host state, in the order it lists them (captures above; off: power on or cycle)."""
KNOWN_POWER_STATES: Final = frozenset(v for values in _OFFERED.values() for v in values)

_AUDIT_EVENT: Final = {2: 0, 4: 1, 7: 1, 8: 1, 12: 1, 5: 2, 10: 3, 14: 3, 11: 3}
"""PowerState -> Remote Control audit event: 1700 power up, 1701 down (off, sleep, hibernate), 1702 cycle,
1703 reset (bus resets and the diagnostic interrupt)."""

OS_FULL_POWER: Final = 2
OS_POWER_SAVING: Final = 3
OS_UNSUPPORTED: Final = 1


@runtime_checkable
class ReportsPowerActions(Protocol):
    """A platform that can say which power actions it can take right now (SimMachine does)."""

    def available_actions(self) -> frozenset[PowerAction]: ...


@runtime_checkable
class HasOSPowerSaving(Protocol):
    """A platform whose OS can enter its own power-saving mode on request (SimMachine does)."""

    @property
    def os_power_saving(self) -> bool: ...

    def set_os_power_saving(self, saving: bool) -> bool: ...


# ---------------------------------------------------------------------------------------------- instances


def _power_service(engine: Engine) -> CimObject:
    return me_service(POWER_SERVICE, NAME, EnabledState=5, RequestedState=12)


def available_power_states(engine: Engine) -> list[int]:
    """AMT's offer for the host's current state, kept to what the platform can do from it."""
    platform = engine.platform
    state = platform.power_state
    kind = "on" if state is P.ON else "asleep" if state in _ASLEEP else "off"
    offered = _OFFERED[kind]
    if isinstance(platform, ReportsPowerActions):
        possible = {int(a) for a in platform.available_actions()}
        return [v for v in offered if v in possible]
    return list(offered)


def _association(engine: Engine) -> CimObject:
    service_epr = EndpointReference.to(resource_uri(POWER_SERVICE), {
        "CreationClassName": POWER_SERVICE, "Name": NAME,
        "SystemCreationClassName": "CIM_ComputerSystem", "SystemName": ME_SYSTEM_NAME,
    })
    return CimObject.new(
        ASSOCIATION,
        AvailableRequestedPowerStates=available_power_states(engine),
        PowerState=int(engine.platform.power_state),
        ServiceProvided=service_epr,
        UserOfService=boot.host_epr(),
    )


@service.instances(POWER_SERVICE, realm=Realm.REMOTE_CONTROL)
def power_management_service(engine: Engine) -> Iterable[CimObject]:
    return [_power_service(engine)]


@service.instances(ASSOCIATION, realm=Realm.REMOTE_CONTROL)
def associated_power_management_service(engine: Engine) -> Iterable[CimObject]:
    return [_association(engine)]


@service.instances("CIM_ServiceAvailableToElement", realm=Realm.REMOTE_CONTROL)
def service_available_to_element(engine: Engine) -> Iterable[CimObject]:
    """The only service-to-element association AMT exposes is the power one (§3.2): its items are the subclass."""
    return [_association(engine)]


@service.instances(IPS_POWER_SERVICE, realm=Realm.REMOTE_CONTROL)
def ips_power_management_service(engine: Engine) -> Iterable[CimObject]:
    """OSPowerSavingState is present only while an OS runs: AMT leaves it out when the host is off (MPS #2278)."""
    obj = me_service(IPS_POWER_SERVICE, NAME, EnabledState=5, RequestedState=12)
    platform = engine.platform
    if platform.power_state is P.ON:
        if isinstance(platform, HasOSPowerSaving):
            obj["OSPowerSavingState"] = OS_POWER_SAVING if platform.os_power_saving else OS_FULL_POWER
        else:
            obj["OSPowerSavingState"] = OS_UNSUPPORTED
    return [obj]


# ---------------------------------------------------------------------------------------------- methods


@service.method(POWER_SERVICE, "RequestPowerStateChange", realm=Realm.REMOTE_CONTROL)
async def request_power_state_change(ctx: Context, target: CimObject | None, params: CimObject) -> CimObject:
    engine = ctx.engine
    method = "RequestPowerStateChange"
    requested = requested_state(params, "PowerState")
    if not _names_host(params.get("ManagedElement")) or not _optional_datetimes(params):
        return method_output(POWER_SERVICE, method, INVALID_PARAMETER)
    if requested not in KNOWN_POWER_STATES:
        return method_output(POWER_SERVICE, method, NOT_SUPPORTED)
    if requested not in available_power_states(engine):
        return method_output(POWER_SERVICE, method, FAILED_IN_STATE)
    if not await engine.platform.request_power(PowerAction(requested)):
        return method_output(POWER_SERVICE, method, FAILED_IN_STATE)
    engine.audit(AuditApp.REMOTE_CONTROL, _AUDIT_EVENT[requested], account=ctx.account, address=ctx.peer)
    return method_output(POWER_SERVICE, method, COMPLETED)


@service.method(IPS_POWER_SERVICE, "RequestOSPowerSavingStateChange", realm=Realm.REMOTE_CONTROL)
async def request_os_power_saving_state_change(
    ctx: Context, target: CimObject | None, params: CimObject
) -> CimObject:
    """Modern standby: the OS, not the firmware, sleeps; only a running OS can be asked (2 otherwise)."""
    method = "RequestOSPowerSavingStateChange"
    requested = requested_state(params, "OSPowerSavingState")
    if requested not in (OS_FULL_POWER, OS_POWER_SAVING) or not _names_host(params.get("ManagedElement")) \
            or not _optional_datetimes(params):
        return method_output(IPS_POWER_SERVICE, method, INVALID_PARAMETER)
    platform = ctx.engine.platform
    if not isinstance(platform, HasOSPowerSaving):
        return method_output(IPS_POWER_SERVICE, method, NOT_SUPPORTED)
    if not platform.set_os_power_saving(requested == OS_POWER_SAVING):
        return method_output(IPS_POWER_SERVICE, method, FAILED_IN_STATE)
    return method_output(IPS_POWER_SERVICE, method, COMPLETED)


def requested_state(params: CimObject, name: str) -> int:
    """A required integer state parameter; its absence or a non-number is a malformed request."""
    value = params.get(name)
    if value is None:
        raise F.InvalidRepresentation(f"{params.element} needs {name}", detail=F.detail_uri("MissingValues"))
    if not isinstance(value, int) or isinstance(value, bool):
        raise F.InvalidRepresentation(f"{name} must be a number, not {value!r}", detail=F.detail_uri("InvalidValues"))
    return value


def _names_host(value: Value | list[Value]) -> bool:
    """True when ``value`` is a reference to the host's CIM_ComputerSystem (the only element AMT powers)."""
    if not isinstance(value, EndpointReference) or value.resource_uri != resource_uri("CIM_ComputerSystem"):
        return False
    selectors = value.selector_dict
    return selectors.get("Name") == HOST_SYSTEM_NAME and selectors.get(
        "CreationClassName", "CIM_ComputerSystem") == "CIM_ComputerSystem" and set(selectors) <= {
        "Name", "CreationClassName"}


def _optional_datetimes(params: CimObject) -> bool:
    """Time and TimeoutPeriod may be given (AMT acts at once and ignores them) but must be CIM datetimes."""
    return all(isinstance(params.get(name), CimDateTime | None) for name in ("Time", "TimeoutPeriod"))

