"""The session manager, both sides: start, the auth query, logins of types 1, 3 and 4, refusals, the state table."""

from __future__ import annotations

import itertools

import pytest

from outband.proto.digest import DigestVerifier, Reason, compute_response, ha1
from outband.proto.redir.console import (
    Authenticated,
    AuthenticationFailed,
    ConsoleSession,
    ConsoleState,
    Refused,
)
from outband.proto.redir.frames import MessageType, SessionKind
from outband.proto.redir.session import (
    REDIRECTION_URI,
    AmtSession,
    AuthType,
    LoginAttempt,
    SessionData,
    SessionEnded,
    SessionRequested,
    StartStatus,
    State,
    encode_auth,
    encode_digest_fields,
    encode_start,
    encode_strings,
    split_strings,
)

from .test_frames import CONSOLE_SENDS

REALM = "Digest:0123456789ABCDEF0123456789ABCDEF"
PASSWORD = "P@ssw0rd!"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(clock: Clock | None = None) -> DigestVerifier:
    return DigestVerifier({"admin": ha1("admin", REALM, PASSWORD)}, realm=REALM, clock=clock or Clock())


def started(v: DigestVerifier | None = None, kind: SessionKind = SessionKind.SOL) -> AmtSession:
    s = AmtSession(v or verifier())
    s.receive_data(encode_start(kind))
    assert s.events() == [SessionRequested(kind)]
    s.accept()
    assert s.data_to_send() == [bytes.fromhex("11000000010001000000000000")]
    return s


def challenge_of(s: AmtSession, auth_type: AuthType) -> tuple[str, str, bytes]:
    s.receive_data(encode_auth(auth_type, encode_digest_fields({"username": "admin", "uri": REDIRECTION_URI},
                                                               with_qop=auth_type is AuthType.DIGEST)))
    [reply] = s.data_to_send()
    assert reply[:5] == bytes([0x14, 1, 0, 0, auth_type])
    realm, nonce, qop = (p.decode() for p in split_strings(reply[9:]))
    return realm, nonce, qop.encode()


# ---------------------------------------------------------------------------------------------- AMT side


def test_start_reply_is_13_bytes_and_unknown_tags_are_refused() -> None:
    started()
    s = AmtSession(verifier())
    s.receive_data(bytes.fromhex("10000000") + b"FOO!")
    assert s.data_to_send() == [bytes.fromhex("11010000010001000000000000")]
    assert s.closed


@pytest.mark.parametrize("status", [StartStatus.BUSY, StartStatus.UNSUPPORTED])
def test_a_refused_start_says_why_and_closes(status: StartStatus) -> None:
    s = AmtSession(verifier())
    s.receive_data(encode_start(SessionKind.SOL))
    s.events()
    s.refuse(status)
    assert s.data_to_send()[0][1] == status
    assert s.closed


def test_the_auth_query_lists_types_1_3_and_4() -> None:
    s = started()
    s.receive_data(bytes.fromhex("130000000000000000"))
    assert s.data_to_send() == [bytes.fromhex("14000000000300000001030 4".replace(" ", ""))]
    assert not s.closed


def test_amtterm_1_4_clear_text_login() -> None:
    s = started()
    user_pass = b"\x05admin" + bytes([len(PASSWORD)]) + PASSWORD.encode()
    # amtterm's redir_auth: only the low byte of the u32 length is set.
    s.receive_data(bytes([0x13, 0, 0, 0, 1, len(user_pass), 0, 0, 0]) + user_pass)
    [event] = s.events()
    assert isinstance(event, LoginAttempt)
    assert event.result.ok
    assert event.auth_type is AuthType.CLEAR
    s.grant()
    assert s.data_to_send() == [bytes.fromhex("140000000100000000")]
    assert s.state is State.AUTHENTICATED
    assert s.username == "admin"


def test_type_4_digest_login_as_meshcommander_sends_it() -> None:
    s = started()
    realm, nonce, qop = challenge_of(s, AuthType.DIGEST)
    assert (realm, qop) == (REALM, b"auth")
    cnonce = "0a4f113b" * 4
    response = compute_response(ha1=ha1("admin", realm, PASSWORD), method="POST", uri=REDIRECTION_URI, nonce=nonce,
                                qop="auth", nc="00000002", cnonce=cnonce)
    fields = {"username": "admin", "realm": realm, "nonce": nonce, "uri": REDIRECTION_URI, "cnonce": cnonce,
              "nc": "00000002", "response": response, "qop": "auth"}
    s.receive_data(encode_auth(AuthType.DIGEST, encode_digest_fields(fields)))
    [event] = s.events()
    assert isinstance(event, LoginAttempt)
    assert event.result.ok


def test_type_3_digest_without_qop_and_with_amtterms_trailing_empty_qop() -> None:
    for trailing in (b"", b"\x00"):
        s = started()
        realm, nonce, qop = challenge_of(s, AuthType.DIGEST_NO_QOP)
        assert qop == b""
        cnonce = "ab" * 16
        response = compute_response(ha1=ha1("admin", realm, PASSWORD), method="POST", uri=REDIRECTION_URI,
                                    nonce=nonce)
        payload = encode_strings([b"admin", realm.encode(), nonce.encode(), REDIRECTION_URI.encode(),
                                  cnonce.encode(), b"00000002", response.encode()]) + trailing
        s.receive_data(encode_auth(AuthType.DIGEST_NO_QOP, payload))
        [event] = s.events()
        assert isinstance(event, LoginAttempt)
        assert event.result.ok, event.result


def test_a_wrong_password_is_a_failed_attempt_then_denied_and_closed() -> None:
    s = started()
    realm, nonce, _ = challenge_of(s, AuthType.DIGEST)
    response = compute_response(ha1=ha1("admin", realm, "wrong"), method="POST", uri=REDIRECTION_URI, nonce=nonce,
                                qop="auth", nc="00000001", cnonce="c")
    fields = {"username": "admin", "realm": realm, "nonce": nonce, "uri": REDIRECTION_URI, "cnonce": "c",
              "nc": "00000001", "response": response, "qop": "auth"}
    s.receive_data(encode_auth(AuthType.DIGEST, encode_digest_fields(fields)))
    [event] = s.events()
    assert isinstance(event, LoginAttempt)
    assert event.result.reason is Reason.BAD_CREDENTIALS
    assert event.result.counted
    s.deny()
    assert s.data_to_send() == [bytes.fromhex("140100000400000000")]
    assert s.closed


@pytest.mark.parametrize("response", ["", "0", "a" * 31, "z" * 32])
def test_cve_2017_5689_empty_or_short_responses_never_pass(response: str) -> None:
    s = started()
    realm, nonce, _ = challenge_of(s, AuthType.DIGEST)
    fields = {"username": "admin", "realm": realm, "nonce": nonce, "uri": REDIRECTION_URI, "cnonce": "c",
              "nc": "00000001", "response": response, "qop": "auth"}
    s.receive_data(encode_auth(AuthType.DIGEST, encode_digest_fields(fields)))
    [event] = s.events()
    assert isinstance(event, LoginAttempt)
    assert not event.result.ok


def test_a_right_answer_on_an_expired_nonce_gets_a_fresh_challenge() -> None:
    clock = Clock()
    s = started(verifier(clock))
    realm, nonce, _ = challenge_of(s, AuthType.DIGEST)
    clock.now += 3600 * 2
    response = compute_response(ha1=ha1("admin", realm, PASSWORD), method="POST", uri=REDIRECTION_URI, nonce=nonce,
                                qop="auth", nc="00000001", cnonce="c")
    fields = {"username": "admin", "realm": realm, "nonce": nonce, "uri": REDIRECTION_URI, "cnonce": "c",
              "nc": "00000001", "response": response, "qop": "auth"}
    s.receive_data(encode_auth(AuthType.DIGEST, encode_digest_fields(fields)))
    assert s.events() == []
    [reply] = s.data_to_send()
    assert reply[:5] == bytes([0x14, 1, 0, 0, 4])
    assert split_strings(reply[9:])[1].decode() != nonce


def test_kerberos_is_not_supported() -> None:
    s = started()
    s.receive_data(encode_auth(AuthType.KERBEROS, b""))
    assert s.data_to_send() == [bytes.fromhex("140200000200000000")]
    assert s.closed


@pytest.mark.parametrize("payload", [
    b"\x05admin",                                  # no password
    b"\x21" + b"a" * 33 + b"\x01x",               # user name over 32
    b"\x05admin\x21" + b"p" * 33,                  # password over 32
    b"\x05admin\x09short",                         # string runs past the end
])
def test_malformed_clear_logins_close_the_session(payload: bytes) -> None:
    s = started()
    s.receive_data(encode_auth(AuthType.CLEAR, payload))
    assert s.closed
    [ended] = s.events()
    assert isinstance(ended, SessionEnded)
    assert "protocol error" in ended.reason


def test_pipelined_input_waits_for_each_decision() -> None:
    """amtterm-style clients write their next message as soon as they can; nothing is parsed ahead of a
    decision the listener has not made yet."""
    s = AmtSession(verifier())
    login = b"\x05admin" + bytes([len(PASSWORD)]) + PASSWORD.encode()
    s.receive_data(encode_start(SessionKind.SOL) + encode_auth(AuthType.CLEAR, login) + CONSOLE_SENDS[
        MessageType.SOL_START])
    assert [type(e) for e in s.events()] == [SessionRequested]
    s.accept()
    assert [type(e) for e in s.events()] == [LoginAttempt]
    s.grant()
    [data] = s.events()
    assert isinstance(data, SessionData)
    assert data.frame.data == CONSOLE_SENDS[MessageType.SOL_START]


def test_ten_failures_lock_out_even_the_right_password() -> None:
    v = verifier()
    for _ in range(10):
        s = started(v)
        s.receive_data(encode_auth(AuthType.CLEAR, b"\x05admin\x05wrong"))
        [event] = s.events()
        assert isinstance(event, LoginAttempt)
        assert not event.result.ok
    s = started(v)
    s.receive_data(encode_auth(AuthType.CLEAR, b"\x05admin" + bytes([len(PASSWORD)]) + PASSWORD.encode()))
    [event] = s.events()
    assert isinstance(event, LoginAttempt)
    assert event.result.reason is Reason.LOCKED_OUT


# The state table: a console message in a state the table does not list closes the session.
ALLOWED = {
    State.AWAIT_START: {MessageType.START_REDIRECTION_SESSION, MessageType.END_REDIRECTION_SESSION},
    State.AWAIT_AUTH: {MessageType.AUTHENTICATE_SESSION, MessageType.END_REDIRECTION_SESSION},
    State.AUTHENTICATED: {MessageType.END_REDIRECTION_SESSION} | {t for t in CONSOLE_SENDS if 0x20 <= t <= 0x2B},
}


def session_in(state: State) -> AmtSession:
    if state is State.AWAIT_START:
        return AmtSession(verifier())
    s = started()
    if state is State.AUTHENTICATED:
        s.receive_data(encode_auth(AuthType.CLEAR, b"\x05admin" + bytes([len(PASSWORD)]) + PASSWORD.encode()))
        s.events()
        s.grant()
    s.data_to_send()
    return s


@pytest.mark.parametrize(("state", "mtype"), list(itertools.product(ALLOWED, CONSOLE_SENDS)),
                         ids=[f"{s.value}-{t.name}" for s, t in itertools.product(ALLOWED, CONSOLE_SENDS)])
def test_state_table(state: State, mtype: MessageType) -> None:
    s = session_in(state)
    s.receive_data(CONSOLE_SENDS[mtype])
    events = s.events()
    if mtype not in ALLOWED[state]:
        assert s.closed
        assert isinstance(events[-1], SessionEnded)
        assert "protocol error" in events[-1].reason
    elif mtype is MessageType.END_REDIRECTION_SESSION:
        assert s.closed
        assert events == [SessionEnded("ended by the console")]
    else:
        assert not s.closed, events


# ---------------------------------------------------------------------------------------------- both sides


def converse(console: ConsoleSession, amt: AmtSession, decide: bool = True) -> list[object]:
    """Run the two machines against each other; the AMT side accepts and grants whatever is ok."""
    seen: list[object] = []
    console.start()
    for _ in range(20):
        for data in console.data_to_send():
            amt.receive_data(data)
        for event in amt.events():
            if isinstance(event, SessionRequested) and decide:
                amt.accept()
            elif isinstance(event, LoginAttempt) and decide:
                amt.grant() if event.result.ok else amt.deny()
        for data in amt.data_to_send():
            console.receive_data(data)
        events = console.events()
        seen += events
        if console.closed or console.state is ConsoleState.AUTHENTICATED:
            break
    return seen


@pytest.mark.parametrize(("offered", "used"), [
    ((AuthType.CLEAR, AuthType.DIGEST_NO_QOP, AuthType.DIGEST), AuthType.DIGEST),
    ((AuthType.CLEAR, AuthType.DIGEST_NO_QOP), AuthType.DIGEST_NO_QOP),
    ((AuthType.CLEAR,), AuthType.CLEAR),
])
def test_the_console_prefers_digest_and_falls_back_to_what_is_offered(offered: tuple[AuthType, ...],
                                                                     used: AuthType) -> None:
    console = ConsoleSession(SessionKind.SOL, "admin", PASSWORD)
    amt = AmtSession(verifier(), auth_types=offered)
    assert Authenticated(used) in converse(console, amt)
    assert amt.state is State.AUTHENTICATED


def test_the_console_gives_up_when_nothing_is_in_common() -> None:
    console = ConsoleSession(SessionKind.SOL, "admin", PASSWORD, preference=(AuthType.DIGEST,))
    events = converse(console, AmtSession(verifier(), auth_types=(AuthType.CLEAR,)))
    assert isinstance(events[0], AuthenticationFailed)
    assert console.closed


def test_the_console_reports_a_wrong_password() -> None:
    console = ConsoleSession(SessionKind.SOL, "admin", "wrong")
    events = converse(console, AmtSession(verifier()))
    assert any(isinstance(e, AuthenticationFailed) for e in events)
    assert console.closed


def test_the_console_reports_a_busy_device() -> None:
    console = ConsoleSession(SessionKind.SOL, "admin", PASSWORD)
    amt = AmtSession(verifier())
    console.start()
    amt.receive_data(console.data_to_send()[0])
    amt.events()
    amt.refuse(StartStatus.BUSY)
    console.receive_data(amt.data_to_send()[0])
    assert console.events()[0] == Refused(StartStatus.BUSY)
    assert console.closed


def test_the_console_answers_a_fresh_challenge_after_a_stale_nonce() -> None:
    clock = Clock()
    v = verifier(clock)
    console = ConsoleSession(SessionKind.SOL, "admin", PASSWORD)
    amt = AmtSession(v)
    console.start()
    amt.receive_data(console.data_to_send()[0])
    amt.events()
    amt.accept()
    for _ in range(2):  # start reply -> query -> types -> opening digest request -> challenge
        for data in amt.data_to_send():
            console.receive_data(data)
        for data in console.data_to_send():
            amt.receive_data(data)
    for data in amt.data_to_send():
        console.receive_data(data)  # the console answers the challenge...
    clock.now += 7200  # ...but the answer reaches AMT after the nonce expired
    for data in console.data_to_send():
        amt.receive_data(data)
    assert amt.events() == []  # the late answer earned a fresh challenge, not a failure
    assert Authenticated(AuthType.DIGEST) in converse_rest(console, amt)


def converse_rest(console: ConsoleSession, amt: AmtSession) -> list[object]:
    seen: list[object] = []
    for _ in range(5):
        for data in amt.data_to_send():
            console.receive_data(data)
        seen += console.events()
        for data in console.data_to_send():
            amt.receive_data(data)
        for event in amt.events():
            if isinstance(event, LoginAttempt):
                amt.grant()
    for data in amt.data_to_send():
        console.receive_data(data)
    return seen + console.events()


def test_console_credentials_are_checked_against_amts_limits() -> None:
    with pytest.raises(ValueError, match="at most 32"):
        ConsoleSession(SessionKind.SOL, "admin", "p" * 33)
    with pytest.raises(ValueError, match="1 to 32"):
        ConsoleSession(SessionKind.SOL, "", PASSWORD)
