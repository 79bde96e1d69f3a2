"""Engines over real QEMU VMs for the qemu tests: software emulation (TCG), tiny images, timeouts.

QEMU must be installed (``apt install qemu-system-x86``; ``scripts/setup.sh --dev`` does it): without it these
tests fail with that instruction rather than skip.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.redir._kit import set_redirection

from outband.client.redirection import SolSession
from outband.engine.platforms.qemu import QemuMachine, VmSpec
from outband.testing.engine import RunningEngine, running_engine
from outband.testing.images import disk_image

QEMU = "qemu-system-x86_64"
MESSAGE = "outband boot sector says hello"
WAIT = 20.0
"""Seconds a test waits for the VM to do something (software emulation on a busy CI machine is slow)."""


def require(program: str = QEMU, package: str = "qemu-system-x86") -> str:
    """The program's path; a clear failure (not a skip) when it is not installed."""
    found = shutil.which(program)
    if found is None:
        raise AssertionError(f"{program} is not installed: the QEMU platform tests need it "
                             f"(apt install {package}, or bash scripts/setup.sh --dev)")
    return found


def require_qemu() -> str:
    return require()


def spec(tmp_path: Path, *, disks: list[dict[str, Any]] | None = None, **extra: Any) -> VmSpec:
    """A tiny VM under TCG; by default one raw disk whose boot sector prints :data:`MESSAGE` on COM1."""
    require_qemu()
    if disks is None:
        (tmp_path / "disk.img").write_bytes(disk_image(MESSAGE))
        disks = [{"path": "disk.img"}]
    data: dict[str, Any] = {"name": "testvm", "accel": "tcg", "memory_mb": 32, "disks": disks,
                            "acpi_timeout": 2, "start_timeout": 20, **extra}
    return VmSpec.from_dict(data, base=tmp_path)


@asynccontextmanager
async def qemu_engine(vm: VmSpec, *, password: str | None = None, **machine_options: Any
                      ) -> AsyncIterator[RunningEngine]:
    """An engine managing ``vm`` (off to begin with), redirection on."""
    machine = QemuMachine(vm, **machine_options)
    async with running_engine(machine=machine, password=password) as env:  # type: ignore[arg-type]
        await set_redirection(env)
        yield env


def machine_of(env: RunningEngine) -> QemuMachine:
    machine = env.engine.platform
    assert isinstance(machine, QemuMachine)
    return machine


async def read_until(sol: SolSession, pattern: bytes, *, seen: bytes = b"", within: float = 20.0) -> bytes:
    """SOL output until ``pattern`` (a regex) appears; everything read so far."""
    async with asyncio.timeout(within):
        while re.search(pattern, seen, re.DOTALL) is None:
            chunk = await sol.read()
            assert chunk, f"SOL ended ({sol.end_reason}) before {pattern!r}: {seen!r}"
            seen += chunk
    return seen
