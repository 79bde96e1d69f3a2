"""The ATAPI drive model of the IDE-R console: every command of AMT-PROTOCOLS.md §4.4 on a CD-ROM and a floppy,
with and without a medium, and the sense codes a host relies on."""

from __future__ import annotations

import struct

import pytest

from outband.proto.redir.scsi import (
    GOOD,
    INVALID_FIELD,
    INVALID_OPCODE,
    LBA_OUT_OF_RANGE,
    MEDIUM_CHANGED,
    NOT_READY_NO_MEDIUM,
    REMOVAL_PREVENTED,
    SAVING_NOT_SUPPORTED,
    WRITE_PROTECTED,
    BytesMedium,
    DriveKind,
    Op,
    ScsiDrive,
    build_cdb,
    cdb_read_10,
    cdb_read_capacity,
    cdb_test_unit_ready,
    parse_capacity,
)

CD_BLOCKS = 100
FLOPPY_BLOCKS = 2880


def cd(blocks: int = CD_BLOCKS) -> ScsiDrive:
    return ScsiDrive(DriveKind.CDROM, BytesMedium(bytes(range(256)) * (blocks * 8)))


def floppy(blocks: int = FLOPPY_BLOCKS) -> ScsiDrive:
    return ScsiDrive(DriveKind.FLOPPY, BytesMedium(bytes(blocks * 512)))


def test_drive_select_picks_the_device() -> None:
    assert DriveKind.from_drive_select(0xB0) is DriveKind.CDROM
    assert DriveKind.from_drive_select(0xA0) is DriveKind.FLOPPY
    assert (DriveKind.CDROM.block_size, DriveKind.FLOPPY.block_size) == (2048, 512)


def test_a_new_medium_reports_medium_changed_once_then_ready() -> None:
    drive = cd()
    assert drive.execute(cdb_test_unit_ready()).sense == MEDIUM_CHANGED
    assert drive.execute(cdb_test_unit_ready()).sense == GOOD
    assert drive.execute(cdb_test_unit_ready()).sense == GOOD


@pytest.mark.parametrize("kind", list(DriveKind))
@pytest.mark.parametrize("packet", [cdb_test_unit_ready(), cdb_read_capacity(), cdb_read_10(0, 1),
                                    build_cdb(Op.MODE_SENSE_10, (2, 1, 0x3F), (7, 2, 255)),
                                    build_cdb(Op.PREVENT_ALLOW_MEDIUM_REMOVAL, (4, 1, 1))],
                         ids=["tur", "capacity", "read", "mode-sense", "prevent"])
def test_an_empty_drive_is_not_ready_medium_not_present(kind: DriveKind, packet: bytes) -> None:
    assert ScsiDrive(kind).execute(packet).sense == NOT_READY_NO_MEDIUM


@pytest.mark.parametrize(("drive", "blocks", "size"), [(cd, CD_BLOCKS, 2048), (floppy, FLOPPY_BLOCKS, 512)])
def test_read_capacity_gives_the_last_block_and_the_block_size(drive, blocks: int, size: int) -> None:
    outcome = drive().execute(cdb_read_capacity())
    assert outcome.sense == GOOD
    assert outcome.data == struct.pack(">II", blocks - 1, size)
    assert parse_capacity(outcome.data) == (blocks, size)


def test_a_trailing_partial_block_counts_and_reads_as_zero_padded() -> None:
    drive = ScsiDrive(DriveKind.CDROM, BytesMedium(b"\x11" * 2048 + b"\x22" * 512))
    assert parse_capacity(drive.execute(cdb_read_capacity()).data) == (2, 2048)
    outcome = drive.execute(cdb_read_10(1, 1))
    assert (outcome.read_offset, outcome.read_length) == (2048, 2048)
    assert drive.medium is not None
    assert drive.medium.read(2048, 2048) == b"\x22" * 512 + bytes(1536)


def test_read_10_plans_the_medium_range_without_reading_it() -> None:
    drive = cd()
    outcome = drive.execute(cdb_read_10(10, 5))
    assert outcome.sense == GOOD
    assert outcome.data == b""
    assert (outcome.read_offset, outcome.read_length, outcome.transfer_length) == (10 * 2048, 5 * 2048, 5 * 2048)
    assert drive.reads == 1


def test_read_6_uses_21_bit_addresses_and_zero_means_256_blocks() -> None:
    drive = floppy()
    outcome = drive.execute(build_cdb(Op.READ_6, (1, 3, 0x1F0203), (4, 1, 0)))
    assert outcome.sense == LBA_OUT_OF_RANGE  # block 0x1F0203 is far beyond 2880
    outcome = drive.execute(build_cdb(Op.READ_6, (2, 2, 7), (4, 1, 0)))
    assert (outcome.read_offset, outcome.read_length) == (7 * 512, 256 * 512)


@pytest.mark.parametrize(("lba", "count", "sense"), [(CD_BLOCKS - 1, 1, GOOD), (CD_BLOCKS - 1, 2, LBA_OUT_OF_RANGE),
                                                     (CD_BLOCKS, 0, GOOD), (2**32 - 1, 1, LBA_OUT_OF_RANGE)])
def test_reads_beyond_the_end_are_lba_out_of_range(lba: int, count: int, sense) -> None:
    assert cd().execute(cdb_read_10(lba, count)).sense == sense


@pytest.mark.parametrize("op", [Op.WRITE_6, Op.WRITE_10, Op.WRITE_AND_VERIFY_10])
def test_writes_are_refused_as_write_protected(op: Op) -> None:
    assert floppy().execute(build_cdb(op, (7, 2, 1))).sense == WRITE_PROTECTED


@pytest.mark.parametrize("op", [Op.MODE_SELECT_6, Op.MODE_SELECT_10, 0x12, 0x03, 0xBE, 0xFF])
def test_mode_select_and_unknown_opcodes_are_invalid_commands(op: int) -> None:
    assert cd().execute(bytes([op]) + bytes(11)).sense == INVALID_OPCODE


@pytest.mark.parametrize("op", [Op.READ_TOC, Op.GET_CONFIGURATION, Op.GET_EVENT_STATUS_NOTIFICATION,
                                Op.READ_DISC_INFORMATION, Op.READ_TRACK_INFORMATION, Op.GET_PERFORMANCE])
def test_multimedia_commands_are_unknown_to_a_floppy(op: Op) -> None:
    assert floppy().execute(build_cdb(op, (7, 2, 64))).sense == INVALID_OPCODE


def test_mode_sense_6_all_pages_reports_a_write_protected_cd() -> None:
    outcome = cd().execute(build_cdb(Op.MODE_SENSE_6, (2, 1, 0x3F), (4, 1, 255)))
    data = outcome.data
    assert outcome.sense == GOOD
    assert data[0] == len(data) - 1
    assert data[1] == 0x01
    assert data[2] == 0x80
    assert data[3] == 0
    assert [data[i] for i in _page_offsets(data, 4)] == [0x01, 0x1A, 0x1D, 0x2A]


def test_mode_sense_10_pages_of_a_diskette_describe_its_geometry() -> None:
    data = floppy().execute(build_cdb(Op.MODE_SENSE_10, (2, 1, 0x05), (7, 2, 512))).data
    length, medium, device, _, block_descriptors = struct.unpack_from(">HBBHH", data)
    assert (length, medium, device, block_descriptors) == (len(data) - 2, 0x24, 0x80, 0)
    page = data[8:]
    assert page[:2] == bytes([0x05, 0x1E])
    _rate, heads, sectors, size, cylinders = struct.unpack_from(">HBBHH", page, 2)
    assert (heads, sectors, size, cylinders) == (2, 18, 512, 80)
    assert struct.unpack_from(">H", page, 28)[0] == 300  # rpm


def test_a_floppy_image_larger_than_a_diskette_is_an_ls120() -> None:
    data = floppy(blocks=4000).execute(build_cdb(Op.MODE_SENSE_10, (2, 1, 0x05), (7, 2, 512))).data
    assert data[2] == 0x31
    heads, sectors = data[8 + 4], data[8 + 5]
    assert (heads, sectors) == (8, 32)


@pytest.mark.parametrize(("page", "sense"), [(0x05, INVALID_FIELD), (0x2A, GOOD), (0x3F | 0xC0, SAVING_NOT_SUPPORTED)])
def test_mode_sense_page_support_on_a_cd(page: int, sense) -> None:
    assert cd().execute(build_cdb(Op.MODE_SENSE_10, (2, 1, page), (7, 2, 255))).sense == sense


def test_changeable_mode_values_are_all_zero() -> None:
    data = cd().execute(build_cdb(Op.MODE_SENSE_10, (2, 1, 0x40 | 0x2A), (7, 2, 255))).data
    assert data[8:10] == bytes([0x2A, 0x18])
    assert not any(data[10:])


def test_allocation_length_cuts_replies() -> None:
    assert len(cd().execute(build_cdb(Op.MODE_SENSE_10, (2, 1, 0x3F), (7, 2, 10))).data) == 10
    assert cd().execute(build_cdb(Op.MODE_SENSE_10, (2, 1, 0x3F), (7, 2, 0))).data == b""


def test_prevent_medium_removal_locks_out_an_eject_and_a_load_brings_the_medium_back() -> None:
    drive = cd()
    eject = build_cdb(Op.START_STOP_UNIT, (4, 1, 0x02))
    assert drive.execute(build_cdb(Op.PREVENT_ALLOW_MEDIUM_REMOVAL, (4, 1, 1))).sense == GOOD
    assert drive.execute(eject).sense == REMOVAL_PREVENTED
    page = drive.execute(build_cdb(Op.MODE_SENSE_10, (2, 1, 0x2A), (7, 2, 255))).data[8:]
    assert page[6] & 0x02  # the capabilities page shows the lock
    drive.execute(build_cdb(Op.PREVENT_ALLOW_MEDIUM_REMOVAL, (4, 1, 0)))
    assert drive.execute(eject).sense == GOOD
    assert drive.ejected is not None
    assert drive.medium is None
    assert drive.execute(cdb_test_unit_ready()).sense == NOT_READY_NO_MEDIUM
    assert drive.execute(build_cdb(Op.START_STOP_UNIT, (4, 1, 0x03))).sense == GOOD
    assert drive.execute(cdb_test_unit_ready()).sense == MEDIUM_CHANGED


def test_read_format_capacities_lists_the_formatted_medium() -> None:
    data = floppy().execute(build_cdb(Op.READ_FORMAT_CAPACITIES, (7, 2, 252))).data
    assert data[3] == 8
    blocks, kind = struct.unpack_from(">IB", data, 4)
    assert (blocks, kind, int.from_bytes(data[9:12], "big")) == (FLOPPY_BLOCKS, 2, 512)
    empty = ScsiDrive(DriveKind.FLOPPY).execute(build_cdb(Op.READ_FORMAT_CAPACITIES, (7, 2, 252)))
    assert empty.sense == GOOD
    assert empty.data[8] == 3


@pytest.mark.parametrize("msf", [False, True])
def test_read_toc_lists_one_data_track_and_the_lead_out(msf: bool) -> None:
    data = cd().execute(build_cdb(Op.READ_TOC, (1, 1, 0x02 if msf else 0), (7, 2, 100))).data
    assert int.from_bytes(data[:2], "big") == len(data) - 2 == 2 + 16
    assert data[2:4] == bytes([1, 1])
    track, lead_out = data[4:12], data[12:20]
    assert (track[1], track[2], lead_out[1], lead_out[2]) == (0x14, 1, 0x14, 0xAA)
    if msf:
        assert track[4:] == bytes([0, 0, 2, 0])  # block 0 is 00:02:00 after the pregap
        frames = CD_BLOCKS + 150
        assert lead_out[4:] == bytes([0, frames // 4500, frames % 4500 // 75, frames % 75])
    else:
        assert int.from_bytes(track[4:], "big") == 0
        assert int.from_bytes(lead_out[4:], "big") == CD_BLOCKS


def test_read_toc_session_format_and_bad_fields() -> None:
    drive = cd()
    session = drive.execute(build_cdb(Op.READ_TOC, (2, 1, 1), (7, 2, 100))).data
    assert session[:4] == bytes([0, 10, 1, 1])
    assert session[6] == 1
    legacy = drive.execute(build_cdb(Op.READ_TOC, (7, 2, 100), (9, 1, 0x40))).data  # format in the control byte
    assert legacy == session
    assert drive.execute(build_cdb(Op.READ_TOC, (2, 1, 5), (7, 2, 100))).sense == INVALID_FIELD
    assert drive.execute(build_cdb(Op.READ_TOC, (6, 1, 2), (7, 2, 100))).sense == INVALID_FIELD


def _features(data: bytes) -> list[int]:
    codes, at = [], 8
    while at < len(data):
        codes.append(int.from_bytes(data[at : at + 2], "big"))
        at += 4 + data[at + 3]
    return codes


def test_get_configuration_reports_the_cd_rom_profile_and_its_features() -> None:
    data = cd().execute(build_cdb(Op.GET_CONFIGURATION, (7, 2, 1024))).data
    assert int.from_bytes(data[:4], "big") == len(data) - 4
    assert int.from_bytes(data[6:8], "big") == 0x0008  # current profile: CD-ROM
    assert _features(data) == [0x0000, 0x0001, 0x0002, 0x0003, 0x0010, 0x001E, 0x0100, 0x0105]
    assert data[12:16] == bytes([0x00, 0x08, 0x01, 0x00])  # the one profile, current
    assert int.from_bytes(data[20:24], "big") == 2  # core: ATAPI


def test_get_configuration_request_types() -> None:
    drive = ScsiDrive(DriveKind.CDROM)
    current = drive.execute(build_cdb(Op.GET_CONFIGURATION, (1, 1, 1), (7, 2, 1024))).data
    assert int.from_bytes(current[6:8], "big") == 0  # no medium: no current profile
    assert 0x0010 not in _features(current)
    assert 0x001E not in _features(current)
    one = cd().execute(build_cdb(Op.GET_CONFIGURATION, (1, 1, 2), (2, 2, 0x1E), (7, 2, 1024))).data
    assert _features(one) == [0x001E]
    assert cd().execute(build_cdb(Op.GET_CONFIGURATION, (1, 1, 3), (7, 2, 64))).sense == INVALID_FIELD


def test_get_event_status_reports_new_media_once() -> None:
    drive = cd()
    ask = build_cdb(Op.GET_EVENT_STATUS_NOTIFICATION, (1, 1, 1), (4, 1, 0x10), (7, 2, 8))
    first, second = drive.execute(ask).data, drive.execute(ask).data
    assert first == bytes([0, 6, 0x04, 0x10, 2, 0x02, 0, 0])
    assert second == bytes([0, 6, 0x04, 0x10, 0, 0x02, 0, 0])
    no_media_class = build_cdb(Op.GET_EVENT_STATUS_NOTIFICATION, (1, 1, 1), (4, 1, 0x02), (7, 2, 8))
    assert drive.execute(no_media_class).data == bytes([0, 2, 0x80, 0x10])
    assert drive.execute(build_cdb(Op.GET_EVENT_STATUS_NOTIFICATION, (4, 1, 0x10), (7, 2, 8))).sense == INVALID_FIELD


def test_disc_and_track_information_describe_one_closed_session() -> None:
    drive = cd()
    disc = drive.execute(build_cdb(Op.READ_DISC_INFORMATION, (7, 2, 64))).data
    assert len(disc) == 34
    assert disc[2] == 0x0E
    assert disc[3:7] == bytes([1, 1, 1, 1])
    track = drive.execute(build_cdb(Op.READ_TRACK_INFORMATION, (1, 1, 1), (2, 4, 1), (7, 2, 64))).data
    assert len(track) == 36
    assert track[2] == 1
    assert struct.unpack_from(">I", track, 24)[0] == CD_BLOCKS
    assert drive.execute(build_cdb(Op.READ_TRACK_INFORMATION, (1, 1, 1), (2, 4, 2), (7, 2, 64))).sense == INVALID_FIELD


def test_get_performance_reports_one_nominal_descriptor() -> None:
    data = cd().execute(build_cdb(Op.GET_PERFORMANCE, (8, 2, 1))).data
    assert int.from_bytes(data[:4], "big") == len(data) - 4 == 4 + 16
    start, speed, end, _ = struct.unpack_from(">IIII", data, 8)
    assert (start, end) == (0, CD_BLOCKS - 1)
    assert speed > 0
    assert cd().execute(build_cdb(Op.GET_PERFORMANCE, (10, 1, 3))).sense == INVALID_FIELD


def test_short_packets_are_padded_and_an_empty_image_is_refused() -> None:
    assert cd().execute(b"\x25").sense == GOOD
    with pytest.raises(ValueError, match="empty"):
        ScsiDrive(DriveKind.CDROM, BytesMedium(b""))


def _page_offsets(data: bytes, start: int) -> list[int]:
    offsets, at = [], start
    while at < len(data):
        offsets.append(at)
        at += 2 + data[at + 1]
    return offsets
