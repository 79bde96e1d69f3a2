"""Tiny bootable images for tests that boot a real (emulated) PC: a hard disk, a floppy and an El Torito CD whose
boot code writes a message to COM1, then echoes what arrives on COM1 (and ``!`` for a serial break), and
acts on three control keys the way an OS would on its own: Ctrl-R reboots, Ctrl-D powers off, Ctrl-P panics.
Keys pressed on the PC's own keyboard (KVM) reach COM1 too, as their raw scancodes.

The boot code is 16-bit real-mode x86, assembled by hand below (:func:`serial_boot_code`): no assembler is
needed to build the images, and every byte is explained.  It programs the UART's line control register (8N1,
divisor latch off), writes the message byte by byte to the transmit register (0x3F8) -- the emulated 16550
passes each byte to the serial chardev at once, without waiting for "transmitter empty" -- then polls the
keyboard controller (a scancode waiting in port 0x60 is copied to COM1; interrupts are off, so the BIOS does
not take it first) and the line status register: a break (LSR bit 4) prints ``!``, a received byte (bit 0) is
read and written back -- unless it is one of the control keys, which reset the machine (reset control
register), turn it off (ACPI PM1a control) or report a panic (QEMU's pvpanic port), as :data:`GUEST_RESET` and
friends describe.

The images carry only what a PC BIOS reads to boot them: a master boot record; a FAT12 boot sector with its
parameter block and both FATs; an ISO 9660 volume (primary volume descriptor with a root directory and path
tables) with the El Torito boot record at block 17, where BIOSes look, a validated boot catalog and a
no-emulation boot image loaded at 0000:7C00.
"""

from __future__ import annotations

import struct
from typing import Final

SECTOR: Final = 512
CD_BLOCK: Final = 2048
LOAD_ADDRESS: Final = 0x7C00
"""Where a BIOS loads a boot sector (and, by default, an El Torito no-emulation image)."""
FLOPPY_SECTORS: Final = 2880
"""A 1.44 MB diskette: 80 cylinders x 2 heads x 18 sectors."""
BREAK_MARK: Final = b"!"
"""What the boot code prints for each serial break it sees."""

_CODE_HEAD: Final = bytes.fromhex(
    "FA"          # 00 cli
    "31C0"        # 01 xor ax, ax
    "8ED8"        # 03 mov ds, ax              ; the message is addressed from segment 0
    "BAFB03"      # 05 mov dx, 0x3FB           ; line control register
    "B003"        # 08 mov al, 3               ; 8 data bits, no parity, 1 stop bit, DLAB off
    "EE"          # 0A out dx, al
    "BE"          # 0B mov si, <message>       ; (address appended below)
)
_CODE_TAIL: Final = bytes.fromhex(
    "BAF803"      # 0E mov dx, 0x3F8           ; transmit/receive register
    "AC"          # 11 print: lodsb
    "84C0"        # 12 test al, al
    "7403"        # 14 jz poll (+3 -> 19)
    "EE"          # 16 out dx, al
    "EBF8"        # 17 jmp print (-8 -> 11)
    "E464"        # 19 poll: in al, 0x64       ; keyboard controller status
    "A801"        # 1B test al, 0x01           ; a byte from the keyboard
    "7406"        # 1D jz uart (+6 -> 25)
    "E460"        # 1F in al, 0x60             ; its scancode...
    "BAF803"      # 21 mov dx, 0x3F8
    "EE"          # 24 out dx, al              ; ...goes to COM1 as it is
    "BAFD03"      # 25 uart: mov dx, 0x3FD     ; line status register
    "EC"          # 28 in al, dx
    "A810"        # 29 test al, 0x10           ; break interrupt
    "7517"        # 2B jnz break (+23 -> 44)
    "A801"        # 2D test al, 0x01           ; data ready
    "74E8"        # 2F jz poll (-24 -> 19)
    "BAF803"      # 31 mov dx, 0x3F8
    "EC"          # 34 in al, dx
    "3C12"        # 35 cmp al, 0x12            ; Ctrl-R
    "7413"        # 37 je reboot (+19 -> 4C)
    "3C04"        # 39 cmp al, 0x04            ; Ctrl-D
    "7417"        # 3B je poweroff (+23 -> 54)
    "3C10"        # 3D cmp al, 0x10            ; Ctrl-P
    "741C"        # 3F je panic (+28 -> 5D)
    "EE"          # 41 out dx, al              ; echo
    "EBD5"        # 42 jmp poll (-43 -> 19)
    "BAF803"      # 44 break: mov dx, 0x3F8
    "B021"        # 47 mov al, '!'
    "EE"          # 49 out dx, al
    "EBCD"        # 4A jmp poll (-51 -> 19)
    "BAF90C"      # 4C reboot: mov dx, 0xCF9   ; reset control register (PIIX3 and ICH9)
    "B006"        # 4F mov al, 6               ; full reset
    "EE"          # 51 out dx, al
    "EBFE"        # 52 jmp $
    "BA0406"      # 54 poweroff: mov dx, 0x604 ; PM1a control (PM base 0x600, as SeaBIOS sets it)
    "B80020"      # 57 mov ax, 0x2000          ; SLP_EN with sleep type 0: soft off (S5)
    "EF"          # 5A out dx, ax
    "EBFE"        # 5B jmp $
    "BA0505"      # 5D panic: mov dx, 0x505    ; pvpanic's I/O port
    "B001"        # 60 mov al, 1               ; "guest panicked"
    "EE"          # 62 out dx, al
    "EBFE"        # 63 jmp $
)
CODE_SIZE: Final = len(_CODE_HEAD) + 2 + len(_CODE_TAIL)
"""0x65 bytes of code; the NUL-terminated message follows."""
GUEST_RESET: Final = b"\x12"
"""Ctrl-R on COM1: the boot code resets the machine through the reset control register (port 0xCF9)."""
GUEST_POWER_OFF: Final = b"\x04"
"""Ctrl-D on COM1: the boot code turns the machine off through ACPI (sleep type 0 in PM1a control)."""
GUEST_PANIC: Final = b"\x10"
"""Ctrl-P on COM1: the boot code reports a panic to the pvpanic device and stops."""


def serial_boot_code(message: str, *, at: int = LOAD_ADDRESS) -> bytes:
    """The boot code and its message (ASCII, followed by CR LF), for code that will run at address ``at``."""
    text = message.encode("ascii") + b"\r\n\0"
    if 0 in text[:-1]:
        raise ValueError("the message cannot contain NUL: it ends the message")
    address = at + CODE_SIZE
    if address + len(text) > 0xFFFF:
        raise ValueError("the message must lie within the first 64 KiB")
    return _CODE_HEAD + struct.pack("<H", address) + _CODE_TAIL + text


def boot_sector(message: str, *, code_at: int = 0, template: bytes | None = None) -> bytes:
    """A 512-byte boot sector with the boot code at offset ``code_at`` (after a parameter block, say) and the
    55 AA signature; ``template`` supplies the bytes around the code.  The message ends in CR LF."""
    sector = bytearray(template if template is not None else bytes(SECTOR))
    code = serial_boot_code(message, at=LOAD_ADDRESS + code_at)
    if code_at + len(code) > 446:
        raise ValueError("the message does not fit in a boot sector")
    sector[code_at : code_at + len(code)] = code
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def disk_image(message: str, *, size: int = 1024 * 1024) -> bytes:
    """A raw hard disk whose master boot record is the boot code (no partitions: the BIOS runs the MBR)."""
    if size % SECTOR or size < SECTOR:
        raise ValueError("a disk is a whole number of 512-byte sectors")
    return boot_sector(message).ljust(size, b"\0")


def floppy_image(message: str, *, label: str = "OUTBAND") -> bytes:
    """A 1.44 MB FAT12 diskette whose boot sector runs the boot code (after its BIOS parameter block)."""
    template = bytearray(SECTOR)
    template[0:3] = b"\xeb\x3c\x90"  # jmp 0x3E (over the parameter block), nop
    template[3:11] = b"OUTBAND "
    struct.pack_into("<HBHBHHBHHHII", template, 11, SECTOR, 1, 1, 2, 224, FLOPPY_SECTORS, 0xF0, 9, 18, 2, 0, 0)
    struct.pack_into("<BBBI", template, 36, 0, 0, 0x29, 0x20250101)
    template[43:54] = label.encode("ascii").ljust(11)[:11]
    template[54:62] = b"FAT12   "
    boot = boot_sector(message, code_at=0x3E, template=bytes(template))
    fat = b"\xf0\xff\xff".ljust(9 * SECTOR, b"\0")
    root = bytearray(14 * SECTOR)
    root[0:11] = label.encode("ascii").ljust(11)[:11]
    root[11] = 0x08  # the volume label entry
    return (boot + fat + fat + bytes(root)).ljust(FLOPPY_SECTORS * SECTOR, b"\xf6")


# ---------------------------------------------------------------------------------------------- ISO 9660


def _both16(value: int) -> bytes:
    return struct.pack("<H", value) + struct.pack(">H", value)


def _both32(value: int) -> bytes:
    return struct.pack("<I", value) + struct.pack(">I", value)


def _directory_record(extent: int, size: int, name: bytes) -> bytes:
    body = (b"\0" + _both32(extent) + _both32(size) + bytes([125, 1, 1, 0, 0, 0, 0])  # 2025-01-01 00:00 UTC
            + bytes([0x02, 0, 0]) + _both16(1) + bytes([len(name)]) + name)
    record = bytes([len(body) + 1]) + body
    return record + (b"\0" if len(record) % 2 else b"")


def _descriptor(kind: int) -> bytearray:
    return bytearray((bytes([kind]) + b"CD001\x01").ljust(CD_BLOCK, b"\0"))


def iso_image(message: str, *, label: str = "OUTBAND", blocks: int = 64, filler: bytes = b"") -> bytes:
    """A bootable CD of ``blocks`` 2048-byte blocks: an El Torito no-emulation image of 4 virtual sectors
    running the boot code.  ``filler``, repeated, fills the blocks after the boot image (so that reads of the
    whole disc can be checked); they are zero without it."""
    pvd_at, boot_record_at, terminator_at, catalog_at, path_l_at, path_m_at, root_at, image_at = range(16, 24)
    image = boot_sector(message)[:446].ljust(4 * SECTOR, b"\0")
    if blocks <= image_at + 1:
        raise ValueError(f"a bootable CD needs more than {image_at + 1} blocks")
    root = (_directory_record(root_at, CD_BLOCK, b"\0") + _directory_record(root_at, CD_BLOCK, b"\1"))
    pvd = _descriptor(1)
    pvd[8:40] = b"OUTBAND".ljust(32)
    pvd[40:72] = label.encode("ascii").ljust(32)[:32]
    pvd[80:88] = _both32(blocks)
    pvd[120:124] = _both16(1)  # volume set size
    pvd[124:128] = _both16(1)  # volume sequence number
    pvd[128:132] = _both16(CD_BLOCK)
    pvd[132:140] = _both32(10)  # path table size
    pvd[140:144] = struct.pack("<I", path_l_at)
    pvd[148:152] = struct.pack(">I", path_m_at)
    pvd[156:190] = _directory_record(root_at, CD_BLOCK, b"\0")
    pvd[190:318] = b" " * 128
    pvd[813:830] = b"2025010100000000\0"
    pvd[881] = 1  # file structure version
    boot_record = _descriptor(0)
    boot_record[7:39] = b"EL TORITO SPECIFICATION".ljust(32, b"\0")
    boot_record[71:75] = struct.pack("<I", catalog_at)
    validation = bytearray(32)
    validation[0] = 1
    validation[4:28] = b"outband".ljust(24, b"\0")
    validation[30:32] = b"\x55\xaa"
    validation[28:30] = struct.pack("<H", -sum(struct.unpack("<16H", validation)) & 0xFFFF)
    initial = struct.pack("<BBHBxHI20x", 0x88, 0, 0, 0, len(image) // SECTOR, image_at)
    tables = [
        (pvd_at, bytes(pvd)), (boot_record_at, bytes(boot_record)), (terminator_at, bytes(_descriptor(255))),
        (catalog_at, bytes(validation) + initial),
        (path_l_at, bytes([1, 0]) + struct.pack("<IH", root_at, 1) + b"\0\0"),
        (path_m_at, bytes([1, 0]) + struct.pack(">IH", root_at, 1) + b"\0\0"),
        (root_at, root), (image_at, image),
    ]
    disc = bytearray(blocks * CD_BLOCK)
    if filler:
        rest = (blocks - image_at - 1) * CD_BLOCK
        disc[(image_at + 1) * CD_BLOCK :] = (filler * (rest // len(filler) + 1))[:rest]
    for at, content in tables:
        disc[at * CD_BLOCK : at * CD_BLOCK + len(content)] = content
    return bytes(disc)


__all__ = [
    "BREAK_MARK",
    "CD_BLOCK",
    "CODE_SIZE",
    "FLOPPY_SECTORS",
    "GUEST_PANIC",
    "GUEST_POWER_OFF",
    "GUEST_RESET",
    "SECTOR",
    "boot_sector",
    "disk_image",
    "floppy_image",
    "iso_image",
    "serial_boot_code",
]
