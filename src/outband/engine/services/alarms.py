"""The alarm clock: AMT_AlarmClockService and IPS_AlarmClockOccurrence (AMT-PROTOCOLS.md §3.3).

Up to five alarms wake the host at a time on AMT's clock, once or every interval.  Intel's rules (IRG "Multiple
Alarms Feature"): StartTime is ``yyyy-mm-ddThh:mm:00Z`` and later than now; Interval is ``PnDTnHnM`` with hours
0-23 and minutes 0-59, zero meaning once; ElementName is 1-32 characters, unique.  MeshCommander sends only an
InstanceID and Intel's own example only an ElementName, so each defaults to the other.  AMT rejects a bad or
duplicate template with InvalidRepresentation/MissingValues and a sixth alarm with QuotaLimit (MPS
``wsmanResponses.ts``); AddAlarm's AlarmClock reference comes back as AMT sends it, Address ``default`` with
empty reference parameters (FX ``amt/alarmclock/addalarm.xml``), so consoles address alarms by InstanceID.

Theory of operation (scheduler).  Alarms persist as a list under one key.  Each engine has at most one pending
``loop.call_later`` for its earliest due alarm, re-armed whenever the alarms or AMT's clock change, so ten
thousand idle engines cost ten thousand timer-heap entries and no polling.  When the timer fires,
:func:`run_due` settles every due alarm in one transaction (a repeating one moves to its next future
occurrence, skipping any it slept through; a one-shot one is deleted if DeleteOnCompletion, else kept as
spent), then powers the host on if it is off, asleep or hibernating -- as AMT does, an alarm finding the host on
does nothing -- and logs the wake in the event log (unless the log is frozen).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from ...proto.amt import PTStatus, Realm
from ...proto.amtlog import EventRecord
from ...proto.cim.model import CimDateTime, CimObject, Value
from ...proto.wsman import EndpointReference, SelectorSet
from ...proto.wsman import faults as F
from ..core import Engine
from ..platforms.base import PowerAction, PowerState
from ..registry import Context, Service
from . import logs
from .support import HOST_SYSTEM_NAME, method_output, runtime
from .timesync import CLOCK_LISTENERS, amt_time

service = Service("alarms")

SERVICE_CLASS: Final = "AMT_AlarmClockService"
OCCURRENCE_CLASS: Final = "IPS_AlarmClockOccurrence"
SERVICE_NAME: Final = "Intel(r) AMT Alarm Clock Service"
MAX_ALARMS: Final = 5
MAX_NAME_LENGTH: Final = 32
STORE_KEY: Final = "alarms/occurrences"

_START_TIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00Z")
_INTERVAL: Final = re.compile(r"P(?:(?P<d>\d{1,5})D)?(?:T(?:(?P<h>\d{1,2})H)?(?:(?P<m>\d{1,2})M)?)?")
_MOF_ORDER: Final = ("ElementName", "InstanceID", "StartTime", "Interval", "DeleteOnCompletion")
"""IPS classes write inherited properties first, then their own in MOF order (FX ``ips/alarmclock/get.xml``)."""

_SYSTEM_BOOT_INITIATED: Final = 0x1D
_RESTART: Final = 0x07
_RESTART_CAUSE_RTC_WAKEUP: Final = 0x0B
_EVENT_DATA_SENSOR_SPECIFIC: Final = 0xC0
"""IPMI event data 1, bits 7-6 = 11b: event data 2 carries the sensor-specific restart cause."""


@dataclass(frozen=True, slots=True)
class Alarm:
    """One occurrence.  ``start`` is its next (or, once ``spent``, its last) time in AMT epoch seconds."""

    instance_id: str
    name: str
    start: int
    interval: int
    """Seconds between occurrences; 0 for a one-shot alarm."""
    interval_text: str | None
    delete_on_completion: bool
    spent: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.instance_id, "name": self.name, "start": self.start, "interval": self.interval,
                "interval_text": self.interval_text, "delete": self.delete_on_completion, "spent": self.spent}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alarm:
        return cls(str(data["id"]), str(data["name"]), int(data["start"]), int(data["interval"]),
                   data.get("interval_text"), bool(data["delete"]), bool(data.get("spent", False)))

    def instance(self) -> CimObject:
        start = dt.datetime.fromtimestamp(self.start, dt.UTC)
        obj = CimObject.new(OCCURRENCE_CLASS, ElementName=self.name, InstanceID=self.instance_id,
                            StartTime=CimDateTime.of(start), DeleteOnCompletion=self.delete_on_completion)
        if self.interval:
            obj["Interval"] = CimDateTime("Interval", self.interval_text or "")
        obj.fields.sort(key=lambda f: _MOF_ORDER.index(f.name))
        return obj


# ---------------------------------------------------------------------------------------------- storage


def stored_alarms(engine: Engine) -> list[Alarm]:
    return [Alarm.from_json(item) for item in engine.store.get(STORE_KEY, [])]


def _save(engine: Engine, alarms: list[Alarm]) -> None:
    engine.store.set(STORE_KEY, [a.to_json() for a in alarms])


# ---------------------------------------------------------------------------------------------- scheduling


@dataclass(slots=True)
class _Schedule:
    timer: asyncio.TimerHandle | None = None
    attached: bool = False
    wakes: set[asyncio.Task[int]] = field(default_factory=set)


def _schedule(engine: Engine) -> _Schedule:
    return runtime(engine, "alarms", _Schedule)


@service.on_start
def attach(engine: Engine) -> None:
    """Arm the engine's alarm timer for its stored alarms (once per engine; needs the running event loop)."""
    schedule = _schedule(engine)
    if not schedule.attached:
        schedule.attached = True
        reschedule(engine)


@service.on_stop
def detach(engine: Engine) -> None:
    """Stop the engine's alarm timer (an engine that stops must not wake its host afterwards)."""
    schedule = _schedule(engine)
    if schedule.timer is not None:
        schedule.timer.cancel()
        schedule.timer = None
    schedule.attached = False


def reschedule(engine: Engine) -> None:
    """Re-arm the single timer for the earliest alarm still to fire."""
    schedule = _schedule(engine)
    if schedule.timer is not None:
        schedule.timer.cancel()
        schedule.timer = None
    pending = [a.start for a in stored_alarms(engine) if not a.spent]
    if not pending:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # built outside the loop: armed again when the engine's services attach
        return
    delay = max(0.0, min(pending) - amt_time(engine))
    schedule.timer = loop.call_later(delay, _on_timer, weakref.ref(engine))


CLOCK_LISTENERS.append(reschedule)


def _on_timer(engine_ref: weakref.ref[Engine]) -> None:
    engine = engine_ref()
    if engine is None:
        return
    schedule = _schedule(engine)
    schedule.timer = None
    task = asyncio.get_running_loop().create_task(run_due(engine))
    schedule.wakes.add(task)
    task.add_done_callback(schedule.wakes.discard)


async def run_due(engine: Engine) -> int:
    """Fire every alarm due on AMT's clock; returns how many fired.  The engine's timer calls this."""
    now = amt_time(engine)
    fired = 0
    kept: list[Alarm] = []
    for alarm in stored_alarms(engine):
        if alarm.spent or alarm.start > now:
            kept.append(alarm)
            continue
        fired += 1
        if alarm.interval:
            missed = int((now - alarm.start) // alarm.interval) + 1
            kept.append(replace(alarm, start=alarm.start + missed * alarm.interval))
        elif not alarm.delete_on_completion:
            kept.append(replace(alarm, spent=True))
    if fired:
        _save(engine, kept)
        await _wake(engine, int(now))
    reschedule(engine)
    return fired


async def _wake(engine: Engine, now: int) -> None:
    platform = engine.platform
    if platform.power_state is PowerState.ON:
        return
    if await platform.request_power(PowerAction.ON):
        logs.write_events(engine, [wake_record(now)])


def wake_record(timestamp: int) -> EventRecord:
    """AMT logs each alarm wake (IRG "Legacy Alarm Clock Feature"); Intel does not publish that record's bytes,
    so it is IPMI's "system restart, cause: power-up via RTC wakeup" (sensor 1Dh, offset 07h, cause 0Bh)."""
    return EventRecord(timestamp, _SYSTEM_BOOT_INITIATED, event_offset=_RESTART,
                       data=bytes([_EVENT_DATA_SENSOR_SPECIFIC | _RESTART, _RESTART_CAUSE_RTC_WAKEUP]))


# ---------------------------------------------------------------------------------------------- validation


def _invalid(reason: str) -> F.InvalidRepresentation:
    """AMT answers every unusable alarm template with MissingValues (MPS wsmanResponses.ts)."""
    return F.InvalidRepresentation(reason, detail=F.detail_uri("MissingValues"))


def _text(value: Value | list[Value], name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{name} must be text")
    if len(value) > MAX_NAME_LENGTH:
        raise _invalid(f"{name} has at most {MAX_NAME_LENGTH} characters")
    return value or None


def _start_time(value: Value | list[Value], now: float) -> int:
    if not isinstance(value, CimDateTime) or value.kind != "Datetime" or not _START_TIME.fullmatch(value.text):
        raise _invalid("StartTime must be a Datetime yyyy-mm-ddThh:mm:00Z (UTC, whole minutes)")
    try:
        start = int(value.as_datetime().timestamp())
    except ValueError:
        raise _invalid(f"StartTime {value.text} is not a date") from None
    if start <= now:
        raise _invalid(f"StartTime {value.text} is not later than AMT's current time")
    return start


def _interval(value: Value | list[Value]) -> tuple[int, str | None]:
    if value is None:
        return 0, None
    if not isinstance(value, CimDateTime) or value.kind != "Interval":
        raise _invalid("Interval must be an Interval PnDTnHnM")
    match = _INTERVAL.fullmatch(value.text)
    if match is None or value.text.endswith("T"):
        raise _invalid(f"Interval {value.text} is not of the form PnDTnHnM")
    days, hours, minutes = (int(match.group(g) or 0) for g in ("d", "h", "m"))
    if hours > 23 or minutes > 59:
        raise _invalid(f"Interval {value.text}: hours are 0-23 and minutes 0-59")
    seconds = ((days * 24 + hours) * 60 + minutes) * 60
    return seconds, (value.text if seconds else None)


def _delete_on_completion(value: Value | list[Value]) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _invalid("DeleteOnCompletion must be true or false")
    return value


def alarm_from(template: Value | list[Value], now: float) -> Alarm:
    """Validate an IPS_AlarmClockOccurrence sent by a client (AddAlarm's template or a Put)."""
    if not isinstance(template, CimObject) or template.class_name != OCCURRENCE_CLASS:
        raise _invalid("AlarmTemplate must be an embedded IPS_AlarmClockOccurrence")
    instance_id = _text(template.get("InstanceID"), "InstanceID")
    name = _text(template.get("ElementName"), "ElementName")
    if instance_id is None and name is None:
        raise _invalid("an alarm needs an ElementName (or an InstanceID)")
    interval, interval_text = _interval(template.get("Interval"))
    return Alarm(
        instance_id=instance_id or name or "",
        name=name or instance_id or "",
        start=_start_time(template.get("StartTime"), now),
        interval=interval,
        interval_text=interval_text,
        delete_on_completion=_delete_on_completion(template.get("DeleteOnCompletion")),
    )


def _check_unique(alarm: Alarm, others: Iterable[Alarm]) -> None:
    for other in others:
        if other.instance_id == alarm.instance_id or other.name == alarm.name:
            raise _invalid(f"an alarm named {alarm.name!r} (InstanceID {other.instance_id!r}) already exists")


# ---------------------------------------------------------------------------------------------- handlers


@service.instances(SERVICE_CLASS, realm=Realm.REMOTE_CONTROL)
def alarm_clock_service(engine: Engine) -> Iterable[CimObject]:
    """Scoped to the host, unlike AMT's other services (FX ``amt/alarmclock/get.xml``)."""
    return [CimObject.new(SERVICE_CLASS, CreationClassName=SERVICE_CLASS, ElementName=SERVICE_NAME,
                          Name=SERVICE_NAME, SystemCreationClassName="CIM_ComputerSystem",
                          SystemName=HOST_SYSTEM_NAME)]


@service.method(SERVICE_CLASS, "AddAlarm", realm=Realm.REMOTE_CONTROL)
async def add_alarm(ctx: Context, target: CimObject | None, params: CimObject) -> CimObject:
    engine = ctx.engine
    alarms = stored_alarms(engine)
    if len(alarms) >= MAX_ALARMS:
        raise F.QuotaLimit(f"AMT keeps at most {MAX_ALARMS} alarms; delete one first")
    alarm = alarm_from(params.get("AlarmTemplate"), amt_time(engine))
    _check_unique(alarm, alarms)
    _save(engine, [*alarms, alarm])
    reschedule(engine)
    return method_output(SERVICE_CLASS, "AddAlarm", PTStatus.SUCCESS,
                         AlarmClock=EndpointReference("", SelectorSet(), "default"))


@service.instances(OCCURRENCE_CLASS, realm=Realm.REMOTE_CONTROL)
def alarm_occurrences(engine: Engine) -> Iterable[CimObject]:
    return [alarm.instance() for alarm in stored_alarms(engine)]


@service.put(OCCURRENCE_CLASS)
async def put_alarm_occurrence(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    """MeshCommander edits an alarm in place: same InstanceID, new time, interval or completion rule."""
    engine = ctx.engine
    instance_id = current["InstanceID"]
    if new.get("InstanceID", instance_id) != instance_id:
        raise F.InvalidRepresentation("InstanceID cannot change", detail=F.detail_uri("InvalidValues"))
    edited = alarm_from(new, amt_time(engine))
    edited = replace(edited, instance_id=str(instance_id))
    alarms = stored_alarms(engine)
    _check_unique(edited, (a for a in alarms if a.instance_id != instance_id))
    _save(engine, [edited if a.instance_id == instance_id else a for a in alarms])
    reschedule(engine)
    return edited.instance()


@service.delete(OCCURRENCE_CLASS)
async def delete_alarm_occurrence(ctx: Context, current: CimObject) -> None:
    if not ctx.selectors:
        # Without a selector the dispatcher would pick the first alarm; deleting an unnamed one is refused.
        raise F.InvalidSelectors("name the alarm to delete with its InstanceID",
                                 detail=F.detail_uri("InsufficientSelectors"))
    engine = ctx.engine
    _save(engine, [a for a in stored_alarms(engine) if a.instance_id != current["InstanceID"]])
    reschedule(engine)
