"""Hardware profiles: what a machine is made of, loadable from TOML or JSON so a fleet can be varied.

A profile describes a model of PC (BIOS, board, chassis, CPUs, memory, disks, NICs, an optional battery).
:meth:`instantiate` derives one machine from it: serial numbers, MAC addresses, DHCP leases and the system UUID
are made unique per machine from a seed, so a fleet of 10,000 engines built from one profile still has 10,000
distinct identities.  Values are what SMBIOS and the disks report, in the units AMT's inventory classes use
(AMT-PROTOCOLS.md §3.3), so the inventory service copies them without conversion.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import ipaddress
import json
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Bios:
    vendor: str = "Intel Corp."
    version: str = "QNCFLX70.0034.2019.1125.1424"
    release_date: str = "2019-11-25T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Board:
    manufacturer: str = "Intel Corporation"
    product: str = "NUC9V7QNB"
    version: str = "K47180-402"
    serial: str = "KNQN0221020S"


@dataclass(frozen=True, slots=True)
class Chassis:
    manufacturer: str = "Intel Corporation"
    model: str = "NUC9V7QNX"
    version: str = "2.0"
    serial: str = "G6QN1220090G"
    chassis_type: int = 3
    """SMBIOS chassis type (3 desktop, 9 laptop, 10 notebook, 17 main server chassis...)."""


@dataclass(frozen=True, slots=True)
class Cpu:
    brand: str = "Intel(R) Core(TM) i7-9850H CPU @ 2.60GHz"
    manufacturer: str = "Intel(R) Corporation"
    family: int = 198
    max_speed_mhz: int = 8300
    current_speed_mhz: int = 2600
    external_bus_mhz: int = 100
    stepping: str = "13"
    upgrade_method: int = 1
    cores: int = 6


@dataclass(frozen=True, slots=True)
class MemoryModule:
    bank: str = "BANK 0"
    capacity_bytes: int = 17179869184
    speed_mhz: int = 2667
    memory_type: int = 26
    form_factor: int = 13
    manufacturer: str = "859B"
    part_number: str = "CT16G4SFRA266.M16FRS"
    serial: str = "E0DCF8B5"
    asset_tag: str = "9876543210"
    """SMBIOS asset tag; boards commonly ship the placeholder ``9876543210`` on every module."""


@dataclass(frozen=True, slots=True)
class Disk:
    model: str = "Samsung SSD 970 EVO Plus 1TB"
    size_kb: int = 1000204886
    """Capacity in kilobytes of 1000 bytes, as CIM_MediaAccessDevice.MaxMediaSize reports it (a "1 TB" disk
    has 1,000,204,886,016 bytes; the captures' 500107862 is a 500 GB disk)."""
    serial: str = "S4EWNF0M123456"


@dataclass(frozen=True, slots=True)
class Nic:
    """A network interface and what its network gives it.

    The address fields are the host's IPv4 configuration on that link (from the LAN's DHCP server, or the OS's
    static settings): AMT shares them in DHCP and IP-sync modes.  Empty means the link has none.
    """

    mac: str = "a4-ae-12-00-00-01"
    link_up: bool = True
    wireless: bool = False
    ipv4: str = "192.168.0.24"
    subnet_mask: str = "255.255.255.0"
    gateway: str = "192.168.0.1"
    dns: tuple[str, ...] = ("192.168.0.1",)


@dataclass(frozen=True, slots=True)
class Battery:
    """A laptop battery (desktops have none, and AMT then has no CIM_Battery instance)."""

    device_id: str = "Battery 0"
    manufacturer: str = "SMP"
    serial: str = "0412"
    chemistry: int = 6
    """DMTF CIM_Battery.Chemistry: 3 lead acid, 4 NiCd, 5 NiMH, 6 lithium-ion, 7 zinc air, 8 lithium polymer."""
    design_capacity_mwh: int = 57000
    design_voltage_mv: int = 11550
    manufacture_date: str = "2020-06-15T00:00:00Z"


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    name: str = "nuc9"
    manufacturer: str = "Intel Corporation"
    product: str = "NUC9V7QNX"
    serial: str = "G6QN1220090G"
    system_uuid: str = "55e29e6b-6aec-11ea-b61d-00000000a0e7"
    bios: Bios = field(default_factory=Bios)
    board: Board = field(default_factory=Board)
    chassis: Chassis = field(default_factory=Chassis)
    cpus: tuple[Cpu, ...] = (Cpu(),)
    memory: tuple[MemoryModule, ...] = (
        MemoryModule(),
        MemoryModule(bank="BANK 2", serial="E0DCF8B6"),
    )
    disks: tuple[Disk, ...] = (Disk(),)
    nics: tuple[Nic, ...] = (Nic(),)
    battery: Battery | None = None

    @classmethod
    def load(cls, path: Path) -> HardwareProfile:
        """Read a profile from ``.toml`` or ``.json``; unknown keys are an error (typos must not pass)."""
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8")) if path.suffix == ".toml" else json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a profile is a table/object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HardwareProfile:
        profile: HardwareProfile = _build(cls, data, "profile")
        return profile

    def instantiate(self, seed: int | str) -> HardwareProfile:
        """This profile with identities (serials, MACs, UUID) made unique for machine ``seed``."""
        digest = hashlib.sha256(f"{self.name}/{seed}".encode()).digest()
        tag = digest[:4].hex().upper()
        macs = tuple(
            dataclasses.replace(
                nic,
                mac="-".join(f"{b:02x}" for b in (0xA4, 0xAE, 0x12, digest[4], digest[5], i)),
                ipv4=_host_in_subnet(nic, int.from_bytes(digest[6:8], "big") + i),
            )
            for i, nic in enumerate(self.nics)
        )
        return dataclasses.replace(
            self,
            serial=f"{self.serial[:6]}{tag}",
            system_uuid=str(uuid.UUID(bytes=digest[8:24], version=4)),
            board=dataclasses.replace(self.board, serial=f"{self.board.serial[:6]}{tag}"),
            chassis=dataclasses.replace(self.chassis, serial=f"{self.chassis.serial[:6]}{tag}"),
            memory=tuple(dataclasses.replace(m, serial=f"{tag[:4]}{i:04X}") for i, m in enumerate(self.memory)),
            disks=tuple(dataclasses.replace(d, serial=f"{d.serial[:8]}{tag}{i}") for i, d in enumerate(self.disks)),
            nics=macs,
        )


def _host_in_subnet(nic: Nic, n: int) -> str:
    """Another host address in ``nic``'s subnet (keeping its gateway and the network/broadcast addresses free):
    the n-th of the subnet's first hosts (offsets 2 up to 255, short of the broadcast address), gateway skipped."""
    if not nic.ipv4:
        return ""
    network, first, count, gateway = _host_range(nic.ipv4, nic.subnet_mask, nic.gateway)
    if count <= 0:
        return nic.ipv4
    offset = first + n % count
    if gateway is not None and offset >= gateway:
        offset += 1
    return str(ipaddress.IPv4Address(network + offset))


@functools.lru_cache(maxsize=64)
def _host_range(ipv4: str, mask: str, gateway: str) -> tuple[int, int, int, int | None]:
    """(network address, first host offset, hosts to choose from, gateway offset when it is among them).

    Cached: a fleet derives every engine's address from the same few NICs, and parsing the network is the
    expensive part."""
    network = ipaddress.IPv4Network(f"{ipv4}/{mask}", strict=False)
    base = int(network.network_address)
    offsets = range(2, min(network.num_addresses - 1, 256))
    try:
        gateway_offset: int | None = int(ipaddress.IPv4Address(gateway)) - base if gateway else None
    except ValueError:
        gateway_offset = None
    if gateway_offset not in offsets:
        gateway_offset = None
    return base, offsets.start, len(offsets) - (gateway_offset is not None), gateway_offset


_NESTED: dict[str, type] = {
    "bios": Bios, "board": Board, "chassis": Chassis, "cpus": Cpu, "memory": MemoryModule, "disks": Disk, "nics": Nic,
    "battery": Battery,
}


def _build(cls: type[Any], data: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} (known: {sorted(names)})")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        nested = _NESTED.get(key) if cls is HardwareProfile else None
        if nested is not None and isinstance(value, list):
            kwargs[key] = tuple(_build(nested, item, f"{where}.{key}[{i}]") for i, item in enumerate(value))
        elif nested is not None and isinstance(value, dict):
            kwargs[key] = _build(nested, value, f"{where}.{key}")
        else:
            kwargs[key] = tuple(value) if isinstance(value, list) else value  # frozen profiles hold tuples
    return cls(**kwargs)
