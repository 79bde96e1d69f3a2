"""Hostile APF input: every decoder and both machines get truncated, oversized, mutated and random bytes in
random chunks.  The only outcomes allowed: a message, "need more", a ProtocolError from the decoder, or a
Terminated event from a machine -- never another exception -- and the caps hold throughout.  Then the same over
real TLS: garbage at our MPS and from a hostile MPS at the engine leaves both serving."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import ssl
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outband.aio.tls import generate_self_signed, server_context
from outband.engine import cira
from outband.proto.apf import (
    AmtConnection,
    ApfConnection,
    AuthenticationRequested,
    DecodeOptions,
    MpsConnection,
    ProtocolError,
    Terminated,
    decode_exact,
    decode_message,
)
from outband.proto.apf.codec import (
    ChannelData,
    ChannelOpen,
    Disconnect,
    KeepaliveRequest,
    Message,
    OtherGlobalRequest,
    ProtocolVersion,
    ServiceRequest,
    TcpipForward,
    UserAuthRequest,
)
from outband.proto.apf.constants import AMT_PORTS, MAX_STRING, DisconnectReason
from outband.testing.mps import LoopbackMps

from ._kit import MPS_PASSWORD, MPS_USER, cira_engine, mps_options

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEVICE = uuid.UUID("55e29e6b-6aec-11ea-b61d-00000000a0e7")
WINDOW = 32768
LARGEST_PRE_AUTH = 1 + 4 * (4 + MAX_STRING) + 1
"""A USERAUTH_REQUEST with every string at its cap: the most an MPS buffers before a login."""
LARGEST = 1 + 3 * (4 + MAX_STRING) + 1 + 4 * 4 + 4 + WINDOW
"""A udp-send-to with every field at its cap: the most a connection ever buffers."""

VALID: list[bytes] = [m.encode() for m in (
    ProtocolVersion(DEVICE),
    ServiceRequest("auth@amt.intel.com"),
    UserAuthRequest("0123456789abcdef", "Secret1!"),
    ServiceRequest("pfwd@amt.intel.com"),
    TcpipForward("sim", 16992),
    OtherGlobalRequest("x", True),
    ChannelOpen("forwarded-tcpip", 1, 100, "sim", 16992, "a", 1),
    ChannelData(1, b"data"),
    KeepaliveRequest(1),
)]


def check_caps(message: Message, options: DecodeOptions) -> None:
    for field in dataclasses.fields(message):
        value = getattr(message, field.name)
        if isinstance(value, str):
            assert len(value.encode("utf-8", "surrogatepass")) <= 3 * MAX_STRING  # U+FFFD may triple a byte
        if isinstance(value, bytes):
            assert len(value) <= options.max_data


mutations = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda raw, cut: raw[:cut], st.sampled_from(VALID), st.integers(0, 120)),
    st.builds(lambda raw, at, byte: raw[:at] + bytes([byte]) + raw[at + 1:],
              st.sampled_from(VALID), st.integers(0, 120), st.integers(0, 255)),
    st.builds(lambda raw, at, junk: raw[:at] + junk + raw[at:],
              st.sampled_from(VALID), st.integers(0, 120), st.binary(max_size=16)),
    st.builds(lambda kind, length: bytes([kind]) + length.to_bytes(4, "big") + bytes(8),
              st.sampled_from([5, 6, 50, 51, 80, 90, 92, 94]), st.integers(0, 2**32 - 1)),
)


@FUZZ
@given(mutations, st.sampled_from([DecodeOptions(), DecodeOptions(max_data=WINDOW, success_has_port=True)]))
def test_the_decoder_only_decodes_waits_or_refuses(data: bytes, options: DecodeOptions) -> None:
    try:
        decoded = decode_message(data, options)
    except ProtocolError:
        return
    if decoded is not None:
        message, length = decoded
        assert 0 < length <= len(data)
        check_caps(message, options)
    with contextlib.suppress(ProtocolError):
        decode_exact(data, options)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def feed(machine: ApfConnection, data: bytes, cuts: list[int], bound: int) -> list[object]:
    events: list[object] = []
    for piece in chunked(data, cuts):
        events += machine.receive_data(piece, 0.0)
        assert len(machine._in) <= bound  # nothing grows past one capped message
        machine.data_to_send()
    events += machine.handle_timer(1e9)  # an AMT side sends its keepalive...
    events += machine.handle_timer(2e9)  # ...and gives up on the reply: every connection ends by now
    return events


def established_mps() -> MpsConnection:
    mps = MpsConnection()
    mps.start(0.0)
    mps.receive_data(b"".join(VALID[:3]), 0.0)
    mps.accept_authentication()
    mps.receive_data(VALID[3] + VALID[4], 0.0)
    mps.data_to_send()
    return mps


def established_amt() -> AmtConnection:
    amt = AmtConnection(system_uuid=DEVICE, username="u", password="p", hostname="sim", ports=(16992,))
    mps = MpsConnection()
    mps.start(0.0)
    amt.start(0.0)
    for _ in range(10):
        mps.receive_data(amt.data_to_send(), 0.0)
        if isinstance(mps.state, type(mps.state)) and mps.state.value == "auth-pending":
            mps.accept_authentication()
        amt.receive_data(mps.data_to_send(), 0.0)
    assert amt.forwarded_ports == [16992]
    return amt


@FUZZ
@given(st.one_of(mutations, st.lists(mutations, max_size=6).map(b"".join)), st.lists(st.integers(0, 400), max_size=8))
def test_a_fresh_mps_survives_anything(data: bytes, cuts: list[int]) -> None:
    mps = MpsConnection()
    mps.start(0.0)
    events = feed(mps, data, cuts, LARGEST_PRE_AUTH)
    assert mps.closed  # the timers end it at the latest
    assert sum(isinstance(e, Terminated) for e in events) == 1
    assert not any(isinstance(e, AuthenticationRequested) and len(e.password) > 3 * MAX_STRING for e in events)


@FUZZ
@given(st.one_of(mutations, st.lists(mutations, max_size=6).map(b"".join)), st.lists(st.integers(0, 400), max_size=8))
def test_an_established_mps_survives_anything(data: bytes, cuts: list[int]) -> None:
    events = feed(established_mps(), data, cuts, LARGEST)
    assert sum(isinstance(e, Terminated) for e in events) == 1


@FUZZ
@given(st.one_of(mutations, st.lists(mutations, max_size=6).map(b"".join)), st.lists(st.integers(0, 400), max_size=8))
def test_an_established_amt_side_survives_anything(data: bytes, cuts: list[int]) -> None:
    events = feed(established_amt(), data, cuts, LARGEST)
    assert sum(isinstance(e, Terminated) for e in events) == 1


@FUZZ
@given(st.lists(st.integers(0, 2000), max_size=12))
def test_chunking_never_changes_what_a_conversation_means(cuts: list[int]) -> None:
    conversation = b"".join(VALID[:3])
    whole = MpsConnection()
    whole.start(0.0)
    expected = whole.receive_data(conversation, 0.0)
    pieces = MpsConnection()
    pieces.start(0.0)
    got: list[object] = []
    for piece in chunked(conversation, cuts):
        got += pieces.receive_data(piece, 0.0)
    assert got == expected
    assert pieces.data_to_send() == whole.data_to_send()


# ---------------------------------------------------------------------------------------------- over TLS


async def test_garbage_at_the_mps_leaves_it_serving(tmp_path: Path) -> None:
    async with LoopbackMps({MPS_USER: MPS_PASSWORD}, tls_dir=tmp_path) as mps:
        context = ssl.create_default_context(cafile=str(mps.cert_file))
        for attempt in range(12):
            reader, writer = await asyncio.open_connection("127.0.0.1", mps.port, ssl=context,
                                                           server_hostname="localhost")
            if attempt == 0:  # a type APF does not have: told why, then closed
                writer.write(bytes([0x60]) + os.urandom(40))
                async with asyncio.timeout(10):
                    assert await reader.read() == Disconnect(DisconnectReason.PROTOCOL_ERROR).encode()
            else:
                writer.write(VALID[0][: attempt * 8] + os.urandom(64 * attempt))
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
        async with cira_engine(tmp_path, mps_options(mps)) as env:
            async with asyncio.timeout(10):
                device = await mps.wait_device(ports=AMT_PORTS)
            async with device.amt_client("admin", env.password) as amt:
                assert (await amt.get("AMT_GeneralSettings"))["HostName"] == "cira-sim"


async def test_a_hostile_mps_cannot_take_the_engine_down(tmp_path: Path) -> None:
    cert, key = tmp_path / "hostile.pem", tmp_path / "hostile-key.pem"
    generate_self_signed(cert, key, "localhost", hosts=["127.0.0.1"])
    answers = [os.urandom(n) for n in (1, 7, 93, 500, 5000)] + [
        bytes.fromhex("06") + (10**6).to_bytes(4, "big"),  # a service name announced at 1 MB
        bytes.fromhex("06") + (18).to_bytes(4, "big") + b"auth@amt.intel.com" + bytes.fromhex("34" "60"),
    ]
    served = 0

    async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await reader.read(200)
        writer.write(answers[served % len(answers)])
        served += 1
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hostile, "127.0.0.1", 0, ssl=server_context(cert, key))
    port = server.sockets[0].getsockname()[1]
    options = cira.CiraOptions.parse(f"127.0.0.1:{port}", MPS_USER, MPS_PASSWORD, ca_file=cert)
    tuning = cira.CiraTuning(backoff=cira.Backoff(base=0.01, cap=0.02), dial_timeout=2.0)
    try:
        async with cira_engine(tmp_path, options, tuning=tuning) as env:
            async with asyncio.timeout(30):
                status = await env.client.wait_until(lambda s: s.failures >= len(answers))
            assert status.connects == 0  # and it kept dialling through all of it
    finally:
        server.close()
        await server.wait_closed()
