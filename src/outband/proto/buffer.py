"""The receive buffer of the sans-I/O parsers: bytes wait here until a whole message has arrived.

Every parser of a byte stream here reads the same way: look at the first bytes (a header that says how long
the message is), and take the message only once all of it is there, otherwise wait for the next read.  The
buffer is a ``bytearray`` (parsers index it and hand it to length functions) with those two reads added; what
it may hold is capped by each parser, which knows its largest legitimate message.
"""

from __future__ import annotations


class ReceiveBuffer(bytearray):
    """Received bytes not yet parsed."""

    def peek(self, length: int) -> bytes | None:
        """The first ``length`` bytes, left in place; None while fewer have arrived."""
        return bytes(self[:length]) if len(self) >= length else None

    def take(self, length: int | None) -> bytes | None:
        """The first ``length`` bytes, removed; None while fewer have arrived, or while the length is not yet
        known (a header still incomplete: None)."""
        if length is None or len(self) < length:
            return None
        data = bytes(self[:length])
        del self[:length]
        return data


__all__ = ["ReceiveBuffer"]
