"""Boot media built byte by byte for the IDE-R tests: an ISO 9660 CD with an El Torito boot record, and a
1.44 MB FAT12 floppy with a boot sector.  Only what a firmware reads is filled in, but correctly: the primary
volume descriptor (with a root directory and path tables), the boot record, the terminator, the boot catalog
(validation entry with its checksum, bootable initial entry) and a no-emulation boot image carrying a
message; the floppy's BIOS parameter block, both FATs, a root directory with the volume label entry and the
55 AA signature."""

from __future__ import annotations

import struct

BLOCK = 2048
SECTOR = 512


def _both16(value: int) -> bytes:
    return struct.pack("<H", value) + struct.pack(">H", value)


def _both32(value: int) -> bytes:
    return struct.pack("<I", value) + struct.pack(">I", value)


def _directory_record(extent: int, size: int, name: bytes) -> bytes:
    body = (bytes([0]) + _both32(extent) + _both32(size) + bytes([125, 1, 1, 0, 0, 0, 0])  # 2025-01-01
            + bytes([0x02, 0, 0]) + _both16(1) + bytes([len(name)]) + name)
    record = bytes([len(body) + 1]) + body
    return record + (b"\0" if len(record) % 2 else b"")


def _descriptor(kind: int, body: bytes) -> bytes:
    return (bytes([kind]) + b"CD001" + bytes([1]) + body).ljust(BLOCK, b"\0")


def boot_image(message: str, sectors: int = 4) -> bytes:
    """A no-emulation boot image: a short jump, then the message the firmware should report."""
    code = b"\xeb\x1e" + bytes(30) + message.encode("ascii") + b"\r\n\0"
    return code.ljust(sectors * SECTOR, b"\0")


def iso_image(label: str, message: str, *, blocks: int = 64, filler: bytes = b"") -> bytes:
    """A bootable ISO 9660 image of ``blocks`` 2048-byte blocks; ``filler`` fills the blocks after the boot
    image (so reads of the whole disc can be checked)."""
    catalog_at, path_l_at, path_m_at, root_at, boot_at = 19, 20, 21, 22, 23
    image = boot_image(message)
    first_free = boot_at + -(-len(image) // BLOCK)
    assert blocks > first_free
    root = (_directory_record(root_at, BLOCK, b"\0") + _directory_record(root_at, BLOCK, b"\1")).ljust(BLOCK, b"\0")
    path_l = (bytes([1, 0]) + struct.pack("<IH", root_at, 1) + b"\0\0").ljust(BLOCK, b"\0")
    path_m = (bytes([1, 0]) + struct.pack(">IH", root_at, 1) + b"\0\0").ljust(BLOCK, b"\0")
    pvd = bytearray(_descriptor(1, b""))
    pvd[8:40] = b"OUTBAND".ljust(32)
    pvd[40:72] = label.encode("ascii").ljust(32)
    pvd[80:88] = _both32(blocks)
    pvd[120:124] = _both16(1)
    pvd[124:128] = _both16(1)
    pvd[128:132] = _both16(BLOCK)
    pvd[132:140] = _both32(10)
    pvd[140:144] = struct.pack("<I", path_l_at)
    pvd[148:152] = struct.pack(">I", path_m_at)
    pvd[156:190] = _directory_record(root_at, BLOCK, b"\0")
    pvd[190:318] = b" " * 128
    pvd[813:830] = b"2025010100000000\0"
    pvd[881] = 1
    boot_record = bytearray(_descriptor(0, b""))
    boot_record[7:39] = b"EL TORITO SPECIFICATION".ljust(32, b"\0")
    boot_record[71:75] = struct.pack("<I", catalog_at)
    terminator = _descriptor(255, b"")
    validation = bytearray(32)
    validation[0] = 1
    validation[4:28] = b"outband test".ljust(24, b"\0")
    validation[30:32] = b"\x55\xaa"
    validation[28:30] = struct.pack("<H", -sum(struct.unpack("<16H", validation)) & 0xFFFF)
    initial = struct.pack("<BBHBxHI20x", 0x88, 0, 0, 0, len(image) // SECTOR, boot_at)
    catalog = (bytes(validation) + initial).ljust(BLOCK, b"\0")
    disc = (bytes(16 * BLOCK) + bytes(pvd) + bytes(boot_record) + terminator + catalog + path_l + path_m + root
            + image.ljust((first_free - boot_at) * BLOCK, b"\0"))
    rest = (blocks - first_free) * BLOCK
    disc += (filler * (rest // len(filler) + 1))[:rest] if filler else bytes(rest)
    assert len(disc) == blocks * BLOCK
    return disc


def floppy_image(label: str, message: str) -> bytes:
    """A 1.44 MB FAT12 diskette (2880 sectors) with a bootable boot sector and a volume label."""
    boot = bytearray(SECTOR)
    boot[0:3] = b"\xeb\x3c\x90"
    boot[3:11] = b"OUTBAND "
    struct.pack_into("<HBHBHHBHHHII", boot, 11, 512, 1, 1, 2, 224, 2880, 0xF0, 9, 18, 2, 0, 0)
    struct.pack_into("<BBBI", boot, 36, 0, 0, 0x29, 0x20250101)
    boot[43:54] = label.encode("ascii").ljust(11)[:11]
    boot[54:62] = b"FAT12   "
    text = message.encode("ascii") + b"\r\n\0"
    boot[62 : 62 + len(text)] = text
    boot[510:512] = b"\x55\xaa"
    fat = b"\xf0\xff\xff".ljust(9 * SECTOR, b"\0")
    root = bytearray(14 * SECTOR)
    root[0:11] = label.encode("ascii").ljust(11)[:11]
    root[11] = 0x08  # volume label entry
    disk = bytes(boot) + fat + fat + bytes(root)
    return disk.ljust(2880 * SECTOR, b"\xf6")  # unused sectors as a freshly formatted diskette has them
