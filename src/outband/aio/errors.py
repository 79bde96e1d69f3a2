"""Errors met talking to a device, mapped once at the I/O boundary (httpcore's map_exceptions idea).

::

    TransportError                 the device could not be talked to as asked
    ├── ConnectError               refused, unreachable, TLS handshake failure
    │   └── CertificateMismatch    the certificate is not the pinned one
    ├── RequestTimeout             no answer within the timeout
    ├── AuthenticationError        credentials refused (401 after answering a fresh challenge), or lockout
    └── BadResponse                an answer that is not the protocol (wrong status, unreadable body)

SOAP faults are not transport errors: they arrive as :class:`outband.proto.wsman.WsmanFault`.
"""

from __future__ import annotations


class TransportError(Exception):
    """Base of every I/O-level failure; ``host`` names the device for fleet-wide reports."""

    def __init__(self, message: str, *, host: str | None = None) -> None:
        super().__init__(f"{host}: {message}" if host else message)
        self.host = host


class ConnectError(TransportError):
    pass


class CertificateMismatch(ConnectError):
    """The device's TLS certificate is not the one pinned for it (a different device, or an interception)."""


class RequestTimeout(TransportError):
    pass


class AuthenticationError(TransportError):
    pass


class BadResponse(TransportError):
    def __init__(self, message: str, *, host: str | None = None, status: int | None = None) -> None:
        super().__init__(message, host=host)
        self.status = status
