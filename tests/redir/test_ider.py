"""IDE-R: the message layouts of AMT-PROTOCOLS.md §4.4, the console and AMT ends against each other in memory
(start, feature enable with start modes, commands and data, resets, keep-alives, end), and the same through the
engine's redirection listener with our IderSession serving images the simulated firmware boots from."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest
from tests.redir._kit import audit_ids, eventually, instant_machine
from tests.redir._mediakit import media_engine

from outband.aio.redirection import SessionRefused
from outband.client.amt import AmtClient
from outband.client.ider import IderSession, ImageFile, Progress, boot_from_ider
from outband.engine.platforms.base import BootDevice, PowerAction
from outband.engine.platforms.bootmedia import StorageRedirection
from outband.proto.redir.frames import Frame, FrameDecoder, MessageType, ProtocolError, Role, SessionKind
from outband.proto.redir.ider import (
    ATTR_COMPLETED,
    Closed,
    CommandCompleted,
    CommandServed,
    CommandWritten,
    ConsoleOpened,
    ConsoleState,
    DrivesEnabled,
    Enabled,
    FeatureRequest,
    HostState,
    IderConsole,
    IderHost,
    Refused,
    ResetSeen,
    StartIder,
    StartIderReply,
    StartMode,
    encode_command_end,
    encode_data_to_host,
    encode_features,
    encode_get_data_from_host,
    encode_plain,
)
from outband.proto.redir.scsi import (
    GOOD,
    LBA_OUT_OF_RANGE,
    MEDIUM_CHANGED,
    BytesMedium,
    DriveKind,
    ScsiDrive,
    Sense,
    cdb_read_10,
    cdb_read_capacity,
    cdb_test_unit_ready,
)
from outband.testing.images import floppy_image, iso_image

T = MessageType


# ---------------------------------------------------------------------------------------------- layouts


def test_start_and_its_reply_have_the_documented_layout() -> None:
    start = StartIder(30000, 0, 20000).encode(0)
    assert start == bytes([0x40, 0, 0, 0, 0, 0, 0, 0]) + struct.pack("<HHHI", 30000, 0, 20000, 1)
    assert StartIder.decode(start) == StartIder(30000, 0, 20000, 1)
    reply = StartIderReply(8192, 4096, oem_data=b"xy").encode(7)
    assert len(reply) == 30 + 2
    assert reply[0] == 0x41
    assert reply[4:8] == struct.pack("<I", 7)
    assert (reply[8], reply[9]) == (1, 0)
    assert struct.unpack_from("<HH", reply, 16) == (8192, 4096)
    assert reply[21] == 0
    assert struct.unpack_from("<I", reply, 25)[0] == 343
    assert reply[29] == 2
    assert StartIderReply.decode(reply) == StartIderReply(8192, 4096, oem_data=b"xy")


def test_command_written_carries_drive_select_packet_and_dma() -> None:
    packet = cdb_read_10(16, 1)
    data = CommandWritten(DriveKind.CDROM, packet, dma=False, byte_count=0x800).encode(3)
    assert len(data) == 28
    assert data[0] == 0x50
    assert data[9] == 0
    assert struct.unpack_from("<H", data, 12)[0] == 0x800
    assert (data[14], data[15], data[16:28]) == (0xB0, 0xA0, packet)
    assert CommandWritten.decode(data) == CommandWritten(DriveKind.CDROM, packet, False, 0x800)


@pytest.mark.parametrize(("sense", "mask", "error", "status"),
                         [(GOOD, 0xC5, 0x00, 0x50), (LBA_OUT_OF_RANGE, 0xC7, 0x50, 0x51)])
def test_command_end_registers_follow_the_ata_conventions(sense: Sense, mask: int, error: int, status: int) -> None:
    data = encode_command_end(9, DriveKind.FLOPPY, sense)
    assert len(data) == 31
    assert data[3] == ATTR_COMPLETED
    output = data[20:28]
    assert (output[0], output[1], output[2], output[6], output[7]) == (mask, error, 0x03, 0xA0, status)
    assert data[28:31] == bytes([sense.key, sense.asc, sense.ascq])


def test_data_to_host_has_a_34_byte_header_and_completes_on_its_last_chunk() -> None:
    middle = encode_data_to_host(1, DriveKind.CDROM, b"x" * 100, dma=False, completed=False)
    last = encode_data_to_host(2, DriveKind.CDROM, b"y" * 10, dma=True, completed=True)
    assert len(middle) == 34 + 100
    assert struct.unpack_from("<H", middle, 9)[0] == 100
    assert middle[3] == 0
    assert middle[12 + 7] == 0x58
    assert struct.unpack_from("<H", middle, 12 + 4)[0] == 100
    assert middle[20:28] == bytes(8)  # no completion yet
    assert last[3] == ATTR_COMPLETED | 0x01
    assert last[20 + 7] == 0x50
    assert struct.unpack_from("<H", last, 12 + 4)[0] == 0  # DMA: no PIO byte count


# ---------------------------------------------------------------------------------------------- in memory


class Pair:
    """A console and an AMT end joined through the real frame decoders."""

    def __init__(self, console: IderConsole, host: IderHost | None = None) -> None:
        self.console = console
        self.host = host or IderHost()
        self.to_console = FrameDecoder(Role.AMT)
        self.to_host = FrameDecoder(Role.CONSOLE)
        for decoder in (self.to_console, self.to_host):
            decoder.set_kind(SessionKind.IDER)
        self.amt_frames: list[Frame] = []

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for data in self.console.data_to_send():
                moved = True
                self.to_host.feed(data)
                while isinstance(frame := self.to_host.next_frame(), Frame):
                    self.host.receive(frame)
            for data in self.host.data_to_send():
                moved = True
                self.to_console.feed(data)
                while isinstance(frame := self.to_console.next_frame(), Frame):
                    self.amt_frames.append(frame)
                    self.console.receive(frame)

    def run(self, drive: DriveKind, packet: bytes, expect: int) -> CommandCompleted:
        self.host.submit(drive, packet, expect)
        self.pump()
        done = [e for e in self.host.events() if isinstance(e, CommandCompleted)]
        assert len(done) == 1
        return done[0]


def opened(image: bytes = b"\x5a" * 2048 * 40, *, mode: StartMode = StartMode.NOW, host: IderHost | None = None,
           kind: DriveKind = DriveKind.CDROM) -> Pair:
    drive = ScsiDrive(kind, BytesMedium(image))
    console = IderConsole(cdrom=drive if kind is DriveKind.CDROM else None,
                          floppy=drive if kind is DriveKind.FLOPPY else None, start_mode=mode)
    pair = Pair(console, host)
    console.start()
    pair.pump()
    return pair


@pytest.mark.parametrize("mode", list(StartMode))
def test_the_console_starts_and_attaches_its_drives_with_each_start_mode(mode: StartMode) -> None:
    pair = opened(mode=mode)
    assert pair.console.state is ConsoleState.RUNNING
    console_events = pair.console.events()
    assert isinstance(console_events[-1], Enabled)
    assert console_events[-1].start_mode is mode
    host_events = pair.host.events()
    assert isinstance(host_events[0], ConsoleOpened)
    assert host_events[1] == DrivesEnabled(True, mode)
    assert pair.host.enabled
    assert pair.host.start_mode is mode


def test_amt_numbers_its_messages_from_zero_and_the_console_stops_on_a_gap() -> None:
    pair = opened()
    pair.run(DriveKind.CDROM, cdb_test_unit_ready(), 0)
    assert [f.seq for f in pair.amt_frames] == list(range(len(pair.amt_frames)))
    with pytest.raises(ProtocolError, match="sequence"):
        pair.console.receive(Frame(T.IDER_HEARTBEAT, encode_plain(T.IDER_HEARTBEAT, 99)))


def test_a_read_streams_in_read_buffer_chunks_and_arrives_intact() -> None:
    image = bytes(range(256)) * 8 * 64  # 64 blocks of 2048
    pair = opened(image, host=IderHost(read_buffer=4096))
    assert pair.run(DriveKind.CDROM, cdb_test_unit_ready(), 0).sense == MEDIUM_CHANGED
    before = len(pair.amt_frames)
    pair.host.submit(DriveKind.CDROM, cdb_read_10(3, 10), 10 * 2048)
    pair.pump()
    chunks = list(pair.console.data_to_send())  # nothing left over
    assert chunks == []
    done = pair.host.events()[-1]
    assert isinstance(done, CommandCompleted)
    assert done.sense == GOOD
    assert done.data == image[3 * 2048 : 13 * 2048]
    assert len(pair.amt_frames) == before + 1  # one COMMAND_WRITTEN for five 4 KiB chunks
    served = [e for e in pair.console.events() if isinstance(e, CommandServed)]
    assert served[-1].length == 10 * 2048
    assert pair.console.counters.bytes_to_host == 10 * 2048


def test_the_send_budget_bounds_each_batch_of_a_long_read() -> None:
    pair = opened(bytes(2048 * 200))
    pair.host.submit(DriveKind.CDROM, cdb_read_10(0, 200), 200 * 2048)
    for data in pair.host.data_to_send():
        pair.to_console.feed(data)
        while isinstance(frame := pair.to_console.next_frame(), Frame):
            pair.console.receive(frame)
    assert pair.console.streaming
    batch = pair.console.data_to_send(budget=20000)
    assert 20000 <= sum(len(m) for m in batch) < 20000 + 8192 + 34
    assert pair.console.streaming


def test_errors_complete_with_sense_and_no_data() -> None:
    pair = opened()
    done = pair.run(DriveKind.CDROM, cdb_read_10(1000, 1), 2048)
    assert done.sense == LBA_OUT_OF_RANGE
    assert done.data == b""
    assert pair.console.counters.errors == 1


def test_a_reset_drops_the_rest_of_a_read_and_is_acknowledged() -> None:
    pair = opened(bytes(2048 * 100))
    pair.host.submit(DriveKind.CDROM, cdb_read_10(0, 100), 100 * 2048)
    for data in pair.host.data_to_send():
        pair.to_console.feed(data)
        while isinstance(frame := pair.to_console.next_frame(), Frame):
            pair.console.receive(frame)
    early = pair.console.data_to_send(budget=10000)  # part of the read is on its way
    dropped = pair.host.reset()
    assert dropped is not None
    assert dropped.aborted
    assert pair.host.busy
    for data in early:  # late chunks of the abandoned read are ignored
        pair.to_host.feed(data)
        while isinstance(frame := pair.to_host.next_frame(), Frame):
            pair.host.receive(frame)
    pair.pump()
    assert not pair.console.streaming
    assert not pair.host.busy
    assert any(isinstance(e, ResetSeen) for e in pair.host.events())
    assert any(isinstance(e, ResetSeen) for e in pair.console.events())
    assert pair.run(DriveKind.CDROM, cdb_read_capacity(), 8).data == struct.pack(">II", 99, 2048)


def test_keep_alive_pings_are_answered() -> None:
    pair = opened()
    pair.console.receive(Frame(T.IDER_KEEPALIVE_PING, encode_plain(T.IDER_KEEPALIVE_PING, len(pair.amt_frames))))
    assert pair.console.data_to_send()[0][0] == T.IDER_KEEPALIVE_PONG


def test_heartbeats_go_both_ways() -> None:
    pair = opened()
    pair.host.heartbeat()
    pair.console.heartbeat()
    pair.pump()
    assert pair.amt_frames[-1].type is T.IDER_HEARTBEAT
    assert pair.console.state is ConsoleState.RUNNING
    assert pair.host.state is HostState.OPEN


def test_feature_queries_and_disabling_the_drives() -> None:
    pair = opened()
    pair.host.events()
    for kind, expected in ((FeatureRequest.GET_SUPPORTED, 1), (FeatureRequest.GET_STATE, 2)):
        pair.to_host.feed(encode_features(T.IDER_DISABLE_ENABLE_FEATURES, 5, kind))
        pair.host.receive(pair.to_host.next_frame())  # type: ignore[arg-type]
        reply = pair.host.data_to_send()[-1]
        assert (reply[0], reply[8], struct.unpack_from("<I", reply, 9)[0]) == (0x49, kind, expected)
    pair.to_host.feed(encode_features(T.IDER_DISABLE_ENABLE_FEATURES, 6, FeatureRequest.SET_STATE, 0))
    pair.host.receive(pair.to_host.next_frame())  # type: ignore[arg-type]
    assert pair.host.events() == [DrivesEnabled(False, None)]
    assert not pair.host.enabled
    with pytest.raises(RuntimeError, match="not attached"):
        pair.host.submit(DriveKind.CDROM, cdb_test_unit_ready(), 0)


def test_an_unknown_start_mode_is_refused_and_the_console_gives_up() -> None:
    pair = opened(mode=0x20)  # type: ignore[arg-type]
    events = pair.console.events()
    assert any(isinstance(e, Refused) for e in events)
    assert any(isinstance(e, Closed) for e in events)
    assert not pair.host.enabled


@pytest.mark.parametrize(("reply", "reason"), [(StartIderReply(features=1), "variant"),
                                               (StartIderReply(read_buffer=100), "read buffer")])
def test_the_console_refuses_a_start_reply_it_cannot_work_with(reply: StartIderReply, reason: str) -> None:
    console = IderConsole(cdrom=ScsiDrive(DriveKind.CDROM, BytesMedium(bytes(2048))))
    console.start()
    console.data_to_send()
    console.receive(Frame(T.IDER_START_REPLY, reply.encode(0)))
    refused = [e for e in console.events() if isinstance(e, Refused)]
    assert refused
    assert reason in refused[0].reason
    assert console.data_to_send()[-1][0] == T.IDER_END


def test_ending_ide_r_closes_both_ends() -> None:
    pair = opened()
    pair.console.end()
    pair.pump()
    assert pair.host.state is HostState.CLOSED
    assert pair.console.state is ConsoleState.CLOSED
    assert any(isinstance(e, Closed) for e in pair.console.events())


def test_write_data_is_handed_over_when_the_console_asks_for_it() -> None:
    host = IderHost()
    opened(host=host)
    host.submit(DriveKind.FLOPPY, bytes([0x2A]) + bytes(11), 0, write_data=b"abcdef")
    host.data_to_send()
    host.receive(Frame(T.IDER_GET_DATA_FROM_HOST, encode_get_data_from_host(50, DriveKind.FLOPPY, 4)))
    sent = host.data_to_send()[0]
    assert sent[0] == 0x53
    assert struct.unpack_from("<H", sent, 9)[0] == 4
    assert sent[14:] == b"abcd"


def test_the_host_refuses_more_data_than_it_asked_for_and_completions_out_of_place() -> None:
    pair = opened()
    pair.host.submit(DriveKind.CDROM, cdb_read_capacity(), 8)
    with pytest.raises(ProtocolError, match="more than"):
        pair.host.receive(Frame(T.IDER_DATA_TO_HOST, encode_data_to_host(0, DriveKind.CDROM, bytes(9), dma=True,
                                                                           completed=True)))
    fresh = opened()
    with pytest.raises(ProtocolError, match="without a command"):
        fresh.host.receive(Frame(T.IDER_COMMAND_END_RESPONSE, encode_command_end(0, DriveKind.CDROM, GOOD)))
    with pytest.raises(ProtocolError, match="type 9"):
        fresh.host.receive(Frame(T.IDER_DISABLE_ENABLE_FEATURES,
                                 encode_features(T.IDER_DISABLE_ENABLE_FEATURES, 0, 9)))  # type: ignore[arg-type]


def test_an_error_status_without_sense_bytes_still_fails() -> None:
    pair = opened()
    pair.host.submit(DriveKind.CDROM, cdb_test_unit_ready(), 0)
    data = bytearray(encode_command_end(0, DriveKind.CDROM, Sense(0x03, 0x11, 0)))
    data[28:31] = bytes(3)  # a console that only set the registers
    pair.host.receive(Frame(T.IDER_COMMAND_END_RESPONSE, bytes(data)))
    done = pair.host.events()[-1]
    assert isinstance(done, CommandCompleted)
    assert done.sense.key == 0x03


def test_the_console_refuses_non_packet_commands_and_overlapping_ones() -> None:
    pair = opened(bytes(2048 * 100))
    bad = bytearray(CommandWritten(DriveKind.CDROM, cdb_test_unit_ready()).encode(len(pair.amt_frames)))
    bad[15] = 0xEC  # IDENTIFY DEVICE
    with pytest.raises(ProtocolError, match="not PACKET"):
        pair.console.receive(Frame(T.IDER_COMMAND_WRITTEN, bytes(bad)))
    pair = opened(bytes(2048 * 100))
    pair.host.submit(DriveKind.CDROM, cdb_read_10(0, 100), 100 * 2048)
    for data in pair.host.data_to_send():
        pair.to_console.feed(data)
        pair.console.receive(pair.to_console.next_frame())  # type: ignore[arg-type]
    second = CommandWritten(DriveKind.CDROM, cdb_test_unit_ready()).encode(len(pair.amt_frames) + 1)
    with pytest.raises(ProtocolError, match="still transferring"):
        pair.console.receive(Frame(T.IDER_COMMAND_WRITTEN, second))


# ---------------------------------------------------------------------------------------------- through the engine


def session(r, **kwargs) -> IderSession:
    return IderSession(r.host, "admin", r.password, port=r.port, timeout=10.0, **kwargs)


async def attached(storage: StorageRedirection) -> None:
    await eventually(lambda: storage.port is not None)


@pytest.mark.parametrize(("device", "media"), [
    (BootDevice.IDER_CD, lambda: {"cd": BytesMedium(iso_image("outband test CD says hello", label="OUTBAND_TEST"))}),
    (BootDevice.IDER_FLOPPY, lambda: {"floppy": BytesMedium(floppy_image("outband floppy boots", label="OUTBANDFD"))}),
], ids=["cd", "floppy"])
async def test_the_firmware_boots_from_the_image_our_client_serves(device: BootDevice, media) -> None:
    async with media_engine() as r:
        storage = r.machine.console.storage
        reports: list[Progress] = []
        async with session(r, on_progress=reports.append, **media()) as ider:
            await attached(storage)
            lines: list[str] = []
            outcome = await storage.boot(device, lines.append)
            assert outcome is not None
            if device is BootDevice.IDER_CD:
                assert lines == ["Booted from IDE-R CD-ROM: OUTBAND_TEST", "outband test CD says hello"]
            else:
                assert lines == ["Booted from IDE-R floppy: OUTBANDFD", "outband floppy boots"]
            assert await ider.wait_done(idle=5) == "the host ejected the medium"
            assert reports
            assert reports[-1].commands == ider.progress.commands >= 5
            assert ider.progress.bytes_sent > 0
            assert ider.progress.throughput > 0
        await eventually(lambda: 1801 in audit_ids(r))
        assert audit_ids(r)[-2:] == [1800, 1801]
        assert storage.port is None


@pytest.mark.parametrize(("drive", "media", "expected"), [
    (DriveKind.CDROM, lambda: {"cd": BytesMedium(iso_image("power-on boot from CD", label="POWERCD"))},
     "Booting from IDE-R CD-ROM...\r\nBooted from IDE-R CD-ROM: POWERCD\r\npower-on boot from CD\r\n"),
    (DriveKind.FLOPPY, lambda: {"floppy": BytesMedium(floppy_image("power-on boot from floppy", label="POWERFD"))},
     "Booting from IDE-R floppy...\r\nBooted from IDE-R floppy: POWERFD\r\npower-on boot from floppy\r\n"),
], ids=["cd", "floppy"])
async def test_powering_on_with_ide_r_boot_settings_boots_the_machine_from_the_image(drive: DriveKind, media,
                                                                                   expected: str) -> None:
    async with media_engine(machine=instant_machine(powered=False)) as r, session(r, **media()) as ider:
        serial = bytearray()
        r.machine.console.add_serial_listener(serial.extend)
        assert await boot_from_ider(AmtClient(r.env.host, transport=r.env.transport()), drive) == 0
        assert await ider.wait_done(idle=10) == "the host ejected the medium"
        await eventually(lambda: b"login:" in serial)
        assert expected in serial.decode()
        assert ider.progress.resets == 1  # the power-on reset the IDE channel first


async def test_every_block_of_an_image_file_arrives_intact_through_the_engine(tmp_path: Path) -> None:
    image = iso_image("big", label="BIG", blocks=600, filler=bytes(range(251)))
    path = tmp_path / "disc.iso"
    path.write_bytes(image)
    async with media_engine() as r, session(r, cd=path) as ider:
        storage = r.machine.console.storage
        await attached(storage)
        port = storage.port
        assert port is not None
        assert (await port.execute(DriveKind.CDROM, cdb_test_unit_ready(), 0)).sense == MEDIUM_CHANGED
        received = bytearray()
        for lba in range(0, 600, 64):
            count = min(64, 600 - lba)
            reply = await port.execute(DriveKind.CDROM, cdb_read_10(lba, count), count * 2048)
            assert reply.sense == GOOD
            received += reply.data
        assert bytes(received) == image
        assert ider.progress.bytes_sent == len(image)


def test_image_files_must_be_whole_sectors(tmp_path: Path) -> None:
    odd = tmp_path / "odd.img"
    odd.write_bytes(b"x" * 1000)
    with pytest.raises(ValueError, match="512-byte sectors"):
        ImageFile(odd)
    with pytest.raises(ValueError, match="image to serve"):
        IderSession("127.0.0.1")


@pytest.mark.parametrize(("media", "device", "says"), [
    ({"cd": BytesMedium(bytes(2048 * 40))}, BootDevice.IDER_CD, "no ISO 9660 volume"),
    ({"floppy": BytesMedium(bytes(512 * 2880))}, BootDevice.IDER_FLOPPY, "Non-system disk"),
    ({"floppy": BytesMedium(bytes(512 * 2880))}, BootDevice.IDER_CD, "sense 02/3A/00"),
], ids=["cd-without-volume", "floppy-without-signature", "cd-drive-empty"])
async def test_media_that_cannot_boot_are_reported(media, device: BootDevice, says: str) -> None:
    async with media_engine() as r, session(r, **media):
        storage = r.machine.console.storage
        await attached(storage)
        lines: list[str] = []
        assert await storage.boot(device, lines.append) is None
        assert says in lines[-1]


async def test_a_cd_without_el_torito_names_its_volume_but_does_not_boot() -> None:
    image = bytearray(iso_image("unused", label="PLAIN"))
    image[17 * 2048 : 18 * 2048] = bytes([255]) + b"CD001\x01" + bytes(2041)  # the boot record becomes the end
    async with media_engine() as r, session(r, cd=BytesMedium(bytes(image))):
        storage = r.machine.console.storage
        await attached(storage)
        lines: list[str] = []
        assert await storage.boot(BootDevice.IDER_CD, lines.append) is None
        assert lines == ["IDE-R: the CD 'PLAIN' is not bootable (no El Torito boot record)"]


async def test_without_a_session_the_firmware_finds_no_medium() -> None:
    lines: list[str] = []
    assert await StorageRedirection().boot(BootDevice.IDER_CD, lines.append) is None
    assert lines == ["IDE-R: no medium attached."]


async def test_a_machine_reset_resets_the_ide_channel_before_the_next_command() -> None:
    async with media_engine() as r, session(r, cd=BytesMedium(iso_image("after reset", label="RESET"))) as ider:
        storage = r.machine.console.storage
        await attached(storage)
        assert await r.machine.request_power(PowerAction.RESET)
        await eventually(lambda: ider.progress.resets == 1)
        lines: list[str] = []
        outcome = await storage.boot(BootDevice.IDER_CD, lines.append)
        assert outcome is not None
        assert outcome.label == "RESET"


async def test_ide_r_needs_its_switch() -> None:
    async with media_engine() as r:
        amt = AmtClient(r.env.host, transport=r.env.transport())
        output = await amt.invoke("AMT_RedirectionService", "RequestStateChange", {"RequestedState": 32768 + 2})
        assert output["ReturnValue"] == 0
        with pytest.raises(SessionRefused, match="not enabled"):
            await session(r, cd=BytesMedium(bytes(2048))).open()


async def test_the_session_ends_when_the_device_goes_away() -> None:
    async with media_engine() as r:
        ider = session(r, cd=BytesMedium(iso_image("gone", label="GONE")))
        await ider.open()
        await attached(r.machine.console.storage)
        await r.listener.aclose()
        reason = await asyncio.wait_for(ider.wait_done(), 10)
        assert reason.startswith("the session ended")
        await ider.close()
