"""The KVM channel of a redirection session (tag ``KVMR``): two 8-byte messages, then an unframed RFB stream.

After the login the console sends ``40 00 00 00 00 00 00 00``; AMT answers with 8 bytes starting ``41`` and
from then on both directions carry RFB with no redirection framing (AMT-PROTOCOLS.md §4.5).  Because the RFB
bytes may share a read with the 8-byte message, both ends read the opening from the raw stream themselves:
:class:`ChannelOpening` takes bytes until the message is whole and hands back whatever followed it.
"""

from __future__ import annotations

from typing import Final

from .frames import MessageType, ProtocolError

OPEN_LENGTH: Final = 8
KVM_START: Final = bytes([MessageType.IDER_START]) + bytes(OPEN_LENGTH - 1)
"""Console -> AMT: open the KVM channel."""
KVM_START_REPLY: Final = bytes([MessageType.IDER_START_REPLY]) + bytes(OPEN_LENGTH - 1)
"""AMT -> console: the channel is open; RFB follows (the server speaks first)."""


class ChannelOpening:
    """Collects the 8-byte opening message (``expect`` is 0x40 on the AMT side, 0x41 on the console's)."""

    def __init__(self, expect: MessageType) -> None:
        self.expect = expect
        self._head = bytearray()
        self.done = False

    def feed(self, data: bytes) -> bytes | None:
        """The bytes that followed the opening once it is complete (maybe none), None while incomplete."""
        if self.done:
            return data
        take = OPEN_LENGTH - len(self._head)
        self._head += data[:take]
        if self._head[:1] and self._head[0] != self.expect:
            raise ProtocolError(f"KVM channel opened with 0x{self._head[0]:02X}, expected 0x{int(self.expect):02X}")
        if len(self._head) < OPEN_LENGTH:
            return None
        self.done = True
        return data[take:]


__all__ = ["KVM_START", "KVM_START_REPLY", "OPEN_LENGTH", "ChannelOpening"]
