"""What both ends of RFB share: a capped receive buffer parsed step by step, and the queues a caller drains.

The caller feeds the peer's bytes to :meth:`RfbEndpoint.receive_data`, then sends :meth:`~RfbEndpoint.data_to_send`
and reads :meth:`~RfbEndpoint.events`.  Each end's ``_step`` parses one message (or handshake step) from
``_buf`` and says whether it did; bytes beyond ``max_buffered`` waiting unparsed are a protocol error, so a
peer cannot make us hold more than the largest message it may legitimately send.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from ..buffer import ReceiveBuffer
from .errors import RfbProtocolError

EventT = TypeVar("EventT")


class RfbEndpoint(Generic[EventT]):
    def __init__(self, *, max_buffered: int, overflow: str) -> None:
        self._max_buffered = max_buffered
        self._overflow = overflow
        self._buf = ReceiveBuffer()
        self._out: list[bytes] = []
        self._events: list[EventT] = []

    def receive_data(self, data: bytes) -> None:
        """The peer's bytes; raises :class:`RfbProtocolError` on a protocol violation."""
        if len(self._buf) + len(data) > self._max_buffered:
            raise RfbProtocolError(self._overflow)
        self._buf += data
        self._parse()

    def _parse(self) -> None:
        """Parse what is buffered, as far as it goes (also after a pause the caller has ended)."""
        while self._step():
            pass

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def events(self) -> list[EventT]:
        out, self._events = self._events, []
        return out

    def _step(self) -> bool:
        raise NotImplementedError


__all__ = ["RfbEndpoint"]
