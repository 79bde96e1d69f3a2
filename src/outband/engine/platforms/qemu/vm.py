"""The VM file (``VM.toml``): which QEMU to run, and the machine it emulates.

Everything the engine needs to launch and describe a VM is here, validated on load so a typo fails at start-up
with the key's path rather than as a QEMU error later: unknown keys are refused, numbers are range-checked,
disk images must exist, MAC addresses and the UUID must parse.  Relative paths are relative to the VM file.

A minimal file::

    name = "demo"
    memory_mb = 512

    [[disks]]
    path = "debian.qcow2"

The SMBIOS strings (``[smbios]``, ``[smbios.bios]``, ``[smbios.board]``, ``[smbios.chassis]``) are what the
guest's firmware tables say and what AMT's inventory reports (:meth:`VmSpec.profile`); left out, they get
stable values derived from the VM's name, so a VM keeps its identity (serial, system UUID) across restarts.
"""

from __future__ import annotations

import re
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from ..profile import Bios, Board, Chassis, Cpu, Disk, HardwareProfile, MemoryModule, Nic

DiskMedia = Literal["disk", "cdrom", "floppy"]
BootTarget = Literal["disk", "cdrom", "floppy", "network"]

MEDIA: Final[tuple[DiskMedia, ...]] = ("disk", "cdrom", "floppy")
BOOT_TARGETS: Final[tuple[BootTarget, ...]] = ("disk", "cdrom", "floppy", "network")
DISK_INTERFACES: Final = ("ide", "virtio")
NIC_MODELS: Final = ("e1000", "e1000e", "virtio-net-pci", "rtl8139")
NETWORKS: Final = ("user", "none")
MACHINES_WITH_IDE: Final = {"pc": ((0, 0), (0, 1), (1, 0), (1, 1)), "q35": tuple((bus, 0) for bus in range(6))}
"""Where IDE devices can go, (bus, unit): i440FX has two channels of two, Q35's AHCI six ports of one."""
MAX_MEMORY_MB: Final = 1024 * 1024
USER_NETWORK: Final = Nic(ipv4="10.0.2.15", subnet_mask="255.255.255.0", gateway="10.0.2.2", dns=("10.0.2.3",))
"""The addresses QEMU's user-mode network gives its guest (slirp's defaults)."""

_MAC: Final = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_NAMESPACE: Final = uuid.UUID("6f2a61c4-4f4b-4c58-9d0e-6f7574626e64")
"""Namespace of the UUIDs and serials derived from a VM's name."""


class VmFileError(ValueError):
    """The VM file is wrong; the message names the key."""


@dataclass(frozen=True, slots=True)
class DiskSpec:
    path: Path
    media: DiskMedia = "disk"
    format: str = "raw"
    interface: str = "ide"
    """How a hard disk is attached: ``ide`` (what every firmware and OS can boot) or ``virtio``."""
    snapshot: bool = False
    """Discard the guest's writes when QEMU exits (QEMU's ``snapshot=on``)."""
    model: str = ""
    serial: str = ""

    @property
    def read_only(self) -> bool:
        return self.media == "cdrom"


@dataclass(frozen=True, slots=True)
class NicSpec:
    mac: str
    model: str = "e1000"
    network: str = "user"
    """``user``: QEMU's built-in NAT (guest 10.0.2.15), ``none``: a NIC with no cable."""
    tftp: Path | None = None
    """User network only: a directory QEMU serves over TFTP, for PXE boots."""
    bootfile: str = ""
    """User network only: the file DHCP tells a PXE client to load from the TFTP directory."""


@dataclass(frozen=True, slots=True)
class Smbios:
    manufacturer: str
    product: str
    version: str
    serial: str
    uuid: str
    sku: str = ""
    family: str = ""
    bios_vendor: str = "SeaBIOS"
    bios_version: str = "1.16.2"
    bios_date: str = "04/01/2014"
    """MM/DD/YYYY, as SMBIOS type 0 writes it."""
    board_manufacturer: str = ""
    board_product: str = ""
    board_version: str = ""
    board_serial: str = ""
    chassis_manufacturer: str = ""
    chassis_version: str = ""
    chassis_serial: str = ""
    chassis_asset: str = ""


@dataclass(frozen=True, slots=True)
class VmSpec:
    name: str
    smbios: Smbios
    qemu: str = "qemu-system-x86_64"
    machine: str = "pc"
    accel: str = "kvm:tcg"
    """QEMU's accelerators in order of preference: ``kvm``, ``tcg`` (software, what CI has), ``kvm:tcg``."""
    cpus: int = 1
    cpu_model: str = ""
    memory_mb: int = 256
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    boot_order: tuple[BootTarget, ...] = ("disk", "cdrom", "network")
    """Where the firmware looks when no one-time boot device is set."""
    soft_off: str = "acpi"
    """What AMT's "power off - soft" (8) does: ``acpi`` presses the ACPI power button, so the OS shuts down,
    and cuts the power after ``acpi_timeout``; ``immediate`` cuts it at once, as AMT firmware does on a PC.
    The graceful power-offs (12, 13) always go through ACPI."""
    acpi_timeout: float = 30.0
    """Seconds an ACPI power-off waits for the OS before the power is cut."""
    start_timeout: float = 30.0
    """Seconds QEMU may take to start and connect its monitor."""
    firmware: Path | None = None
    """A BIOS image for ``-bios`` (default: QEMU's SeaBIOS)."""
    vga: bool = True
    """A standard VGA adapter, which KVM shows (False: no display at all)."""
    ider: bool = True
    """An empty CD-ROM drive and floppy drive for IDE-R media (as AMT's own IDE-R devices are always present)."""
    extra_args: tuple[str, ...] = ()
    """Passed to QEMU verbatim, after everything else (devices this file has no key for)."""
    source: Path | None = field(default=None, compare=False)

    # ------------------------------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: Path) -> VmSpec:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise VmFileError(f"{path}: cannot read the VM file: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise VmFileError(f"{path}: not valid TOML: {exc}") from None
        try:
            return cls.from_dict(data, base=path.resolve().parent, source=path)
        except VmFileError as exc:
            raise VmFileError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, base: Path, source: Path | None = None) -> VmSpec:
        top = _Table(data, "")
        name = top.string("name", "vm")
        if not _NAME.match(name):
            raise VmFileError("name: letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit")
        machine = top.string("machine", "pc")
        disks = tuple(_disk(t, base) for t in top.tables("disks"))
        nics = tuple(_nic(t, base, name, i) for i, t in enumerate(top.tables("nics")))
        boot_order = tuple(top.choices("boot_order", BOOT_TARGETS, ("disk", "cdrom", "network")))
        firmware = top.string("firmware", "")
        spec = cls(
            name=name,
            smbios=_smbios(top.table("smbios"), name),
            qemu=top.string("qemu", "qemu-system-x86_64"),
            machine=machine,
            accel=top.string("accel", "kvm:tcg"),
            cpus=top.integer("cpus", 1, 1, 255),
            cpu_model=top.string("cpu_model", ""),
            memory_mb=top.integer("memory_mb", 256, 16, MAX_MEMORY_MB),
            disks=disks,
            nics=nics,
            boot_order=boot_order,  # type: ignore[arg-type]  # checked against BOOT_TARGETS
            soft_off=top.choice("soft_off", ("acpi", "immediate"), "acpi"),
            acpi_timeout=top.number("acpi_timeout", 30.0, 0.0, 3600.0),
            start_timeout=top.number("start_timeout", 30.0, 1.0, 600.0),
            firmware=_existing(base, firmware, "firmware") if firmware else None,
            vga=top.boolean("vga", True),
            ider=top.boolean("ider", True),
            extra_args=tuple(top.strings("extra_args")),
            source=source,
        )
        top.done()
        for accel in spec.accel.split(":"):
            if accel not in ("kvm", "tcg", "hvf", "whpx", "xen"):
                raise VmFileError(f"accel: unknown accelerator {accel!r} (kvm, tcg, or both as 'kvm:tcg')")
        if machine in MACHINES_WITH_IDE:
            slots = len(MACHINES_WITH_IDE[machine])
            wanted = sum(1 for d in disks if d.media != "floppy" and d.interface == "ide") + int(spec.ider)
            if wanted > slots:
                raise VmFileError(f"disks: {wanted} IDE devices (with the IDE-R CD-ROM) but machine {machine!r} "
                                  f"has {slots} IDE slots; attach hard disks with interface = \"virtio\"")
        if sum(1 for d in disks if d.media == "floppy") + int(spec.ider) > 2:
            raise VmFileError("disks: a PC has two floppy drives (one is the IDE-R floppy unless ider = false)")
        return spec

    # ------------------------------------------------------------------------------------------ inventory

    def profile(self, *, disk_sizes: dict[int, int] | None = None) -> HardwareProfile:
        """What AMT's inventory reports about this VM; ``disk_sizes`` (bytes, by disk index) are the virtual
        sizes QEMU reports, which a qcow2 file's own size does not tell."""
        s = self.smbios
        sizes = disk_sizes or {}
        disks = tuple(
            Disk(model=d.model or ("QEMU HARDDISK" if d.media == "disk" else "QEMU DVD-ROM"),
                 size_kb=sizes.get(i, _file_size(d.path)) // 1000,
                 serial=d.serial or f"QM{i:05d}")
            for i, d in enumerate(self.disks) if d.media == "disk"
        )
        nics = tuple(Nic(mac=n.mac.replace(":", "-"), link_up=n.network != "none", **_addresses(n))
                     for n in self.nics)
        return HardwareProfile(
            name=self.name,
            manufacturer=s.manufacturer,
            product=s.product,
            serial=s.serial,
            system_uuid=s.uuid,
            bios=Bios(vendor=s.bios_vendor, version=s.bios_version, release_date=_iso_date(s.bios_date)),
            board=Board(manufacturer=s.board_manufacturer or s.manufacturer, product=s.board_product or s.product,
                        version=s.board_version or s.version, serial=s.board_serial or s.serial),
            chassis=Chassis(manufacturer=s.chassis_manufacturer or s.manufacturer, model=s.product,
                            version=s.chassis_version or s.version, serial=s.chassis_serial or s.serial,
                            chassis_type=1),
            cpus=(Cpu(brand=f"QEMU Virtual CPU ({self.cpu_model or 'default model'})", manufacturer="QEMU",
                      family=2, max_speed_mhz=2000, current_speed_mhz=2000, stepping="", cores=self.cpus),),
            memory=(MemoryModule(bank="DIMM 0", capacity_bytes=self.memory_mb * 1024 * 1024, speed_mhz=0,
                                 memory_type=7, form_factor=9, manufacturer="QEMU", part_number="",
                                 serial="", asset_tag=""),),
            disks=disks,
            nics=nics,
        )


# ---------------------------------------------------------------------------------------------- sections


def _disk(t: _Table, base: Path) -> DiskSpec:
    media = t.choice("media", MEDIA, "disk")
    path = _existing(base, t.string("path"), f"{t.where}path")
    default_format = "qcow2" if path.suffix == ".qcow2" else "raw"
    spec = DiskSpec(
        path=path,
        media=media,  # type: ignore[arg-type]  # checked against MEDIA
        format=t.choice("format", ("raw", "qcow2", "vmdk", "vdi", "vhdx"), default_format),
        interface=t.choice("interface", DISK_INTERFACES, "ide"),
        snapshot=t.boolean("snapshot", False),
        model=t.string("model", ""),
        serial=t.string("serial", ""),
    )
    t.done()
    if spec.media != "disk" and spec.interface != "ide":
        raise VmFileError(f"{t.where}interface: only hard disks can be virtio ({spec.media} drives are IDE/ISA)")
    if len(spec.serial) > 20:
        raise VmFileError(f"{t.where}serial: at most 20 characters (the ATA serial number field)")
    return spec


def _nic(t: _Table, base: Path, vm_name: str, index: int) -> NicSpec:
    derived = uuid.uuid5(_NAMESPACE, f"{vm_name}/nic{index}").bytes
    mac = t.string("mac", "52:54:00:" + ":".join(f"{b:02x}" for b in derived[:3])).lower()
    if not _MAC.match(mac):
        raise VmFileError(f"{t.where}mac: {mac!r} is not a MAC address like 52:54:00:12:34:56")
    if int(mac[:2], 16) & 1:
        raise VmFileError(f"{t.where}mac: {mac} is a multicast address")
    network = t.choice("network", NETWORKS, "user")
    tftp = t.string("tftp", "")
    spec = NicSpec(mac=mac, model=t.choice("model", NIC_MODELS, "e1000"), network=network,
                   tftp=_existing(base, tftp, f"{t.where}tftp") if tftp else None, bootfile=t.string("bootfile", ""))
    t.done()
    if network != "user" and (spec.tftp or spec.bootfile):
        raise VmFileError(f"{t.where}tftp: TFTP and the boot file need network = \"user\"")
    return spec


def _smbios(t: _Table, name: str) -> Smbios:
    derived = uuid.uuid5(_NAMESPACE, name)
    bios, board, chassis = t.table("bios"), t.table("board"), t.table("chassis")
    system_uuid = t.string("uuid", str(derived))
    try:
        system_uuid = str(uuid.UUID(system_uuid))
    except ValueError:
        raise VmFileError(f"smbios.uuid: {system_uuid!r} is not a UUID") from None
    bios_date = bios.string("date", "04/01/2014")
    if not re.match(r"^\d{2}/\d{2}/\d{4}$", bios_date):
        raise VmFileError(f"smbios.bios.date: {bios_date!r} is not MM/DD/YYYY")
    smbios = Smbios(
        manufacturer=t.string("manufacturer", "QEMU"),
        product=t.string("product", "outband virtual PC"),
        version=t.string("version", "1.0"),
        serial=t.string("serial", f"OBQ{derived.hex[:9].upper()}"),
        uuid=system_uuid,
        sku=t.string("sku", ""),
        family=t.string("family", ""),
        bios_vendor=bios.string("vendor", "SeaBIOS"),
        bios_version=bios.string("version", "1.16.2"),
        bios_date=bios_date,
        board_manufacturer=board.string("manufacturer", ""),
        board_product=board.string("product", ""),
        board_version=board.string("version", ""),
        board_serial=board.string("serial", ""),
        chassis_manufacturer=chassis.string("manufacturer", ""),
        chassis_version=chassis.string("version", ""),
        chassis_serial=chassis.string("serial", ""),
        chassis_asset=chassis.string("asset", ""),
    )
    for table in (bios, board, chassis, t):
        table.done()
    return smbios


# ---------------------------------------------------------------------------------------------- helpers


class _Table:
    """One TOML table being read: typed getters that name the key in their errors, and :meth:`done` to refuse
    keys nobody asked for."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise VmFileError(f"{where.rstrip('.') or 'the file'}: expected a table")
        self.data: dict[str, Any] = data
        self.where = where
        self.seen: set[str] = set()

    def _get(self, key: str, kinds: tuple[type, ...], what: str) -> Any:
        """The value (None when absent); TOML's booleans are not numbers here."""
        self.seen.add(key)
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise VmFileError(f"{self.where}{key}: expected {what}, got {value!r}")
        return value

    def string(self, key: str, default: str | None = None) -> str:
        value = self._get(key, (str,), "a string")
        if value is None:
            if default is None:
                raise VmFileError(f"{self.where}{key}: required")
            return default
        if "\0" in value or "\n" in value:
            raise VmFileError(f"{self.where}{key}: no NUL or newline characters")
        return str(value)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._get(key, (int,), "a whole number")
        value = default if value is None else int(value)
        if not low <= value <= high:
            raise VmFileError(f"{self.where}{key}: {value} is outside {low}..{high}")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self._get(key, (int, float), "a number")
        value = default if value is None else float(value)
        if not low <= value <= high:
            raise VmFileError(f"{self.where}{key}: {value:g} is outside {low:g}..{high:g}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, (bool,), "true or false")
        return default if value is None else bool(value)

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in allowed:
            raise VmFileError(f"{self.where}{key}: {value!r} is not one of {', '.join(allowed)}")
        return value

    def strings(self, key: str) -> list[str]:
        value = self._get(key, (list,), "a list of strings")
        if value is None:
            return []
        if not all(isinstance(v, str) for v in value):
            raise VmFileError(f"{self.where}{key}: expected a list of strings")
        return list(value)

    def choices(self, key: str, allowed: tuple[str, ...], default: tuple[str, ...]) -> list[str]:
        values = self.strings(key) if key in self.data else list(default)
        for value in values:
            if value not in allowed:
                raise VmFileError(f"{self.where}{key}: {value!r} is not one of {', '.join(allowed)}")
        if len(set(values)) != len(values):
            raise VmFileError(f"{self.where}{key}: a target is listed twice")
        return values

    def table(self, key: str) -> _Table:
        value = self._get(key, (dict,), "a table")
        return _Table(value or {}, f"{self.where}{key}.")

    def tables(self, key: str) -> list[_Table]:
        value = self._get(key, (list,), f"an array of tables ([[{key}]])")
        return [_Table(item, f"{self.where}{key}[{i}].") for i, item in enumerate(value or [])]

    def done(self) -> None:
        unknown = set(self.data) - self.seen
        if unknown:
            raise VmFileError(f"{self.where.rstrip('.') or 'VM file'}: unknown keys {sorted(unknown)} "
                              f"(known: {sorted(self.seen)})")


def _existing(base: Path, value: str, where: str) -> Path:
    path = (base / value).resolve()
    if not path.exists():
        raise VmFileError(f"{where}: {path} does not exist")
    return path


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _iso_date(mm_dd_yyyy: str) -> str:
    month, day, year = mm_dd_yyyy.split("/")
    return f"{year}-{month}-{day}T00:00:00Z"


def _addresses(nic: NicSpec) -> dict[str, Any]:
    """The IPv4 configuration the guest gets on ``nic``'s network (none without a network we know)."""
    if nic.network != "user":
        return {"ipv4": "", "subnet_mask": "", "gateway": "", "dns": ()}
    n = USER_NETWORK
    return {"ipv4": n.ipv4, "subnet_mask": n.subnet_mask, "gateway": n.gateway, "dns": n.dns}


__all__ = ["BOOT_TARGETS", "DiskSpec", "NicSpec", "Smbios", "VmFileError", "VmSpec"]
