"""Hardware inventory: the CIM physical and logical elements AMT builds from SMBIOS at boot.

Every instance is computed from the platform's :class:`~outband.engine.platforms.profile.HardwareProfile` on
demand (nothing is stored), in the shapes real firmware answers with (FX ``cim/chassis``, ``cim/card``,
``cim/chip``, ``cim/bios/element``, ``cim/physical/*``, ``cim/mediaaccess``, ``cim/computer/systempackage``,
``cim/system/packaging``), all readable with the Hardware Asset realm.

What AMT does that a reader of the CIM schema would not guess, and consoles rely on:

* Enumerating a base class returns its subclasses' instances.  ``CIM_Chip`` gives the processor chips first,
  then every ``CIM_PhysicalMemory`` module (MeshCommander pairs ``CIM_Processor[i]`` with ``CIM_Chip[i]``).
  ``CIM_PhysicalPackage`` gives the baseboard (``CIM_Card``), one ``Storage Media Package n`` per disk (the
  only place AMT reports a disk's model and serial), the battery's package, then ``CIM_Chassis``:
  MeshCommander reads disk ``i``'s model from ``CIM_PhysicalPackage[i + 1]`` (MCMD ``index.html``
  ``processHardware``; order confirmed by an AMT reply published in open-amt-cloud-toolkit/docs, MPS
  ``HardwareInformation``).  ``CIM_SystemPackaging`` gives the ``CIM_ComputerSystemPackage`` association.
* ``PlatformGUID`` is the system UUID's 16 bytes in SMBIOS/GUID order (first three fields little-endian) as 32
  upper-case hex digits: the captures' ``FA4EC1D8F1B1EA11…`` is UUID ``d8c14efa-b1f1-11ea-…``, and MeshCommander
  turns it back with ``guidToStr``.
* SMBIOS strings keep their fixed-width padding: ATA model (40) and serial (20) and the SPD part number (20)
  come space-padded (capture ``CT16G4SFD824A.M16FE ``).  Modules sharing an asset tag are told apart with
  `` (#n)`` (capture ``9876543210 (#1)``), since Tag is a key.
* A desktop has no ``CIM_Battery``: a Get of it is a fault, which MeshCommander takes as "no battery".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Final

from ...proto.amt import Realm
from ...proto.cim.model import CimDateTime, CimObject
from ...proto.wsman import EndpointReference, resource_uri
from ..core import Engine
from ..platforms.profile import Disk, HardwareProfile, MemoryModule
from ..registry import Service

service = Service("inventory")

HOST_SYSTEM: Final[Mapping[str, str]] = {"SystemCreationClassName": "CIM_ComputerSystem", "SystemName": "ManagedSystem"}
"""The scoping keys of host-side logical devices (processors, disks)."""

ATA_MODEL_WIDTH: Final = 40
ATA_SERIAL_WIDTH: Final = 20
SPD_PART_NUMBER_WIDTH: Final = 20


def _profile(engine: Engine) -> HardwareProfile:
    return engine.platform.profile


def platform_guid(system_uuid: str) -> str:
    """The system UUID as AMT writes PlatformGUID: its bytes in GUID (mixed-endian) order, upper-case hex."""
    return uuid.UUID(system_uuid).bytes_le.hex().upper()


# ---------------------------------------------------------------------------------------------- packages


def chassis(profile: HardwareProfile) -> CimObject:
    c = profile.chassis
    return CimObject.new(
        "CIM_Chassis",
        ChassisPackageType=c.chassis_type,
        CreationClassName="CIM_Chassis",
        ElementName="Managed System Chassis",
        Manufacturer=c.manufacturer,
        Model=c.model,
        OperationalStatus=[0],
        PackageType=3,
        SerialNumber=c.serial,
        Tag="CIM_Chassis",
        Version=c.version,
    )


def baseboard(profile: HardwareProfile) -> CimObject:
    b = profile.board
    return CimObject.new(
        "CIM_Card",
        CanBeFRUed=True,
        CreationClassName="CIM_Card",
        ElementName="Managed System Base Board",
        Manufacturer=b.manufacturer,
        Model=b.product,
        OperationalStatus=[0],
        PackageType=9,
        SerialNumber=b.serial,
        Tag="CIM_Card",
        Version=b.version,
    )


def storage_package(index: int, disk: Disk) -> CimObject:
    return CimObject.new(
        "CIM_PhysicalPackage",
        CreationClassName="CIM_PhysicalPackage",
        ElementName="Managed System Storage Media Package",
        Model=disk.model[:ATA_MODEL_WIDTH].ljust(ATA_MODEL_WIDTH),
        OperationalStatus=[0],
        PackageType=15,
        SerialNumber=disk.serial[:ATA_SERIAL_WIDTH].ljust(ATA_SERIAL_WIDTH),
        Tag=f"Storage Media Package {index}",
    )


def battery_package(profile: HardwareProfile) -> list[CimObject]:
    b = profile.battery
    if b is None:
        return []
    return [CimObject.new(
        "CIM_PhysicalPackage",
        CreationClassName="CIM_PhysicalPackage",
        ElementName="Managed System Battery Package",
        ManufactureDate=CimDateTime("Datetime", b.manufacture_date),
        Manufacturer=b.manufacturer,
        OperationalStatus=[0],
        PackageType=11,
        SerialNumber=b.serial,
        Tag=f"{b.device_id} Package",
    )]


@service.instances("CIM_Chassis", realm=Realm.HARDWARE_ASSET)
def chassis_instances(engine: Engine) -> Iterable[CimObject]:
    return [chassis(_profile(engine))]


@service.instances("CIM_Card", realm=Realm.HARDWARE_ASSET)
def card_instances(engine: Engine) -> Iterable[CimObject]:
    return [baseboard(_profile(engine))]


@service.instances("CIM_PhysicalPackage", realm=Realm.HARDWARE_ASSET)
def physical_packages(engine: Engine) -> Iterable[CimObject]:
    profile = _profile(engine)
    return [
        baseboard(profile),
        *(storage_package(i, disk) for i, disk in enumerate(profile.disks)),
        *battery_package(profile),
        chassis(profile),
    ]


# ---------------------------------------------------------------------------------------------- firmware


@service.instances("CIM_BIOSElement", realm=Realm.HARDWARE_ASSET)
def bios_elements(engine: Engine) -> Iterable[CimObject]:
    bios = _profile(engine).bios
    return [CimObject.new(
        "CIM_BIOSElement",
        ElementName="Primary BIOS",
        Manufacturer=bios.vendor,
        Name="Primary BIOS",
        OperationalStatus=[0],
        PrimaryBIOS=True,
        ReleaseDate=CimDateTime("Datetime", bios.release_date),
        SoftwareElementID=bios.version,
        SoftwareElementState=2,
        TargetOperatingSystem=66,
        Version=bios.version,
    )]


# ---------------------------------------------------------------------------------------------- chips


def processor_chips(profile: HardwareProfile) -> list[CimObject]:
    return [
        CimObject.new(
            "CIM_Chip",
            CanBeFRUed=True,
            CreationClassName="CIM_Chip",
            ElementName="Managed System Processor Chip",
            Manufacturer=cpu.manufacturer,
            OperationalStatus=[0],
            Tag=f"CPU {i}",
            Version=cpu.brand,
        )
        for i, cpu in enumerate(profile.cpus)
    ]


def memory_tags(modules: Iterable[MemoryModule]) -> list[str]:
    """Asset tags made unique the way AMT does: the n-th repeat of a tag gets `` (#n)``."""
    seen: dict[str, int] = {}
    tags = []
    for module in modules:
        repeats = seen.get(module.asset_tag, 0)
        seen[module.asset_tag] = repeats + 1
        tags.append(module.asset_tag if repeats == 0 else f"{module.asset_tag} (#{repeats})")
    return tags


def memory_modules(profile: HardwareProfile) -> list[CimObject]:
    return [
        CimObject.new(
            "CIM_PhysicalMemory",
            BankLabel=m.bank,
            Capacity=m.capacity_bytes,
            ConfiguredMemoryClockSpeed=m.speed_mhz,
            CreationClassName="CIM_PhysicalMemory",
            ElementName="Managed System Memory Chip",
            FormFactor=m.form_factor,
            IsSpeedInMhz=True,
            Manufacturer=m.manufacturer,
            MaxMemorySpeed=m.speed_mhz,
            MemoryType=m.memory_type,
            PartNumber=m.part_number[:SPD_PART_NUMBER_WIDTH].ljust(SPD_PART_NUMBER_WIDTH),
            SerialNumber=m.serial,
            Speed=0,
            Tag=tag,
        )
        for m, tag in zip(profile.memory, memory_tags(profile.memory), strict=True)
    ]


@service.instances("CIM_Chip", realm=Realm.HARDWARE_ASSET)
def chips(engine: Engine) -> Iterable[CimObject]:
    profile = _profile(engine)
    return [*processor_chips(profile), *memory_modules(profile)]


@service.instances("CIM_PhysicalMemory", realm=Realm.HARDWARE_ASSET)
def physical_memory(engine: Engine) -> Iterable[CimObject]:
    return memory_modules(_profile(engine))


# ---------------------------------------------------------------------------------------------- devices


@service.instances("CIM_Processor", realm=Realm.HARDWARE_ASSET)
def processors(engine: Engine) -> Iterable[CimObject]:
    return [
        CimObject.new(
            "CIM_Processor",
            CPUStatus=1,
            CreationClassName="CIM_Processor",
            CurrentClockSpeed=cpu.current_speed_mhz,
            DeviceID=f"CPU {i}",
            ElementName="Managed System CPU",
            EnabledState=2,
            ExternalBusClockSpeed=cpu.external_bus_mhz,
            Family=cpu.family,
            HealthState=0,
            MaxClockSpeed=cpu.max_speed_mhz,
            OperationalStatus=[0],
            OtherFamilyDescription="",
            RequestedState=12,
            Role="Central",
            Stepping=cpu.stepping,
            **HOST_SYSTEM,
            UpgradeMethod=cpu.upgrade_method,
        )
        for i, cpu in enumerate(_profile(engine).cpus)
    ]


@service.instances("CIM_MediaAccessDevice", realm=Realm.HARDWARE_ASSET)
def media_access_devices(engine: Engine) -> Iterable[CimObject]:
    return [
        CimObject.new(
            "CIM_MediaAccessDevice",
            Capabilities=[4],
            CreationClassName="CIM_MediaAccessDevice",
            DeviceID=f"MEDIA DEV {i}",
            ElementName="Managed System Media Access Device",
            EnabledDefault=2,
            EnabledState=0,
            MaxMediaSize=disk.size_kb,
            OperationalStatus=[0],
            RequestedState=12,
            Security=2,
            **HOST_SYSTEM,
        )
        for i, disk in enumerate(_profile(engine).disks)
    ]


@service.instances("CIM_Battery", realm=Realm.HARDWARE_ASSET)
def batteries(engine: Engine) -> Iterable[CimObject]:
    b = _profile(engine).battery
    if b is None:
        return []
    return [CimObject.new(
        "CIM_Battery",
        Chemistry=b.chemistry,
        CreationClassName="CIM_Battery",
        DesignCapacity=b.design_capacity_mwh,
        DesignVoltage=b.design_voltage_mv,
        DeviceID=b.device_id,
        ElementName="Managed System Battery",
        OperationalStatus=[0],
        **HOST_SYSTEM,
    )]


# ---------------------------------------------------------------------------------------------- packaging


def system_package(profile: HardwareProfile) -> CimObject:
    """The chassis packages the host system; PlatformGUID is how consoles show the system's UUID."""
    return CimObject.new(
        "CIM_ComputerSystemPackage",
        Antecedent=EndpointReference.to(
            resource_uri("CIM_Chassis"), {"CreationClassName": "CIM_Chassis", "Tag": "CIM_Chassis"}
        ),
        Dependent=EndpointReference.to(
            resource_uri("CIM_ComputerSystem"), {"CreationClassName": "CIM_ComputerSystem", "Name": "ManagedSystem"}
        ),
        PlatformGUID=platform_guid(profile.system_uuid),
    )


@service.instances("CIM_ComputerSystemPackage", realm=Realm.HARDWARE_ASSET)
def computer_system_packages(engine: Engine) -> Iterable[CimObject]:
    return [system_package(_profile(engine))]


@service.instances("CIM_SystemPackaging", realm=Realm.HARDWARE_ASSET)
def system_packaging(engine: Engine) -> Iterable[CimObject]:
    return [system_package(_profile(engine))]
