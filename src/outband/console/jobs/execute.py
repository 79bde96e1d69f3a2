"""One attempt of one operation on one device, and what its failure means: the task body every runner shares.

Failures are sorted by what may be done next:

=================  =============================================  =====================================
reason             what happened                                  next
=================  =============================================  =====================================
offline            a CIRA device with no tunnel to this console:   wait for it to dial in, up to the
                   nothing was sent                               offline wait (not an attempt)
unreachable        no connection (refused, no route, connect       retry with backoff
                   timeout): the request never left
timeout            no answer in time                              retry if the operation may be repeated
connection_lost    the connection dropped after the request        retry if the operation may be repeated
                   went out
auth_refused       the device refused the credentials             final (retrying only feeds its lockout)
refused            the device answered no (ReturnValue, fault)    final
bad_response       an answer that is not the protocol             final
error              a fault of the console itself (logged)         final
=================  =============================================  =====================================

A CIRA device that is away is not failing: it is a laptop that is closed, and the operation should reach it
when it next dials in (AMT dials on its own schedule: a periodic trigger, a user's key press).  So ``offline``
spends no attempt; the device waits, woken the moment its tunnel is published (and looked at again every
``offline_poll`` seconds in case it dialled another MPS node), for at most ``offline_wait`` seconds from its
first try in the job, after which it fails with reason ``offline``.

"May be repeated" is :attr:`Operation.repeatable`: after a timeout or a dropped connection the device may
have acted, and a reset is not sent twice on a guess.  Retries wait ``base * 2**(attempt-1)`` seconds, capped,
with "equal jitter" (half fixed, half random) so a fleet that failed together does not retry in lockstep.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from dataclasses import dataclass, replace
from typing import Any, Final

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession

from ...aio.errors import AuthenticationError, BadResponse, ConnectError, RequestTimeout, TransportError
from ...proto.wsman import WsmanFault
from ..db.base import utcnow
from ..db.models import Status
from ..devices.connect import DeviceConnector, DeviceOffline, DeviceTarget
from .operations import Operation, OperationRefused, device_state
from .store import Outcome, Unit, record

log = logging.getLogger("outband.console.jobs")

NOT_SENT: Final = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
"""aiohttp errors (found as the transport error's context) that mean no request reached the device."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    base: float = 1.0
    cap: float = 60.0
    offline_wait: float = 900.0
    """Seconds a job waits for an offline CIRA device, from its first try (0: fail at once)."""
    offline_poll: float = 30.0
    """Seconds between looks at a device still offline (the tunnel's arrival wakes it sooner)."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        full = min(self.cap, self.base * 2.0 ** (attempt - 1))
        return full / 2 + random.uniform(0, full / 2)  # noqa: S311 -- jitter, not secrecy


def classify(exc: BaseException) -> tuple[str, bool]:
    """(reason, transient) for a failed attempt; transient failures may be retried."""
    if isinstance(exc, DeviceOffline):
        return "offline", True
    if isinstance(exc, OperationRefused | WsmanFault):
        return "refused", False
    if isinstance(exc, AuthenticationError):
        return "auth_refused", False
    if isinstance(exc, BadResponse):
        return "bad_response", False
    if isinstance(exc, RequestTimeout):
        return ("unreachable" if isinstance(exc.__context__, NOT_SENT) else "timeout"), True
    if isinstance(exc, ConnectError):
        return ("unreachable" if isinstance(exc.__context__, NOT_SENT) or exc.__context__ is None
                else "connection_lost"), True
    if isinstance(exc, TransportError):
        return "connection_lost", True
    return "error", False


MAYBE_DELIVERED: Final = frozenset({"timeout", "connection_lost"})


async def attempt(connector: DeviceConnector, operation: Operation, params: Any, target: DeviceTarget, *,
                  attempt_number: int, policy: RetryPolicy, first_try: dt.datetime) -> tuple[Outcome, float]:
    """Run the operation once; returns its outcome (a success carries the raw result, which :func:`persist`
    hands to the operation's store step) and the seconds it took.  ``first_try``: when the job first tried the
    device (the offline wait runs from there)."""
    started = time.perf_counter()
    client = connector.client(target, operation=operation.name)
    try:
        raw = await operation.run(client, params)
    except Exception as exc:
        seconds = time.perf_counter() - started
        reason, transient = classify(exc)
        if reason == "error":
            log.exception("operation %s on device %s failed", operation.name, target.name)
            message = f"console error: {type(exc).__name__}: {exc}"
        else:
            message = str(exc) or type(exc).__name__
        reachable = reason not in ("offline", "unreachable", "timeout", "connection_lost", "auth_refused", "error")
        state_known = reason != "error"
        if reason == "offline":
            return _offline(message, policy, first_try), seconds
        retry = transient and attempt_number < policy.max_attempts and (
            reason not in MAYBE_DELIVERED or operation.repeatable(params))
        if retry:
            delay = policy.delay(attempt_number)
            return (Outcome(Status.PENDING, error=message, reason=reason,
                            retry_at=utcnow() + dt.timedelta(seconds=delay),
                            reachable=reachable if state_known else None), seconds)
        if transient and reason in MAYBE_DELIVERED and not operation.repeatable(params):
            message += f" (outcome unknown; {operation.name} is not repeated on a guess)"
        return Outcome(Status.FAILED, error=message, reason=reason,
                       reachable=reachable if state_known else None), seconds
    finally:
        await client.close()
    seconds = time.perf_counter() - started
    return Outcome(Status.SUCCEEDED, result=raw, state=device_state(raw), reachable=True), seconds


def _offline(message: str, policy: RetryPolicy, first_try: dt.datetime) -> Outcome:
    """Wait on (pending, the attempt not counted) while the offline wait lasts, else fail as offline."""
    now = utcnow()
    left = (first_try - now).total_seconds() + policy.offline_wait
    if left <= 0:
        return Outcome(Status.FAILED, error=f"{message}; it did not dial in within {policy.offline_wait:g} s",
                       reason="offline", reachable=False)
    delay = min(left, policy.offline_poll)
    return Outcome(Status.PENDING, error=f"{message}; waiting up to {left:.0f} s more for it to dial in",
                   reason="offline", retry_at=now + dt.timedelta(seconds=delay), reachable=False, counted=False)


async def persist(session: AsyncSession, items: list[tuple[Unit, Operation, Outcome]]) -> list[Outcome]:
    """Store outcomes in the caller's transaction (a BulkWrite): each success's own records first (a snapshot,
    log records), then every row and device state at once.  Returns the outcomes as stored (public results)."""
    stored: list[Outcome] = []
    for unit, operation, outcome in items:
        if outcome.status is Status.SUCCEEDED and operation.store is not None and unit.device_id is not None:
            outcome = replace(outcome, result=await operation.store(session, unit.device_id,
                                                                    dict(outcome.result or {})))
        stored.append(outcome)
    await record(session, [(unit, outcome) for (unit, _, _), outcome in zip(items, stored, strict=True)])
    return stored
