"""The simulated machine's console: boot by boot request, the shell's line discipline and commands, power, and
the VGA text screen that mirrors the serial port."""

from __future__ import annotations

import asyncio

import pytest

from outband.engine.platforms.base import BootDevice, BootRequest, PowerAction, PowerState
from outband.engine.platforms.console import HEIGHT, WIDTH, ConsoleTiming, Phase, SimConsole, TextScreen
from outband.engine.platforms.sim import SimMachine

PROMPT = "root@outband-sim:~# "


class Serial:
    def __init__(self, console: SimConsole) -> None:
        self.data = bytearray()
        self.detach = console.add_serial_listener(self.data.extend)

    def text(self) -> str:
        return self.data.decode("ascii")

    def take(self) -> str:
        text = self.text()
        self.data.clear()
        return text


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def machine(powered: bool = False) -> SimMachine:
    return SimMachine(power_state=PowerState.ON if powered else PowerState.OFF_SOFT,
                      console=SimConsole(timing=ConsoleTiming.instant()))


async def booted(request: BootRequest | None = None) -> tuple[SimMachine, Serial, str]:
    m = machine()
    serial = Serial(m.console)
    m.set_next_boot(request or BootRequest())
    assert await m.request_power(PowerAction.ON)
    await settle()
    return m, serial, serial.take()


# ---------------------------------------------------------------------------------------------- boot


async def test_power_on_runs_post_then_the_os_up_to_a_prompt() -> None:
    m, _, text = await booted()
    assert text.index("Memory test: 32768 MB OK") < text.index("Booting from hard disk") < text.index(
        "Linux version") < text.index("console [ttyS0] enabled")
    assert text.endswith(PROMPT)
    assert "\n" not in text.replace("\r\n", "")  # CR LF line ends throughout
    assert m.console.phase is Phase.SHELL


@pytest.mark.parametrize(("device", "says"), [
    (BootDevice.IDER_CD, "Booting from IDE-R CD-ROM..."),
    (BootDevice.IDER_FLOPPY, "Booting from IDE-R floppy..."),
    (BootDevice.PXE, "PXE-E61: Media test failure"),
    (BootDevice.CD, "No bootable medium found."),
    (BootDevice.DIAGNOSTIC, "Memory: PASS"),
])
async def test_the_boot_request_shows_and_falls_back_to_the_disk(device: BootDevice, says: str) -> None:
    _, _, text = await booted(BootRequest(device=device))
    assert text.index(says) < text.index("Booting from hard disk")
    assert text.endswith(PROMPT)


async def test_bios_pause_waits_for_a_key() -> None:
    m, serial, text = await booted(BootRequest(bios_pause=True))
    assert text.endswith("Press any key to continue...\r\n")
    m.console.input(b" ")
    await settle()
    assert serial.take().endswith(PROMPT)


async def test_bios_setup_until_escape() -> None:
    m, serial, text = await booted(BootRequest(device=BootDevice.BIOS_SETUP))
    assert "BIOS Setup Utility" in text
    assert m.console.phase is Phase.SETUP
    m.console.input(b"x")
    await settle()
    assert m.console.phase is Phase.SETUP
    m.console.input(b"\x1b")
    await settle()
    assert serial.take().endswith(PROMPT)


async def test_power_off_kills_the_shell_and_power_on_boots_again() -> None:
    m, serial, _ = await booted()
    assert await m.request_power(PowerAction.OFF_SOFT)
    assert m.console.phase is Phase.OFF
    assert all(not row.strip() for row in m.console.screen.text())
    m.console.input(b"uname\r")
    assert serial.take() == ""  # nobody answers
    assert await m.request_power(PowerAction.ON)
    await settle()
    assert "Memory test" in serial.text()


async def test_a_machine_that_starts_on_is_at_its_prompt() -> None:
    m = machine(powered=True)
    assert m.console.phase is Phase.SHELL
    assert m.console.screen.text()[0].startswith(PROMPT)


# ---------------------------------------------------------------------------------------------- shell


async def shell() -> tuple[SimMachine, Serial]:
    m, serial, _ = await booted()
    return m, serial


@pytest.mark.parametrize("enter", [b"\r", b"\n", b"\r\n"])
async def test_any_line_end_runs_the_line_once(enter: bytes) -> None:
    m, serial = await shell()
    m.console.input(b"echo one" + enter + b"echo two" + enter)
    assert serial.take() == f"echo one\r\none\r\n{PROMPT}echo two\r\ntwo\r\n{PROMPT}"


async def test_line_editing() -> None:
    m, serial = await shell()
    m.console.input(b"ecxo\x7f\x7fho hi\x08\x08hey\r")  # Delete and Backspace erase
    assert serial.take().endswith(f"\r\nhey\r\n{PROMPT}")
    m.console.input(b"junk\x15echo ok\r")  # Ctrl-U clears the line
    assert serial.take().endswith(f"\r\nok\r\n{PROMPT}")
    m.console.input(b"\x1b[A\x1b[Decho arrows\r")  # arrow keys are swallowed
    assert serial.take().endswith(f"\r\narrows\r\n{PROMPT}")
    m.console.input(b"half a line\x03")
    assert serial.take().endswith(f"^C\r\n{PROMPT}")
    m.console.input(b"more")
    m.console.send_break()
    assert serial.take().endswith(f"^C\r\n{PROMPT}")


async def test_long_lines_are_capped() -> None:
    m, serial = await shell()
    m.console.input(b"x" * 1000)
    assert len(serial.take()) == 255


@pytest.mark.parametrize(("command", "answer"), [
    ("uname -a", "Linux outband-sim 6.1.0-outband-sim #1 SMP x86_64 GNU/Linux"),
    ("uname -r", "6.1.0-outband-sim"),
    ("hostname", "outband-sim"),
    ("whoami", "root"),
    ("pwd", "/root"),
    ("ls /", "etc  proc  root"),
    ("ls /etc", "hostname  motd  os-release"),
    ("cat /etc/hostname", "outband-sim"),
    ("cat /etc", "cat: /etc: Is a directory"),
    ("cat /nope", "cat: /nope: No such file or directory"),
    ("ls /nope", "ls: cannot access '/nope': No such file or directory"),
    ("frobnicate", "-sh: frobnicate: command not found"),
])
async def test_commands(command: str, answer: str) -> None:
    m, serial = await shell()
    m.console.input(command.encode() + b"\r")
    assert serial.take() == f"{command}\r\n{answer}\r\n{PROMPT}"


async def test_cd_and_relative_paths() -> None:
    m, serial = await shell()
    m.console.input(b"cd /proc\rcat ../etc/hostname\rcd nowhere\rpwd\r")
    text = serial.take()
    assert "root@outband-sim:/proc# " in text
    assert "\r\noutband-sim\r\n" in text
    assert "cd: nowhere: No such file or directory" in text
    assert text.endswith("/proc\r\nroot@outband-sim:/proc# ")


async def test_cpuinfo_and_meminfo_come_from_the_hardware_profile() -> None:
    m, serial = await shell()
    m.console.input(b"cat /proc/cpuinfo /proc/meminfo\r")
    text = serial.take()
    assert text.count("model name\t: Intel(R) Core(TM) i7-9850H") == 6
    assert "MemTotal:       33554432 kB" in text


async def test_uptime_counts_from_the_boot() -> None:
    now = [100.0]
    m = SimMachine(console=SimConsole(timing=ConsoleTiming.instant(), clock=lambda: now[0]))
    serial = Serial(m.console)
    await m.request_power(PowerAction.ON)
    await settle()
    now[0] += 3725
    serial.take()
    m.console.input(b"uptime\r")
    assert " up 1:02:05," in serial.take()


@pytest.mark.parametrize(("command", "state"), [("poweroff", PowerState.OFF_SOFT), ("reboot", PowerState.ON)])
async def test_poweroff_and_reboot_reach_the_machine(command: str, state: PowerState) -> None:
    m, _ = await shell()
    boots = m.boot_count
    m.console.input(command.encode() + b"\r")
    await settle()
    assert m.power_state is state
    assert m.boot_count == boots + (command == "reboot")


async def test_an_nmi_panics_the_kernel() -> None:
    m, serial = await shell()
    assert await m.request_power(PowerAction.NMI)
    assert "Kernel panic" in serial.take()
    m.console.input(b"uname\r")
    assert serial.take() == ""


# ---------------------------------------------------------------------------------------------- screen


async def test_the_screen_mirrors_the_serial_port() -> None:
    m, _ = await shell()
    m.console.input(b"clear\recho on screen\r")
    rows = m.console.screen.text()
    assert rows[0] == (PROMPT + "echo on screen").ljust(WIDTH)
    assert rows[1] == "on screen".ljust(WIDTH)
    assert rows[2].startswith(PROMPT)
    assert m.console.screen.cursor == (2, len(PROMPT))


def test_screen_wraps_scrolls_and_reports_changed_rows() -> None:
    screen = TextScreen()
    changes: list[frozenset[int]] = []
    screen.add_listener(changes.append)
    screen.write(b"x" * (WIDTH + 5))
    assert screen.text()[1].startswith("xxxxx ")
    assert changes == [frozenset({0, 1})]
    screen.write(b"\r\n" * HEIGHT + b"last")
    assert screen.text()[-1].startswith("last")
    assert all(not row.strip() for row in screen.text()[:-1])
    assert changes[-1] == frozenset(range(HEIGHT))


def test_screen_ansi_colours_and_cursor() -> None:
    screen = TextScreen()
    screen.write(b"\x1b[44;37mA\x1b[1;31mB\x1b[0mC\x1b[7mD\x1b[5;10HE")
    assert screen.cells[0][:4] == [("A", 0x17), ("B", 0x1C), ("C", 0x07), ("D", 0x70)]
    assert screen.cells[4][9] == ("E", 0x70)
    screen.write(b"\x1b[1;3H\x1b[K")
    assert screen.text()[0].startswith("AB ")
    assert screen.text()[4].strip() == "E"
    screen.write(b"\x1b[2J")
    assert all(not row.strip() for row in screen.text())
    # An overlong sequence is given up after 32 bytes (its tail shows as text); ESC X takes its one letter.
    screen.write(b"\x1b[H\x1b[" + b"9" * 100 + b"Z" + b"\x1bXplain")
    assert screen.text()[0].rstrip() == "9" * 68 + "Zplain"
