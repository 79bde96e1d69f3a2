"""Redirection switches: AMT_RedirectionService (listener, SOL, IDE-R), CIM_KVMRedirectionSAP (KVM) and
IPS_KVMRedirectionSettingData (port 5900, its RFB password, KVM consent and timeouts).

What consoles send and read (AMT-PROTOCOLS.md §3.3; FX ``amt/redirectionservice/*.xml``, ``cim/kvm/*.xml``;
MeshCommander ``featuresDlgOk``): ``ListenerEnabled`` opens 16994/16995; ``EnabledState`` 32768 + 1 (IDE-R) +
2 (SOL), changed with ``RequestStateChange``; the KVM access point is 3 when disabled, 6 "enabled but offline"
while no KVM session runs and 2 during one (MeshCommander counts 2 and 6 as on).  Everything starts off, as on
an unconfigured AMT, and port 5900 -- plain RFB, no TLS -- stays closed until a console both sets an RFB
password and asks for it (AMT-PROTOCOLS.md §7 rule 5; AMT refuses the port without a valid password).

The RFB password is write-only (reads back empty; an empty or absent value leaves it unchanged) and must be
exactly 8 characters with upper and lower case, a digit and a special character, none of ``" , :`` (Intel SDK
IPS_KVMRedirectionSettingData MOF).  AMT answers a bad value with ``wsman:InvalidParameter`` ("operation
parameter not valid", as seen by a client against AMT 11).  ``OptInPolicy`` is the KVM side of the user
consent policy: it reads whether KVM needs consent and a change goes through :func:`optin.set_required`.

Switching a feature off ends its open sessions (sessions.py).  Audit: 1802/1803 IDE-R, 1806/1807 SOL,
1810/1811 KVM enabled/disabled; 2900/2901 KVM consent on/off, 2902 RFB password changed.

:func:`redirection_state` and :func:`rfb_password` are what the redirection listeners read before admitting
a session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

from ...proto.amt import Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimObject
from ...proto.wsman import faults as F
from ...proto.wsman.namespaces import WSMAN
from ..core import Engine
from ..registry import Context, Service
from ..settings import SettingsClass
from . import optin
from .servicekit import MethodError, StatusHandler, int_param, service_instance, status_method
from .sessions import SessionKind, open_sessions, terminate_sessions
from .support import HOST_SYSTEM_NAME

service = Service("redirection")

REDIRECTION_CLASS: Final = "AMT_RedirectionService"
REDIRECTION_NAME: Final = "Intel(r) AMT Redirection Service"
KVM_SAP_CLASS: Final = "CIM_KVMRedirectionSAP"
KVM_SAP_NAME: Final = "KVM Redirection Service Access Point"
KVM_SETTINGS_CLASS: Final = "IPS_KVMRedirectionSettingData"
KVM_SETTINGS_ID: Final = "Intel(r) KVM Redirection Settings"

STATE_KEY: Final = "redirection/state"
RFB_STORE_KEY: Final = "redirection/rfb"

STATE_BASE: Final = 32768
IDER_BIT: Final = 1
SOL_BIT: Final = 2
KVM_ENABLED: Final = 2
KVM_DISABLED: Final = 3
KVM_ENABLED_OFFLINE: Final = 6
NO_CHANGE: Final = 5
RFB_PROTOCOL: Final = 4
DMTF_INVALID_PARAMETER: Final = 5
SESSION_TYPES: Final = {0: SessionKind.IDER, 1: SessionKind.SOL}
"""AMT_RedirectionService.TerminateSession's SessionType (Intel SDK MOF)."""
TERMINATE_INVALID_PARAMS: Final = 2
TERMINATE_NO_SESSION: Final = 3
"""TerminateSession's return values (intel/lms AMTRedirectionServiceWSManClient.cpp: 2 invalid params,
3 invalid state = no such session)."""

RFB_PASSWORD_LENGTH: Final = 8
_RFB_FORBIDDEN: Final = frozenset('",:')


@dataclass(frozen=True, slots=True)
class RedirectionState:
    """The switches a redirection listener checks (consent comes on top: :func:`optin.consent_granted`).

    SOL needs ``listener and sol``; storage redirection ``listener and ider``; KVM over 16994/16995
    ``listener and kvm``; KVM on port 5900 ``kvm and port_5900``, authenticated with :func:`rfb_password`.
    """

    listener: bool = False
    sol: bool = False
    ider: bool = False
    kvm: bool = False
    port_5900: bool = False
    kvm_requested: int = NO_CHANGE
    """CIM_KVMRedirectionSAP.RequestedState as last asked (5 "No Change" until then)."""


KVM_SETTINGS = SettingsClass(
    KVM_SETTINGS_CLASS,
    KVM_SETTINGS_ID,
    lambda engine: {
        "BackToBackFbMode": False,
        "DefaultScreen": 0,
        "ElementName": KVM_SETTINGS_ID,
        "EnabledByMEBx": True,
        "InstanceID": KVM_SETTINGS_ID,
        "Is5900PortEnabled": False,
        "OptInPolicyTimeout": 300,
        "SessionTimeout": 15,
    },
    frozenset({"BackToBackFbMode", "DefaultScreen", "Is5900PortEnabled", "OptInPolicyTimeout", "SessionTimeout"}),
)


def _switches(engine: Engine) -> RedirectionState:
    stored = engine.store.get(STATE_KEY) or {}
    known = {k: v for k, v in stored.items() if k in RedirectionState.__dataclass_fields__ and k != "port_5900"}
    return RedirectionState(**known)


def redirection_state(engine: Engine) -> RedirectionState:
    """Which redirection features are switched on now."""
    return replace(_switches(engine), port_5900=bool(KVM_SETTINGS.values(engine)["Is5900PortEnabled"]))


def rfb_password(engine: Engine) -> str | None:
    """The RFB (VNC) password for port 5900, None until a console sets one."""
    value = engine.store.get(RFB_STORE_KEY)
    return value if isinstance(value, str) else None


def _save_switches(engine: Engine, state: RedirectionState) -> None:
    data = asdict(state)
    del data["port_5900"]  # lives with the KVM settings
    engine.store.set(STATE_KEY, data)


def _audit(ctx: Context, app: AuditApp, event: int) -> None:
    ctx.engine.audit(app, event, account=ctx.account, address=ctx.peer)


def _invalid_parameter(reason: str) -> F.WsmanFault:
    # DSP0226 wsman:InvalidParameter; not (yet) a class of its own in faults.py.
    return F.WsmanFault(reason, code="Sender", subcode=F.QName(WSMAN, "InvalidParameter"),
                        detail=F.detail_uri("InvalidValue"))


# ---------------------------------------------------------------------------------------------- AMT_RedirectionService


def _redirection_instance(engine: Engine) -> CimObject:
    state = _switches(engine)
    enabled = STATE_BASE + (IDER_BIT if state.ider else 0) + (SOL_BIT if state.sol else 0)
    return service_instance(REDIRECTION_CLASS, REDIRECTION_NAME, EnabledState=enabled, ListenerEnabled=state.listener)


@service.instances(REDIRECTION_CLASS, realm=Realm.REDIRECTION)
def redirection_service(engine: Engine) -> Iterable[CimObject]:
    return [_redirection_instance(engine)]


@service.put(REDIRECTION_CLASS)
async def put_redirection_service(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    """Only ``ListenerEnabled`` is writable; features change through RequestStateChange (read-only values a
    console echoes back, such as MeshCommander's EnabledState, are ignored)."""
    listener = new.get("ListenerEnabled")
    if listener is not None and not isinstance(listener, bool):
        raise F.InvalidRepresentation("ListenerEnabled is boolean", detail=F.detail_uri("InvalidValues"))
    engine = ctx.engine
    state = _switches(engine)
    if listener is not None and listener != state.listener:
        _save_switches(engine, replace(state, listener=listener))
        if not listener:
            terminate_sessions(engine, {SessionKind.SOL, SessionKind.IDER})
    return _redirection_instance(engine)


def _method(class_name: str, name: str) -> Callable[[StatusHandler], StatusHandler]:
    return status_method(service, class_name, name, realm=Realm.REDIRECTION)


@_method(REDIRECTION_CLASS, "RequestStateChange")
async def redirection_state_change(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    requested = int_param(message, "RequestedState", low=STATE_BASE, high=STATE_BASE + IDER_BIT + SOL_BIT,
                          code=DMTF_INVALID_PARAMETER)
    engine = ctx.engine
    old = _switches(engine)
    new = replace(old, ider=bool(requested & IDER_BIT), sol=bool(requested & SOL_BIT))
    with engine.store.transaction():
        _save_switches(engine, new)
        if new.ider != old.ider:
            _audit(ctx, AuditApp.REDIRECTION_MANAGER, 2 if new.ider else 3)
        if new.sol != old.sol:
            _audit(ctx, AuditApp.REDIRECTION_MANAGER, 6 if new.sol else 7)
    terminate_sessions(engine, {kind for kind, on in ((SessionKind.IDER, new.ider), (SessionKind.SOL, new.sol))
                                if not on})
    return {}


@_method(REDIRECTION_CLASS, "TerminateSession")
async def terminate_session(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    session_type = int_param(message, "SessionType", allowed=SESSION_TYPES, code=TERMINATE_INVALID_PARAMS)
    if not terminate_sessions(ctx.engine, {SESSION_TYPES[session_type]}):
        raise MethodError(TERMINATE_NO_SESSION, f"no {SESSION_TYPES[session_type]} session is open")
    return {}


# ---------------------------------------------------------------------------------------------- KVM


def _kvm_instance(engine: Engine) -> CimObject:
    state = _switches(engine)
    if not state.kvm:
        enabled = KVM_DISABLED
    elif SessionKind.KVM in open_sessions(engine):
        enabled = KVM_ENABLED
    else:
        enabled = KVM_ENABLED_OFFLINE
    return CimObject.new(
        KVM_SAP_CLASS,
        CreationClassName=KVM_SAP_CLASS,
        ElementName=KVM_SAP_NAME,
        EnabledState=enabled,
        KVMProtocol=RFB_PROTOCOL,
        Name=KVM_SAP_NAME,
        RequestedState=state.kvm_requested,
        SystemCreationClassName="CIM_ComputerSystem",
        SystemName=HOST_SYSTEM_NAME,
    )


@service.instances(KVM_SAP_CLASS, realm=Realm.REDIRECTION)
def kvm_access_point(engine: Engine) -> Iterable[CimObject]:
    return [_kvm_instance(engine)]


@_method(KVM_SAP_CLASS, "RequestStateChange")
async def kvm_state_change(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    requested = int_param(message, "RequestedState", allowed=(KVM_ENABLED, KVM_DISABLED), code=DMTF_INVALID_PARAMETER)
    engine = ctx.engine
    old = _switches(engine)
    new = replace(old, kvm=requested == KVM_ENABLED, kvm_requested=requested)
    with engine.store.transaction():
        _save_switches(engine, new)
        if new.kvm != old.kvm:
            _audit(ctx, AuditApp.REDIRECTION_MANAGER, 10 if new.kvm else 11)
    if not new.kvm:
        terminate_sessions(engine, {SessionKind.KVM})
    return {}


def _kvm_settings_instance(engine: Engine) -> CimObject:
    values = KVM_SETTINGS.values(engine)
    values["OptInPolicy"] = optin.consent_required(engine, optin.Purpose.KVM)
    values["RFBPassword"] = ""
    return CimObject.new(KVM_SETTINGS_CLASS, values)


@service.instances(KVM_SETTINGS_CLASS, realm=Realm.REDIRECTION)
def kvm_settings(engine: Engine) -> Iterable[CimObject]:
    return [_kvm_settings_instance(engine)]


def rfb_password_problem(password: str) -> str | None:
    """Why AMT would refuse ``password`` as the RFB password (None when it is acceptable)."""
    if len(password) != RFB_PASSWORD_LENGTH:
        return f"the RFB password has exactly {RFB_PASSWORD_LENGTH} characters"
    if not all("!" <= c <= "~" for c in password) or _RFB_FORBIDDEN.intersection(password):
        return 'the RFB password is printable 7-bit ASCII without " , :'
    classes = (str.isupper, str.islower, str.isdigit, lambda c: not c.isalnum())
    if not all(any(test(c) for c in password) for test in classes):
        return "the RFB password needs an upper and a lower case letter, a digit and a special character"
    return None


@service.put(KVM_SETTINGS_CLASS)
async def put_kvm_settings(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    engine = ctx.engine
    changes = KVM_SETTINGS.changes_from_put(current, new)
    password = new.get("RFBPassword")
    if password not in (None, ""):
        problem = rfb_password_problem(password) if isinstance(password, str) else "RFBPassword is text"
        if problem is not None:
            raise _invalid_parameter(problem)
    port_on = changes.get("Is5900PortEnabled", current.get("Is5900PortEnabled"))
    if port_on and not password and rfb_password(engine) is None:
        raise _invalid_parameter("port 5900 needs an RFB password first")
    wants_consent = new.get("OptInPolicy")
    if wants_consent is not None and not isinstance(wants_consent, bool):
        raise F.InvalidRepresentation("OptInPolicy is boolean", detail=F.detail_uri("InvalidValues"))
    consent_change = wants_consent is not None and wants_consent != current.get("OptInPolicy")
    with engine.store.transaction():
        if changes:
            KVM_SETTINGS.update(engine, changes)
        if changes.get("Is5900PortEnabled") is False:  # the port closes: so do the viewers' sessions on it
            terminate_sessions(engine, {SessionKind.KVM}, vnc_port_only=True)
        if password:
            engine.store.set(RFB_STORE_KEY, password)
            _audit(ctx, AuditApp.KVM, 2)
        if consent_change:
            optin.set_required(ctx, optin.OptInRequired.KVM if wants_consent else optin.OptInRequired.NONE)
            _audit(ctx, AuditApp.KVM, 0 if wants_consent else 1)
    return _kvm_settings_instance(engine)


@_method(KVM_SETTINGS_CLASS, "TerminateSession")
async def terminate_kvm_session(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    """Ends the KVM session (IRG: a local tool acting for a user who wants privacy back)."""
    terminate_sessions(ctx.engine, {SessionKind.KVM})
    return {}
