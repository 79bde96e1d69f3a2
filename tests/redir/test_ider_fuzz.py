"""IDE-R's decoders and machines against truncated, oversized and garbage input: the console, the AMT end, the
drive model and the firmware's boot-media parsers either work or stop with their own error (ProtocolError,
a refused command, a failed boot) -- never another exception, a hang, or a buffer beyond the caps."""

from __future__ import annotations

import asyncio
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from outband.engine.platforms.base import BootDevice
from outband.engine.platforms.bootmedia import StorageRedirection
from outband.proto.redir.frames import MAX_FEED, MAX_MESSAGE, Frame, FrameDecoder, ProtocolError, Role, SessionKind
from outband.proto.redir.frames import MessageType as T
from outband.proto.redir.ider import (
    CommandCompleted,
    CommandWritten,
    FeatureRequest,
    IderConsole,
    IderHost,
    StartIder,
    StartIderReply,
    StartMode,
    encode_command_end,
    encode_data_to_host,
    encode_features,
    encode_get_data_from_host,
    encode_plain,
    encode_reset_occurred,
)
from outband.proto.redir.scsi import GOOD, BytesMedium, DriveKind, Op, ScsiDrive, Sense, cdb_read_10
from outband.testing.images import floppy_image, iso_image

from .test_fuzz import CUTS, FUZZ, chunked, soup

IMAGE = bytes(range(256)) * 8 * 24  # 24 CD blocks

AMT_IDER = [
    StartIderReply().encode(0),
    StartIderReply(read_buffer=512, oem_data=b"oem").encode(0),
    encode_features(T.IDER_DISABLE_ENABLE_FEATURES_REPLY, 1, FeatureRequest.SET_STATE, 1),
    encode_features(T.IDER_DISABLE_ENABLE_FEATURES_REPLY, 1, FeatureRequest.GET_SUPPORTED, 1),
    CommandWritten(DriveKind.CDROM, cdb_read_10(2, 5)).encode(2),
    CommandWritten(DriveKind.CDROM, bytes([Op.MODE_SENSE_10, 0, 0x3F, 0, 0, 0, 0, 1, 0])).encode(2),
    CommandWritten(DriveKind.FLOPPY, bytes([Op.READ_CAPACITY])).encode(2),
    encode_plain(T.IDER_KEEPALIVE_PING, 3), encode_plain(T.IDER_HEARTBEAT, 3), encode_plain(T.IDER_END_REPLY, 3),
    encode_reset_occurred(4), bytes([0x4A, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0]),
]
CONSOLE_IDER = [
    StartIder().encode(0),
    encode_features(T.IDER_DISABLE_ENABLE_FEATURES, 1, FeatureRequest.SET_STATE, 0x19),
    encode_features(T.IDER_DISABLE_ENABLE_FEATURES, 1, FeatureRequest.GET_STATE),
    encode_data_to_host(2, DriveKind.CDROM, b"d" * 100, dma=True, completed=False),
    encode_data_to_host(2, DriveKind.CDROM, b"e" * 12, dma=False, completed=True),
    encode_command_end(2, DriveKind.CDROM, Sense(5, 0x24, 0)),
    encode_get_data_from_host(2, DriveKind.FLOPPY, 64),
    encode_plain(T.IDER_KEEPALIVE_PONG, 3), encode_plain(T.IDER_HEARTBEAT, 3),
    encode_plain(T.IDER_RESET_OCCURRED_RESPONSE, 3), encode_plain(T.IDER_END, 4),
]
OVERSIZED = [bytes.fromhex("540000000000000000ffff"), bytes.fromhex("530000000000000000ffff"),
             bytes.fromhex("410000000000000000") + bytes(20) + b"\xff"]
AMT_IDER_SOUP = soup(AMT_IDER + OVERSIZED)
CONSOLE_IDER_SOUP = soup(CONSOLE_IDER + OVERSIZED)


def frames_of(data: bytes, cuts: list[int], role: Role) -> list[Frame]:
    decoder = FrameDecoder(role)
    decoder.set_kind(SessionKind.IDER)
    out: list[Frame] = []
    try:
        for chunk in chunked(data, cuts):
            for start in range(0, len(chunk), MAX_FEED):
                decoder.feed(chunk[start : start + MAX_FEED])
                while (frame := decoder.next_frame()) is not None:
                    assert isinstance(frame, Frame)
                    out.append(frame)
                assert decoder.buffered <= MAX_MESSAGE + MAX_FEED
    except ProtocolError:
        pass
    return out


@FUZZ
@given(data=AMT_IDER_SOUP, cuts=CUTS, renumber=st.booleans())
def test_ider_console(data: bytes, cuts: list[int], renumber: bool) -> None:
    """With ``renumber`` the sequence numbers are fixed up, so the garbage reaches past the sequence check."""
    console = IderConsole(cdrom=ScsiDrive(DriveKind.CDROM, BytesMedium(IMAGE)),
                          floppy=ScsiDrive(DriveKind.FLOPPY, BytesMedium(IMAGE[:512 * 20])))
    console.start()
    sent = 0
    tracemalloc.start()
    try:
        for seq, frame in enumerate(frames_of(data, cuts, Role.AMT)):
            raw = frame.data if not renumber else frame.data[:4] + seq.to_bytes(4, "little") + frame.data[8:]
            console.receive(Frame(frame.type, raw))
            console.events()
            while batch := console.data_to_send(budget=4096):
                sent += sum(len(m) for m in batch)
    except ProtocolError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    assert console.counters.bytes_to_host <= sent


@FUZZ
@given(data=CONSOLE_IDER_SOUP, cuts=CUTS, submit=st.lists(st.sampled_from([0, 8, 2048, 4096]), max_size=6),
       reset=st.booleans())
def test_ider_host(data: bytes, cuts: list[int], submit: list[int], reset: bool) -> None:
    host = IderHost()
    expects = iter(submit)
    try:
        for frame in frames_of(StartIder().encode(0) + data, cuts, Role.CONSOLE):
            host.receive(frame)
            for event in host.events():
                if isinstance(event, CommandCompleted):
                    assert len(event.data) <= 4096
            if host.enabled and not host.busy and (expect := next(expects, None)) is not None:
                host.submit(DriveKind.CDROM, cdb_read_10(0, 2), expect, write_data=b"w" * 40)
                if reset:
                    host.reset()
            host.data_to_send()
    except ProtocolError:
        pass


@FUZZ
@given(packet=st.one_of(st.binary(max_size=16),
                        st.tuples(st.sampled_from(list(Op)), st.binary(min_size=11, max_size=11)).map(
                            lambda t: bytes([t[0]]) + t[1])),
       kind=st.sampled_from(list(DriveKind)), medium=st.booleans())
def test_scsi_drive(packet: bytes, kind: DriveKind, medium: bool) -> None:
    drive = ScsiDrive(kind, BytesMedium(IMAGE) if medium else None)
    for _ in range(2):
        outcome = drive.execute(packet)
        assert isinstance(outcome.sense, Sense)
        if outcome.read_length:
            assert outcome.sense == GOOD
            assert outcome.read_offset + outcome.read_length <= drive.blocks * kind.block_size
        if packet[:1] == bytes([Op.MODE_SENSE_6]):
            assert len(outcome.data) <= packet[4] if len(packet) > 4 else not outcome.data
        assert len(outcome.data) <= 4096


class ServedImage:
    """An AtapiPort answering from a (mutated) image with the real drive model, in memory."""

    def __init__(self, image: bytes, kind: DriveKind) -> None:
        self.drive = ScsiDrive(kind, BytesMedium(image))

    async def execute(self, drive: DriveKind, packet: bytes, expect: int) -> CommandCompleted:
        outcome = self.drive.execute(packet)
        data = outcome.data
        if outcome.read_length:
            assert self.drive.medium is not None
            data = self.drive.medium.read(outcome.read_offset, outcome.read_length)
        return CommandCompleted(drive, packet, outcome.sense, data[:expect])


def _mutate(image: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(image)
    for at, value in edits:
        out[at % len(out)] = value
    return bytes(out)


_ISO = iso_image("fuzz message here", label="FUZZ")
_FLOPPY = floppy_image("fuzz floppy boot", label="FUZZ")
_HOT_CD = list(range(16 * 2048, 16 * 2048 + 80)) + list(range(17 * 2048, 17 * 2048 + 80)) + list(
    range(19 * 2048, 19 * 2048 + 64))
"""Where the firmware's CD parser looks: the descriptors' headers, the boot record, the catalog."""


@FUZZ
@given(edits=st.lists(st.tuples(st.one_of(st.sampled_from(_HOT_CD), st.integers(0, len(_ISO) - 1)),
                                st.integers(0, 255)), max_size=12),
       floppy_edits=st.lists(st.tuples(st.integers(0, 600), st.integers(0, 255)), max_size=8),
       cut=st.integers(1, 40))
def test_boot_media_parsers(edits: list[tuple[int, int]], floppy_edits: list[tuple[int, int]], cut: int) -> None:
    async def boot(image: bytes, kind: DriveKind, device: BootDevice) -> None:
        storage = StorageRedirection()
        storage.attach(ServedImage(image, kind), StartMode.NOW)
        lines: list[str] = []
        outcome = await storage.boot(device, lines.append)
        assert lines
        assert outcome is None or lines[0].startswith("Booted from")

    asyncio.run(boot(_mutate(_ISO, edits)[: cut * 2048], DriveKind.CDROM, BootDevice.IDER_CD))
    asyncio.run(boot(_mutate(_FLOPPY, floppy_edits), DriveKind.FLOPPY, BootDevice.IDER_FLOPPY))
