"""Agent presence: AMT_AgentPresenceWatchdog timers that notice when a software agent on the host stops
reporting, plus AMT_AgentPresenceService and AMT_AgentPresenceCapabilities.

A console creates a watchdog with Transfer Create: ``DeviceID`` is base64 of the agent's 16-byte GUID (never
all zeros), ``StartupInterval`` and ``TimeoutInterval`` are seconds, ``MonitoredEntityDescription`` names it;
the other keys may hold anything and are overridden (IRG ``createanagentwatchdog.htm``; MeshCommander sends
0).  At most 16 watchdogs and 64 actions in total, at least 3 per agent guaranteed (IRG
``limitationsonthenumberofactionsandagents.htm``).

Theory of operation (CurrentState, IRG ``agentstates.htm``)::

    NOT_STARTED(1) --RegisterAgent--> RUNNING(4) --AssertShutdown--> STOPPED(2) --RegisterAgent--> RUNNING
         | StartupInterval passes        | TimeoutInterval passes with no AssertPresence
         v                               v
    EXPIRED(8) <--------------------------
    EXPIRED --RegisterAgent, or AssertPresence with the next sequence number--> RUNNING

    any state --host sleeps, hibernates, powers off or restarts--> SUSPENDED(16), timers frozen
    SUSPENDED --host back from sleep/hibernation--> the state it had, timer resumed
    SUSPENDED --host back from power-off or restart--> NOT_STARTED, startup timer afresh

RegisterAgent hands out a session sequence number; each AssertPresence/AssertShutdown must carry a larger one
(IRG ``registerheartbeatandshutdownanagent.htm``: add 1 per heartbeat), so a replayed heartbeat cannot keep
a dead agent alive.  Timers count only while the host is on (IRG ``agentwatchdogtimersandactions.htm``):
a running timer is a deadline on ``engine.monotonic`` checked lazily whenever a watchdog is read or called
(an expiry found late is stamped with the time it really happened), a paused one keeps its remaining
seconds.  Platform power events drive suspension.  After an engine restart every watchdog starts over in
NOT_STARTED, as AMT's do when the host comes back from S5.

Each transition matching an action added with ``EventOnTransition`` writes the Agent Presence event-log
record (IRG ``agentpresenceevent.htm``: sensor type 0x12, event data AA, the first six GUID bytes, the new
state).  System Defense and EAC actions do not exist here and are refused.  Audit: 2600 watchdog added,
2601 removed, 2602 actions set (AddAction, DeleteAllActions), extended data the agent GUID.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from ...proto.amt import PTStatus, Realm
from ...proto.amtlog import AuditApp, EventRecord, EventSeverity
from ...proto.cim.model import CimObject, key_selectors
from ...proto.wsman import EndpointReference
from ...proto.wsman import faults as F
from ..core import Engine
from ..platforms.base import EventKind, PlatformEvent, PowerState
from ..registry import Context, Service
from .authorization import MAX_LIMIT_REACHED
from .runtimestate import instance_id
from .servicekit import (
    MethodError,
    StatusHandler,
    bool_param,
    int_param,
    optional_int,
    service_instance,
    status_method,
)
from .support import ME_SYSTEM_NAME

service = Service("watchdog")

WATCHDOG_CLASS: Final = "AMT_AgentPresenceWatchdog"
SERVICE_CLASS: Final = "AMT_AgentPresenceService"
SERVICE_NAME: Final = "Intel(r) AMT Agent Presence Service"
CAPABILITIES_CLASS: Final = "AMT_AgentPresenceCapabilities"
CAPABILITIES_ID: Final = "Intel(r) AMT Agent Presence Capabilities"
KEY_PREFIX: Final = "watchdog/"

MAX_AGENTS: Final = 16
MAX_TOTAL_ACTIONS: Final = 64
MIN_ACTIONS_PER_AGENT: Final = 3
MAX_DESCRIPTION: Final = 64
ALL_STATES: Final = 0x1F
REQUEST_UNEXPECTED: Final = 0x1E
"""PT_STATUS_REQUEST_UNEXPECTED: a heartbeat from an agent that is not registered."""

SENSOR_SYSTEM_EVENT: Final = 0x12
ENTITY_OOB_COMMUNICATION: Final = 0x26


class WatchdogState(enum.IntEnum):
    NOT_STARTED = 1
    STOPPED = 2
    RUNNING = 4
    EXPIRED = 8
    SUSPENDED = 16


@dataclass(slots=True)
class _Action:
    old: int
    new: int
    event: bool


@dataclass(slots=True)
class Agent:
    """One watchdog as stored under ``watchdog/<guid hex>``."""

    guid: str
    """The 16-byte agent GUID, hex."""
    description: str
    startup: int
    timeout: int
    order: int
    instance: str
    state: int = WatchdogState.NOT_STARTED
    deadline: float | None = None
    """``engine.monotonic()`` time the startup or heartbeat timer runs out (None when no timer runs)."""
    paused: float | None = None
    """Seconds left on a timer frozen while the host is not on."""
    resume_state: int | None = None
    """The state to return to when the host wakes (set while SUSPENDED)."""
    start_over: bool = False
    """Set while SUSPENDED when the host powered off or restarted: waking means NOT_STARTED."""
    sequence: int | None = None
    expired_at: int | None = None
    """Wall time (epoch seconds) of the last expiry, for TimeOfLastExpiration."""
    actions: list[_Action] = field(default_factory=list)

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.guid

    @property
    def device_id(self) -> str:
        return base64.b64encode(bytes.fromhex(self.guid)).decode("ascii")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Agent:
        actions = [_Action(**a) for a in data.pop("actions", [])]
        return cls(**data, actions=actions)


def agents(engine: Engine) -> list[Agent]:
    agents = [Agent.from_json(dict(engine.store.get(key))) for key in engine.store.keys(KEY_PREFIX)]
    return sorted((_refresh(engine, a) for a in agents), key=lambda a: a.order)


def _save(engine: Engine, agent: Agent) -> None:
    engine.store.set(agent.key, asdict(agent))


def _transition(engine: Engine, agent: Agent, new: WatchdogState, *, when: float | None = None) -> None:
    """Move ``agent`` to ``new``; ``when`` is the AMT-clock time it happened (now unless told)."""
    old = agent.state
    agent.state = new
    if old == new:
        return
    wall = int(when if when is not None else engine.now())
    if new is WatchdogState.EXPIRED:
        agent.expired_at = wall
    if any(a.event and a.old & old and a.new & new for a in agent.actions):
        guid = bytes.fromhex(agent.guid)
        engine.log_event(EventRecord(
            timestamp=wall, sensor_type=SENSOR_SYSTEM_EVENT, event_type=0x0A, event_offset=0, source_type=0x58,
            severity=EventSeverity.MONITOR, sensor_number=0xFF, entity=ENTITY_OOB_COMMUNICATION,
            data=b"\xaa" + guid[:6] + bytes([int(new)]),
        ))


def _host_on(engine: Engine) -> bool:
    return engine.platform.power_state is PowerState.ON


def _start_timer(engine: Engine, agent: Agent, seconds: float) -> None:
    """Run a timer of ``seconds``, or hold it until the host is on (timers count in S0 only)."""
    if _host_on(engine):
        agent.deadline, agent.paused = engine.monotonic() + seconds, None
    else:
        agent.deadline, agent.paused = None, seconds


def _start_over(engine: Engine, agent: Agent) -> None:
    agent.sequence, agent.resume_state, agent.start_over = None, None, False
    _start_timer(engine, agent, agent.startup)
    _transition(engine, agent, WatchdogState.NOT_STARTED)


def _refresh(engine: Engine, agent: Agent) -> Agent:
    """Apply what happened since the agent was stored: a restart, or a timer that ran out."""
    now = engine.monotonic()
    changed = False
    if agent.instance != instance_id(engine):
        agent.instance = instance_id(engine)
        _start_over(engine, agent)
        changed = True
    if agent.deadline is not None and now >= agent.deadline:
        expired_at = engine.now() - (now - agent.deadline)
        agent.deadline = None
        _transition(engine, agent, WatchdogState.EXPIRED, when=expired_at)
        changed = True
    if changed:
        _save(engine, agent)
    return agent


def _guid_from_device_id(value: object) -> bytes:
    if not isinstance(value, str) or len(value) > 64:
        raise F.InvalidRepresentation("DeviceID is the base64 of a 16-byte GUID", detail=F.detail_uri("InvalidValues"))
    try:
        guid = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        guid = b""
    if len(guid) != 16 or not any(guid):
        raise F.InvalidRepresentation("DeviceID is the base64 of a non-zero 16-byte GUID",
                                      detail=F.detail_uri("InvalidValues"))
    return guid


def _interval(obj: CimObject, name: str, high: int) -> int:
    value = obj.get(name)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 10:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise F.InvalidRepresentation(f"{name} is 1 to {high} seconds", detail=F.detail_uri("InvalidValues"))
    return value


def _audit(ctx: Context, event: int, agent: Agent) -> None:
    ctx.engine.audit(AuditApp.AGENT_PRESENCE, event, account=ctx.account, address=ctx.peer,
                     extended=bytes.fromhex(agent.guid))


def _agent_of(engine: Engine, target: CimObject | None) -> Agent:
    guid = _guid_from_device_id(target.get("DeviceID") if target is not None else None).hex()
    data = engine.store.get(KEY_PREFIX + guid)
    if data is None:
        raise F.DestinationUnreachable()
    return _refresh(engine, Agent.from_json(dict(data)))


# ---------------------------------------------------------------------------------------------- instances


def _instance(agent: Agent) -> CimObject:
    obj = CimObject.new(
        WATCHDOG_CLASS,
        CreationClassName=WATCHDOG_CLASS,
        CurrentState=int(agent.state),
        DeviceID=agent.device_id,
        ElementName=agent.description,
        EnabledState=2,
        MonitoredEntityDescription=agent.description,
        StartupInterval=agent.startup,
        SystemCreationClassName="CIM_ComputerSystem",
        SystemName=ME_SYSTEM_NAME,
        TimeoutInterval=agent.timeout,
    )
    if agent.expired_at is not None:
        obj["TimeOfLastExpiration"] = dt.datetime.fromtimestamp(agent.expired_at, dt.UTC)
    return obj


@service.instances(WATCHDOG_CLASS, realm=Realm.AGENT_PRESENCE_REMOTE)
def watchdogs(engine: Engine) -> Iterable[CimObject]:
    return [_instance(a) for a in agents(engine)]


@service.create(WATCHDOG_CLASS)
async def create_watchdog(ctx: Context, new: CimObject) -> EndpointReference:
    engine = ctx.engine
    guid = _guid_from_device_id(new.get("DeviceID"))
    description = new.get("MonitoredEntityDescription") or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise F.InvalidRepresentation(f"MonitoredEntityDescription is text of at most {MAX_DESCRIPTION} characters",
                                      detail=F.detail_uri("InvalidValues"))
    startup, timeout = _interval(new, "StartupInterval", 0xFFFF), _interval(new, "TimeoutInterval", 0xFFFF)
    existing = agents(engine)
    if any(a.guid == guid.hex() for a in existing):
        raise F.AlreadyExists()
    if len(existing) >= MAX_AGENTS:
        raise F.QuotaLimit()
    agent = Agent(guid=guid.hex(), description=description, startup=startup, timeout=timeout,
                   order=max((a.order for a in existing), default=0) + 1, instance=instance_id(engine))
    _start_timer(engine, agent, startup)
    with engine.store.transaction():
        _save(engine, agent)
        _audit(ctx, 0, agent)
    created = _instance(agent)
    return EndpointReference(created.resource_uri, key_selectors(created))


@service.delete(WATCHDOG_CLASS)
async def delete_watchdog(ctx: Context, target: CimObject) -> None:
    engine = ctx.engine
    agent = _agent_of(engine, target)
    with engine.store.transaction():
        engine.store.delete(agent.key)
        _audit(ctx, 1, agent)


def _method(name: str, realm: Realm) -> Callable[[StatusHandler], StatusHandler]:
    return status_method(service, WATCHDOG_CLASS, name, realm=realm)


@_method("RegisterAgent", Realm.AGENT_PRESENCE_LOCAL)
async def register_agent(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    agent = _agent_of(engine, target)
    if agent.state == WatchdogState.SUSPENDED:
        raise MethodError(REQUEST_UNEXPECTED, "the host is not running")
    agent.sequence = secrets.randbelow(2**31)
    _start_timer(engine, agent, agent.timeout)
    _transition(engine, agent, WatchdogState.RUNNING)
    _save(engine, agent)
    return {"SessionSequenceNumber": agent.sequence, "TimeoutInterval": agent.timeout}


def _next_sequence(agent: Agent, message: CimObject) -> int:
    if agent.state not in (WatchdogState.RUNNING, WatchdogState.EXPIRED) or agent.sequence is None:
        raise MethodError(REQUEST_UNEXPECTED, f"agent {agent.guid} is not registered")
    sequence = int_param(message, "SequenceNumber")
    if sequence <= agent.sequence:
        raise MethodError(PTStatus.INVALID_PARAMETER, f"sequence {sequence} is not after {agent.sequence}")
    return sequence


@_method("AssertPresence", Realm.AGENT_PRESENCE_LOCAL)
async def assert_presence(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    agent = _agent_of(engine, target)
    agent.sequence = _next_sequence(agent, message)
    _start_timer(engine, agent, agent.timeout)
    _transition(engine, agent, WatchdogState.RUNNING)
    _save(engine, agent)
    return {}


@_method("AssertShutdown", Realm.AGENT_PRESENCE_LOCAL)
async def assert_shutdown(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    agent = _agent_of(engine, target)
    agent.sequence = _next_sequence(agent, message)
    agent.deadline = agent.paused = None
    _transition(engine, agent, WatchdogState.STOPPED)
    _save(engine, agent)
    return {}


@_method("AddAction", Realm.AGENT_PRESENCE_REMOTE)
async def add_action(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    agent = _agent_of(engine, target)
    old = int_param(message, "OldState", low=1, high=ALL_STATES)
    new = int_param(message, "NewState", low=1, high=ALL_STATES)
    event = bool_param(message, "EventOnTransition")
    if optional_int(message, "ActionSd", high=0xFFFF) or message.get("ActionEac") is True:
        raise MethodError(PTStatus.UNSUPPORTED, "System Defense and EAC actions are not available")
    total = sum(len(a.actions) for a in agents(engine))
    if total >= MAX_TOTAL_ACTIONS:
        raise MethodError(MAX_LIMIT_REACHED, f"already {MAX_TOTAL_ACTIONS} actions")
    agent.actions.append(_Action(old, new, event))
    with engine.store.transaction():
        _save(engine, agent)
        _audit(ctx, 2, agent)
    return {}


@_method("DeleteAllActions", Realm.AGENT_PRESENCE_REMOTE)
async def delete_all_actions(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    agent = _agent_of(engine, target)
    agent.actions.clear()
    with engine.store.transaction():
        _save(engine, agent)
        _audit(ctx, 2, agent)
    return {}


# ---------------------------------------------------------------------------------------------- power


_SUSPENDS: Final = {EventKind.SLEEP: False, EventKind.HIBERNATE: False, EventKind.POWER_OFF: True,
                    EventKind.RESET: True}
"""Host transitions that suspend the agents, and whether waking from them means starting over (S5, restart)."""
_WAKES: Final = frozenset({EventKind.POWER_ON, EventKind.BOOT})


def _on_platform_event(engine: Engine, event: PlatformEvent) -> None:
    if event.kind not in _SUSPENDS and event.kind not in _WAKES:
        return
    with engine.store.transaction():
        for agent in agents(engine):
            if event.kind in _SUSPENDS:
                _suspend(engine, agent, start_over=_SUSPENDS[event.kind])
            elif agent.state == WatchdogState.SUSPENDED:
                _wake(engine, agent)
            elif agent.paused is not None:  # created or restarted while the host was off
                _start_timer(engine, agent, agent.paused)
            _save(engine, agent)


def _suspend(engine: Engine, agent: Agent, *, start_over: bool) -> None:
    if agent.state != WatchdogState.SUSPENDED:
        agent.resume_state = agent.state
        if agent.deadline is not None:
            agent.paused = max(0.0, agent.deadline - engine.monotonic())
            agent.deadline = None
        _transition(engine, agent, WatchdogState.SUSPENDED)
    agent.start_over = agent.start_over or start_over


def _wake(engine: Engine, agent: Agent) -> None:
    if agent.start_over or agent.resume_state is None:
        _start_over(engine, agent)
        return
    previous, agent.resume_state = WatchdogState(agent.resume_state), None
    if agent.paused is not None:
        _start_timer(engine, agent, agent.paused)
    _transition(engine, agent, previous)


@service.on_attach
def attach(engine: Engine) -> None:
    """Follow the host's power transitions (once per engine)."""
    engine.add_event_listener(lambda event: _on_platform_event(engine, event))


# ---------------------------------------------------------------------------------------------- service


@service.instances(SERVICE_CLASS, realm=Realm.AGENT_PRESENCE_REMOTE)
def agent_presence_service(engine: Engine) -> Iterable[CimObject]:
    return [service_instance(SERVICE_CLASS, SERVICE_NAME, EnabledState=5, RequestedState=12)]


@service.instances(CAPABILITIES_CLASS, realm=Realm.AGENT_PRESENCE_REMOTE)
def agent_presence_capabilities(engine: Engine) -> Iterable[CimObject]:
    return [CimObject.new(
        CAPABILITIES_CLASS,
        ElementName=CAPABILITIES_ID,
        InstanceID=CAPABILITIES_ID,
        MaxTotalActions=MAX_TOTAL_ACTIONS,
        MaxTotalAgents=MAX_AGENTS,
        MinGuaranteedActionListSize=MIN_ACTIONS_PER_AGENT,
    )]
