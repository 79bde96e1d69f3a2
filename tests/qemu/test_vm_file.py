"""The VM file: what it says reaches QEMU's command line and AMT's inventory; every mistake is refused with
the key that is wrong (no QEMU needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from outband.cli.main import app
from outband.engine.platforms.qemu.process import FirmwareOptions, RuntimeDir, qemu_command, qemu_option
from outband.engine.platforms.qemu.vm import VmFileError, VmSpec

VM_FILE = """
name = "lab-pc-7"
machine = "q35"
accel = "tcg"
cpus = 2
memory_mb = 512
boot_order = ["cdrom", "disk"]

[smbios]
manufacturer = "Contoso, Ltd."
product = "Virtual Desktop"
serial = "CNT-0007"
uuid = "0f7b2a4e-7c1d-4d0e-9a51-3c8b1c2d9e10"

[smbios.bios]
vendor = "Contoso BIOS"
date = "11/02/2024"

[[disks]]
path = "system.img"
serial = "DISK0007"
model = "Contoso SSD 256"

[[disks]]
path = "install.iso"
media = "cdrom"

[[disks]]
path = "data.qcow2"
interface = "virtio"

[[nics]]
mac = "52:54:00:aa:bb:07"
tftp = "tftp"
bootfile = "pxelinux.0"
"""


@pytest.fixture
def vm_dir(tmp_path: Path) -> Path:
    (tmp_path / "system.img").write_bytes(bytes(1024 * 1024))
    (tmp_path / "install.iso").write_bytes(bytes(2048 * 32))
    (tmp_path / "data.qcow2").write_bytes(b"QFI\xfb")
    (tmp_path / "tftp").mkdir()
    (tmp_path / "VM.toml").write_text(VM_FILE)
    return tmp_path


def test_the_file_reaches_the_command_line_with_stable_device_ids(vm_dir: Path) -> None:
    spec = VmSpec.load(vm_dir / "VM.toml")
    runtime = RuntimeDir(vm_dir / "run")
    argv = qemu_command(spec, runtime, FirmwareOptions()).argv
    line = " ".join(argv)
    assert argv[:3] == ["qemu-system-x86_64", "-nodefaults", "-no-user-config"]
    assert "-machine q35 -accel tcg -smp 2 -m 512" in line
    assert "-smbios type=1,manufacturer=Contoso,, Ltd.,product=Virtual Desktop,version=1.0,serial=CNT-0007," in line
    assert "-smbios type=0,vendor=Contoso BIOS,version=1.16.2,date=11/02/2024" in line
    assert f"-qmp unix:{runtime.qmp}" in line
    assert f"-vnc unix:{runtime.vnc}" in line
    assert f"socket,id=com1,path={runtime.serial},server=on,wait=off,telnet=on" in line
    assert "ide-hd,drive=drive-disk0,id=disk0,serial=DISK0007,model=Contoso SSD 256,bus=ide.0,unit=0" in line
    assert f"file={vm_dir / 'install.iso'},if=none,id=drive-disk1,format=raw,media=cdrom,readonly=on" in line
    assert "ide-cd,drive=drive-disk1,id=disk1,bus=ide.1,unit=0" in line
    assert "format=qcow2" in line
    assert "virtio-blk-pci,drive=drive-disk2,id=disk2" in line
    assert f"user,id=netdev0,tftp={vm_dir / 'tftp'},bootfile=pxelinux.0" in line
    assert "e1000,id=net0,mac=52:54:00:aa:bb:07,netdev=netdev0" in line
    assert "isa-fdc,id=fdc" in line  # Q35 has no floppy controller of its own; the IDE-R floppy needs one
    assert "ide-cd,id=ider-cd,bus=ide.2,unit=0" in line
    assert "floppy,id=ider-fd,unit=0" in line
    assert "sercon" not in line
    assert "menu=on" not in line


def test_firmware_options_are_launch_options(vm_dir: Path) -> None:
    spec = VmSpec.load(vm_dir / "VM.toml")
    runtime = RuntimeDir(vm_dir / "run")
    line = " ".join(qemu_command(spec, runtime, FirmwareOptions(sercon=True, boot_menu=True)).argv)
    assert f"-fw_cfg name=etc/sercon-port,file={runtime.sercon}" in line
    assert "-boot menu=on,splash-time=60000" in line


def test_the_inventory_is_the_vm_file(vm_dir: Path) -> None:
    profile = VmSpec.load(vm_dir / "VM.toml").profile(disk_sizes={2: 10 * 1000**3})
    assert (profile.manufacturer, profile.product, profile.serial) == ("Contoso, Ltd.", "Virtual Desktop", "CNT-0007")
    assert profile.system_uuid == "0f7b2a4e-7c1d-4d0e-9a51-3c8b1c2d9e10"
    assert profile.bios.vendor == "Contoso BIOS"
    assert profile.bios.release_date == "2024-11-02T00:00:00Z"
    assert profile.cpus[0].cores == 2
    assert sum(m.capacity_bytes for m in profile.memory) == 512 * 1024 * 1024
    assert [(d.model, d.size_kb, d.serial) for d in profile.disks] == [
        ("Contoso SSD 256", 1048, "DISK0007"), ("QEMU HARDDISK", 10_000_000, "QM00002")]
    assert [(n.mac, n.ipv4) for n in profile.nics] == [("52-54-00-aa-bb-07", "10.0.2.15")]


def test_a_vm_without_identity_strings_keeps_a_stable_one(tmp_path: Path) -> None:
    first = VmSpec.from_dict({"name": "alpha"}, base=tmp_path)
    again = VmSpec.from_dict({"name": "alpha"}, base=tmp_path)
    other = VmSpec.from_dict({"name": "beta"}, base=tmp_path)
    assert (first.smbios.uuid, first.smbios.serial) == (again.smbios.uuid, again.smbios.serial)
    assert first.smbios.uuid != other.smbios.uuid
    assert first.smbios.serial != other.smbios.serial


def test_commas_in_option_values_are_doubled() -> None:
    assert qemu_option({"file": "/a,b/c.img", "serial": None, "id": "x"}, "ide-hd") == "ide-hd,file=/a,,b/c.img,id=x"


@pytest.mark.parametrize(("change", "message"), [
    ({"memroy_mb": 512}, "unknown keys ['memroy_mb']"),
    ({"cpus": 0}, "cpus: 0 is outside 1..255"),
    ({"memory_mb": "512"}, "memory_mb: expected a whole number"),
    ({"cpus": True}, "cpus: expected a whole number"),
    ({"vga": "yes"}, "vga: expected true or false"),
    ({"name": "bad name"}, "name: letters, digits"),
    ({"accel": "kvm:warp"}, "accel: unknown accelerator 'warp'"),
    ({"boot_order": ["disk", "usb"]}, "boot_order: 'usb' is not one of"),
    ({"boot_order": ["disk", "disk"]}, "boot_order: a target is listed twice"),
    ({"soft_off": "later"}, "soft_off: 'later' is not one of acpi, immediate"),
    ({"disks": [{"path": "missing.img"}]}, "disks[0].path: "),
    ({"disks": [{"path": "disk.img", "media": "tape"}]}, "disks[0].media: 'tape' is not one of"),
    ({"disks": [{"path": "disk.img", "media": "cdrom", "interface": "virtio"}]}, "only hard disks can be virtio"),
    ({"disks": [{"path": "disk.img", "bootable": True}]}, "disks[0]: unknown keys ['bootable']"),
    ({"disks": [{"path": "disk.img"}] * 4}, "5 IDE devices (with the IDE-R CD-ROM) but machine 'pc' has 4 IDE slots"),
    ({"nics": [{"mac": "52:54:00:zz:00:01"}]}, "nics[0].mac: '52:54:00:zz:00:01' is not a MAC address"),
    ({"nics": [{"mac": "01:00:5e:00:00:01"}]}, "nics[0].mac: 01:00:5e:00:00:01 is a multicast address"),
    ({"nics": [{"network": "none", "bootfile": "x"}]}, "TFTP and the boot file need network = \"user\""),
    ({"smbios": {"uuid": "not-a-uuid"}}, "smbios.uuid: 'not-a-uuid' is not a UUID"),
    ({"smbios": {"bios": {"date": "2024-11-02"}}}, "smbios.bios.date: '2024-11-02' is not MM/DD/YYYY"),
    ({"smbios": {"board": {"colour": "green"}}}, "smbios.board: unknown keys ['colour']"),
    ({"disks": {"path": "disk.img"}}, "disks: expected an array of tables"),
])
def test_mistakes_name_the_key(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    (tmp_path / "disk.img").write_bytes(bytes(512))
    with pytest.raises(VmFileError) as caught:
        VmSpec.from_dict({"name": "vm", **change}, base=tmp_path)
    assert message in str(caught.value)


def test_a_file_that_is_not_toml_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "VM.toml"
    path.write_text("name = \n")
    with pytest.raises(VmFileError, match=r"VM\.toml: not valid TOML"):
        VmSpec.load(path)


@pytest.mark.parametrize(("args", "message"), [
    (["--platform", "qemu"], "--platform qemu needs --vm VM.toml or --qmp SOCKET"),
    (["--vm", "VM.toml"], "--platform qemu needs --vm VM.toml or --qmp SOCKET, and only it takes them"),
    (["--platform", "xen"], "platform 'xen' is not available (choose: sim, qemu)"),
])
def test_the_command_line_wants_a_vm_for_qemu_only(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["engine", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
