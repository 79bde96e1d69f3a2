"""The NBD server codec, byte for byte, against hostile input; the telnet preamble filter; and the NBD export
of an IDE-R drive read by QEMU's own tool (qemu-io)."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.qemu._kit import require

from outband.engine.platforms.bootmedia import StorageRedirection
from outband.engine.platforms.qemu.nbd import NbdServer
from outband.engine.platforms.qemu.serial import QEMU_TELNET_PREAMBLE, TelnetPreamble
from outband.proto.nbd import (
    IHAVEOPT,
    NBDMAGIC,
    OPTION_REPLY_MAGIC,
    REQUEST_MAGIC,
    SIMPLE_REPLY_MAGIC,
    Command,
    Disconnected,
    Errno,
    Export,
    ExportRequested,
    NbdProtocolError,
    NbdServerConnection,
    Option,
    ReadRequested,
    Reply,
    State,
)
from outband.proto.redir.ider import CommandCompleted, StartMode
from outband.proto.redir.scsi import BytesMedium, DriveKind, ScsiDrive

EXPORT = Export(size=8192, min_block=1, preferred_block=2048, max_block=4096)


def option(code: int, data: bytes = b"") -> bytes:
    return IHAVEOPT + struct.pack(">II", code, len(data)) + data


def go(name: str, *infos: int, code: int = Option.GO) -> bytes:
    encoded = name.encode()
    return option(code, struct.pack(">I", len(encoded)) + encoded + struct.pack(f">H{len(infos)}H", len(infos), *infos))


def request(kind: int, handle: int, offset: int = 0, length: int = 0) -> bytes:
    return struct.pack(">IHHQQI", REQUEST_MAGIC, 0, kind, handle, offset, length)


def replies(data: bytes) -> list[tuple[int, int, bytes]]:
    """Option replies: (option, reply type, payload)."""
    out = []
    while data:
        magic, code, kind, length = struct.unpack_from(">QIII", data)
        assert magic == OPTION_REPLY_MAGIC
        out.append((code, kind, data[20 : 20 + length]))
        data = data[20 + length :]
    return out


def negotiated(*, no_zeroes: bool = True) -> NbdServerConnection:
    conn = NbdServerConnection(("ider-cd", "ider-fd"))
    conn.start()
    assert conn.data_to_send() == NBDMAGIC + IHAVEOPT + b"\x00\x03"
    conn.receive_data(struct.pack(">I", 3 if no_zeroes else 1))
    return conn


def transmitting() -> NbdServerConnection:
    conn = negotiated()
    conn.receive_data(go("ider-cd"))
    assert conn.events() == [ExportRequested("ider-cd")]
    conn.export_ready(EXPORT)
    conn.data_to_send()
    return conn


def test_go_answers_with_the_export_and_its_block_sizes_once_the_caller_found_it() -> None:
    conn = negotiated()
    conn.receive_data(go("ider-cd", 3) + request(Command.READ, 7, 0, 512))  # a request pipelined behind GO
    assert conn.events() == [ExportRequested("ider-cd")]
    assert conn.state is State.WAITING
    assert conn.data_to_send() == b""
    conn.export_ready(EXPORT)
    assert replies(conn.data_to_send()) == [
        (Option.GO, Reply.INFO, struct.pack(">HQH", 0, 8192, 0b111)),  # has flags, read-only, flush
        (Option.GO, Reply.INFO, struct.pack(">HIII", 3, 1, 2048, 4096)),
        (Option.GO, Reply.ACK, b""),
    ]
    assert conn.events() == [ReadRequested(7, 0, 512)]
    conn.reply_read(7, b"x" * 512)
    assert conn.data_to_send() == struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, 0, 7) + b"x" * 512


def test_info_leaves_the_client_choosing_and_list_names_the_exports() -> None:
    conn = negotiated()
    conn.receive_data(go("ider-fd", code=Option.INFO))
    assert conn.events() == [ExportRequested("ider-fd")]
    conn.export_ready(EXPORT)
    assert [kind for _, kind, _ in replies(conn.data_to_send())] == [Reply.INFO, Reply.ACK]  # no block sizes asked
    assert conn.state is State.OPTIONS
    conn.receive_data(option(Option.LIST))
    assert replies(conn.data_to_send()) == [(Option.LIST, Reply.SERVER, b"\0\0\0\x07ider-cd"),
                                            (Option.LIST, Reply.SERVER, b"\0\0\0\x07ider-fd"),
                                            (Option.LIST, Reply.ACK, b"")]


def test_an_unknown_export_is_refused_and_the_client_may_ask_again() -> None:
    conn = negotiated()
    conn.receive_data(go("nope"))
    assert conn.events() == [ExportRequested("nope")]
    conn.export_missing("no such export")
    assert replies(conn.data_to_send()) == [(Option.GO, Reply.ERR_UNKNOWN, b"no such export")]
    conn.receive_data(go("ider-cd"))
    assert conn.events() == [ExportRequested("ider-cd")]


def test_the_old_export_name_option_has_no_reply_header_and_pads_unless_told_not_to() -> None:
    conn = negotiated(no_zeroes=False)
    conn.receive_data(option(Option.EXPORT_NAME, b"ider-cd"))
    assert conn.events() == [ExportRequested("ider-cd")]
    conn.export_ready(EXPORT)
    assert conn.data_to_send() == struct.pack(">QH", 8192, 0b111) + bytes(124)
    assert conn.state is State.TRANSMIT
    refused = negotiated()
    refused.receive_data(option(Option.EXPORT_NAME, b"nope"))
    refused.events()
    refused.export_missing("gone")
    assert refused.state is State.CLOSED
    assert isinstance(refused.events()[0], Disconnected)


@pytest.mark.parametrize("code", [Option.STARTTLS, Option.STRUCTURED_REPLY, Option.SET_META_CONTEXT, 99])
def test_options_we_do_not_do_are_unsupported(code: int) -> None:
    conn = negotiated()
    conn.receive_data(option(code, b"\0\0\0\0"))
    assert replies(conn.data_to_send()) == [(code, Reply.ERR_UNSUP, b"")]
    assert conn.state is State.OPTIONS


def test_malformed_go_payloads_are_invalid_not_fatal() -> None:
    conn = negotiated()
    conn.receive_data(option(Option.GO, struct.pack(">I", 100) + b"short"))
    conn.receive_data(option(Option.GO, struct.pack(">I", 1) + b"x" + struct.pack(">H", 5)))  # 5 infos, none sent
    assert [kind for _, kind, _ in replies(conn.data_to_send())] == [Reply.ERR_INVALID, Reply.ERR_INVALID]
    assert conn.state is State.OPTIONS


def test_reads_outside_the_export_or_longer_than_its_maximum_are_einval() -> None:
    conn = transmitting()
    conn.receive_data(request(Command.READ, 1, 8000, 512) + request(Command.READ, 2, 0, 8192)
                      + request(Command.READ, 3, 0, 0) + request(Command.READ, 4, 4096, 4096))
    assert conn.events() == [ReadRequested(4, 4096, 4096)]
    assert conn.data_to_send() == b"".join(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, Errno.EINVAL, h) for h in (1, 2, 3))


def test_writes_are_refused_and_their_payload_skipped_even_across_reads() -> None:
    conn = transmitting()
    conn.receive_data(request(Command.WRITE, 5, 0, 1000) + b"w" * 300)
    conn.receive_data(b"w" * 700 + request(Command.TRIM, 6, 0, 512) + request(Command.FLUSH, 7))
    conn.receive_data(request(Command.READ, 8, 0, 16))
    assert conn.data_to_send() == b"".join([struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, Errno.EPERM, 5),
                                            struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, Errno.EPERM, 6),
                                            struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, 0, 7)])
    assert conn.events() == [ReadRequested(8, 0, 16)]
    conn.receive_data(request(Command.DISC, 9))
    assert conn.events() == [Disconnected("the client disconnected")]


@pytest.mark.parametrize(("prefix", "data", "message"), [
    (False, struct.pack(">I", 0), "fixed newstyle"),
    (False, struct.pack(">I", 7), "unknown client flags"),
    (True, b"IHAVEOPX" + struct.pack(">II", 1, 0), "IHAVEOPT"),
    (True, option(Option.GO)[:12] + struct.pack(">I", 1 << 20), "exceeds"),
    (True, option(Option.EXPORT_NAME, b"\xff\xfe"), "UTF-8"),
])
def test_protocol_violations_end_the_connection(prefix: bool, data: bytes, message: str) -> None:
    conn = NbdServerConnection()
    conn.start()
    if prefix:
        conn.receive_data(struct.pack(">I", 1))
    with pytest.raises(NbdProtocolError, match=message):
        conn.receive_data(data)


def test_a_bad_request_magic_or_a_huge_write_ends_the_connection() -> None:
    with pytest.raises(NbdProtocolError, match="request magic"):
        transmitting().receive_data(b"\0" * 28)
    with pytest.raises(NbdProtocolError, match="write of"):
        transmitting().receive_data(request(Command.WRITE, 1, 0, 1 << 30))


def test_a_client_that_floods_while_an_export_is_looked_up_is_cut_off() -> None:
    conn = negotiated()
    conn.receive_data(go("ider-cd"))
    with pytest.raises(NbdProtocolError, match="unprocessed"):
        conn.receive_data(request(Command.READ, 1, 0, 1) * 2000)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_any_bytes_in_any_chunks_either_parse_or_fail_cleanly(chunks: list[bytes]) -> None:
    conn = NbdServerConnection(("ider-cd",))
    conn.start()
    try:
        for chunk in [struct.pack(">I", 1), *chunks]:
            conn.receive_data(chunk)
            for event in conn.events():
                if isinstance(event, ExportRequested):
                    conn.export_ready(EXPORT)
    except NbdProtocolError:
        return
    assert len(conn.data_to_send()) < 1 << 20


# ---------------------------------------------------------------------------------------------- telnet


@pytest.mark.parametrize("split", [1, 5, 12, 13])
def test_qemus_telnet_preamble_is_removed_however_it_arrives(split: int) -> None:
    stream = QEMU_TELNET_PREAMBLE + b"hello\xff"
    telnet = TelnetPreamble()
    out = telnet.feed(stream[:split]) + telnet.feed(stream[split:])
    assert out == b"hello\xff"
    assert telnet.telnet is True


def test_a_raw_chardev_keeps_every_byte_even_one_that_looks_like_iac() -> None:
    telnet = TelnetPreamble()
    assert telnet.feed(b"\xff") == b""
    assert telnet.feed(b"\xfb\x01X") == b"\xff\xfb\x01X"
    assert telnet.telnet is False


# ---------------------------------------------------------------------------------------------- end to end


class ConsoleDrive:
    """An IDE-R port answered by the console's drive model directly (no network)."""

    def __init__(self, image: bytes) -> None:
        self.medium = BytesMedium(image)
        self.drive = ScsiDrive(DriveKind.CDROM, self.medium)

    async def execute(self, drive: DriveKind, packet: bytes, expect: int) -> CommandCompleted:
        outcome = self.drive.execute(packet)
        data = self.medium.read(outcome.read_offset, outcome.read_length) if outcome.read_length else outcome.data
        return CommandCompleted(drive, packet, outcome.sense, data[:expect])


async def test_qemu_io_reads_the_console_medium_through_the_export(tmp_path: Path) -> None:
    image = bytes(range(256)) * 8 * 64  # 64 CD blocks
    storage = StorageRedirection()
    storage.attach(ConsoleDrive(image), StartMode.NOW)
    server = NbdServer(storage)
    sock = tmp_path / "nbd.sock"
    await server.start(sock)
    try:
        process = await asyncio.create_subprocess_exec(
            require("qemu-io", "qemu-utils"), "-r", "-f", "raw", f"nbd+unix:///ider-cd?socket={sock}",
            "-c", "read -P 0x10 3088 1", "-c", "read -v 131071 1", "-c", "length",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        await server.stop()
    text = out.decode()
    assert process.returncode == 0, err.decode()
    assert "Pattern verification failed" not in text
    assert "0001ffff:  ff" in text
    assert "128 KiB" in text
