"""Debian's amtterm (1.4: clear-text login, no auth query) against the engine's SOL, through a pseudo-terminal
as a person would use it: watch the machine boot, type at the shell, stay idle, leave with Ctrl-].

amtterm quits after 20 s without a message from AMT and the engine drops a console it has not heard from for
its idle timeout, so a quiet session only survives if heartbeats flow both ways (ours, and amtterm's echoes).
The "idle minute" is a scaled minute: every SOL duration is multiplied by ``SCALE``, so one minute of
heartbeats and idle timeouts plays out in three seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from tests.redir._kit import RedirEnv, audit_ids, eventually, instant_machine, redirection_engine

from outband.engine.platforms.base import PowerAction
from outband.engine.redirection import RedirectionConfig
from outband.proto.redir.sol import SolTiming
from outband.testing.peers import PeerFailed, peer_password, require_program

pytestmark = pytest.mark.peer

SCALE = 0.05
"""Scaled time: amtterm asks for 5 s heartbeats and a 10 s idle timeout; we run them at 0.25 s and 0.5 s."""
ESCAPE = b"\x1d"
"""Ctrl-], amtterm's escape key."""


class Terminal:
    """A program on a pseudo-terminal: what it prints is collected; ``expect`` waits for a pattern.  The
    terminal's output processing turns the LF of each CR LF into CR LF again, so patterns match ``\r+\n``."""

    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self.process = process
        self.master = master
        self.output = bytearray()
        self._grew = asyncio.Event()
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the program closed the terminal
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
        self.output += data
        self._grew.set()

    async def expect(self, pattern: bytes, *, after: int = 0, within: float = 10.0) -> int:
        """Wait until ``pattern`` (a regex) appears in the output past offset ``after``; its end offset."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + within
        while (match := re.search(pattern, bytes(self.output[after:]), re.DOTALL)) is None:
            if self.process.returncode is not None or loop.time() > give_up:
                raise PeerFailed(f"amtterm (exit status {self.process.returncode}) did not print {pattern!r}:\n"
                                 f"{self.text()}")
            self._grew.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._grew.wait(), 0.5)
        return after + match.end()

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def text(self) -> str:
        return self.output.decode("utf-8", "replace")


@asynccontextmanager
async def amtterm(r: RedirEnv) -> AsyncIterator[Terminal]:
    program = require_program("amtterm")
    master, slave = pty.openpty()
    env = {**os.environ, "AMT_PASSWORD": r.password, "TERM": "dumb"}
    process = await asyncio.create_subprocess_exec(program, r.host, str(r.port), stdin=slave, stdout=slave,
                                                   stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    terminal = Terminal(process, master)
    try:
        yield terminal
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(master)
        os.close(master)


async def test_amtterm_watches_a_boot_runs_a_command_survives_an_idle_minute_and_escapes() -> None:
    config = RedirectionConfig(sol=SolTiming(time_scale=SCALE))
    async with redirection_engine(config=config, machine=instant_machine(powered=False),
                                  password=peer_password()) as r, amtterm(r) as term:
        seen = await term.expect(rb"serial-over-lan redirection ok")
        seen = await term.expect(rb"powered off", after=0)  # our first 0x29: the machine is off

        assert await r.machine.request_power(PowerAction.ON)
        seen = await term.expect(rb"Booting from hard disk.*root@outband-sim:~# ", after=seen)

        term.type(b"uname -a\r")
        seen = await term.expect(rb"Linux outband-sim \S+ #1 SMP x86_64 GNU/Linux\r+\n.*# ", after=seen)

        await asyncio.sleep(60 * SCALE)  # an idle (scaled) minute: six idle timeouts, twelve heartbeats
        assert term.process.returncode is None, term.text()
        term.type(b"echo still here\r")
        seen = await term.expect(rb"\nstill here\r+\n", after=seen)

        term.type(ESCAPE)
        async with asyncio.timeout(10):
            assert await term.process.wait() == 0, term.text()
        await eventually(lambda: 1805 in audit_ids(r))
        assert audit_ids(r)[-2:] == [1804, 1805]


async def test_amtterm_with_a_wrong_password_is_refused_and_counted() -> None:
    async with redirection_engine(password=peer_password()) as r:
        r.env.password = "Wrong.Password.1"
        async with amtterm(r) as term:
            await term.expect(rb"session authentication failed")
            async with asyncio.timeout(10):
                await term.process.wait()
        assert 1605 in audit_ids(r)
