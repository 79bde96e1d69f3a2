"""The simulated machine's console: firmware POST, boot loader and a small shell, seen on the serial port
(what Serial-over-LAN carries) and on a VGA text screen (what KVM shows), fed by both keyboards.

Theory of operation: like a PC whose BIOS and OS mirror their console to COM1, every byte of output goes to
the serial listeners *and* to :class:`TextScreen`, an 80x25 VGA text-mode model with the handful of ANSI
sequences we emit; input from SOL and from the KVM keyboard goes to the same place.  What happens to input
depends on the phase::

    OFF      --boot(request)--> POST (BIOS banner, memory test, AMT line)
    POST     --bios_pause-->    waits for any key
             --BIOS setup-->    SETUP (a setup screen until Esc or q), then the default boot
             --device-->        "Booting from ..."; devices with no medium (PXE, CD, IDE-R without a session)
                                say so and fall back to the hard disk, as a BIOS does
    BOOT     boot loader and kernel lines, then SHELL
    SHELL    line editing with echo: CR or LF ends a line (CR LF counts once: amtterm sends CR), Backspace and
             Delete erase, Ctrl-C or a serial break abandons the line, Ctrl-U clears it, escape sequences
             (arrow keys) are swallowed; ``poweroff`` and ``reboot`` ask the machine through ``power``
    any      --power_off()--> OFF (the shell dies, the screen goes blank)

The boot runs as an asyncio task paced by :class:`ConsoleTiming` (zero delays for tests).  Output is ASCII
text with CR LF line ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

from .base import BootDevice, BootRequest, PowerAction
from .bootmedia import StorageRedirection
from .profile import HardwareProfile

WIDTH: Final = 80
HEIGHT: Final = 25
DEFAULT_ATTRIBUTE: Final = 0x07
"""Light grey on black, the VGA text-mode default."""
MAX_LINE: Final = 255
_ANSI_TO_VGA: Final = (0, 4, 2, 6, 1, 5, 3, 7)
"""ANSI colour order (black red green yellow blue magenta cyan white) to VGA's (black blue green cyan red...)."""
_MAX_ESCAPE: Final = 32

OutputListener = Callable[[bytes], None]
PowerCallback = Callable[[PowerAction], Coroutine[Any, Any, bool]]


class TextScreen:
    """An 80x25 VGA text screen: a grid of (character, attribute) cells and a cursor.

    It understands what our console writes: printable ASCII, CR, LF, Backspace, Tab, and the ANSI sequences
    ``ESC[2J`` (clear), ``ESC[J``, ``ESC[K``, ``ESC[row;colH`` and ``ESC[...m`` (colours, bold, reverse).
    Listeners are called after each write with the rows that changed, so a KVM encoder can resend only those.
    """

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.width = width
        self.height = height
        self.cells: list[list[tuple[str, int]]] = [self._blank_row() for _ in range(height)]
        self.cursor = (0, 0)
        self.attribute = DEFAULT_ATTRIBUTE
        self._escape: bytearray | None = None
        self._dirty: set[int] = set()
        self._listeners: list[Callable[[frozenset[int]], None]] = []

    def _blank_row(self) -> list[tuple[str, int]]:
        return [(" ", DEFAULT_ATTRIBUTE)] * self.width

    def add_listener(self, listener: Callable[[frozenset[int]], None]) -> Callable[[], None]:
        """Call ``listener(changed_rows)`` after every write; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def text(self) -> list[str]:
        """The screen as 25 strings of 80 characters."""
        return ["".join(ch for ch, _ in row) for row in self.cells]

    def clear(self) -> None:
        self.cells = [self._blank_row() for _ in range(self.height)]
        self.cursor = (0, 0)
        self.attribute = DEFAULT_ATTRIBUTE
        self._escape = None
        self._dirty.update(range(self.height))
        self._notify()

    def write(self, data: bytes) -> None:
        for byte in data:
            self._byte(byte)
        self._notify()

    def _notify(self) -> None:
        if self._dirty:
            changed, self._dirty = frozenset(self._dirty), set()
            for listener in list(self._listeners):
                listener(changed)

    def _byte(self, byte: int) -> None:
        if self._escape is not None:
            self._escape_byte(byte)
            return
        row, col = self.cursor
        if byte == 0x1B:
            self._escape = bytearray()
        elif byte == 0x0D:
            self.cursor = (row, 0)
        elif byte == 0x0A:
            self._line_feed()
        elif byte == 0x08:
            self.cursor = (row, max(0, col - 1))
        elif byte == 0x09:
            self.cursor = (row, min(self.width - 1, (col // 8 + 1) * 8))
        elif 0x20 <= byte < 0x7F:
            if col >= self.width:
                self._line_feed()
                row, col = self.cursor[0], 0
            self.cells[row][col] = (chr(byte), self.attribute)
            self._dirty.add(row)
            self.cursor = (row, col + 1)

    def _line_feed(self) -> None:
        row, _ = self.cursor
        if row + 1 < self.height:
            self.cursor = (row + 1, 0)
            return
        del self.cells[0]
        self.cells.append(self._blank_row())
        self._dirty.update(range(self.height))
        self.cursor = (row, 0)

    def _escape_byte(self, byte: int) -> None:
        assert self._escape is not None
        self._escape.append(byte)
        if len(self._escape) == 1:
            if byte != ord("["):
                self._escape = None  # not a CSI sequence: ignore it
            return
        if 0x40 <= byte <= 0x7E:
            params = self._escape[1:-1].decode("ascii", "replace")
            self._escape = None
            self._csi(params, chr(byte))
        elif len(self._escape) > _MAX_ESCAPE:
            self._escape = None

    def _csi(self, params: str, final: str) -> None:
        numbers = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else []
        row, col = self.cursor
        if final == "J":
            first = 0 if numbers[:1] == [2] else row
            if numbers[:1] != [2]:
                self.cells[row][col:] = [(" ", DEFAULT_ATTRIBUTE)] * (self.width - col)
                first = row + 1
            for r in range(first, self.height):
                self.cells[r] = self._blank_row()
            self._dirty.update(range(row if first > row else 0, self.height))
        elif final == "K":
            self.cells[row][col:] = [(" ", DEFAULT_ATTRIBUTE)] * (self.width - col)
            self._dirty.add(row)
        elif final in "Hf":
            r = (numbers[0] if numbers and numbers[0] else 1) - 1
            c = (numbers[1] if len(numbers) > 1 and numbers[1] else 1) - 1
            self.cursor = (min(max(r, 0), self.height - 1), min(max(c, 0), self.width - 1))
        elif final == "m":
            for n in numbers or [0]:
                self._sgr(n)

    def _sgr(self, n: int) -> None:
        fg, bg = self.attribute & 0x0F, (self.attribute >> 4) & 0x07
        if n == 0:
            fg, bg = DEFAULT_ATTRIBUTE, 0
        elif n == 1:
            fg |= 0x08
        elif n == 7:
            fg, bg = bg, fg & 0x07
        elif 30 <= n <= 37:
            fg = (fg & 0x08) | _ANSI_TO_VGA[n - 30]
        elif 40 <= n <= 47:
            bg = _ANSI_TO_VGA[n - 40]
        self.attribute = (bg << 4) | fg


class Phase(enum.Enum):
    OFF = "off"
    POST = "post"
    SETUP = "setup"
    BOOT = "boot"
    SHELL = "shell"
    HALTED = "halted"


@dataclass(frozen=True, slots=True)
class ConsoleTiming:
    """Pauses between boot lines (seconds): enough to watch a boot scroll by; zero in tests."""

    post_line: float = 0.08
    kernel_line: float = 0.03

    @classmethod
    def instant(cls) -> ConsoleTiming:
        return cls(0.0, 0.0)


_DEVICE_LINES: Final = {
    BootDevice.PXE: ("Booting from network (PXE)...", "PXE-E61: Media test failure, check cable",
                     "PXE-M0F: Exiting PXE ROM."),
    BootDevice.CD: ("Booting from CD/DVD...", "No bootable medium found."),
    BootDevice.IDER_CD: ("Booting from IDE-R CD-ROM...",),
    BootDevice.IDER_FLOPPY: ("Booting from IDE-R floppy...",),
    BootDevice.DIAGNOSTIC: ("Running platform diagnostics...", "Memory: PASS", "Storage: PASS", "Fan: PASS"),
}
"""What a boot from each device says before the hard disk takes over (none of them has a medium in sim but IDE-R,
whose medium the engine's IDE-R session attaches to ``SimConsole.storage``)."""

KERNEL: Final = "6.1.0-outband-sim"


class SimConsole:
    """The console of one simulated PC.  ``power`` lets the shell's poweroff/reboot reach the machine."""

    def __init__(self, profile: HardwareProfile | None = None, *, hostname: str = "outband-sim",
                 timing: ConsoleTiming = ConsoleTiming(), clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.profile = profile or HardwareProfile()
        self.hostname = hostname
        self.timing = timing
        self._screen: TextScreen | None = None
        self.storage = StorageRedirection()
        """Where the engine's IDE-R session attaches a console's drives for the boot to read (bootmedia.py)."""
        self.power: PowerCallback | None = None
        self.phase = Phase.OFF
        self._clock = clock
        self._wall_clock = wall_clock
        self._listeners: list[OutputListener] = []
        self._task: asyncio.Task[None] | None = None
        self._power_task: asyncio.Task[bool] | None = None
        self._key: asyncio.Future[bytes] | None = None
        self._booted_at = clock()
        self._line = bytearray()
        self._cwd = "/root"
        self._after_cr = False
        self._escape = False
        self._dmesg: list[str] = []

    @property
    def screen(self) -> TextScreen:
        """The VGA text screen, made on first use: the machines of a fleet that are never switched on nor
        watched keep no 80x25 grid (some 19 KB each)."""
        if self._screen is None:
            self._screen = TextScreen()
        return self._screen

    # ------------------------------------------------------------------------------------------ serial

    def add_serial_listener(self, listener: OutputListener) -> Callable[[], None]:
        """Receive every byte the machine writes to its serial port; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def input(self, data: bytes) -> None:
        """Keystrokes from the serial port (SOL) or the keyboard (KVM)."""
        if self._key is not None and not self._key.done() and data:
            self._key.set_result(data)
            return
        if self.phase is Phase.SHELL:
            for byte in data:
                self._shell_byte(byte)

    def send_break(self) -> None:
        """A serial break: the shell abandons the line being typed, as on Ctrl-C."""
        if self.phase is Phase.SHELL:
            self._interrupt()

    def announce(self, text: str) -> None:
        """A message the management engine puts in front of the user (the consent code), on the screen and the
        serial port alike, whatever the machine is doing; nothing shows while it is off."""
        if self.phase is not Phase.OFF:
            self._write(f"\n*** {text} ***\n")

    def _write(self, text: str) -> None:
        data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("ascii", "replace")
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        self.screen.write(data)
        for listener in list(self._listeners):
            listener(data)

    def _say(self, line: str = "") -> None:
        self._write(line + "\n")

    # ------------------------------------------------------------------------------------------ power

    def running(self) -> None:
        """The machine is on and was never seen booting (an engine started with the PC on): go to the shell."""
        self._stop_task()
        self._booted_at = self._clock()
        self._start_shell(banner=False)

    def boot(self, request: BootRequest) -> None:
        """Power-on or reset: run POST and the boot the request asks for."""
        self._stop_task()
        self.screen.clear()
        self.phase = Phase.POST
        self._line.clear()
        self._task = asyncio.get_running_loop().create_task(self._boot(request), name="sim-console-boot")

    def power_off(self) -> None:
        self._stop_task()
        self.phase = Phase.OFF
        self._line.clear()
        self.screen.clear()

    def crash(self) -> None:
        """An NMI: the kernel panics and the shell stops answering."""
        if self.phase in (Phase.SHELL, Phase.BOOT):
            self._stop_task()
            self._say(f"\n[{self._uptime():12.6f}] Kernel panic - not syncing: NMI: Not continuing")
            self.phase = Phase.HALTED

    async def stop(self) -> None:
        for task in (self._task, self._power_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._power_task = None

    def _stop_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._key is not None:
            self._key.cancel()
            self._key = None

    async def _wait_key(self) -> bytes:
        self._key = asyncio.get_running_loop().create_future()
        try:
            return await self._key
        finally:
            self._key = None

    async def _lines(self, lines: list[str], pause: float) -> None:
        for line in lines:
            self._say(line)
            await asyncio.sleep(pause)

    async def _boot(self, request: BootRequest) -> None:
        p = self.profile
        memory_mb = sum(m.capacity_bytes for m in p.memory) // (1024 * 1024)
        cpu = p.cpus[0]
        await self._lines([
            "\x1b[1m" + f"{p.bios.vendor} BIOS {p.bios.version}" + "\x1b[0m",
            f"{p.manufacturer} {p.product}   Serial {p.serial}",
            "",
            f"CPU: {cpu.brand} ({len(p.cpus) * cpu.cores} cores)",
            f"Memory test: {memory_mb} MB OK",
            *(f"Disk: {d.model}" for d in p.disks),
            "Intel(R) Active Management Technology - press <Ctrl-P> for MEBx",
            "Press <F2> for setup, <F10> for the boot menu",
            "",
        ], self.timing.post_line)
        if request.bios_pause:
            self._say("Press any key to continue...")
            await self._wait_key()
        device = request.device
        if device is BootDevice.BIOS_SETUP:
            await self._setup()
            device = BootDevice.DEFAULT
        await self._lines(list(_DEVICE_LINES.get(device, ())), self.timing.post_line)
        if device in (BootDevice.IDER_CD, BootDevice.IDER_FLOPPY):
            await self.storage.boot(device, self._say)  # IDE-R (bootmedia.py): reports, then the disk boots
        await self._load_os()

    async def _setup(self) -> None:
        self.phase = Phase.SETUP
        self._write("\x1b[2J\x1b[H\x1b[44;37m BIOS Setup Utility \x1b[0m\n\n")
        p = self.profile
        for name, value in (("BIOS version", p.bios.version), ("System", f"{p.manufacturer} {p.product}"),
                            ("Serial number", p.serial), ("Boot order", "Hard disk, Network")):
            self._say(f"  {name:<16}{value}")
        self._say("\n  Esc or q: exit setup and boot")
        while (await self._wait_key())[:1] not in (b"\x1b", b"q", b"Q"):
            pass
        self._write("\x1b[2J\x1b[H")
        self.phase = Phase.POST

    async def _load_os(self) -> None:
        self.phase = Phase.BOOT
        await self._lines(["Booting from hard disk...", "", "outband boot loader 1.0",
                           f"Loading /boot/vmlinuz-{KERNEL} ...", "Loading /boot/initrd.img ...", ""],
                          self.timing.post_line)
        self._booted_at = self._clock()
        cpu = self.profile.cpus[0]
        self._dmesg = [
            f"Linux version {KERNEL} (outband) #1 SMP",
            f"Command line: BOOT_IMAGE=/boot/vmlinuz-{KERNEL} root=/dev/sda1 console=tty0 console=ttyS0,115200",
            f"smpboot: CPU0: {cpu.brand}",
            "serial8250: ttyS0 at I/O 0x3f8 (irq = 4) is a 16550A",
            "console [ttyS0] enabled",
            f"sd 0:0:0:0: [sda] {self.profile.disks[0].model}" if self.profile.disks else "no disks found",
            "EXT4-fs (sda1): mounted filesystem with ordered data mode",
            "systemd[1]: Reached target Multi-User System.",
        ]
        for index, line in enumerate(self._dmesg):
            self._say(f"[{index * 0.173:12.6f}] {line}")
            await asyncio.sleep(self.timing.kernel_line)
        self._start_shell(banner=True)
        self._task = None

    # ------------------------------------------------------------------------------------------ shell

    def _start_shell(self, *, banner: bool) -> None:
        self.phase = Phase.SHELL
        self._line.clear()
        if banner:
            self._say(f"\n{self.hostname} login: root (automatic login on ttyS0)")
            self._write(_FILES["/etc/motd"])
        self._prompt()

    def _prompt(self) -> None:
        cwd = "~" if self._cwd == "/root" else self._cwd
        self._write(f"root@{self.hostname}:{cwd}# ")

    def _interrupt(self) -> None:
        self._line.clear()
        self._write("^C\n")
        self._prompt()

    def _shell_byte(self, byte: int) -> None:
        after_cr, self._after_cr = self._after_cr, byte == 0x0D
        if self._escape:  # swallow an escape sequence (arrow keys): ESC [ ... final byte
            self._escape = not (0x40 <= byte <= 0x7E and byte != ord("["))
            return
        if byte == 0x0A and after_cr:
            return  # the LF of a CR LF pair
        if byte in (0x0D, 0x0A):
            self._write("\n")
            line, self._line = self._line.decode("utf-8", "replace"), bytearray()
            self._run(line.strip())
            if self.phase is Phase.SHELL:
                self._prompt()
        elif byte in (0x08, 0x7F):
            if self._line:
                del self._line[-1]
                self._emit(b"\b \b")
        elif byte == 0x03:
            self._interrupt()
        elif byte == 0x15:
            self._emit(b"\b \b" * len(self._line))
            self._line.clear()
        elif byte == 0x1B:
            self._escape = True
        elif byte >= 0x20 and len(self._line) < MAX_LINE:
            self._line.append(byte)
            self._emit(bytes([byte]))

    def _run(self, line: str) -> None:
        if not line:
            return
        name, _, rest = line.partition(" ")
        command = _COMMANDS.get(name)
        if command is None:
            self._say(f"-sh: {name[:40]}: command not found")
            return
        command(self, rest.split())

    def _uptime(self) -> float:
        return max(0.0, self._clock() - self._booted_at)

    def _path(self, arg: str) -> str:
        path = arg if arg.startswith("/") else f"{self._cwd.rstrip('/')}/{arg}"
        parts: list[str] = []
        for part in path.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        return "/" + "/".join(parts)

    def _files(self) -> dict[str, str]:
        p = self.profile
        cpu = p.cpus[0]
        memory_kb = sum(m.capacity_bytes for m in p.memory) // 1024
        uptime = self._uptime()
        return {
            **_FILES,
            "/etc/hostname": self.hostname + "\n",
            "/proc/cpuinfo": "".join(f"processor\t: {i}\nmodel name\t: {cpu.brand}\ncpu MHz\t\t: "
                                     f"{cpu.current_speed_mhz}.000\n\n" for i in range(len(p.cpus) * cpu.cores)),
            "/proc/meminfo": f"MemTotal:       {memory_kb} kB\nMemFree:        {memory_kb * 9 // 10} kB\n",
            "/proc/uptime": f"{uptime:.2f} {uptime * 0.9:.2f}\n",
            "/proc/version": f"Linux version {KERNEL} (outband) #1 SMP\n",
        }

    def _directories(self) -> set[str]:
        dirs = {"/"}
        for path in self._files():
            parts = path.split("/")[1:-1]
            dirs.update("/" + "/".join(parts[: i + 1]) for i in range(len(parts)))
        return dirs | {"/root"}

    # commands: (console, args) -> None

    def _cmd_help(self, args: list[str]) -> None:
        self._say("Commands: " + " ".join(sorted(_COMMANDS)))

    def _cmd_echo(self, args: list[str]) -> None:
        self._say(" ".join(args))

    def _cmd_uname(self, args: list[str]) -> None:
        if "-a" in args:
            self._say(f"Linux {self.hostname} {KERNEL} #1 SMP x86_64 GNU/Linux")
        else:
            self._say({"-n": self.hostname, "-r": KERNEL, "-m": "x86_64"}.get(args[0] if args else "", "Linux"))

    def _cmd_hostname(self, args: list[str]) -> None:
        self._say(self.hostname)

    def _cmd_uptime(self, args: list[str]) -> None:
        seconds = int(self._uptime())
        now = dt.datetime.fromtimestamp(self._wall_clock(), dt.UTC).strftime("%H:%M:%S")
        self._say(f" {now} up {seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d},  1 user,"
                  "  load average: 0.00, 0.00, 0.00")

    def _cmd_date(self, args: list[str]) -> None:
        self._say(dt.datetime.fromtimestamp(self._wall_clock(), dt.UTC).strftime("%a %b %d %H:%M:%S UTC %Y"))

    def _cmd_whoami(self, args: list[str]) -> None:
        self._say("root")

    def _cmd_pwd(self, args: list[str]) -> None:
        self._say(self._cwd)

    def _cmd_cd(self, args: list[str]) -> None:
        target = self._path(args[0]) if args else "/root"
        if target in self._directories():
            self._cwd = target
        else:
            self._say(f"-sh: cd: {args[0][:60]}: No such file or directory")

    def _cmd_ls(self, args: list[str]) -> None:
        target = self._path(args[0]) if args else self._cwd
        files, dirs = self._files(), self._directories()
        if target in files:
            self._say(target.rsplit("/", 1)[1])
            return
        if target not in dirs:
            self._say(f"ls: cannot access '{args[0][:60]}': No such file or directory")
            return
        prefix = target.rstrip("/") + "/"
        names = {p[len(prefix):].split("/")[0] for p in [*files, *dirs] if p.startswith(prefix) and p != prefix}
        if names:
            self._say("  ".join(sorted(names)))

    def _cmd_cat(self, args: list[str]) -> None:
        files = self._files()
        for arg in args:
            path = self._path(arg)
            if path in files:
                self._write(files[path])
            elif path in self._directories():
                self._say(f"cat: {arg[:60]}: Is a directory")
            else:
                self._say(f"cat: {arg[:60]}: No such file or directory")

    def _cmd_clear(self, args: list[str]) -> None:
        self._write("\x1b[2J\x1b[H")

    def _cmd_dmesg(self, args: list[str]) -> None:
        for index, line in enumerate(self._dmesg):
            self._say(f"[{index * 0.173:12.6f}] {line}")

    def _cmd_free(self, args: list[str]) -> None:
        total = sum(m.capacity_bytes for m in self.profile.memory) // 1024
        self._say("               total        used        free")
        self._say(f"Mem:    {total:>12} {total // 10:>11} {total - total // 10:>11}")

    def _cmd_poweroff(self, args: list[str]) -> None:
        self._power("Powering off.", PowerAction.OFF_SOFT)

    def _cmd_reboot(self, args: list[str]) -> None:
        self._power("Rebooting.", PowerAction.RESET)

    def _power(self, message: str, action: PowerAction) -> None:
        self._say(message)
        self.phase = Phase.HALTED
        if self.power is not None:
            # Its own task: the power change it makes stops the console (and would cancel a shared one).
            self._power_task = asyncio.get_running_loop().create_task(self.power(action), name="sim-console-power")


_COMMANDS: Final[dict[str, Callable[[SimConsole, list[str]], None]]] = {
    "help": SimConsole._cmd_help,
    "echo": SimConsole._cmd_echo,
    "uname": SimConsole._cmd_uname,
    "hostname": SimConsole._cmd_hostname,
    "uptime": SimConsole._cmd_uptime,
    "date": SimConsole._cmd_date,
    "whoami": SimConsole._cmd_whoami,
    "pwd": SimConsole._cmd_pwd,
    "cd": SimConsole._cmd_cd,
    "ls": SimConsole._cmd_ls,
    "cat": SimConsole._cmd_cat,
    "clear": SimConsole._cmd_clear,
    "dmesg": SimConsole._cmd_dmesg,
    "free": SimConsole._cmd_free,
    "poweroff": SimConsole._cmd_poweroff,
    "shutdown": SimConsole._cmd_poweroff,
    "reboot": SimConsole._cmd_reboot,
}

_FILES: Final = {
    "/etc/motd": "\nWelcome to the outband simulated PC.\nThis machine exists only in software; type 'help'.\n\n",
    "/etc/os-release": 'NAME="outband sim"\nID=outband\nPRETTY_NAME="outband simulated PC"\n',
    "/root/README": "Everything here is simulated: the files, the kernel and the disk.\n",
}
