"""AMT's own clock: AMT_TimeSynchronizationService (AMT-PROTOCOLS.md §3.3).

The ME keeps a clock of its own that consoles read (MeshCommander's status page, every refresh) and set.  The
engine models it as its wall clock plus a persisted offset, so a time set by a console survives restarts and
every engine of a fleet can run its own time.  Alarm clocks fire on this clock, not on the host's.

Setting the time follows Intel's two-step exchange: ``GetLowAccuracyTimeSynch`` hands out ``Ta0`` (AMT time);
the console notes its own time ``Tm1`` when that reply arrives and ``Tm2`` when it sends
``SetHighAccuracyTimeSynch(Ta0, Tm1, Tm2)``.  AMT receives the call at its time ``Ta1``; the round trip it did
not see the console spend, ``(Ta1 - Ta0) - (Tm2 - Tm1)``, is split evenly between the two directions, so the
console's time at ``Ta1`` is taken to be ``Tm2`` plus half of it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Final

from ...proto.amt import PTStatus, Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimObject
from ...proto.wsman import faults as F
from ..core import TIME_OFFSET_KEY, Engine
from ..registry import Context, Service
from .support import me_service, method_output

service = Service("timesync")

CLASS: Final = "AMT_TimeSynchronizationService"
NAME: Final = "Intel(r) AMT Time Synchronization Service"
OFFSET_KEY: Final = TIME_OFFSET_KEY
"""Seconds AMT's clock runs ahead of the engine's wall clock (negative: behind)."""
SYNCED_KEY: Final = "timesync/synced"

TIME_SOURCE_RTC: Final = 0
TIME_SOURCE_CONFIGURED: Final = 1
UINT32_MAX: Final = 0xFFFFFFFF
AUDIT_TIME_SET: Final = 0
"""Event 0 of the Network Time application: 2100, Intel ME Time Set."""

CLOCK_LISTENERS: list[Callable[[Engine], None]] = []
"""Called after an engine's AMT clock is set (the alarm clock re-arms its timer: alarms are due on this clock)."""


def amt_time(engine: Engine) -> float:
    """Now, on AMT's clock (UTC epoch seconds)."""
    return engine.now()


@service.instances(CLASS, realm=Realm.NETWORK_TIME)
def time_synchronization_service(engine: Engine) -> Iterable[CimObject]:
    synced = bool(engine.store.get(SYNCED_KEY, False))
    return [me_service(
        CLASS, NAME,
        EnabledState=5,
        LocalTimeSyncEnabled=0,
        RequestedState=12,
        TimeSource=TIME_SOURCE_CONFIGURED if synced else TIME_SOURCE_RTC,
    )]


@service.method(CLASS, "GetLowAccuracyTimeSynch", realm=Realm.NETWORK_TIME)
async def get_low_accuracy_time_synch(ctx: Context, target: CimObject | None, params: CimObject) -> CimObject:
    return method_output(CLASS, "GetLowAccuracyTimeSynch", PTStatus.SUCCESS, Ta0=int(amt_time(ctx.engine)))


@service.method(CLASS, "SetHighAccuracyTimeSynch", realm=Realm.NETWORK_TIME)
async def set_high_accuracy_time_synch(ctx: Context, target: CimObject | None, params: CimObject) -> CimObject:
    ta0, tm1, tm2 = (_seconds(params, name) for name in ("Ta0", "Tm1", "Tm2"))
    engine = ctx.engine
    ta1 = amt_time(engine)
    if ta0 > ta1 or tm2 < tm1:
        # Ta0 is not a time this clock has handed out yet, or the console's clock ran backwards between its
        # two timestamps: AMT refuses rather than set a time it cannot justify.
        return method_output(CLASS, "SetHighAccuracyTimeSynch", PTStatus.INVALID_PARAMETER)
    unseen_round_trip = max(0.0, (ta1 - ta0) - (tm2 - tm1))
    new_time = tm2 + unseen_round_trip / 2
    offset = float(engine.store.get(OFFSET_KEY, 0.0)) + (new_time - ta1)
    with engine.store.transaction():
        engine.store.set(OFFSET_KEY, offset)
        engine.store.set(SYNCED_KEY, True)
        engine.audit(AuditApp.NETWORK_TIME, AUDIT_TIME_SET, account=ctx.account, address=ctx.peer,
                     extended=struct.pack(">I", int(new_time) & UINT32_MAX))
    for listener in CLOCK_LISTENERS:
        listener(engine)
    return method_output(CLASS, "SetHighAccuracyTimeSynch", PTStatus.SUCCESS)


def _seconds(params: CimObject, name: str) -> int:
    value = params.get(name)
    if value is None:
        raise F.InvalidRepresentation(f"SetHighAccuracyTimeSynch needs {name}", detail=F.detail_uri("MissingValues"))
    if not isinstance(value, int) or isinstance(value, bool):
        raise F.InvalidRepresentation(f"{name} must be seconds since 1970 (uint32), not {value!r}",
                                      detail=F.detail_uri("InvalidValues"))
    return value
