"""Errors mirroring APF's codes: one DisconnectError subclass per DISCONNECT reason, and ChannelOpenError.

As in asyncssh (``misc.py``), an error carries the wire code it stands for, so the connection that raises it
can tell the peer why in one DISCONNECT, and a peer's DISCONNECT becomes the matching exception here.
"""

from __future__ import annotations

from typing import ClassVar

from .constants import DisconnectReason, OpenFailureReason


class ApfError(Exception):
    """Anything that goes wrong in APF."""


class LocalProtocolError(ApfError):
    """The caller asked for something the protocol does not allow now (our bug, not the peer's)."""


class DisconnectError(ApfError):
    """The connection ended, or must end, for ``code``; ``str(error)`` says why in words."""

    code: int = DisconnectReason.BY_APPLICATION
    """The DISCONNECT reason; a code no subclass stands for is kept as given (the base class)."""
    _by_code: ClassVar[dict[int, type[DisconnectError]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        DisconnectError._by_code[cls.code] = cls

    def __init__(self, reason: str = "", *, code: int | None = None) -> None:
        if code is not None:
            self.code = code
        try:
            default = DisconnectReason(self.code).name.lower().replace("_", " ")
        except ValueError:
            default = f"disconnect reason {self.code}"
        super().__init__(reason or default)
        self.reason = str(self)

    @staticmethod
    def for_code(code: int, reason: str = "") -> DisconnectError:
        """The error a peer's DISCONNECT with ``code`` stands for."""
        kind = DisconnectError._by_code.get(code)
        return kind(reason) if kind is not None else DisconnectError(reason, code=code)


class HostNotAllowed(DisconnectError):
    code = DisconnectReason.HOST_NOT_ALLOWED_TO_CONNECT


class ProtocolError(DisconnectError):
    """The peer broke the protocol: malformed, oversized, unknown or out-of-order input."""

    code = DisconnectReason.PROTOCOL_ERROR


class KeyExchangeFailed(DisconnectError):
    code = DisconnectReason.KEY_EXCHANGE_FAILED


class MacError(DisconnectError):
    code = DisconnectReason.MAC_ERROR


class CompressionError(DisconnectError):
    code = DisconnectReason.COMPRESSION_ERROR


class ServiceNotAvailable(DisconnectError):
    code = DisconnectReason.SERVICE_NOT_AVAILABLE


class ProtocolVersionNotSupported(DisconnectError):
    code = DisconnectReason.PROTOCOL_VERSION_NOT_SUPPORTED


class HostKeyNotVerifiable(DisconnectError):
    code = DisconnectReason.HOST_KEY_NOT_VERIFIABLE


class ConnectionLost(DisconnectError):
    code = DisconnectReason.CONNECTION_LOST


class ByApplication(DisconnectError):
    code = DisconnectReason.BY_APPLICATION


class TooManyConnections(DisconnectError):
    code = DisconnectReason.TOO_MANY_CONNECTIONS


class AuthCancelledByUser(DisconnectError):
    code = DisconnectReason.AUTH_CANCELLED_BY_USER


class NoMoreAuthMethods(DisconnectError):
    code = DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE


class InvalidCredentials(DisconnectError):
    code = DisconnectReason.INVALID_CREDENTIALS


class ConnectionTimedOut(DisconnectError):
    code = DisconnectReason.CONNECTION_TIMED_OUT


class ByPolicy(DisconnectError):
    code = DisconnectReason.BY_POLICY


class TemporarilyUnavailable(DisconnectError):
    code = DisconnectReason.TEMPORARILY_UNAVAILABLE


class ChannelOpenError(ApfError):
    """A channel could not be opened; ``code`` is the CHANNEL_OPEN_FAILURE reason."""

    def __init__(self, code: int, reason: str = "") -> None:
        try:
            self.code: OpenFailureReason | int = OpenFailureReason(code)
            default = self.code.name.lower().replace("_", " ")
        except ValueError:
            self.code = code
            default = f"open failure reason {code}"
        super().__init__(reason or default)
        self.reason = str(self)
