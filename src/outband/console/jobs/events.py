"""Progress of jobs as a stream of events, for the web UI (SSE), the CLI's progress bars and tests.

Event shapes (JSON objects, ``type`` first)::

    {"type": "job", "job_id": 7, "status": "running", "counts": {...}, "total": 1000}
        when a job starts, resumes, finishes or is cancelled (also the first event of every subscription)
    {"type": "device", "job_id": 7, "device_id": 12, "device_name": "pc-12", "status": "succeeded",
     "attempts": 1, "result": {...}, "error": null, "reason": null, "counts": {...}}
        each device's final outcome, published once it is stored
    {"type": "retry", "job_id": 7, "device_id": 12, "device_name": "pc-12", "attempts": 1, "reason": "timeout",
     "error": "...", "retry_in": 1.7}
    {"type": "lagged", "job_id": 7, "dropped": 120}
        the subscriber read too slowly and missed events; re-read the job (GET /api/jobs/{id})

``counts`` maps every status (pending, running, succeeded, failed, cancelled) to its number of devices.

A subscriber that falls behind never slows the job: its queue is bounded and the oldest events are dropped
(then one ``lagged`` event says how many).  Subscriptions of other jobs cost nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

QUEUE: Final = 2_000
Event = dict[str, Any]


class Subscription:
    def __init__(self, job_id: int, size: int) -> None:
        self.job_id = job_id
        self._events: deque[Event] = deque()
        self._size = size
        self._dropped = 0
        self._ready = asyncio.Event()

    def deliver(self, event: Event) -> None:
        if len(self._events) >= self._size:
            self._events.popleft()
            self._dropped += 1
        self._events.append(event)
        self._ready.set()

    async def get(self) -> Event:
        """The next event (bound the wait with ``asyncio.timeout``)."""
        while not self._events and not self._dropped:
            self._ready.clear()
            await self._ready.wait()
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            return {"type": "lagged", "job_id": self.job_id, "dropped": dropped}
        return self._events.popleft()


class JobEvents:
    def __init__(self, queue: int = QUEUE) -> None:
        self._queue = queue
        self._subscribers: dict[int, set[Subscription]] = {}

    def publish(self, job_id: int, event: Event) -> None:
        for subscription in self._subscribers.get(job_id, ()):
            subscription.deliver(event)

    @asynccontextmanager
    async def subscribe(self, job_id: int) -> AsyncIterator[Subscription]:
        subscription = Subscription(job_id, self._queue)
        self._subscribers.setdefault(job_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers.get(job_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[job_id]
