"""One conversation per device at a time, across every job and the health poller of this process.

A device serves few WS-MAN sessions and Digest's ``nc`` must rise in the order the device sees requests, so
two jobs (or a job and a health poll) must never talk to one device at once.  Jobs wait their turn
(:meth:`DeviceLocks.hold`); the health poller never waits: it skips a busy device (:meth:`DeviceLocks.try_hold`)
because a job is already talking to it and will refresh what the poll would have learnt.

Locks exist only while someone holds or waits for them, so a fleet of 100,000 idle devices costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    """Holders plus waiters: the entry is dropped when it reaches zero."""


class DeviceLocks:
    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}

    def busy(self, device_id: int) -> bool:
        entry = self._entries.get(device_id)
        return entry is not None and entry.lock.locked()

    def __len__(self) -> int:
        """Devices held or waited for right now."""
        return len(self._entries)

    @asynccontextmanager
    async def hold(self, device_id: int) -> AsyncIterator[None]:
        """Wait until the device is free, then hold it for the block."""
        entry = self._entries.setdefault(device_id, _Entry())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            self._release(device_id, entry)

    @asynccontextmanager
    async def try_hold(self, device_id: int) -> AsyncIterator[bool]:
        """Hold the device for the block if it is free right now (never waits); yields whether it was."""
        entry = self._entries.get(device_id)
        if entry is not None and (entry.lock.locked() or entry.users):
            yield False
            return
        entry = self._entries.setdefault(device_id, _Entry())
        entry.users += 1
        try:
            await entry.lock.acquire()  # free and nobody waiting: returns without suspending
            try:
                yield True
            finally:
                entry.lock.release()
        finally:
            self._release(device_id, entry)

    def _release(self, device_id: int, entry: _Entry) -> None:
        entry.users -= 1
        if entry.users == 0 and self._entries.get(device_id) is entry:
            del self._entries[device_id]
