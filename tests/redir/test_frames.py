"""The redirection frame decoder: every message's length, who may send it, and the caps."""

from __future__ import annotations

import pytest

from outband.proto.redir.frames import (
    MAX_FEED,
    MAX_MESSAGE,
    Frame,
    FrameDecoder,
    MessageType,
    ProtocolError,
    RawData,
    Role,
    SessionKind,
)

T = MessageType


def sized(code: int, total: int) -> bytes:
    return bytes([code]) + bytes(total - 1)


# One well-formed message of every type, by the side that sends it (AMT-PROTOCOLS.md §4.1-4.4).
CONSOLE_SENDS: dict[MessageType, bytes] = {
    T.START_REDIRECTION_SESSION: bytes.fromhex("10000000534f4c20"),
    T.END_REDIRECTION_SESSION: bytes.fromhex("12000000"),
    T.AUTHENTICATE_SESSION: bytes.fromhex("130000000003000000") + b"abc",
    T.SOL_START: sized(0x20, 24),
    T.SOL_END: sized(0x22, 8),
    T.SOL_KEEPALIVE_PING: sized(0x24, 8),
    T.SOL_CONTROLS_TO_HOST: sized(0x27, 14),
    T.SOL_DATA_TO_HOST: bytes.fromhex("28000000000000000300") + b"ls\r",
    T.SOL_HEARTBEAT: sized(0x2B, 8),
    T.IDER_END: sized(0x42, 8),
    T.IDER_KEEPALIVE_PONG: sized(0x45, 8),
    T.IDER_RESET_OCCURRED_RESPONSE: sized(0x47, 8),
    T.IDER_DISABLE_ENABLE_FEATURES: sized(0x48, 13),
    T.IDER_HEARTBEAT: sized(0x4B, 8),
    T.IDER_COMMAND_END_RESPONSE: sized(0x51, 31),
    T.IDER_GET_DATA_FROM_HOST: sized(0x52, 31),
    T.IDER_DATA_TO_HOST: bytes.fromhex("54000002000000000004") + bytes(24) + b"data",
}
AMT_SENDS: dict[MessageType, bytes] = {
    T.START_REDIRECTION_SESSION_REPLY: bytes.fromhex("11000000010001000000000002") + b"oe",
    T.AUTHENTICATE_SESSION_REPLY: bytes.fromhex("14000000000300000001") + b"\x03\x04",
    T.SOL_START_REPLY: sized(0x21, 23),
    T.SOL_END_REPLY: sized(0x23, 8),
    T.SOL_KEEPALIVE_PONG: sized(0x25, 8),
    T.SOL_CONTROLS_FROM_HOST: sized(0x29, 10),
    T.SOL_DATA_FROM_HOST: bytes.fromhex("2a000000000000000200") + b"ok",
    T.SOL_HEARTBEAT: sized(0x2B, 8),
    T.IDER_END_REPLY: sized(0x43, 8),
    T.IDER_KEEPALIVE_PING: sized(0x44, 8),
    T.IDER_RESET_OCCURRED: sized(0x46, 9),
    T.IDER_DISABLE_ENABLE_FEATURES_REPLY: sized(0x49, 13),
    T.IDER_ERROR_OCCURRED: sized(0x4A, 11),
    T.IDER_HEARTBEAT: sized(0x4B, 8),
    T.IDER_COMMAND_WRITTEN: sized(0x50, 28),
    T.IDER_DATA_FROM_HOST: bytes.fromhex("5300000200000000000300") + bytes(3) + b"abc",
}
SENDERS = {Role.CONSOLE: CONSOLE_SENDS, Role.AMT: AMT_SENDS}


def every_message() -> list[tuple[Role, MessageType, bytes]]:
    return [(role, t, data) for role, table in SENDERS.items() for t, data in table.items()]


def test_the_tables_cover_every_type_but_the_kind_dependent_starts() -> None:
    covered = set(CONSOLE_SENDS) | set(AMT_SENDS)
    assert set(MessageType) - covered == {T.IDER_START, T.IDER_START_REPLY}


@pytest.mark.parametrize(("sender", "mtype", "data"), every_message(),
                         ids=[f"{r.value}-{t.name}" for r, t, _ in every_message()])
def test_each_message_decodes_whole_from_its_sender(sender: Role, mtype: MessageType, data: bytes) -> None:
    decoder = FrameDecoder(sender)
    decoder.feed(data + data)
    assert decoder.next_frame() == Frame(mtype, data)
    assert decoder.next_frame() == Frame(mtype, data)
    assert decoder.next_frame() is None


@pytest.mark.parametrize(("sender", "mtype", "data"), every_message(),
                         ids=[f"{r.value}-{t.name}" for r, t, _ in every_message()])
def test_each_message_waits_for_its_last_byte(sender: Role, mtype: MessageType, data: bytes) -> None:
    decoder = FrameDecoder(sender)
    for byte in data[:-1]:
        decoder.feed(bytes([byte]))
        assert decoder.next_frame() is None
    decoder.feed(data[-1:])
    assert decoder.next_frame() == Frame(mtype, data)


ONE_WAY = [(r, t, d) for r, t, d in every_message() if t not in (T.SOL_HEARTBEAT, T.IDER_HEARTBEAT)]


@pytest.mark.parametrize(("sender", "mtype", "data"), ONE_WAY, ids=[f"{r.value}-{t.name}" for r, t, _ in ONE_WAY])
def test_a_message_from_the_wrong_side_is_a_protocol_error(sender: Role, mtype: MessageType, data: bytes) -> None:
    other = Role.AMT if sender is Role.CONSOLE else Role.CONSOLE
    decoder = FrameDecoder(other)
    decoder.feed(data)
    with pytest.raises(ProtocolError, match="not sent by"):
        decoder.next_frame()


@pytest.mark.parametrize("code", [0x00, 0x15, 0x26, 0x2C, 0x4C, 0x55, 0xFF])
def test_an_unknown_type_is_a_protocol_error(code: int) -> None:
    decoder = FrameDecoder(Role.CONSOLE)
    decoder.feed(bytes([code, 0, 0, 0]))
    with pytest.raises(ProtocolError, match="unknown message type"):
        decoder.next_frame()


def test_an_oversized_auth_length_is_refused_from_the_header_alone() -> None:
    decoder = FrameDecoder(Role.CONSOLE)
    decoder.feed(bytes.fromhex("1300000004ffffff7f"))  # claims 2 GiB; nothing of it was sent
    with pytest.raises(ProtocolError, match="exceeds"):
        decoder.next_frame()


@pytest.mark.parametrize("role", list(Role))
def test_the_ide_r_start_messages_need_the_session_kind(role: Role) -> None:
    code = 0x40 if role is Role.CONSOLE else 0x41
    decoder = FrameDecoder(role)
    decoder.feed(bytes([code]) + bytes(40))
    with pytest.raises(ProtocolError, match="outside an IDE-R or KVM session"):
        decoder.next_frame()


@pytest.mark.parametrize(("kind", "role", "message"), [
    (SessionKind.KVM, Role.CONSOLE, bytes.fromhex("4000000000000000")),
    (SessionKind.KVM, Role.AMT, bytes.fromhex("4100000000000000")),
    (SessionKind.IDER, Role.CONSOLE, bytes.fromhex("40000000000000003075000020") + bytes(5)),
    (SessionKind.IDER, Role.AMT, bytes([0x41]) + bytes(28) + b"\x02" + b"oe"),
])
def test_the_session_kind_sets_the_start_layout(kind: SessionKind, role: Role, message: bytes) -> None:
    decoder = FrameDecoder(role)
    decoder.set_kind(kind)
    decoder.feed(message + b"\x2b")
    frame = decoder.next_frame()
    assert isinstance(frame, Frame)
    assert frame.data == message


def test_after_the_switch_everything_is_raw_stream_data() -> None:
    decoder = FrameDecoder(Role.CONSOLE)
    decoder.switch_to_raw()
    decoder.feed(b"\xffRFB 003.008\n")
    assert decoder.next_frame() == RawData(b"\xffRFB 003.008\n")
    assert decoder.next_frame() is None


def test_feeding_is_bounded() -> None:
    decoder = FrameDecoder(Role.CONSOLE)
    with pytest.raises(ValueError, match="at most"):
        decoder.feed(bytes(MAX_FEED + 1))
    # Bytes that nobody consumes cannot pile up past one message and one read.
    decoder.feed(bytes.fromhex("2800000000000000ffff"))  # announces 64 KiB - 1 of keystrokes
    decoder.feed(bytes(MAX_FEED))
    decoder.feed(bytes(MAX_FEED))  # one message and one read's worth: still accepted
    with pytest.raises(ProtocolError, match="far more than one message"):
        decoder.feed(bytes(MAX_FEED))
    assert decoder.buffered <= MAX_MESSAGE + MAX_FEED


def test_the_sequence_number_is_little_endian() -> None:
    assert Frame(T.SOL_HEARTBEAT, bytes.fromhex("2b00000001020304")).seq == 0x04030201
