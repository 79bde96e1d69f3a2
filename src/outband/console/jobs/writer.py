"""Group commit for the many small writes a fleet job makes.

Every device of a job writes twice (started, then its outcome), and a 100,000-device job at a few hundred
devices a second would otherwise be a few hundred transactions a second on a database that has one writer
(SQLite).  :class:`BatchWriter` runs the writes submitted while a transaction is being committed together in
the next one: nothing waits on a timer, so a lone write is committed at once and a burst shares one commit.
``await writer.write(fn)`` returns once ``fn``'s changes are durable, so a caller can act on them (send the
operation it just recorded as started, publish the result it just stored).

Writes of one kind can also be merged into one statement: ``await writer.write_item(op, item)`` queues
``item`` for a :data:`BulkWrite` ``op(session, items) -> results`` that runs once per transaction with every
queued item of that kind (a job's claims become one ``UPDATE ... WHERE id IN (...)``, its outcomes one
executemany).  Kinds run in the order their first item arrived; items of different rows do not depend on
each other, and a row's next write is only submitted once its previous one is committed.

One failing write does not take its batch with it: the batch is retried one write per transaction, and only
the failing write's caller sees the exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from ..db.database import Database

log = logging.getLogger("outband.console.jobs")

_T = TypeVar("_T")
_I = TypeVar("_I")
Write = Callable[[AsyncSession], Awaitable[_T]]
BulkWrite = Callable[[AsyncSession, list[_I]], Awaitable[list[_T]]]

MAX_BATCH: Final = 500


@dataclass(slots=True)
class _Pending:
    fn: Callable[[AsyncSession, list[Any]], Awaitable[list[Any]]]
    item: Any
    done: asyncio.Future[Any]


class BatchWriter:
    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0
        """Transactions committed (for tests and the curious: writes / commits is the batching factor)."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="job-writer")

    async def write(self, fn: Write[_T]) -> _T:
        """Run ``fn(session)`` inside a write transaction shared with other writes; returns its value once
        committed."""
        return await self.write_item(_single, fn)

    async def write_item(self, op: BulkWrite[_I, _T], item: _I) -> _T:
        """Queue ``item`` for ``op``, which runs once per transaction with all queued items of its kind;
        returns this item's result once committed."""
        if self._closing or self._task is None:
            raise RuntimeError("the job writer is not running")
        done: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(op, item, done))
        self._wake.set()
        return await done

    async def close(self) -> None:
        """Commit what was submitted, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                    await self._commit(batch)
                if self._closing:
                    return
        finally:
            for pending in self._queue:
                _fail(pending, RuntimeError("the job writer stopped"))
            self._queue.clear()

    async def _commit(self, batch: list[_Pending]) -> None:
        # Writes whose caller was cancelled meanwhile still go in: an outcome must be stored even when nobody
        # waits for it any more (the operation already happened).
        try:
            results = await self._transaction(batch)
        except asyncio.CancelledError:
            for pending in batch:
                _fail(pending, RuntimeError("the job writer stopped"))
            raise
        except Exception as exc:
            if len(batch) == 1:
                log.exception("a job write failed")
                _fail(batch[0], exc)
                return
            for pending in batch:
                await self._commit_alone(pending)
            return
        for pending, value in zip(batch, results, strict=True):
            if not pending.done.done():
                pending.done.set_result(value)

    async def _commit_alone(self, pending: _Pending) -> None:
        try:
            (value,) = await self._transaction([pending])
        except asyncio.CancelledError:
            _fail(pending, RuntimeError("the job writer stopped"))
            raise
        except Exception as exc:
            log.exception("a job write failed")
            _fail(pending, exc)
            return
        if not pending.done.done():
            pending.done.set_result(value)

    async def _transaction(self, batch: list[_Pending]) -> list[Any]:
        kinds: dict[Any, list[int]] = {}
        for index, pending in enumerate(batch):
            kinds.setdefault(pending.fn, []).append(index)
        results: list[Any] = [None] * len(batch)
        async with self.db.write() as session:
            for op, indices in kinds.items():
                values = await op(session, [batch[i].item for i in indices])
                if len(values) != len(indices):
                    raise RuntimeError(f"{op!r} answered {len(values)} results for {len(indices)} items")
                for index, value in zip(indices, values, strict=True):
                    results[index] = value
        self.commits += 1
        return results


async def _single(session: AsyncSession, writes: list[Write[Any]]) -> list[Any]:
    """Plain writes run one after the other (they are not merged, only share the transaction)."""
    return [await write(session) for write in writes]


def _fail(pending: _Pending, exc: BaseException) -> None:
    if not pending.done.done():
        pending.done.set_exception(exc)
