"""The session manager of the redirection protocol, console side: start a session, log in, end it.

Theory of operation (:class:`ConsoleSession`)::

    IDLE              --start()-->            AWAIT_START_REPLY   (sends 0x10 with the kind's tag)
    AWAIT_START_REPLY --0x11 status 0-->      AWAIT_AUTH_TYPES    (sends the auth query, type 0)
                      --0x11 other status-->  CLOSED (Refused)
    AWAIT_AUTH_TYPES  --0x14 type list-->     pick the first of ``preference`` the device offers:
                        digest (4 or 3):      AWAIT_CHALLENGE     (sends user + uri, empty fields)
                        clear (1):            AWAIT_AUTH_RESULT   (sends user + password)
                        none in common:       CLOSED (AuthenticationFailed)
    AWAIT_CHALLENGE   --0x14 status 1, realm nonce qop--> AWAIT_AUTH_RESULT (sends the digest response)
    AWAIT_AUTH_RESULT --0x14 status 0-->      AUTHENTICATED (Authenticated event)
                      --0x14 status 1 with a challenge--> AWAIT_AUTH_RESULT (a stale nonce: answer again)
                      --0x14 other-->         CLOSED (AuthenticationFailed)
    AUTHENTICATED     --message of the kind--> SessionData event
    any state         --end()-->              CLOSED (sends 0x12)

Transitions are the table ``HANDLERS`` keyed by (state, message type); any other message is a protocol
error and closes the session.  The digest answer is computed with the same functions the WS-MAN client uses
(:mod:`outband.proto.digest`), in the binary framing of AMT-PROTOCOLS.md §4.2.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ..digest import compute_response, ha1
from .frames import Frame, MessageType, ProtocolError, Role, SessionKind
from .session import (
    DIGEST_FIELDS,
    MAX_PASSWORD,
    MAX_USER,
    REDIRECTION_URI,
    AuthMessage,
    AuthStatus,
    AuthType,
    SessionData,
    SessionEnded,
    SessionManager,
    StartStatus,
    decode_text,
    encode_auth,
    encode_digest_fields,
    encode_end,
    encode_start,
    encode_strings,
    split_strings,
)

T = MessageType
DEFAULT_PREFERENCE: Final = (AuthType.DIGEST, AuthType.DIGEST_NO_QOP, AuthType.CLEAR)
NONCE_COUNT: Final = "00000001"
MAX_STALE_RETRIES: Final = 3


@dataclass(frozen=True, slots=True)
class Authenticated:
    auth_type: AuthType


@dataclass(frozen=True, slots=True)
class Refused:
    """The device refused to start the session (0x11 status: busy, unsupported...)."""

    status: int


@dataclass(frozen=True, slots=True)
class AuthenticationFailed:
    reason: str


ConsoleEvent = Authenticated | Refused | AuthenticationFailed | SessionData | SessionEnded


class ConsoleState(enum.Enum):
    IDLE = "idle"
    AWAIT_START_REPLY = "await-start-reply"
    AWAIT_AUTH_TYPES = "await-auth-types"
    AWAIT_CHALLENGE = "await-challenge"
    AWAIT_AUTH_RESULT = "await-auth-result"
    AUTHENTICATED = "authenticated"
    CLOSED = "closed"


def _new_cnonce() -> str:
    return secrets.token_hex(16)


class ConsoleSession(SessionManager[ConsoleState, ConsoleEvent]):
    """The console side of the session manager (sans-I/O): :meth:`start`, then feed the device's bytes to
    :meth:`receive_data`, read :meth:`events` and send :meth:`data_to_send`.

    ``preference`` orders the auth types to use; the first one the device lists wins, so the default takes
    digest with qop (type 4) and falls back to RFC 2069 digest (3) and then clear text (1).
    """

    def __init__(self, kind: SessionKind, username: str, password: str, *,
                 preference: tuple[AuthType, ...] = DEFAULT_PREFERENCE,
                 cnonce_factory: Callable[[], str] = _new_cnonce) -> None:
        if not 1 <= len(username.encode()) <= MAX_USER or len(password.encode()) > MAX_PASSWORD:
            raise ValueError(f"AMT user names have 1 to {MAX_USER} bytes and passwords at most {MAX_PASSWORD}")
        if not preference or any(t not in DEFAULT_PREFERENCE for t in preference):
            raise ValueError("preference lists auth types 1, 3 and 4 only")
        super().__init__(Role.AMT, ConsoleState.IDLE, authenticated=ConsoleState.AUTHENTICATED,
                         closed=ConsoleState.CLOSED)
        self.kind = kind
        self.username = username
        self._password = password
        self.preference = preference
        self._cnonce_factory = cnonce_factory
        self.auth_type: AuthType | None = None
        self._stale_retries = 0

    # ------------------------------------------------------------------------------------------ I/O

    def start(self) -> None:
        self._expect(ConsoleState.IDLE)
        self._out.append(encode_start(self.kind))
        self.state = ConsoleState.AWAIT_START_REPLY

    def end(self) -> None:
        """End the session (0x12); the caller closes the connection after sending."""
        if self.state not in (ConsoleState.IDLE, ConsoleState.CLOSED):
            self._out.append(encode_end())
        self._close("ended by the console")

    def _fail(self, event: Refused | AuthenticationFailed, reason: str) -> None:
        self._events.append(event)
        self._close(reason)

    # ------------------------------------------------------------------------------------------ handlers

    def _on_start_reply(self, frame: Frame) -> None:
        status = frame.data[1]
        if status != StartStatus.SUCCESS:
            name = StartStatus(status).name.lower() if status in StartStatus._value2member_map_ else str(status)
            self._fail(Refused(status), f"session refused ({name})")
            return
        self._out.append(encode_auth(AuthType.QUERY))
        self.state = ConsoleState.AWAIT_AUTH_TYPES

    def _on_auth_types(self, frame: Frame) -> None:
        msg = AuthMessage.decode(frame)
        if msg.auth_type is not AuthType.QUERY or msg.status != AuthStatus.SUCCESS:
            raise ProtocolError("the device did not answer the authentication query")
        offered = set(msg.payload)
        chosen = next((t for t in self.preference if t in offered), None)
        if chosen is None:
            self._fail(AuthenticationFailed("no common authentication type"),
                       f"device offers auth types {sorted(offered)}, none of {[int(t) for t in self.preference]}")
            return
        self.auth_type = chosen
        if chosen is AuthType.CLEAR:
            payload = encode_strings([self.username.encode(), self._password.encode()])
            self._out.append(encode_auth(chosen, payload))
            self.state = ConsoleState.AWAIT_AUTH_RESULT
            return
        opening = encode_digest_fields({"username": self.username, "uri": REDIRECTION_URI},
                                       with_qop=chosen is AuthType.DIGEST)
        self._out.append(encode_auth(chosen, opening))
        self.state = ConsoleState.AWAIT_CHALLENGE

    def _on_challenge(self, frame: Frame) -> None:
        msg = AuthMessage.decode(frame)
        if msg.auth_type is not self.auth_type or msg.status != AuthStatus.FAILURE:
            self._fail(AuthenticationFailed("the device refused the login"), "authentication failed")
            return
        self._answer(msg)

    def _answer(self, challenge: AuthMessage) -> None:
        parts = [decode_text(p) for p in split_strings(challenge.payload, limit=3)]
        if len(parts) < 2 or not parts[1]:
            raise ProtocolError("digest challenge without realm and nonce")
        realm, nonce = parts[0], parts[1]
        qop = parts[2] if len(parts) > 2 else ""
        with_qop = self.auth_type is AuthType.DIGEST
        if with_qop and qop != "auth":
            raise ProtocolError(f"type 4 challenge must offer qop 'auth', not {qop[:16]!r}")
        cnonce = self._cnonce_factory()
        response = compute_response(ha1=ha1(self.username, realm, self._password), method="POST",
                                    uri=REDIRECTION_URI, nonce=nonce, qop="auth" if with_qop else None,
                                    nc=NONCE_COUNT, cnonce=cnonce)
        fields = dict(zip(DIGEST_FIELDS, (self.username, realm, nonce, REDIRECTION_URI, cnonce, NONCE_COUNT,
                                          response, "auth"), strict=True))
        assert self.auth_type is not None
        self._out.append(encode_auth(self.auth_type, encode_digest_fields(fields, with_qop=with_qop)))
        self.state = ConsoleState.AWAIT_AUTH_RESULT

    def _on_auth_result(self, frame: Frame) -> None:
        msg = AuthMessage.decode(frame)
        if msg.status == AuthStatus.SUCCESS and msg.auth_type is self.auth_type:
            self._enter_session(self.kind)
            self._events.append(Authenticated(msg.auth_type))
            return
        if (msg.status == AuthStatus.FAILURE and msg.payload and self.auth_type is not AuthType.CLEAR
                and self._stale_retries < MAX_STALE_RETRIES):
            self._stale_retries += 1  # a fresh challenge: our nonce had expired
            self._answer(msg)
            return
        self._fail(AuthenticationFailed("the device refused the credentials"), "authentication failed")


ConsoleSession.HANDLERS = {
    (ConsoleState.AWAIT_START_REPLY, T.START_REDIRECTION_SESSION_REPLY): ConsoleSession._on_start_reply,
    (ConsoleState.AWAIT_AUTH_TYPES, T.AUTHENTICATE_SESSION_REPLY): ConsoleSession._on_auth_types,
    (ConsoleState.AWAIT_CHALLENGE, T.AUTHENTICATE_SESSION_REPLY): ConsoleSession._on_challenge,
    (ConsoleState.AWAIT_AUTH_RESULT, T.AUTHENTICATE_SESSION_REPLY): ConsoleSession._on_auth_result,
}

__all__ = [
    "DEFAULT_PREFERENCE",
    "Authenticated",
    "AuthenticationFailed",
    "ConsoleEvent",
    "ConsoleSession",
    "ConsoleState",
    "Refused",
]
