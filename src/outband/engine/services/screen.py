"""IPS_ScreenConfigurationService: remote screen blanking (AMT 10+), which MeshCommander reads on every status
refresh (``PullSystemStatus``) and toggles from its remote desktop settings.

Two switches, two lifetimes.  ``EnabledState`` says whether blanking may be used at all: MeshCommander tests
``EnabledState & 1`` and Puts 0 or 1, so those are the values (not the DMTF 2/3); it is persisted and off by
default.  The blanking session itself (``CurrentState`` 1 while the host's screens are blanked) lives in RAM,
like every AMT session, and starts or ends with ``SetSessionState(SessionState, ConsecutiveRebootsNum)``
(MeshCommander sends 1 or 0, and 3 reboots).

Theory of operation (the session)::

    CLOSED --SetSessionState(1, n)--> OPEN, RemainingConsecutiveRebootsNum = n
    OPEN --warm reset, remaining > 0--> OPEN, remaining - 1
    OPEN --warm reset with remaining 0, power-off, sleep, hibernate--> CLOSED
    OPEN --SetSessionState(0), or a Put disabling blanking--> CLOSED

(IRG class reference: "number of remaining consecutive reboots that will end the screen blanking session ...
only a warm reset should be counted as a reboot; global reset or a power cycle will not survive the session".
Ending it on sleep and hibernation is this engine's choice: the screen comes back with the host.)

A session may open only where AMT allows one: blanking enabled, Admin Control Mode, and no user consent
required for KVM (Intel's Remote Screen Blanking prerequisites); otherwise SetSessionState answers
PT_STATUS_NOT_PERMITTED and nothing changes.  The class serves the KVM feature, so it uses the Redirection
realm for reads, the Put and the method, as IPS_KVMRedirectionSettingData does.  The service name follows
AMT's naming of its other services; no capture shows it.  :func:`screen_blanked` is what a KVM or platform
view reads to know whether the host screen is blanked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ...proto.amt import PTStatus, Realm
from ...proto.cim.model import CimObject
from ...proto.wsman import faults as F
from ..core import Engine
from ..platforms.base import EventKind, PlatformEvent
from ..registry import Context, Service
from . import optin
from .provisioning import ControlMode, provisioning
from .runtimestate import runtime
from .servicekit import MethodError, int_param, service_instance, status_method

service = Service("screen")

CLASS: Final = "IPS_ScreenConfigurationService"
SERVICE_NAME: Final = "Intel(r) AMT Screen Configuration Service"
ENABLED_KEY: Final = "screen/blanking-enabled"

DISABLED: Final = 0
ENABLED: Final = 1
SESSION_CLOSE: Final = 0
SESSION_OPEN: Final = 1
MAX_REBOOTS: Final = 255
"""ConsecutiveRebootsNum is a uint8."""

_ENDS_SESSION: Final = frozenset({EventKind.POWER_OFF, EventKind.SLEEP, EventKind.HIBERNATE})


@dataclass(slots=True)
class _Session:
    open: bool = False
    reboots_left: int = 0


def _session(engine: Engine) -> _Session:
    return runtime(engine, "screen.session", _Session)


def blanking_enabled(engine: Engine) -> bool:
    return bool(engine.store.get(ENABLED_KEY))


def screen_blanked(engine: Engine) -> bool:
    """Whether AMT keeps the host's screens blanked right now."""
    return _session(engine).open


def _instance(engine: Engine) -> CimObject:
    session = _session(engine)
    return service_instance(
        CLASS, SERVICE_NAME,
        CurrentState=int(session.open),
        EnabledState=ENABLED if blanking_enabled(engine) else DISABLED,
        RemainingConsecutiveRebootsNum=session.reboots_left if session.open else 0,
    )


@service.instances(CLASS, realm=Realm.REDIRECTION)
def screen_configuration(engine: Engine) -> Iterable[CimObject]:
    return [_instance(engine)]


@service.put(CLASS)
async def put_screen_configuration(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    """Only ``EnabledState`` (0 or 1) is writable; the read-only fields a console echoes back are ignored."""
    state = new.get("EnabledState", current["EnabledState"])
    if isinstance(state, bool) or state not in (DISABLED, ENABLED):
        raise F.InvalidRepresentation("EnabledState is 0 (blanking not allowed) or 1 (allowed)",
                                      detail=F.detail_uri("InvalidValues"))
    engine = ctx.engine
    if bool(state) != blanking_enabled(engine):
        with engine.store.transaction():
            engine.store.set(ENABLED_KEY, bool(state))
        if not state:
            _session(engine).open = False
    return _instance(engine)


@status_method(service, CLASS, "SetSessionState", realm=Realm.REDIRECTION)
async def set_session_state(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    state = int_param(message, "SessionState", allowed=(SESSION_CLOSE, SESSION_OPEN))
    session = _session(engine)
    if state == SESSION_CLOSE:
        session.open, session.reboots_left = False, 0
        return {}
    reboots = int_param(message, "ConsecutiveRebootsNum", high=MAX_REBOOTS)
    if not blanking_enabled(engine):
        raise MethodError(PTStatus.NOT_PERMITTED, "screen blanking is disabled")
    if provisioning(engine).mode is not ControlMode.ADMIN:
        raise MethodError(PTStatus.NOT_PERMITTED, "screen blanking needs Admin Control Mode")
    if optin.consent_required(engine, optin.Purpose.KVM):
        raise MethodError(PTStatus.NOT_PERMITTED, "screen blanking needs user consent off")
    session.open, session.reboots_left = True, reboots
    return {}


def _on_platform_event(engine: Engine, event: PlatformEvent) -> None:
    session = _session(engine)
    if not session.open:
        return
    if event.kind is EventKind.RESET and session.reboots_left > 0:
        session.reboots_left -= 1
    elif event.kind is EventKind.RESET or event.kind in _ENDS_SESSION:
        session.open, session.reboots_left = False, 0


@service.on_attach
def attach(engine: Engine) -> None:
    engine.add_event_listener(lambda event: _on_platform_event(engine, event))
