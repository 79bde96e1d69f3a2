"""Presence of CIRA devices in the database: who is connected to which MPS node since when, and when each was
last heard from.

Theory of operation (:class:`PresenceWriter`): the MPS reports three things per device -- a tunnel came up, a
keepalive arrived, the tunnel ended -- and never waits for them to be stored.  Each report is merged into the
device's pending change (later values win, so a device that comes and goes within one window is written once,
in its final state) and a flusher writes every pending change in one transaction at most ``interval`` seconds
later: 10,000 devices sending a keepalive every 30 s are some 330 rows a second, one commit.  Coming up or going
down also sets the device's ``reachable`` flag, which the device list shows, and writes the device's tunnel
history (``cira_tunnels``: one row per tunnel, closed when it ends, or when a newer tunnel of the device replaces
it without a word; rows older than :data:`TUNNEL_HISTORY_DAYS` days are dropped daily).  A failed transaction
puts its changes back under whatever arrived meanwhile and is tried again; :meth:`PresenceWriter.close` writes
what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any, Final, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.base import utcnow
from ..db.database import Database
from ..db.models import ERROR_LENGTH, CiraPresence, CiraTunnel, Device
from ..devices.repository import chunks

log = logging.getLogger("outband.console.mps")

RETRY_DELAY: Final = 1.0
MPS_RESTARTED: Final = "the MPS node restarted"
REPLACED: Final = "replaced by a newer tunnel of the device"
TUNNEL_HISTORY_DAYS: Final = 30

_PRESENCE = cast(Table, CiraPresence.__table__)
_DEVICES = cast(Table, Device.__table__)
_KEEPALIVES = (update(_PRESENCE).where(_PRESENCE.c.device_id == bindparam("b_device"))
               .values(last_keepalive=bindparam("b_keepalive")))
_REACHABILITY = (update(_DEVICES).where(_DEVICES.c.id == bindparam("b_device"))
                 .values(reachable=bindparam("b_reachable"), last_checked_at=bindparam("b_at"),
                         last_error=bindparam("b_error")))
_TUNNELS = cast(Table, CiraTunnel.__table__)
_CLOSE_TUNNELS = (update(_TUNNELS).where(_TUNNELS.c.device_id == bindparam("b_device"),
                                         _TUNNELS.c.disconnected_at.is_(None))
                  .values(disconnected_at=bindparam("b_at"), reason=bindparam("b_reason")))
_SEEN = (update(_DEVICES).where(_DEVICES.c.id == bindparam("b_device"))
         .values(reachable=True, last_checked_at=bindparam("b_at"), last_seen_at=bindparam("b_at"), last_error=None))


class PresenceWriter:
    """Stores presence changes for one MPS node (``node``), coalesced per device."""

    def __init__(self, db: Database, node: str, *, interval: float = 0.25) -> None:
        self.db = db
        self.node = node
        self.interval = interval
        self._pending: dict[int, dict[str, Any]] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0
        self._pruned: dt.datetime | None = None

    # ------------------------------------------------------------------------------------------ reports

    def connected(self, device_id: int, peer: str, now: dt.datetime) -> None:
        self._merge(device_id, {"online": True, "mps_node": self.node, "peer": peer[:64] or None,
                                "connected_since": now, "last_keepalive": now, "last_error": None})

    def keepalive(self, device_id: int, now: dt.datetime) -> None:
        self._merge(device_id, {"last_keepalive": now})

    def disconnected(self, device_id: int, reason: str, now: dt.datetime) -> None:
        self._merge(device_id, {"online": False, "mps_node": self.node, "disconnected_at": now,
                                "last_error": reason[:ERROR_LENGTH]})

    def _merge(self, device_id: int, values: dict[str, Any]) -> None:
        self._pending.setdefault(device_id, {}).update(values)
        self._idle.clear()
        self._wake.set()

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Mark this node's devices offline (the tunnels of a previous process on this node are gone), then
        start flushing."""
        await mark_node_offline(self.db, self.node, MPS_RESTARTED, utcnow())
        self._task = asyncio.create_task(self._run(), name=f"mps presence {self.node}")

    async def flushed(self) -> None:
        """Wait until every change reported so far is committed."""
        await self._idle.wait()

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._closing:
                await asyncio.sleep(self.interval)  # the window in which reports are merged
            self._wake.clear()
            batch, self._pending = self._pending, {}
            if batch:
                try:
                    await self._write(batch)
                except Exception:
                    log.exception("storing the presence of %d CIRA device(s) failed; trying again", len(batch))
                    for device_id, values in batch.items():  # under what arrived meanwhile
                        self._pending[device_id] = {**values, **self._pending.get(device_id, {})}
                    if self._closing:
                        return
                    self._wake.set()
                    await asyncio.sleep(RETRY_DELAY)
                    continue
            if not self._pending:
                self._idle.set()
                if self._closing:
                    return

    async def _write(self, batch: dict[int, dict[str, Any]]) -> None:
        now = utcnow()
        upserts: dict[frozenset[str], list[dict[str, Any]]] = {}
        keepalives: list[dict[str, Any]] = []
        came: list[dict[str, Any]] = []
        went: list[dict[str, Any]] = []
        closed: list[dict[str, Any]] = []
        opened: list[dict[str, Any]] = []
        for device_id, values in batch.items():
            if "online" not in values:
                keepalives.append({"b_device": device_id, "b_keepalive": values["last_keepalive"]})
                continue
            upserts.setdefault(frozenset(values), []).append({"device_id": device_id, **values})
            if values["online"]:
                came.append({"b_device": device_id, "b_at": now})
            else:
                went.append({"b_device": device_id, "b_reachable": False, "b_at": now,
                             "b_error": f"CIRA tunnel closed: {values['last_error']}"[:ERROR_LENGTH]})
            closing, began = _tunnel_rows(device_id, self.node, values)
            closed.append(closing)
            opened += began
        async with self.db.write() as session:
            known = await _still_there(session, [row["device_id"] for rows in upserts.values() for row in rows])
            for keys, rows in upserts.items():
                kept = [row for row in rows if row["device_id"] in known]  # a device deleted while connected
                if kept:
                    await session.execute(self._upsert(keys), kept)
            opened = [row for row in opened if row["device_id"] in known]
            for statement, rows in ((_KEEPALIVES, keepalives), (_SEEN, came), (_REACHABILITY, went),
                                    (_CLOSE_TUNNELS, closed)):
                if rows:
                    await session.execute(statement.execution_options(synchronize_session=False), rows)
            if opened:
                await session.execute(insert(_TUNNELS), opened)
            if self._pruned is None or now - self._pruned > dt.timedelta(days=1):
                await prune_tunnels(session, now)
                self._pruned = now
        self.commits += 1

    def _upsert(self, keys: frozenset[str]) -> Any:
        insert = sqlite.insert if self.db.is_sqlite else postgresql.insert
        statement = insert(_PRESENCE)
        return statement.on_conflict_do_update(index_elements=[_PRESENCE.c.device_id],
                                               set_={key: statement.excluded[key] for key in sorted(keys)})


def _tunnel_rows(device_id: int, node: str, values: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The tunnel-history change one merged report makes: which open rows of the device to close (when, why),
    and the row of a tunnel that began (already closed when it also ended within the window)."""
    ended_at, reason = values.get("disconnected_at"), values.get("last_error")
    if "connected_since" not in values:  # it went away
        return {"b_device": device_id, "b_at": ended_at, "b_reason": reason}, []
    began = values["connected_since"]
    row = {"device_id": device_id, "mps_node": node, "peer": values.get("peer"), "connected_at": began,
           "disconnected_at": None if values["online"] else ended_at, "reason": None if values["online"] else reason}
    return {"b_device": device_id, "b_at": began, "b_reason": REPLACED}, [row]


async def prune_tunnels(session: AsyncSession, now: dt.datetime) -> None:
    """Drop tunnel history older than :data:`TUNNEL_HISTORY_DAYS` days."""
    cutoff = now - dt.timedelta(days=TUNNEL_HISTORY_DAYS)
    await session.execute(delete(CiraTunnel).where(CiraTunnel.connected_at < cutoff)
                          .execution_options(synchronize_session=False))


async def _still_there(session: AsyncSession, device_ids: list[int]) -> set[int]:
    found: set[int] = set()
    for part in chunks(device_ids):
        found.update((await session.execute(select(Device.id).where(Device.id.in_(part)))).scalars())
    return found


async def mark_node_offline(db: Database, node: str, reason: str, now: dt.datetime) -> int:
    """Every device the presence table shows online on ``node`` goes offline (the node's tunnels are gone);
    returns how many."""
    async with db.write() as session:
        ids = list((await session.execute(select(CiraPresence.device_id).where(
            CiraPresence.mps_node == node, CiraPresence.online.is_(True)))).scalars())
        for part in chunks(ids):
            await session.execute(update(CiraPresence).where(CiraPresence.device_id.in_(part)).values(
                online=False, disconnected_at=now, last_error=reason).execution_options(synchronize_session=False))
            await session.execute(update(CiraTunnel).where(CiraTunnel.device_id.in_(part),
                                                           CiraTunnel.disconnected_at.is_(None)).values(
                disconnected_at=now, reason=reason).execution_options(synchronize_session=False))
            await session.execute(update(Device).where(Device.id.in_(part)).values(
                reachable=False, last_checked_at=now, last_error=f"CIRA tunnel closed: {reason}")
                .execution_options(synchronize_session=False))
    return len(ids)
