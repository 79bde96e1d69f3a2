"""The session manager of the redirection protocol, AMT side: session start, authentication, end.

Theory of operation (:class:`AmtSession`)::

    AWAIT_START    --0x10 known tag-->   DECIDING_START (SessionRequested event)
                   --0x10 unknown tag--> reply "type unknown", CLOSED
    DECIDING_START --accept()-->         AWAIT_AUTH (reply status 0)
                   --refuse(status)-->   CLOSED (reply with that status)
    AWAIT_AUTH     --0x13 type 0-->      AWAIT_AUTH (reply: the auth types we support, 1 3 4)
                   --0x13 type 3/4 without response--> AWAIT_AUTH (challenge: realm, nonce[, qop], status 1)
                   --0x13 type 1, or 3/4 with response--> DECIDING_AUTH (LoginAttempt event) -- except a
                     right answer on a nonce we no longer hold, which earns a fresh challenge
                   --0x13 unsupported type--> reply status 2, CLOSED
    DECIDING_AUTH  --grant()-->          AUTHENTICATED (reply status 0)
                   --deny()-->           CLOSED (reply status 1; the socket must then close)
    AUTHENTICATED  --message of the session's kind--> SessionData event
    any state      --0x12-->             CLOSED

Transitions are the table ``HANDLERS`` keyed by (state, message type); anything else is a protocol error,
which closes the session (AMT closes; amtterm hangs if it does not).  While a decision is pending no further
input is parsed: it waits in the decoder until :meth:`accept`/:meth:`grant` resume it.  Replies are queued
as separate writes (:meth:`data_to_send` returns a list) because amtterm consumes its whole receive buffer on
a control reply (§11).  The same :class:`~outband.proto.digest.DigestVerifier` that guards WS-MAN checks
every login here, the clear-text one included, so lockout and every comparison rule are shared.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Generic, TypeVar, cast

from ..digest import AuthResult, DigestVerifier, Reason, compute_response, ha1
from .frames import KIND_MESSAGES, Frame, FrameDecoder, MessageType, ProtocolError, RawData, Role, SessionKind

T = MessageType
REDIRECTION_URI: Final = "/RedirectionService"
MAX_USER: Final = 32
MAX_PASSWORD: Final = 32
"""AMT's limits (and amtterm's, AMTT ``auth.c``): longer values cannot be right, so they end the session."""


class AuthType(enum.IntEnum):
    QUERY = 0
    CLEAR = 1
    KERBEROS = 2
    DIGEST_NO_QOP = 3
    DIGEST = 4


class StartStatus(enum.IntEnum):
    """Status byte of the start replies (0x11, and reused for 0x21)."""

    SUCCESS = 0
    TYPE_UNKNOWN = 1
    BUSY = 2
    UNSUPPORTED = 3
    ERROR = 0xFF


class AuthStatus(enum.IntEnum):
    SUCCESS = 0
    FAILURE = 1
    """Also "continue" when it carries a digest challenge."""
    NOT_SUPPORTED = 2


DIGEST_FIELDS: Final = ("username", "realm", "nonce", "uri", "cnonce", "nc", "response", "qop")
"""The strings of a type 4 login, in wire order; type 3 sends the first seven."""

# ---------------------------------------------------------------------------------------------- codec


def encode_start(kind: SessionKind) -> bytes:
    flag = 1 if kind is SessionKind.KVM else 0  # MeshCommander sets 1 for KVM only (§4.1)
    return bytes([T.START_REDIRECTION_SESSION, flag, 0, 0]) + kind.value


def encode_start_reply(status: StartStatus, oem: bytes = b"") -> bytes:
    """13 bytes plus OEM data; bytes 4..11 are read by no known client: we put protocol version 1.0 and
    firmware version 1.0 there, as a session manager reports them (AMTT ``SOL_FIRMWARE_REV_*``)."""
    if len(oem) > 255:
        raise ValueError("OEM data is at most 255 bytes")
    return bytes([T.START_REDIRECTION_SESSION_REPLY, status, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, len(oem)]) + oem


def encode_end() -> bytes:
    return bytes([T.END_REDIRECTION_SESSION, 0, 0, 0])


def encode_strings(values: list[bytes]) -> bytes:
    """Length-prefixed strings, as every auth payload carries them."""
    out = bytearray()
    for v in values:
        if len(v) > 255:
            raise ValueError("redirection auth strings are at most 255 bytes")
        out += bytes([len(v)]) + v
    return bytes(out)


def encode_auth(auth_type: AuthType, payload: bytes = b"") -> bytes:
    return bytes([T.AUTHENTICATE_SESSION, 0, 0, 0, auth_type]) + struct.pack("<I", len(payload)) + payload


def encode_auth_reply(status: AuthStatus, auth_type: AuthType, payload: bytes = b"") -> bytes:
    return bytes([T.AUTHENTICATE_SESSION_REPLY, status, 0, 0, auth_type]) + struct.pack("<I", len(payload)) + payload


def encode_digest_fields(fields: dict[str, str], *, with_qop: bool = True) -> bytes:
    names = DIGEST_FIELDS if with_qop else DIGEST_FIELDS[:-1]
    return encode_strings([fields.get(n, "").encode("utf-8") for n in names])


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


def decode_text(raw: bytes) -> str:
    """Auth strings are ASCII in practice (AMT user names are); a byte that is not UTF-8 becomes U+FFFD, so
    such a login can only fail, and nothing downstream (hashing, the audit log) meets an undecodable string."""
    return raw.decode("utf-8", "replace")


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


StateT = TypeVar("StateT", bound=enum.Enum)
EventT = TypeVar("EventT")


class SessionManager(Generic[StateT, EventT]):
    """What both ends of the session manager share (sans-I/O): the frame decoder, the queues of writes and
    events, the (state, message type) table ``HANDLERS`` that each end fills, and the end of the session.

    Input is parsed frame by frame until the end pauses (:meth:`_paused`: closed, or a decision pending); a
    frame no handler takes is a protocol error, which closes the session rather than raising.  Once
    :meth:`_enter_session` ran, messages of the session's kind pass through as SessionData events.  ``EventT``
    is the end's event union; it includes SessionData and SessionEnded, which this class raises.
    """

    HANDLERS: ClassVar[Mapping[tuple[Any, MessageType], Callable[[Any, Frame], None]]]

    def __init__(self, peer: Role, state: StateT, *, authenticated: StateT, closed: StateT) -> None:
        self.decoder = FrameDecoder(peer)
        self.state: StateT = state
        self._authenticated_state = authenticated
        self._closed_state = closed
        self._session_messages: frozenset[MessageType] = frozenset()
        self._out: list[bytes] = []
        self._events: list[EventT] = []

    def receive_data(self, data: bytes) -> None:
        """Take bytes from the peer; events and replies become available."""
        if self.closed:
            return
        try:
            self.decoder.feed(data)
            self._parse()
        except ProtocolError as exc:
            self._close(f"protocol error: {exc}")

    def events(self) -> list[EventT]:
        out, self._events = self._events, []
        return out

    def data_to_send(self) -> list[bytes]:
        """Each item is one write: amtterm consumes its whole receive buffer on a control reply (§11)."""
        out, self._out = self._out, []
        return out

    def send(self, data: bytes) -> None:
        """Queue a message of the session kind (the SOL/IDE-R/KVM layers write through here)."""
        if self.state is not self._authenticated_state:
            raise RuntimeError(f"cannot send session data in state {self.state.value}")
        self._out.append(data)

    @property
    def closed(self) -> bool:
        return self.state is self._closed_state

    def _paused(self) -> bool:
        return self.closed

    def _expect(self, state: StateT) -> None:
        if self.state is not state:
            raise RuntimeError(f"cannot do that in state {self.state.value}")

    def _enter_session(self, kind: SessionKind) -> None:
        self.state = self._authenticated_state
        self.decoder.set_kind(kind)
        self._session_messages = KIND_MESSAGES[kind]

    def _resume(self) -> None:
        try:
            self._parse()
        except ProtocolError as exc:
            self._close(f"protocol error: {exc}")

    def _parse(self) -> None:
        while not self._paused():
            frame = self.decoder.next_frame()
            if frame is None:
                return
            self._handle(frame)

    def _emit(self, event: SessionData | SessionEnded) -> None:
        self._events.append(cast(EventT, event))  # every end's event union includes both

    def _close(self, reason: str) -> None:
        if not self.closed:
            self.state = self._closed_state
            self._emit(SessionEnded(reason))

    def _handle(self, frame: Frame | RawData) -> None:
        if isinstance(frame, RawData) or (self.state is self._authenticated_state
                                          and frame.type in self._session_messages):
            self._emit(SessionData(frame))
            return
        handler = self.HANDLERS.get((self.state, frame.type))
        if handler is None:
            raise ProtocolError(f"{frame.type.name} not expected in state {self.state.value}")
        handler(self, frame)


class State(enum.Enum):
    AWAIT_START = "await-start"
    DECIDING_START = "deciding-start"
    AWAIT_AUTH = "await-auth"
    DECIDING_AUTH = "deciding-auth"
    AUTHENTICATED = "authenticated"
    CLOSED = "closed"


_PAUSED: Final = frozenset({State.CLOSED, State.DECIDING_START, State.DECIDING_AUTH})
DEFAULT_AUTH_TYPES: Final = (AuthType.CLEAR, AuthType.DIGEST_NO_QOP, AuthType.DIGEST)


class AmtSession(SessionManager[State, Event]):
    """The AMT side of the session manager.  Feed bytes with :meth:`receive_data`, read :meth:`events`,
    send what :meth:`data_to_send` returns (each item as its own write)."""

    def __init__(self, verifier: DigestVerifier, *, auth_types: tuple[AuthType, ...] = DEFAULT_AUTH_TYPES,
                 peer: object = None) -> None:
        super().__init__(Role.CONSOLE, State.AWAIT_START, authenticated=State.AUTHENTICATED, closed=State.CLOSED)
        self.verifier = verifier
        self.auth_types = auth_types
        self.peer = peer
        self.kind: SessionKind | None = None
        self.username: str | None = None
        self._pending_auth: AuthType | None = None

    # ------------------------------------------------------------------------------------------ decisions

    def accept(self) -> None:
        """Start the requested session (the listener checked it is enabled and not busy)."""
        self._expect(State.DECIDING_START)
        self._out.append(encode_start_reply(StartStatus.SUCCESS))
        self.state = State.AWAIT_AUTH
        self._resume()

    def refuse(self, status: StartStatus) -> None:
        self._expect(State.DECIDING_START)
        self._out.append(encode_start_reply(status))
        self._close(f"session refused ({status.name.lower()})")

    def grant(self) -> None:
        """The login is good and the user may use this session kind."""
        self._expect(State.DECIDING_AUTH)
        assert self._pending_auth is not None
        assert self.kind is not None
        self._out.append(encode_auth_reply(AuthStatus.SUCCESS, self._pending_auth))
        self._enter_session(self.kind)
        self._resume()

    def deny(self, reason: str = "authentication failed") -> None:
        self._expect(State.DECIDING_AUTH)
        assert self._pending_auth is not None
        self._out.append(encode_auth_reply(AuthStatus.FAILURE, self._pending_auth))
        self._close(reason)

    def close(self, reason: str = "closed by the engine") -> None:
        self._close(reason)

    def _paused(self) -> bool:
        """While a decision is pending, further input waits in the decoder."""
        return self.state in _PAUSED

    # ------------------------------------------------------------------------------------------ handlers

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
            self._out.append(encode_auth_reply(AuthStatus.SUCCESS, AuthType.QUERY, bytes(self.auth_types)))
            return
        if msg.auth_type not in self.auth_types:
            self._out.append(encode_auth_reply(AuthStatus.NOT_SUPPORTED, msg.auth_type))
            self._close(f"authentication type {msg.auth_type.name} not supported")
            return
        if msg.auth_type is AuthType.CLEAR:
            self._clear(msg)
        else:
            self._digest(msg)

    def _clear(self, msg: AuthMessage) -> None:
        parts = split_strings(msg.payload, limit=2)
        if len(parts) != 2 or len(parts[0]) > MAX_USER or len(parts[1]) > MAX_PASSWORD:
            raise ProtocolError("clear-text login needs a user (<= 32) and a password (<= 32)")
        user, password = (decode_text(p) for p in parts)
        self._decide(self._verify_clear(user, password), AuthType.CLEAR)

    def _verify_clear(self, user: str, password: str) -> AuthResult:
        """Clear-text logins run through the digest verifier too: we answer our own challenge with the
        given password, so lockout and the constant-time comparison are the very same code path."""
        nonce = self.verifier.issue_nonce()
        cnonce = "clear"
        response = compute_response(ha1=ha1(user, self.verifier.realm, password), method="POST",
                                    uri=REDIRECTION_URI, nonce=nonce, qop="auth", nc="00000001", cnonce=cnonce)
        fields = {"username": user, "realm": self.verifier.realm, "nonce": nonce, "uri": REDIRECTION_URI,
                  "qop": "auth", "nc": "00000001", "cnonce": cnonce, "response": response}
        return self.verifier.verify_fields("POST", fields, expected_uri=REDIRECTION_URI, peer=self.peer)

    def _digest(self, msg: AuthMessage) -> None:
        with_qop = msg.auth_type is AuthType.DIGEST
        names = DIGEST_FIELDS if with_qop else DIGEST_FIELDS[:-1]
        parts = split_strings(msg.payload, limit=len(DIGEST_FIELDS))
        if not with_qop and len(parts) == len(DIGEST_FIELDS) and not parts[-1]:
            parts.pop()  # a type 3 login may carry an empty eighth (qop) string
        if len(parts) != len(names):
            raise ProtocolError(f"digest login carries {len(parts)} strings, expected {len(names)}")
        fields = {n: decode_text(p) for n, p in zip(names, parts, strict=True)}
        if len(fields["username"]) > MAX_USER:
            raise ProtocolError(f"user name longer than {MAX_USER} characters")
        if not fields["response"] and not fields["nonce"]:
            self._challenge(msg.auth_type)  # the opening request: answer with a challenge
            return
        result = self.verifier.verify_fields("POST", fields, expected_uri=REDIRECTION_URI, peer=self.peer,
                                             allow_no_qop=not with_qop)
        if result.reason is Reason.STALE_NONCE:
            self._challenge(msg.auth_type)  # right credentials on an expired nonce: try again, not a failure
            return
        self._decide(result, msg.auth_type)

    def _challenge(self, auth_type: AuthType) -> None:
        """Status 1 ("continue") with realm, nonce and, for type 4, qop ``auth`` (type 3: empty qop)."""
        qop = b"auth" if auth_type is AuthType.DIGEST else b""
        payload = encode_strings([self.verifier.realm.encode(), self.verifier.issue_nonce().encode(), qop])
        self._out.append(encode_auth_reply(AuthStatus.FAILURE, auth_type, payload))

    def _decide(self, result: AuthResult, auth_type: AuthType) -> None:
        self._pending_auth = auth_type
        self.state = State.DECIDING_AUTH
        if result.ok:
            self.username = result.username
        self._events.append(LoginAttempt(result, auth_type))


AmtSession.HANDLERS = {
    (State.AWAIT_START, T.START_REDIRECTION_SESSION): AmtSession._on_start,
    (State.AWAIT_START, T.END_REDIRECTION_SESSION): AmtSession._on_end,
    (State.AWAIT_AUTH, T.AUTHENTICATE_SESSION): AmtSession._on_auth,
    (State.AWAIT_AUTH, T.END_REDIRECTION_SESSION): AmtSession._on_end,
    (State.AUTHENTICATED, T.END_REDIRECTION_SESSION): AmtSession._on_end,
}

__all__ = [
    "DEFAULT_AUTH_TYPES",
    "DIGEST_FIELDS",
    "REDIRECTION_URI",
    "AmtSession",
    "AuthMessage",
    "AuthStatus",
    "AuthType",
    "Event",
    "LoginAttempt",
    "SessionData",
    "SessionEnded",
    "SessionKind",
    "SessionRequested",
    "StartStatus",
    "State",
    "decode_text",
    "encode_auth",
    "encode_auth_reply",
    "encode_digest_fields",
    "encode_end",
    "encode_start",
    "encode_start_reply",
    "encode_strings",
    "split_strings",
]
