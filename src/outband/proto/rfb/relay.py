"""Relaying a standard VNC viewer to AMT's KVM: the viewer's byte stream, passed on with one rewrite.

A viewer that lists encoding 16 expects standard ZRLE (a zlib stream), while AMT's encoding 16 is its own RLE
flavour (a raw deflate stream, §4.5); the Intel extensions (1092) mean nothing to a viewer either.
:class:`ViewerFilter` follows the viewer's side of the handshake (version, security choice, ClientInit) and
then its messages, and removes those two encodings from every SetEncodings, keeping RAW (which AMT requires)
and everything else; all other bytes pass unchanged.  The server's direction needs no rewriting.
"""

from __future__ import annotations

import enum
import struct
from typing import Final

from ..buffer import ReceiveBuffer
from .messages import VERSION_LENGTH, ClientMessage, Encoding, client_message_length, parse_version

DROPPED: Final = frozenset({Encoding.RLE, Encoding.INTEL_KVM_EXTENSIONS})


class _Phase(enum.Enum):
    VERSION = "version"
    SECURITY = "security"
    INIT = "init"
    MESSAGES = "messages"


class ViewerFilter:
    """Viewer -> device bytes in, the bytes to forward out (held back only while a message is incomplete)."""

    def __init__(self) -> None:
        self._buf = ReceiveBuffer()
        self._phase = _Phase.VERSION

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while True:
            chunk = self._buf.take(self._next_length())
            if chunk is None:
                return bytes(out)
            out += self._pass(chunk)

    def _next_length(self) -> int | None:
        if self._phase is _Phase.VERSION:
            return VERSION_LENGTH
        if self._phase in (_Phase.SECURITY, _Phase.INIT):
            return 1
        return client_message_length(self._buf)

    def _pass(self, chunk: bytes) -> bytes:
        if self._phase is _Phase.VERSION:
            _major, minor = parse_version(chunk)
            self._phase = _Phase.SECURITY if minor >= 7 else _Phase.INIT
        elif self._phase is _Phase.SECURITY:
            self._phase = _Phase.INIT
        elif self._phase is _Phase.INIT:
            self._phase = _Phase.MESSAGES
        elif chunk[0] == ClientMessage.SET_ENCODINGS:
            count = int.from_bytes(chunk[2:4], "big")
            kept = [e for e in struct.unpack_from(f">{count}i", chunk, 4) if e not in DROPPED]
            if Encoding.RAW not in kept:
                kept.append(Encoding.RAW)
            return struct.pack(">BxH", ClientMessage.SET_ENCODINGS, len(kept)) + b"".join(
                struct.pack(">i", e) for e in kept)
        return chunk


__all__ = ["DROPPED", "ViewerFilter"]
