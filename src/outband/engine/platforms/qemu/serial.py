"""The VM's first serial port (COM1) as SOL sees a serial port: output listeners, input, and a break.

QEMU's end is a socket chardev in telnet mode (``-chardev socket,...,server=on,telnet=on``), because telnet is
how a chardev socket carries a serial *break*: QEMU turns ``IAC BREAK`` into a break condition on the UART,
which the guest sees in its line status register, as it would from a real line.  QEMU's telnet is one-sided:
on connecting it sends a fixed option preamble (``WILL ECHO``, ``WILL SUPPRESS-GO-AHEAD``, ``WILL BINARY``,
``DO BINARY``) and then the guest's bytes unescaped, and it parses ``IAC`` sequences only in what it receives.
So :class:`TelnetPreamble` strips that preamble when it is there (a chardev without telnet sends none: then
everything is data, and breaks cannot be sent), and input doubles 0xFF as ``IAC IAC``.

The port outlives QEMU processes: the platform :meth:`~SerialConsole.attach` es each new connection (after a
power-on or cycle) and SOL's listeners stay subscribed across them, as a serial cable stays plugged in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

IAC: Final = 0xFF
BREAK: Final = 0xF3
QEMU_TELNET_PREAMBLE: Final = bytes([IAC, 0xFB, 1, IAC, 0xFB, 3, IAC, 0xFB, 0, IAC, 0xFD, 0])
"""What QEMU's telnet chardev says on connecting: WILL ECHO, WILL SGA, WILL BINARY, DO BINARY."""
MAX_PENDING_INPUT: Final = 64 * 1024
"""Input bytes queued towards a guest that is not reading (more is dropped, as a UART overruns)."""
READ_SIZE: Final = 65536

OutputListener = Callable[[bytes], None]


class TelnetPreamble:
    """Separates QEMU's telnet preamble from the guest's first bytes (sans-I/O).

    ``telnet`` is None until the first bytes decide it: True when they are the preamble, False as soon as
    they diverge from it (a raw chardev), in which case nothing is removed.
    """

    def __init__(self) -> None:
        self.telnet: bool | None = None
        self._held = bytearray()

    def feed(self, data: bytes) -> bytes:
        """The guest's bytes in ``data`` (held back while they could still be the preamble)."""
        if self.telnet is not None:
            return data
        self._held += data
        size = len(QEMU_TELNET_PREAMBLE)
        if self._held[:size] == QEMU_TELNET_PREAMBLE[: len(self._held)]:
            if len(self._held) < size:
                return b""
            self.telnet = True
            rest = bytes(self._held[size:])
        else:
            self.telnet = False
            rest = bytes(self._held)
        self._held.clear()
        return rest


class SerialConsole:
    """COM1 of the VM (a :class:`~outband.engine.redirection.sol.SerialPort`)."""

    def __init__(self) -> None:
        self._listeners: list[OutputListener] = []
        self._writer: asyncio.StreamWriter | None = None
        self._preamble = TelnetPreamble()
        self._pump: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------------------------------ SerialPort

    def add_serial_listener(self, listener: OutputListener) -> Callable[[], None]:
        """Receive every byte the guest writes to COM1 from now on; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def input(self, data: bytes) -> None:
        """Bytes for the guest (dropped while no VM runs, or when it has stopped reading)."""
        if self._preamble.telnet:
            data = data.replace(b"\xff", b"\xff\xff")
        self._send(data)

    def send_break(self) -> None:
        """A serial break, where the chardev can carry one (telnet mode)."""
        if self._preamble.telnet:
            self._send(bytes([IAC, BREAK]))
        else:
            log.info("serial break not sent: the VM's serial chardev is not in telnet mode")

    def _send(self, data: bytes) -> None:
        writer = self._writer
        if writer is None or writer.is_closing() or not data:
            return
        if writer.transport.get_write_buffer_size() + len(data) > MAX_PENDING_INPUT:
            log.warning("serial input dropped: the guest is not reading COM1")
            return
        writer.write(data)

    # ------------------------------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Carry this connection to QEMU's chardev from now on (replacing the previous one)."""
        await self.detach()
        self._preamble = TelnetPreamble()
        self._writer = writer
        self._pump = asyncio.get_running_loop().create_task(self._read(reader, writer), name="qemu-serial")

    async def detach(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        self._close()

    def _close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(READ_SIZE):
                output = self._preamble.feed(data)
                if output:
                    for listener in list(self._listeners):
                        listener(output)
        except OSError as exc:
            log.info("serial connection to QEMU ended: %s", exc)
        finally:
            if self._writer is writer:
                self._close()


__all__ = ["QEMU_TELNET_PREAMBLE", "SerialConsole", "TelnetPreamble"]
