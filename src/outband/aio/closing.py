"""``async with`` for the objects that own a connection: leaving the block closes them, whatever happened.

A WS-MAN transport, a device client and a redirection session each say only how they close; entering and
leaving the block is written here once.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncClosing:
    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


__all__ = ["AsyncClosing"]
