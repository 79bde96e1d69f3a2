"""APF messages against hand-assembled wire bytes (the layouts of AMT-PROTOCOLS.md §5.2 and the bytes MeshCentral's
MPS and AMT-side client write), both directions, plus the decoder's rules: truncation waits, caps refuse early,
context decides REQUEST_SUCCESS, unknown types are errors."""

from __future__ import annotations

import uuid

import pytest

from outband.proto.apf import DecodeOptions, ProtocolError, decode_exact, decode_message
from outband.proto.apf import errors as E
from outband.proto.apf.codec import (
    ChannelClose,
    ChannelData,
    ChannelOpen,
    ChannelOpenConfirmation,
    ChannelOpenFailure,
    ChannelWindowAdjust,
    Disconnect,
    KeepaliveOptionsReply,
    KeepaliveOptionsRequest,
    KeepaliveReply,
    KeepaliveRequest,
    Message,
    OtherGlobalRequest,
    ProtocolVersion,
    RequestFailure,
    RequestSuccess,
    ServiceAccept,
    ServiceRequest,
    TcpipForward,
    UdpSendTo,
    UserAuthFailure,
    UserAuthRequest,
    UserAuthSuccess,
)
from outband.proto.apf.constants import DisconnectReason, OpenFailureReason


def s(text: str) -> str:
    """An APF string in hex: u32 length, then the bytes."""
    raw = text.encode()
    return f"{len(raw):08x}{raw.hex()}"


SYSTEM_UUID = uuid.UUID("55e29e6b-6aec-11ea-b61d-00000000a0e7")
WITH_PORT = DecodeOptions(success_has_port=True)

VECTORS: list[tuple[Message, str, DecodeOptions]] = [
    (Disconnect(2), "01" "00000002" "0000", DecodeOptions()),
    (ServiceRequest("auth@amt.intel.com"), "05" + s("auth@amt.intel.com"), DecodeOptions()),
    (ServiceAccept("pfwd@amt.intel.com"), "06" + s("pfwd@amt.intel.com"), DecodeOptions()),
    # MeshCentral's AMT-side client: user, service pfwd, method "password", FALSE, password
    (UserAuthRequest("0123456789abcdef", "P@ss"),
     "32" + s("0123456789abcdef") + s("pfwd@amt.intel.com") + s("password") + "00" + s("P@ss"), DecodeOptions()),
    (UserAuthRequest("someone", None, method="none"),
     "32" + s("someone") + s("pfwd@amt.intel.com") + s("none"), DecodeOptions()),
    (UserAuthFailure(), "33" + s("password") + "00", DecodeOptions()),
    (UserAuthSuccess(), "34", DecodeOptions()),
    (TcpipForward("cira-sim", 16993), "50" + s("tcpip-forward") + "01" + s("cira-sim") + "00004261", DecodeOptions()),
    (TcpipForward("cira-sim", 5900, cancel=True),
     "50" + s("cancel-tcpip-forward") + "01" + s("cira-sim") + "0000170c", DecodeOptions()),
    (UdpSendTo("10.0.0.1", 162, "10.0.0.2", 1024, b"\x30\x00"),
     "50" + s("udp-send-to@amt.intel.com") + "00" + s("10.0.0.1") + "000000a2" + s("10.0.0.2") + "00000400"
     + "00000002" + "3000", DecodeOptions()),
    (OtherGlobalRequest("keepalive@openssh.com", True), "50" + s("keepalive@openssh.com") + "01", DecodeOptions()),
    (RequestSuccess(16992), "51" "00004260", WITH_PORT),
    (RequestSuccess(), "51", DecodeOptions()),
    (RequestFailure(), "52", DecodeOptions()),
    # MPS SendChannelOpen: type, sender 4, window 32768, 0xFFFFFFFF, target (MeshCentral sends "" when it has no
    # host), port, originator 1.2.3.4:1024
    (ChannelOpen("forwarded-tcpip", 4, 32768, "", 16992, "1.2.3.4", 1024),
     "5a" + s("forwarded-tcpip") + "00000004" "00008000" "ffffffff" + s("") + "00004260" + s("1.2.3.4") + "00000400",
     DecodeOptions()),
    (ChannelOpenConfirmation(4, 1, 32768), "5b" "00000004" "00000001" "00008000" "ffffffff", DecodeOptions()),
    # MPS SendChannelOpenFailure: recipient, reason, then two zero u32s
    (ChannelOpenFailure(4, 3), "5c" "00000004" "00000003" "00000000" "00000000", DecodeOptions()),
    (ChannelWindowAdjust(1, 16385), "5d" "00000001" "00004001", DecodeOptions()),
    (ChannelData(1, b"abc"), "5e" "00000001" "00000003" "616263", DecodeOptions()),
    (ChannelClose(1), "61" "00000001", DecodeOptions()),
    (ProtocolVersion(SYSTEM_UUID), "c0" "00000001" "00000000" "00000004" "6b9ee255ec6aea11b61d00000000a0e7"
     + "00" * 64, DecodeOptions()),
    (KeepaliveRequest(255), "d0" "000000ff", DecodeOptions()),
    (KeepaliveReply(255), "d1" "000000ff", DecodeOptions()),
    (KeepaliveOptionsRequest(30, 0), "d2" "0000001e" "00000000", DecodeOptions()),
    (KeepaliveOptionsReply(30, 0), "d3" "0000001e" "00000000", DecodeOptions()),
]


@pytest.mark.parametrize(("message", "wire", "options"), VECTORS, ids=lambda v: type(v).__name__)
def test_encode_and_decode_against_the_wire(message: Message, wire: str, options: DecodeOptions) -> None:
    assert message.encode().hex() == wire
    assert decode_exact(bytes.fromhex(wire), options) == message


@pytest.mark.parametrize(("message", "wire", "options"), VECTORS, ids=lambda v: type(v).__name__)
def test_every_proper_prefix_waits_for_more(message: Message, wire: str, options: DecodeOptions) -> None:
    raw = bytes.fromhex(wire)
    for end in range(len(raw)):
        assert decode_message(raw[:end], options) is None
    with pytest.raises(ProtocolError, match=r"truncated|empty"):
        decode_exact(raw[:-1], options)


def test_messages_back_to_back_in_one_buffer() -> None:
    stream = b"".join(bytes.fromhex(wire) for _, wire, options in VECTORS if options == DecodeOptions())
    expected = [m for m, _, options in VECTORS if options == DecodeOptions()]
    seen, pos = [], 0
    while pos < len(stream):
        decoded = decode_message(memoryview(stream)[pos:])
        assert decoded is not None
        seen.append(decoded[0])
        pos += decoded[1]
    assert seen == expected


def guid_to_str(hex_bytes: str) -> str:
    """MPS/MeshCentral ``guidToStr``: the first three fields byte-swapped, then the rest as is."""
    g = hex_bytes
    return (g[6:8] + g[4:6] + g[2:4] + g[0:2] + "-" + g[10:12] + g[8:10] + "-" + g[14:16] + g[12:14] + "-"
            + g[16:20] + "-" + g[20:])


def test_the_uuid_reads_back_as_the_mps_reads_it() -> None:
    raw = ProtocolVersion(SYSTEM_UUID).encode()
    assert len(raw) == 93
    assert guid_to_str(raw[13:29].hex()) == str(SYSTEM_UUID)


def test_request_success_length_depends_on_the_pending_request() -> None:
    raw = bytes.fromhex("51" "00004260")
    assert decode_message(raw, WITH_PORT) == (RequestSuccess(16992), 5)
    assert decode_message(raw) == (RequestSuccess(), 1)  # answering a cancel: the rest is the next message


def test_unknown_global_request_is_read_to_its_flag_only() -> None:
    raw = bytes.fromhex("50" + s("x-unknown") + "00" + "d0000000ff")
    assert decode_message(raw) == (OtherGlobalRequest("x-unknown", False), 15)


def test_mps_user_auth_failure_with_its_extra_byte() -> None:
    """Both MPS implementations append a u16 where SSH has one boolean: the message parses, one byte is left."""
    raw = bytes.fromhex("33" + s("password") + "0000")
    assert decode_message(raw) == (UserAuthFailure(), 14)


@pytest.mark.parametrize("kind", [0, 2, 96, 98, 193, 250, 255])
def test_unknown_message_types_are_protocol_errors(kind: int) -> None:
    with pytest.raises(ProtocolError, match=f"unknown message type {kind}"):
        decode_message(bytes([kind]) + bytes(16))


@pytest.mark.parametrize("header", [
    "05" + "00000801",                                    # service name of 2049 bytes
    "32" + s("user") + "00000801",                        # service field of a login
    "32" + s("user") + s("pfwd@amt.intel.com") + s("password") + "00" + "00000801",  # password
    "5a" + "ffffffff",                                    # channel type of 4 GiB
    "5c" "00000001" "00000002" "00000801",                # open-failure description
    "50" + s("udp-send-to@amt.intel.com") + "00" + s("a") + "00000001" + s("b") + "00000001" + "00100001",
])
def test_caps_refuse_before_the_announced_bytes_arrive(header: str) -> None:
    with pytest.raises(ProtocolError, match="cap"):
        decode_message(bytes.fromhex(header))


def test_channel_data_is_capped_at_the_window_given() -> None:
    assert decode_message(bytes.fromhex("5e" "00000001" "00100000")) is None  # 1 MiB: wait for it
    with pytest.raises(ProtocolError, match="cap"):
        decode_message(bytes.fromhex("5e" "00000001" "00100001"))  # 1 MiB + 1: never
    with pytest.raises(ProtocolError, match="32768-byte cap"):
        decode_message(bytes.fromhex("5e" "00000001" "00008001"), DecodeOptions(max_data=32768))


def test_trailing_bytes_are_an_error_for_exact_decoding() -> None:
    with pytest.raises(ProtocolError, match="1 bytes after"):
        decode_exact(bytes.fromhex("d0000000ff00"))


def test_text_that_is_not_utf8_cannot_match_anything() -> None:
    raw = bytes.fromhex("32" + s("user") + s("pfwd@amt.intel.com") + s("password") + "00" + "00000003ff7139")
    message = decode_exact(raw)
    assert isinstance(message, UserAuthRequest)
    assert message.password == "\ufffdq9"
    assert "q9" not in repr(message)  # the password stays out of logs


@pytest.mark.parametrize("reason", list(DisconnectReason))
def test_each_disconnect_reason_has_its_error(reason: DisconnectReason) -> None:
    error = E.DisconnectError.for_code(reason, "why")
    assert error.code == reason
    assert str(error) == "why"
    if reason is not DisconnectReason.RESERVED:
        assert type(error) is not E.DisconnectError


def test_unknown_disconnect_codes_and_open_failures_keep_their_number() -> None:
    error = E.DisconnectError.for_code(99)
    assert (type(error), error.code, str(error)) == (E.DisconnectError, 99, "disconnect reason 99")
    assert E.DisconnectError.for_code(15).__class__ is E.InvalidCredentials
    assert E.ChannelOpenError(3).code is OpenFailureReason.UNKNOWN_CHANNEL_TYPE
    assert str(E.ChannelOpenError(77)) == "open failure reason 77"
