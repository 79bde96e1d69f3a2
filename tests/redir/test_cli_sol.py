"""``outband sol``: on a pseudo-terminal (raw keys, Ctrl-] ends, the terminal comes back as it was) and on pipes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import re
import sys
import termios
from collections.abc import AsyncIterator
from pathlib import Path

from ._kit import RedirEnv, redirection_engine

OUTBAND = str(Path(sys.executable).parent / "outband")


PATIENCE = 30
"""Seconds to wait for the CLI: starting a Python process that imports the package is slow on a busy machine."""


@contextlib.asynccontextmanager
async def spawn(r: RedirEnv, *extra: str, password: str | None = None, **streams: int
                ) -> AsyncIterator[asyncio.subprocess.Process]:
    """The CLI as a subprocess, killed and reaped however the test ends (no pipe left for the GC to find)."""
    env = {**os.environ, "AMT_PASSWORD": password or r.password}
    process = await asyncio.create_subprocess_exec(OUTBAND, "sol", r.host, "--port", str(r.port), *extra, env=env,
                                                   **streams)  # type: ignore[arg-type]
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        if process.stdout is not None or process.stderr is not None:
            await process.communicate()
        else:
            await process.wait()


async def read_until(stream: asyncio.StreamReader, pattern: bytes, seen: bytes = b"") -> bytes:
    async with asyncio.timeout(PATIENCE):
        while re.search(pattern, seen) is None:
            chunk = await stream.read(4096)
            assert chunk, f"output ended before {pattern!r}: {seen!r}"
            seen += chunk
    return seen


async def test_pipes_pass_bytes_through_and_ctrl_bracket_ends() -> None:
    async with redirection_engine() as r, spawn(r, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdin.write(b"echo via the cli\r")
        await read_until(process.stdout, rb"\r\nvia the cli\r\n")
        process.stdin.write(b"\x1d")
        async with asyncio.timeout(PATIENCE):
            assert await process.wait() == 0
        assert b"Escape character is '^]'" in await process.stderr.read()


async def test_a_terminal_goes_raw_and_comes_back() -> None:
    async with redirection_engine() as r:
        master, slave = pty.openpty()
        before = termios.tcgetattr(slave)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                    os.fdopen(master, "rb", 0))
        try:
            async with spawn(r, stdin=slave, stdout=slave, stderr=slave) as process:
                seen = await read_until(reader, rb"Escape character")
                os.write(master, b"sleep\x03")  # raw: Ctrl-C goes to the machine, not to us as a signal
                seen = await read_until(reader, rb"\^C", seen)
                os.write(master, b"uname -a\r")
                await read_until(reader, rb"GNU/Linux", seen)
                os.write(master, b"\x1d")
                async with asyncio.timeout(PATIENCE):
                    assert await process.wait() == 0
            assert termios.tcgetattr(slave) == before
        finally:
            transport.close()
            os.close(slave)


async def test_a_wrong_password_is_one_line_and_exit_status_1() -> None:
    async with redirection_engine() as r, spawn(r, password="Wrong.Passw0rd", stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE) as process:
        async with asyncio.timeout(PATIENCE):
            _, err = await process.communicate()
        assert process.returncode == 1
        assert err.decode().startswith("error: ")
        assert "refused" in err.decode()
