"""Hardware inventory over HTTP: the capture shapes, the values a profile gives, subclass enumerations as AMT
and MeshCommander expect them, Gets by key, the missing battery, and the Hardware Asset realm."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tests.engine._shape_inventory import (
    add_user,
    assert_same_shape,
    enumerate_raw,
    get_object,
    pull_objects,
)

from outband.engine.platforms.profile import HardwareProfile
from outband.engine.platforms.sim import SimMachine
from outband.engine.services.inventory import platform_guid
from outband.proto.amt import Realm
from outband.proto.cim.model import CimDateTime, CimObject
from outband.proto.wsman import EndpointReference
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine, running_engine

GETS = [
    ("CIM_Chassis", "cim/chassis/get.xml"),
    ("CIM_Card", "cim/card/get.xml"),
    ("CIM_Chip", "cim/chip/get.xml"),
    ("CIM_BIOSElement", "cim/bios/element/get.xml"),
    ("CIM_Processor", "cim/physical/processor/get.xml"),
    ("CIM_ComputerSystemPackage", "cim/computer/systempackage/get.xml"),
]
PULLS = [
    ("CIM_Chassis", "cim/chassis/pull.xml", None, ()),
    ("CIM_Card", "cim/card/pull.xml", None, ()),
    # The capture is the first page of a longer enumeration (context, no EndOfSequence): ask for one item too.
    ("CIM_Chip", "cim/chip/pull.xml", 1, ()),
    ("CIM_BIOSElement", "cim/bios/element/pull.xml", None, ()),
    ("CIM_Processor", "cim/physical/processor/pull.xml", None, ()),
    ("CIM_PhysicalMemory", "cim/physical/memory/pull.xml", None, ()),
    # This capture carries a context *and* EndOfSequence, which no enumeration can; only its first item counts.
    ("CIM_PhysicalPackage", "cim/physical/package/pull.xml", 1, ("EnumerationContext", "EndOfSequence")),
    ("CIM_MediaAccessDevice", "cim/mediaaccess/pull.xml", None, ()),
    ("CIM_ComputerSystemPackage", "cim/computer/systempackage/pull.xml", None, ()),
    ("CIM_SystemPackaging", "cim/system/packaging/pull.xml", None, ()),
]


@pytest.mark.parametrize(("resource", "capture"), GETS)
async def test_get_has_the_capture_shape(
    engine_env: RunningEngine, conformance_dir: Path, resource: str, capture: str
) -> None:
    status, body = await engine_env.transport().post(msg.get(resource).to_bytes())
    assert status == 200
    assert_same_shape(body, conformance_dir / capture)


@pytest.mark.parametrize(("resource", "capture", "max_elements", "ignore"), PULLS)
async def test_enumerate_and_pull_have_the_capture_shapes(
    engine_env: RunningEngine, conformance_dir: Path, resource: str, capture: str, max_elements: int | None,
    ignore: tuple[str, ...],
) -> None:
    t = engine_env.transport()
    assert_same_shape(await enumerate_raw(t, resource, max_elements=max_elements), conformance_dir / capture,
                      ignore=ignore)
    enumerate_capture = capture.replace("pull.xml", "enumerate.xml")
    status, body = await t.post(msg.enumerate_(resource).to_bytes())
    assert status == 200
    assert_same_shape(body, conformance_dir / enumerate_capture)


def test_platform_guid_is_the_uuid_in_guid_byte_order() -> None:
    # The packaging capture's PlatformGUID is a version-1 UUID made in 2020 (…11EA… once byte-swapped).
    assert platform_guid("d8c14efa-b1f1-11ea-be6d-c6d21730d800") == "FA4EC1D8F1B1EA11BE6DC6D21730D800"
    system_uuid = str(uuid.uuid4())
    assert str(uuid.UUID(bytes_le=bytes.fromhex(platform_guid(system_uuid)))) == system_uuid


async def test_default_profile_values(engine_env: RunningEngine) -> None:
    t, profile = engine_env.transport(), engine_env.machine.profile
    chassis = await get_object(t, "CIM_Chassis")
    assert (chassis["Model"], chassis["SerialNumber"], chassis["Manufacturer"]) == (
        profile.chassis.model, profile.chassis.serial, profile.chassis.manufacturer)
    card = await get_object(t, "CIM_Card")
    assert (card["Model"], card["SerialNumber"]) == (profile.board.product, profile.board.serial)
    bios = await get_object(t, "CIM_BIOSElement")
    assert bios["Version"] == bios["SoftwareElementID"] == profile.bios.version
    assert bios["ReleaseDate"] == CimDateTime("Datetime", profile.bios.release_date)
    chip = await get_object(t, "CIM_Chip")
    assert chip["Version"] == profile.cpus[0].brand
    cpu = await get_object(t, "CIM_Processor")
    assert (cpu["DeviceID"], cpu["MaxClockSpeed"], cpu["Family"]) == ("CPU 0", profile.cpus[0].max_speed_mhz, 198)
    package = await get_object(t, "CIM_ComputerSystemPackage")
    assert package["PlatformGUID"] == platform_guid(profile.system_uuid)
    antecedent = package["Antecedent"]
    assert isinstance(antecedent, EndpointReference)
    assert antecedent.selector_dict == {"CreationClassName": "CIM_Chassis", "Tag": "CIM_Chassis"}
    [packaging] = await pull_objects(t, "CIM_SystemPackaging")
    assert packaging.element == "CIM_ComputerSystemPackage"
    assert packaging["PlatformGUID"] == package["PlatformGUID"]


PROFILE_TOML = """
name = "lab-laptop"
manufacturer = "Lab"
product = "Notebook 14"
serial = "LAB0001"
system_uuid = "4c4c4544-0042-3510-8051-b4c04f4e3232"

[chassis]
manufacturer = "Lab Inc."
model = "NB14"
serial = "CH0001"
chassis_type = 10

[[cpus]]
brand = "Intel(R) Core(TM) i5-1145G7 @ 2.60GHz"
family = 205

[[memory]]
bank = "BANK 0"
capacity_bytes = 8589934592
serial = "M0"

[[memory]]
bank = "BANK 1"
capacity_bytes = 8589934592
serial = "M1"

[[memory]]
bank = "BANK 2"
capacity_bytes = 4294967296
serial = "M2"
asset_tag = "DIMM-C"

[[memory]]
bank = "BANK 3"
capacity_bytes = 4294967296
serial = "M3"

[[disks]]
model = "NVMe 512"
size_kb = 512110190
serial = "D0"

[[disks]]
model = "SATA 2TB"
size_kb = 2000398934
serial = "D1"

[[nics]]
mac = "00-11-22-33-44-55"

[[nics]]
mac = "66-77-88-99-aa-bb"
wireless = true
ipv4 = "10.1.2.3"
subnet_mask = "255.255.0.0"
gateway = "10.1.0.1"
dns = ["10.1.0.2", "10.1.0.3"]

[battery]
device_id = "BAT0"
chemistry = 6
"""


async def test_profile_from_toml_is_reflected_in_inventory(tmp_path: Path) -> None:
    path = tmp_path / "laptop.toml"
    path.write_text(PROFILE_TOML)
    profile = HardwareProfile.load(path)
    async with running_engine(machine=SimMachine(profile)) as env:
        t = env.transport()
        memory = await pull_objects(t, "CIM_PhysicalMemory")
        assert [m["BankLabel"] for m in memory] == ["BANK 0", "BANK 1", "BANK 2", "BANK 3"]
        assert [m["Tag"] for m in memory] == ["9876543210", "9876543210 (#1)", "DIMM-C", "9876543210 (#2)"]
        assert sum(int(str(m["Capacity"])) for m in memory) == 24 * 2**30
        chips = await pull_objects(t, "CIM_Chip")
        assert [c.element for c in chips] == ["CIM_Chip"] + ["CIM_PhysicalMemory"] * 4
        assert chips[0]["Version"] == "Intel(R) Core(TM) i5-1145G7 @ 2.60GHz"
        disks = await pull_objects(t, "CIM_MediaAccessDevice")
        assert [(d["DeviceID"], d["MaxMediaSize"]) for d in disks] == [("MEDIA DEV 0", 512110190),
                                                                        ("MEDIA DEV 1", 2000398934)]
        packages = await pull_objects(t, "CIM_PhysicalPackage")
        assert [(p.element, p["PackageType"]) for p in packages] == [
            ("CIM_Card", 9), ("CIM_PhysicalPackage", 15), ("CIM_PhysicalPackage", 15), ("CIM_PhysicalPackage", 11),
            ("CIM_Chassis", 3),
        ]
        # MeshCommander reads disk i's model from CIM_PhysicalPackage[i + 1]; ATA strings come space-padded.
        assert [str(p["Model"]).rstrip() for p in packages[1:3]] == ["NVMe 512", "SATA 2TB"]
        assert len(str(packages[1]["Model"])) == 40
        chassis = await get_object(t, "CIM_Chassis")
        assert (chassis["Model"], chassis["ChassisPackageType"]) == ("NB14", 10)
        battery = await get_object(t, "CIM_Battery")
        assert (battery["DeviceID"], battery["Chemistry"]) == ("BAT0", 6)
        package = await get_object(t, "CIM_ComputerSystemPackage")
        assert package["PlatformGUID"] == "44454C4C420010358051B4C04F4E3232"  # 4c4c4544-0042-3510-…
        ports = await pull_objects(t, "AMT_EthernetPortSettings")
        assert [(p["InstanceID"], p["MACAddress"], p["PhysicalConnectionType"]) for p in ports] == [
            ("Intel(r) AMT Ethernet Port Settings 0", "00-11-22-33-44-55", 0),
            ("Intel(r) AMT Ethernet Port Settings 1", "66-77-88-99-aa-bb", 3),
        ]
        assert (ports[1]["IPAddress"], ports[1]["SecondaryDNS"]) == ("10.1.2.3", "10.1.0.3")


async def test_gets_by_the_keys_consoles_select_with(engine_env: RunningEngine) -> None:
    t = engine_env.transport()
    chassis = await get_object(t, "CIM_Chassis", {"CreationClassName": "CIM_Chassis", "Tag": "CIM_Chassis"})
    assert chassis["Tag"] == "CIM_Chassis"
    second = await get_object(t, "CIM_PhysicalMemory",
                              {"CreationClassName": "CIM_PhysicalMemory", "Tag": "9876543210 (#1)"})
    assert second["BankLabel"] == "BANK 2"
    disk = await get_object(t, "CIM_MediaAccessDevice", {
        "CreationClassName": "CIM_MediaAccessDevice", "DeviceID": "MEDIA DEV 0",
        "SystemCreationClassName": "CIM_ComputerSystem", "SystemName": "ManagedSystem"})
    assert disk["MaxMediaSize"] == engine_env.machine.profile.disks[0].size_kb
    cpu = await get_object(t, "CIM_Processor", {"DeviceID": "CPU 0"})
    assert cpu["Role"] == "Central"
    # The subclass instance answers through the base class URI with its own keys and element.
    card = await get_object(t, "CIM_PhysicalPackage", {"CreationClassName": "CIM_Card", "Tag": "CIM_Card"})
    assert card.element == "CIM_Card"
    memory_chip = await get_object(t, "CIM_Chip", {"Tag": "9876543210"})
    assert memory_chip.element == "CIM_PhysicalMemory"

    missing = await t.send(msg.get("CIM_Processor", {"DeviceID": "CPU 7"}))
    assert isinstance(missing.fault, F.DestinationUnreachable)
    unknown = await t.send(msg.get("CIM_Chassis", {"Colour": "blue"}))
    assert isinstance(unknown.fault, F.InvalidSelectors)


async def test_a_desktop_has_no_battery(engine_env: RunningEngine) -> None:
    t = engine_env.transport()
    status, _ = await t.post(msg.get("CIM_Battery").to_bytes())
    assert status == 400  # MeshCommander reads a failed Get as "no battery"
    reply = await t.send(msg.get("CIM_Battery"))
    assert isinstance(reply.fault, F.DestinationUnreachable)
    assert await pull_objects(t, "CIM_Battery") == []
    packages = await pull_objects(t, "CIM_PhysicalPackage")
    assert all(p["PackageType"] != 11 for p in packages)


@pytest.mark.parametrize("resource", ["CIM_Chassis", "CIM_Chip", "CIM_MediaAccessDevice", "CIM_SystemPackaging"])
async def test_inventory_needs_the_hardware_asset_realm(engine_env: RunningEngine, resource: str) -> None:
    outsider = add_user(engine_env, "operator", "Passw0rd!x", [Realm.REMOTE_CONTROL])
    refused = await outsider.send(msg.get(resource))
    assert isinstance(refused.fault, F.AccessDenied)
    refused = await outsider.send(msg.enumerate_(resource))
    assert isinstance(refused.fault, F.AccessDenied)
    asset = add_user(engine_env, "asset", "Passw0rd!y", [Realm.HARDWARE_ASSET])
    reply = await asset.send(msg.get(resource))
    assert isinstance(reply.body, CimObject)


async def test_inventory_is_read_only(engine_env: RunningEngine) -> None:
    t = engine_env.transport()
    chassis = await get_object(t, "CIM_Chassis")
    chassis["Model"] = "Tampered"
    reply = await t.send(msg.put(chassis))
    assert isinstance(reply.fault, F.ActionNotSupported)
    assert (await get_object(t, "CIM_Chassis"))["Model"] == engine_env.machine.profile.chassis.model


def test_the_shape_comparison_notices_what_matters(conformance_dir: Path) -> None:
    chassis = (conformance_dir / "cim/chassis/get.xml").read_bytes()
    assert_same_shape(chassis.replace(b"JRQN0243007J", b"OTHER-SERIAL"), conformance_dir / "cim/chassis/get.xml")
    for changed in (
        chassis.replace(b"<g:PackageType>3</g:PackageType>", b"<g:PackageType>three</g:PackageType>"),
        chassis.replace(b"<g:Tag>CIM_Chassis</g:Tag>", b""),
        chassis.replace(b"transfer/GetResponse", b"transfer/PutResponse"),
    ):
        with pytest.raises(AssertionError):
            assert_same_shape(changed, conformance_dir / "cim/chassis/get.xml")
    with pytest.raises(AssertionError):
        assert_same_shape(chassis, conformance_dir / "cim/card/get.xml")
