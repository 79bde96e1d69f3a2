"""Every redirection decoder and state machine against truncated, oversized and garbage input: the only outcome
is a ProtocolError (decoder) or a closed session (machines) -- never another exception, never a hang, and never
a buffer past the cap."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outband.proto.digest import DigestVerifier, ha1
from outband.proto.redir.console import ConsoleSession, ConsoleState
from outband.proto.redir.frames import MAX_FEED, MAX_MESSAGE, Frame, FrameDecoder, ProtocolError, Role, SessionKind
from outband.proto.redir.session import AmtSession, LoginAttempt, SessionRequested, State, split_strings
from outband.proto.redir.sol import SolConsole, SolHost, SolState

from .test_frames import AMT_SENDS, CONSOLE_SENDS

REALM = "Digest:0123456789ABCDEF0123456789ABCDEF"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def soup(templates: list[bytes]) -> st.SearchStrategy[bytes]:
    """Byte streams made of valid messages, truncated ones, mutated ones, oversized length fields and noise."""
    valid = st.sampled_from(templates)
    truncated = valid.flatmap(lambda m: st.integers(0, len(m) - 1).map(lambda n: m[:n]))
    mutated = st.tuples(valid, st.integers(0, 40), st.integers(0, 255)).map(
        lambda t: t[0][: t[1]] + bytes([t[2]]) + t[0][t[1] + 1 :])
    oversized = st.sampled_from([bytes.fromhex("1300000004ffffffff"), bytes.fromhex("2800000000000000ffff"),
                                 bytes.fromhex("14000000040004000000"), bytes.fromhex("110000000000000000000000ff")])
    noise = st.binary(max_size=64)
    part = st.one_of(valid, valid, truncated, mutated, oversized, noise)
    return st.lists(part, max_size=12).map(b"".join)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


CONSOLE_SOUP = soup([*CONSOLE_SENDS.values(), bytes.fromhex("130000000000000000"),
                     bytes.fromhex("130000000110000000") + b"\x05admin\x09P@ssw0rd!"])
AMT_SOUP = soup(list(AMT_SENDS.values()))
CUTS = st.lists(st.integers(0, 10_000), max_size=8)


@FUZZ
@given(data=st.one_of(CONSOLE_SOUP, AMT_SOUP), cuts=CUTS, role=st.sampled_from(list(Role)),
       kind=st.sampled_from([None, *SessionKind]))
def test_frame_decoder(data: bytes, cuts: list[int], role: Role, kind: SessionKind | None) -> None:
    decoder = FrameDecoder(role)
    if kind is not None:
        decoder.set_kind(kind)
    try:
        for chunk in chunked(data, cuts):
            decoder.feed(chunk)
            while (frame := decoder.next_frame()) is not None:
                assert isinstance(frame, Frame)
                assert frame.data[0] == frame.type
            assert decoder.buffered <= MAX_MESSAGE + MAX_FEED
    except ProtocolError:
        pass


def _verifier() -> DigestVerifier:
    return DigestVerifier({"admin": ha1("admin", REALM, "P@ssw0rd!")}, realm=REALM)


@FUZZ
@given(data=CONSOLE_SOUP, cuts=CUTS, grant=st.booleans())
def test_amt_session(data: bytes, cuts: list[int], grant: bool) -> None:
    session = AmtSession(_verifier())
    for chunk in chunked(bytes.fromhex("10000000534f4c20") + data, cuts):
        session.receive_data(chunk)
        for event in session.events():
            if isinstance(event, SessionRequested):
                session.accept()
            elif isinstance(event, LoginAttempt):
                session.grant() if grant and event.result.ok else session.deny()
        session.data_to_send()
    assert session.state in State


@FUZZ
@given(data=AMT_SOUP, cuts=CUTS)
def test_console_session(data: bytes, cuts: list[int]) -> None:
    session = ConsoleSession(SessionKind.SOL, "admin", "P@ssw0rd!")
    session.start()
    for chunk in chunked(data, cuts):
        session.receive_data(chunk)
        session.events()
        session.data_to_send()
    assert session.state in ConsoleState


def _frames(data: bytes, role: Role) -> list[Frame]:
    decoder = FrameDecoder(role)
    frames: list[Frame] = []
    try:
        for start in range(0, len(data), MAX_FEED):
            decoder.feed(data[start : start + MAX_FEED])
            while (frame := decoder.next_frame()) is not None:
                assert isinstance(frame, Frame)
                frames.append(frame)
    except ProtocolError:
        pass
    return frames


@FUZZ
@given(data=CONSOLE_SOUP, accept=st.booleans(), steps=st.lists(st.floats(0, 30), max_size=5))
def test_sol_host(data: bytes, accept: bool, steps: list[float]) -> None:
    host = SolHost(0.0)
    now = 0.0
    for frame in _frames(data, Role.CONSOLE):
        host.receive(frame, now)
        if host.state is SolState.DECIDING and accept:
            host.accept(now, powered=True)
        host.events()
        host.host_output(b"out", now)
        host.outgoing()
    for step in steps:
        now += step
        host.poll(now)
    assert host.state in SolState


@FUZZ
@given(data=AMT_SOUP, steps=st.lists(st.floats(0, 30), max_size=5))
def test_sol_console(data: bytes, steps: list[float]) -> None:
    console = SolConsole(0.0)
    console.start(0.0)
    now = 0.0
    for frame in _frames(data, Role.AMT):
        console.receive(frame, now)
        if console.state is SolState.ACTIVE:
            console.write(b"in", now)
        console.events()
        console.outgoing()
    for step in steps:
        now += step
        console.poll(now)
    assert console.state in SolState


@FUZZ
@given(payload=st.binary(max_size=600), limit=st.integers(1, 16))
def test_auth_strings(payload: bytes, limit: int) -> None:
    try:
        strings = split_strings(payload, limit)
    except ProtocolError:
        return
    assert len(strings) <= limit
    assert sum(len(s) + 1 for s in strings) == len(payload)
