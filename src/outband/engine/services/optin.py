"""IPS_OptInService: user consent, the code a person at the machine reads out before remote control starts.

Policy (``OptInRequired``): 0 none, 1 KVM only, 0xFFFFFFFF all (KVM, storage redirection, boot options).  In
client control mode (CCM) consent is always required for all and the policy is read-only; in admin control
mode (ACM) it may change while ``CanModifyOptInPolicy`` is 1, and the default is KVM (IRG
``getuserconsentstatus.htm``; Intel SDK IPS_OptInService MOF).  Every change is audited as 3000 with the old
and new policy (MeshCommander's decoding: 0 none, 1 KVM, 2 all).  SOL sessions themselves need no consent
(IRG ``userconsent1.htm``); SOL redirection of BIOS screens comes with boot options, which are ``"boot"``.

Theory of operation (OptInState, AMT-PROTOCOLS.md §3.3)::

    NOT_STARTED(0) --StartOptIn--> DISPLAYED(2)   a fresh 6-digit code is shown on the machine
                                                  (platform.notify_user); it stays valid OptInDisplayTimeout s
    DISPLAYED --SendOptInCode(right)--> RECEIVED(3)   consent held until OptInCodeTimeout s pass with no
                                                  redirection session open (IRG sendconsentcode.htm)
    RECEIVED <--> IN_SESSION(4)                   while a KVM or storage session is open (sessions.py)
    DISPLAYED --3rd wrong code--> NOT_STARTED     and StartOptIn answers 3 (blocked) for a back-off that
                                                  doubles per round, 60 s up to 960 s (IRG
                                                  denialofserviceattackprevention.htm; durations are ours)
    DISPLAYED/RECEIVED --CancelOptIn or timeout--> NOT_STARTED

ReturnValues as the firmware answers (Open AMT MPS ``userConsent/statusMapper.ts``, written against real
devices): 0 success; 2 for a call in the wrong state (StartOptIn while a code is pending or consent held,
SendOptInCode with no code displayed, CancelOptIn with nothing to cancel or a session open); 3 blocked;
0x812 (PT_STATUS_UNSUPPORTED) for a wrong code.  Audit: 3001 on the code (extended data 0 success, 1 failed
three times), 3002 when a StartOptIn is blocked (MeshCommander: "Start Opt-In Blocked Event"), 3003 on cancel.

Deadlines use ``engine.monotonic`` and are checked lazily whenever the state is read; nothing runs in the
background.  The state is persisted under :data:`STATE_KEY` (see :class:`ConsentRecord`) together with the
id of the running engine instance: consent, like AMT's, does not survive a restart.  The code itself is
never stored, only an HMAC under a per-instance secret held in RAM.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from ...proto.amt import PTStatus, Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimObject
from ...proto.wsman import faults as F
from ..core import Engine
from ..registry import Context, Service
from ..settings import SettingsClass
from .provisioning import ControlMode, provisioning
from .runtimestate import instance_id, runtime
from .servicekit import MethodError, StatusHandler, int_param, service_instance, status_method
from .sessions import CONSENT_SESSIONS, last_session_closed, open_sessions

service = Service("optin")

CLASS: Final = "IPS_OptInService"
SERVICE_NAME: Final = "Intel(r) AMT OptIn Service"
STATE_KEY: Final = "optin/state"
MAX_WRONG_CODES: Final = 3
BLOCK_SECONDS: Final = 60.0
MAX_BLOCK_SECONDS: Final = 960.0
WRONG_CODE: Final = PTStatus.UNSUPPORTED
INVALID_STATE: Final = 2
BLOCKED: Final = 3


class OptInRequired(enum.IntEnum):
    NONE = 0
    KVM = 1
    ALL = 0xFFFFFFFF


class OptInState(enum.IntEnum):
    NOT_STARTED = 0
    REQUESTED = 1
    DISPLAYED = 2
    RECEIVED = 3
    IN_SESSION = 4


class Purpose(enum.StrEnum):
    """What a caller of :func:`consent_granted` is about to do."""

    KVM = "kvm"
    REDIRECTION = "redirection"
    """Storage redirection (IDE-R/USB-R)."""
    BOOT = "boot"
    """Boot options and boot source changes (CIM_BootConfigSetting.ChangeBootOrder, AMT_BootSettingData)."""


_POLICY_AUDIT_CODE: Final = {OptInRequired.NONE: 0, OptInRequired.KVM: 1, OptInRequired.ALL: 2}

POLICY = SettingsClass(
    CLASS,
    SERVICE_NAME,
    lambda engine: {"OptInRequired": int(OptInRequired.KVM), "OptInCodeTimeout": 120, "OptInDisplayTimeout": 300},
    frozenset({"OptInRequired", "OptInCodeTimeout", "OptInDisplayTimeout"}),
)
"""The persisted policy; read it through :func:`required` and :func:`_timeouts`, which apply CCM's rules."""


# ---------------------------------------------------------------------------------------------- state


@dataclass(slots=True)
class ConsentRecord:
    """What :data:`STATE_KEY` holds (a JSON object with these fields).

    ``state``: the OptInState as last written (readers use :func:`optin_state`, which applies timeouts and
    open sessions); ``instance``: the engine instance that wrote it, any other instance reads NOT_STARTED;
    ``code_mac``: HMAC of the displayed code; ``deadline``: ``engine.monotonic()`` time a displayed code or an
    idle consent lapses; ``failures``: wrong codes for the displayed one; ``blocked_until``/``block_rounds``:
    the denial-of-service back-off.
    """

    state: int = OptInState.NOT_STARTED
    instance: str = ""
    code_mac: str | None = None
    deadline: float | None = None
    failures: int = 0
    blocked_until: float | None = None
    block_rounds: int = 0


def _code_mac(engine: Engine, code: int) -> str:
    """The code's HMAC under a secret that lives in RAM only, so even the state file does not reveal it."""
    secret = runtime(engine, "optin-secret", lambda: secrets.token_bytes(32))
    return hmac.new(secret, f"{code:06d}".encode(), hashlib.sha256).hexdigest()


def _load(engine: Engine) -> ConsentRecord:
    instance = instance_id(engine)
    data = engine.store.get(STATE_KEY)
    if isinstance(data, dict) and data.get("instance") == instance:
        known = {k: v for k, v in data.items() if k in ConsentRecord.__dataclass_fields__}
        return ConsentRecord(**known)
    return ConsentRecord(instance=instance)


def _save(engine: Engine, record: ConsentRecord) -> None:
    engine.store.set(STATE_KEY, asdict(record))


def _reset(record: ConsentRecord) -> ConsentRecord:
    """Back to NOT_STARTED, keeping the back-off."""
    return ConsentRecord(instance=record.instance, blocked_until=record.blocked_until,
                         block_rounds=record.block_rounds)


def can_modify_policy(engine: Engine) -> bool:
    """Only client control mode (host-based setup) fixes the policy (IRG getuserconsentstatus.htm)."""
    return provisioning(engine).mode is not ControlMode.CLIENT


def required(engine: Engine) -> OptInRequired:
    """The policy in force: CCM always requires consent for everything."""
    if not can_modify_policy(engine):
        return OptInRequired.ALL
    return OptInRequired(int(POLICY.values(engine)["OptInRequired"]))


def _timeouts(engine: Engine) -> tuple[int, int]:
    """(OptInCodeTimeout, OptInDisplayTimeout) in seconds."""
    values = POLICY.values(engine)
    return int(values["OptInCodeTimeout"]), int(values["OptInDisplayTimeout"])


def _current(engine: Engine) -> tuple[ConsentRecord, OptInState]:
    """The record and the state in force now; a lapse found on the way is persisted."""
    record = _load(engine)
    state = OptInState(record.state)
    now = engine.monotonic()
    if state is OptInState.RECEIVED:
        kinds = open_sessions(engine)
        if CONSENT_SESSIONS.intersection(kinds):
            return record, OptInState.IN_SESSION
        if kinds:
            return record, OptInState.RECEIVED
        closed = last_session_closed(engine)
        idle_deadline = max(record.deadline or 0.0, (closed or 0.0) + _timeouts(engine)[0])
        if now < idle_deadline:
            return record, state
    elif state is not OptInState.DISPLAYED or record.deadline is None or now < record.deadline:
        return record, state
    record = _reset(record)
    _save(engine, record)
    return record, OptInState.NOT_STARTED


def optin_state(engine: Engine) -> OptInState:
    """OptInState as IPS_OptInService reports it now."""
    return _current(engine)[1]


def consent_required(engine: Engine, purpose: Purpose | str) -> bool:
    policy = required(engine)
    return policy is OptInRequired.ALL or (policy is OptInRequired.KVM and Purpose(purpose) is Purpose.KVM)


def consent_granted(engine: Engine, purpose: Purpose | str) -> bool:
    """Whether ``purpose`` may go ahead now: consent is not required for it, or the code was entered and has not
    lapsed.  Boot (ChangeBootOrder, boot options) and the redirection listener call this before acting;
    AMT answers AccessDenied to a boot change without consent (AMT-PROTOCOLS.md §2.8)."""
    if not consent_required(engine, purpose):
        return True
    return optin_state(engine) in (OptInState.RECEIVED, OptInState.IN_SESSION)


def set_required(ctx: Context, policy: OptInRequired) -> None:
    """Change the policy (IPS_OptInService Put, IPS_KVMRedirectionSettingData.OptInPolicy), audited as 3000."""
    engine = ctx.engine
    old = required(engine)
    if policy is old:
        return
    if not can_modify_policy(engine):
        raise F.AccessDenied("The user consent policy cannot be changed in client control mode.")
    with engine.store.transaction():
        POLICY.update(engine, {"OptInRequired": int(policy)})
        _audit(ctx, 0, bytes([_POLICY_AUDIT_CODE[old], _POLICY_AUDIT_CODE[policy]]))


def _audit(ctx: Context, event: int, extended: bytes = b"") -> None:
    ctx.engine.audit(AuditApp.USER_OPT_IN, event, account=ctx.account, address=ctx.peer, extended=extended)


# ---------------------------------------------------------------------------------------------- WS-MAN


def _instance_object(engine: Engine) -> CimObject:
    code_timeout, display_timeout = _timeouts(engine)
    return service_instance(
        CLASS,
        SERVICE_NAME,
        CanModifyOptInPolicy=int(can_modify_policy(engine)),
        OptInCodeTimeout=code_timeout,
        OptInDisplayTimeout=display_timeout,
        OptInRequired=int(required(engine)),
        OptInState=int(optin_state(engine)),
    )


@service.instances(CLASS, realm=Realm.REDIRECTION, write_realm=Realm.PT_ADMINISTRATION)
def optin_service(engine: Engine) -> Iterable[CimObject]:
    return [_instance_object(engine)]


@service.put(CLASS)
async def put_optin_service(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    changes = POLICY.changes_from_put(current, new)
    if changes and not can_modify_policy(ctx.engine):
        raise F.AccessDenied("The user consent policy is read-only in client control mode.")
    policy = changes.pop("OptInRequired", None)
    if policy is not None and policy not in OptInRequired._value2member_map_:
        raise F.InvalidRepresentation(f"OptInRequired {policy} is not 0, 1 or 4294967295",
                                      detail=F.detail_uri("InvalidValues"))
    code_timeout = changes.get("OptInCodeTimeout")
    if code_timeout is not None and not 60 <= code_timeout <= 900:
        raise F.InvalidRepresentation("OptInCodeTimeout is 60 to 900 seconds", detail=F.detail_uri("InvalidValues"))
    if changes.get("OptInDisplayTimeout") == 0:
        raise F.InvalidRepresentation("OptInDisplayTimeout must be positive", detail=F.detail_uri("InvalidValues"))
    with ctx.engine.store.transaction():
        if changes:
            POLICY.update(ctx.engine, changes)
        if policy is not None:
            set_required(ctx, OptInRequired(policy))
    return _instance_object(ctx.engine)


def _method(name: str) -> Callable[[StatusHandler], StatusHandler]:
    return status_method(service, CLASS, name, realm=Realm.REDIRECTION)


@_method("StartOptIn")
async def start_opt_in(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    record, state = _current(engine)
    now = engine.monotonic()
    if record.blocked_until is not None and now < record.blocked_until:
        _audit(ctx, 2)
        raise MethodError(BLOCKED, "too many wrong codes; start is blocked for a while")
    if state is not OptInState.NOT_STARTED:
        raise MethodError(INVALID_STATE, f"opt-in is {state.name}")
    code = secrets.randbelow(1_000_000)
    record.state, record.failures = OptInState.DISPLAYED, 0
    record.code_mac = _code_mac(engine, code)
    record.deadline = now + _timeouts(engine)[1]
    _save(engine, record)
    engine.platform.notify_user(f"Intel(R) AMT user consent code: {code:06d}")
    return {}


@_method("SendOptInCode")
async def send_opt_in_code(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    record, state = _current(engine)
    if state is not OptInState.DISPLAYED or record.code_mac is None:
        raise MethodError(INVALID_STATE, f"no code is displayed (opt-in is {state.name})")
    code = int_param(message, "OptInCode", high=999_999, code=WRONG_CODE)
    if hmac.compare_digest(_code_mac(engine, code), record.code_mac):
        record.state, record.code_mac, record.failures, record.block_rounds = OptInState.RECEIVED, None, 0, 0
        record.deadline = engine.monotonic() + _timeouts(engine)[0]
        with engine.store.transaction():
            _save(engine, record)
            _audit(ctx, 1, b"\x00")
        return {}
    record.failures += 1
    if record.failures < MAX_WRONG_CODES:
        _save(engine, record)
        raise MethodError(WRONG_CODE, "wrong code")
    backoff = min(BLOCK_SECONDS * 2**record.block_rounds, MAX_BLOCK_SECONDS)
    record = _reset(record)
    record.blocked_until, record.block_rounds = engine.monotonic() + backoff, record.block_rounds + 1
    with engine.store.transaction():
        _save(engine, record)
        _audit(ctx, 1, b"\x01")
    raise MethodError(WRONG_CODE, f"third wrong code: consent flow cancelled, start blocked for {backoff:g} s")


@_method("CancelOptIn")
async def cancel_opt_in(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    record, state = _current(engine)
    if state in (OptInState.NOT_STARTED, OptInState.IN_SESSION):
        raise MethodError(INVALID_STATE, f"nothing to cancel (opt-in is {state.name})")
    with engine.store.transaction():
        _save(engine, _reset(record))
        _audit(ctx, 3)
    return {}
