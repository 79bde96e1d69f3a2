"""``qemu``: QEMU virtual machines as the engine's platform (power, boot device, serial console, screen and
virtual media over QMP, a chardev, VNC and NBD): see ``platform.py``."""

from .platform import QemuMachine
from .vm import VmFileError, VmSpec

__all__ = ["QemuMachine", "VmFileError", "VmSpec"]
