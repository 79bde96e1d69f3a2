"""The session manager of the redirection protocol: session start, authentication, end (both roles).

Theory of operation (AMT side, :class:`AmtSession`)::

    AWAIT_START --0x10 (kind)--> SessionRequested event; the listener answers accept()/refuse(status)
    AWAIT_AUTH  --0x13 type 0--> reply: the auth types we support (1, 3, 4)
                --0x13 type 1--> user + password in clear (amtterm 1.4): verified, AuthResult event
                --0x13 type 3/4 with empty response--> challenge (realm, nonce, qop) with status 1
                --0x13 type 3/4 with response--> verified by the shared DigestVerifier, AuthResult event;
                  the listener then grants (status 0 reply) or denies (status 1 reply and close)
    AUTHENTICATED: frames of the session kind (SOL/IDE-R/KVM) go to the upper layer
    CLOSED: after 0x12, a failed login, or a protocol error

Transitions are the table ``_HANDLERS`` keyed by (state, message type); anything else is a protocol error,
which closes the session (AMT closes; amtterm hangs if it does not).  Replies are queued as separate
writes (:meth:`data_to_send` returns a list) because amtterm consumes its whole receive buffer on a control
reply (§11).  The same :class:`~outband.proto.digest.DigestVerifier` that guards WS-MAN checks the digest
here, so lockout and every comparison rule are shared (DESIGN.md, security rules).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ..digest import AuthResult, DigestVerifier, Reason, compute_response, ha1
from .frames import Frame, FrameDecoder, MessageType, ProtocolError, RawData, Role

T = MessageType
REDIRECTION_URI: Final = "/RedirectionService"
MAX_USER: Final = 32
MAX_PASSWORD: Final = 32


class SessionKind(enum.Enum):
    SOL = b"SOL "
    IDER = b"IDER"
    KVM = b"KVMR"


class AuthType(enum.IntEnum):
    QUERY = 0
    CLEAR = 1
    KERBEROS = 2
    DIGEST_NO_QOP = 3
    DIGEST = 4


class StartStatus(enum.IntEnum):
    SUCCESS = 0
    TYPE_UNKNOWN = 1
    BUSY = 2
    UNSUPPORTED = 3
    ERROR = 0xFF


DIGEST_FIELDS: Final = ("username", "realm", "nonce", "uri", "cnonce", "nc", "response", "qop")

# ---------------------------------------------------------------------------------------------- codec


def encode_start(kind: SessionKind) -> bytes:
    flag = 1 if kind is SessionKind.KVM else 0  # MeshCommander sets 1 for KVM only (§4.1)
    return bytes([T.START_REDIRECTION_SESSION, flag, 0, 0]) + kind.value


def encode_start_reply(status: StartStatus, oem: bytes = b"") -> bytes:
    # Bytes 4..11 are not interpreted by any studied client; AMT-style protocol/firmware version bytes.
    return bytes([T.START_REDIRECTION_SESSION_REPLY, status, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, len(oem)]) + oem


def encode_end() -> bytes:
    return bytes([T.END_REDIRECTION_SESSION, 0, 0, 0])


def _strings(values: list[bytes]) -> bytes:
    out = bytearray()
    for v in values:
        if len(v) > 255:
            raise ValueError("redirection auth strings are at most 255 bytes")
        out += bytes([len(v)]) + v
    return bytes(out)


def encode_auth(auth_type: AuthType, payload: bytes = b"") -> bytes:
    return bytes([T.AUTHENTICATE_SESSION, 0, 0, 0, auth_type]) + struct.pack("<I", len(payload)) + payload


def encode_auth_reply(status: int, auth_type: AuthType, payload: bytes = b"") -> bytes:
    return bytes([T.AUTHENTICATE_SESSION_REPLY, status, 0, 0, auth_type]) + struct.pack("<I", len(payload)) + payload


def encode_digest_fields(fields: dict[str, str], *, with_qop: bool = True) -> bytes:
    names = DIGEST_FIELDS if with_qop else DIGEST_FIELDS[:-1]
    return _strings([fields.get(n, "").encode("utf-8") for n in names])


def split_strings(payload: bytes, limit: int = 16) -> list[bytes]:
    """Length-prefixed strings, every length checked against what is left."""
    out: list[bytes] = []
    pos = 0
    while pos < len(payload):
        if len(out) >= limit:
            raise ProtocolError("too many strings in an authentication payload")
        n = payload[pos]
        pos += 1
        if pos + n > len(payload):
            raise ProtocolError("authentication string runs past the end of its message")
        out.append(payload[pos : pos + n])
        pos += n
    return out


@dataclass(frozen=True, slots=True)
class AuthMessage:
    """A decoded 0x13 (console -> AMT) or 0x14 (AMT -> console)."""

    auth_type: AuthType
    payload: bytes
    status: int = 0

    @classmethod
    def decode(cls, frame: Frame) -> AuthMessage:
        data = frame.data
        try:
            auth_type = AuthType(data[4])
        except ValueError:
            raise ProtocolError(f"unknown authentication type {data[4]}") from None
        return cls(auth_type, data[9:], data[1])


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class SessionRequested:
    kind: SessionKind


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """Credentials were checked; ``result.ok`` tells the outcome.  The listener calls grant() or deny()."""

    result: AuthResult
    auth_type: AuthType


@dataclass(frozen=True, slots=True)
class SessionData:
    """A frame of the session kind (SOL/IDE-R/KVM messages) or raw stream bytes after a switch."""

    frame: Frame | RawData


@dataclass(frozen=True, slots=True)
class SessionEnded:
    reason: str


Event = SessionRequested | LoginAttempt | SessionData | SessionEnded


class State(enum.Enum):
    AWAIT_START = "await-start"
    DECIDING_START = "deciding-start"
    AWAIT_AUTH = "await-auth"
    DECIDING_AUTH = "deciding-auth"
    AUTHENTICATED = "authenticated"
    CLOSED = "closed"


class AmtSession:
    """The AMT side of the session manager.  Feed bytes with :meth:`receive_data`, read :meth:`events`,
    send what :meth:`data_to_send` returns (each item as its own write)."""

    def __init__(self, verifier: DigestVerifier, *, auth_types: tuple[AuthType, ...] = (
            AuthType.CLEAR, AuthType.DIGEST_NO_QOP, AuthType.DIGEST), peer: object = None) -> None:
        self.verifier = verifier
        self.auth_types = auth_types
        self.peer = peer
        self.decoder = FrameDecoder(Role.CONSOLE)
        self.state = State.AWAIT_START
        self.kind: SessionKind | None = None
        self.username: str | None = None
        self._out: list[bytes] = []
        self._events: list[Event] = []
        self._pending_auth: AuthType | None = None

    # ------------------------------------------------------------------------------------------ I/O

    def receive_data(self, data: bytes) -> None:
        """Take bytes from the console; events and replies become available.  Protocol errors close the
        session (a SessionEnded event) rather than raising."""
        if self.state is State.CLOSED:
            return
        try:
            self.decoder.feed(data)
            while self.state not in (State.CLOSED, State.DECIDING_START, State.DECIDING_AUTH):
                frame = self.decoder.next_frame()
                if frame is None:
                    break
                self._handle(frame)
        except ProtocolError as exc:
            self._close(f"protocol error: {exc}")

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def send(self, data: bytes) -> None:
        """Queue a message of the session kind (the SOL/IDE-R/KVM layers write through here)."""
        if self.state is State.AUTHENTICATED:
            self._out.append(data)

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    # ------------------------------------------------------------------------------------------ decisions

    def accept(self) -> None:
        """Start the requested session (the listener checked it is enabled and not busy)."""
        self._expect(State.DECIDING_START)
        self._out.append(encode_start_reply(StartStatus.SUCCESS))
        self.state = State.AWAIT_AUTH
        self._drain()

    def refuse(self, status: StartStatus) -> None:
        self._expect(State.DECIDING_START)
        self._out.append(encode_start_reply(status))
        self._close(f"session refused ({status.name.lower()})")

    def grant(self) -> None:
        """The login is good and the user may use this session kind."""
        self._expect(State.DECIDING_AUTH)
        assert self._pending_auth is not None
        self._out.append(encode_auth_reply(0, self._pending_auth))
        self.state = State.AUTHENTICATED
        if self.kind is SessionKind.IDER:
            self.decoder.ider_start_length = 18
        elif self.kind is SessionKind.KVM:
            self.decoder.ider_start_length = 8
        self._drain()

    def deny(self) -> None:
        self._expect(State.DECIDING_AUTH)
        assert self._pending_auth is not None
        self._out.append(encode_auth_reply(1, self._pending_auth))
        self._close("authentication failed")

    def close(self, reason: str = "closed by the engine") -> None:
        self._close(reason)

    def _expect(self, state: State) -> None:
        if self.state is not state:
            raise RuntimeError(f"cannot do that in state {self.state.value}")

    def _drain(self) -> None:
        self.receive_data(b"")

    def _close(self, reason: str) -> None:
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            self._events.append(SessionEnded(reason))

    # ------------------------------------------------------------------------------------------ handlers

    def _handle(self, frame: Frame | RawData) -> None:
        if isinstance(frame, RawData) or self.state is State.AUTHENTICATED:
            if isinstance(frame, Frame) and frame.type is T.END_REDIRECTION_SESSION:
                self._close("ended by the console")
                return
            self._events.append(SessionData(frame))
            return
        handler = _HANDLERS.get((self.state, frame.type))
        if handler is None:
            raise ProtocolError(f"{frame.type.name} not expected in state {self.state.value}")
        handler(self, frame)

    def _on_start(self, frame: Frame) -> None:
        tag = frame.data[4:8]
        try:
            self.kind = SessionKind(tag)
        except ValueError:
            self._out.append(encode_start_reply(StartStatus.TYPE_UNKNOWN))
            self._close(f"unknown session type {tag!r}")
            return
        self.state = State.DECIDING_START
        self._events.append(SessionRequested(self.kind))

    def _on_end(self, frame: Frame) -> None:
        self._close("ended by the console")

    def _on_auth(self, frame: Frame) -> None:
        msg = AuthMessage.decode(frame)
        if msg.auth_type is AuthType.QUERY:
            self._out.append(encode_auth_reply(0, AuthType.QUERY, bytes(self.auth_types)))
            return
        if msg.auth_type not in self.auth_types:
            self._out.append(encode_auth_reply(2, msg.auth_type))
            self._close(f"authentication type {msg.auth_type.name} not supported")
            return
        if msg.auth_type is AuthType.CLEAR:
            self._clear(msg)
            return
        self._digest(msg)

    def _clear(self, msg: AuthMessage) -> None:
        parts = split_strings(msg.payload, limit=2)
        if len(parts) != 2 or len(parts[0]) > MAX_USER or len(parts[1]) > MAX_PASSWORD:
            raise ProtocolError("clear-text login needs a user (<= 32) and a password (<= 32)")
        user, password = (p.decode("utf-8", "replace") for p in parts)
        result = self._verify_clear(user, password)
        self._decide(result, AuthType.CLEAR)

    def _verify_clear(self, user: str, password: str) -> AuthResult:
        """Clear-text logins run through the digest verifier too: we answer our own challenge with the
        given password, so lockout and the constant-time comparison are the very same code path."""
        nonce = self.verifier.issue_nonce()
        response = compute_response(ha1=ha1(user, self.verifier.realm, password), method="POST",
                                    uri=REDIRECTION_URI, nonce=nonce, qop="auth", nc="00000001", cnonce="clear")
        fields = {"username": user, "realm": self.verifier.realm, "nonce": nonce, "uri": REDIRECTION_URI,
                  "qop": "auth", "nc": "00000001", "cnonce": "clear", "response": response}
        return self.verifier.verify_fields("POST", fields, peer=self.peer)

    def _digest(self, msg: AuthMessage) -> None:
        with_qop = msg.auth_type is AuthType.DIGEST
        parts = split_strings(msg.payload, limit=8)
        names = DIGEST_FIELDS if with_qop else DIGEST_FIELDS[:-1]
        if len(parts) != len(names):
            raise ProtocolError(f"digest login carries {len(parts)} strings, expected {len(names)}")
        fields = {n: p.decode("utf-8", "replace") for n, p in zip(names, parts, strict=True)}
        if len(fields["username"]) > MAX_USER:
            raise ProtocolError("user name longer than 32 characters")
        if not fields["response"] and not fields["nonce"]:
            # The initial request: answer with a challenge (status 1 = "continue").
            challenge = [self.verifier.realm.encode(), self.verifier.issue_nonce().encode()]
            if with_qop:
                challenge.append(b"auth")
            self._out.append(encode_auth_reply(1, msg.auth_type, _strings(challenge)))
            return
        if not with_qop:
            fields.pop("nc", None), fields.pop("cnonce", None)
        result = self.verifier.verify_fields("POST", fields, expected_uri=REDIRECTION_URI, peer=self.peer,
                                             allow_no_qop=not with_qop)
        self._decide(result, msg.auth_type)

    def _decide(self, result: AuthResult, auth_type: AuthType) -> None:
        self._pending_auth = auth_type
        self.state = State.DECIDING_AUTH
        if result.ok:
            self.username = result.username
        self._events.append(LoginAttempt(result, auth_type))


_HANDLERS: Final[dict[tuple[State, MessageType], Callable[[AmtSession, Frame], None]]] = {
    (State.AWAIT_START, T.START_REDIRECTION_SESSION): AmtSession._on_start,
    (State.AWAIT_AUTH, T.AUTHENTICATE_SESSION): AmtSession._on_auth,
    (State.AWAIT_AUTH, T.END_REDIRECTION_SESSION): AmtSession._on_end,
    (State.AWAIT_START, T.END_REDIRECTION_SESSION): AmtSession._on_end,
}

__all__ = [
    "REDIRECTION_URI",
    "AmtSession",
    "AuthMessage",
    "AuthType",
    "Event",
    "LoginAttempt",
    "Reason",
    "SessionData",
    "SessionEnded",
    "SessionKind",
    "SessionRequested",
    "StartStatus",
    "State",
    "encode_auth",
    "encode_auth_reply",
    "encode_digest_fields",
    "encode_end",
    "encode_start",
    "encode_start_reply",
    "split_strings",
]
