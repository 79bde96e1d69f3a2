"""Errors of the WS-Management layer.

::

    WsmanError
    ├── DecodeError        bytes that are not a well-formed, acceptable WS-MAN envelope (the peer's fault)
    └── WsmanFault         a SOAP fault, received from a peer or to be sent to one (faults.py)

A DecodeError met by a server becomes a SOAP fault reply (``wsman:SchemaValidationError``, or
``wsman:EncodingLimit`` when ``limit`` is set); met by a client it means the device answered something we
cannot read.
"""

from __future__ import annotations


class WsmanError(Exception):
    """Base of every error raised by :mod:`outband.proto.wsman`."""


class DecodeError(WsmanError, ValueError):
    """Input that is not acceptable XML or not a WS-MAN envelope of the expected shape.

    ``limit`` is set when a size/depth cap was hit, which servers answer with ``wsman:EncodingLimit``.
    """

    def __init__(self, message: str, *, limit: bool = False) -> None:
        super().__init__(message)
        self.limit = limit
