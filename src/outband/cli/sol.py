"""``outband sol HOST``: a Serial-over-LAN terminal, like amtterm or telnet.

The local terminal goes raw (every key, Ctrl-C included, goes to the machine) and comes back as it was, whatever
happens.  Ctrl-] ends the session, as in telnet and amtterm.  Without a terminal (pipes) the bytes pass through
unchanged, which makes the command scriptable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import tty
from collections.abc import Iterator
from typing import Annotated, Final

import typer

from ..client.redirection import SolSession
from ..proto.redir.session import AuthType
from .wsman import fail, run

ESCAPE: Final = 0x1D
"""Ctrl-]."""

AUTH_CHOICES: Final = {
    "auto": (AuthType.DIGEST, AuthType.DIGEST_NO_QOP, AuthType.CLEAR),
    "digest": (AuthType.DIGEST,),
    "digest-no-qop": (AuthType.DIGEST_NO_QOP,),
    "clear": (AuthType.CLEAR,),
}

EPILOG = """\
Press Ctrl-] to end the session (the escape key of telnet and amtterm).

Examples:

  AMT_PASSWORD=... outband sol 10.0.0.5
  outband sol 10.0.0.5 --tls --fingerprint 5e0c...e1 (the certificate's SHA-256)

Without a terminal (pipes) bytes pass through unchanged; the end of the
input, or a Ctrl-] in it, ends the session.

The login is HTTP Digest with qop (type 4) unless the device offers only the
older digest (type 3) or clear text (type 1); --auth forces one."""


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Raw mode on a terminal for the duration; nothing on a pipe."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def terminal(session: SolSession, stdin: int, stdout: int) -> None:
    """Copy keys to the machine and its output to ``stdout`` until Ctrl-], the end of input, or the session's
    end."""
    loop = asyncio.get_running_loop()
    keys: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(stdin, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(stdin)
        keys.put_nowait(data)

    async def type_keys() -> None:
        while data := await keys.get():
            escape = data.find(bytes([ESCAPE]))
            if escape >= 0:
                if escape:
                    await session.write(data[:escape])
                return
            await session.write(data)

    async def show_output() -> None:
        while data := await session.read():
            os.write(stdout, data)

    loop.add_reader(stdin, readable)
    tasks = [asyncio.ensure_future(type_keys()), asyncio.ensure_future(show_output())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        loop.remove_reader(stdin)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:  # a failed write (the session broke) is reported like any other failure
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error


async def _sol(session: SolSession) -> None:
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    async with session:
        typer.echo(f"Connected to {session.host} (Serial-over-LAN). Escape character is '^]'.", err=True)
        with raw_terminal(stdin):
            await terminal(session, stdin, stdout)
    typer.echo(f"\r\nConnection closed ({session.end_reason}).", err=True)


def sol_command(
    host: Annotated[str, typer.Argument(metavar="HOST", show_default=False, help="Device address.")],
    user: Annotated[str, typer.Option("-u", "--user", help="Digest user name.")] = "admin",
    password: Annotated[str | None, typer.Option(
        "-p", "--password", envvar="AMT_PASSWORD", show_default=False,
        help="Password (prefer the AMT_PASSWORD variable: command lines are visible to other users).")] = None,
    port: Annotated[int | None, typer.Option(
        "--port", show_default=False, help="Port (default 16994, or 16995 with TLS).")] = None,
    tls: Annotated[bool, typer.Option("--tls", help="Use TLS (port 16995).")] = False,
    fingerprint: Annotated[str | None, typer.Option(
        "--fingerprint", show_default=False,
        help="Trust the device's certificate by its SHA-256 fingerprint (implies --tls).")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="TLS without verifying the certificate.")] = False,
    auth: Annotated[str, typer.Option(
        "--auth", help="Login type: auto, digest, digest-no-qop or clear.")] = "auto",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the login and SOL start.")] = 30.0,
) -> None:
    """Open a Serial-over-LAN terminal to the machine (Ctrl-] ends it)."""
    if auth not in AUTH_CHOICES:
        fail(f"--auth must be one of {', '.join(AUTH_CHOICES)}", code=2)
    if password is None:
        if not sys.stdin.isatty():
            fail("no password: give -p/--password or set AMT_PASSWORD (there is no default password)", code=2)
        password = typer.prompt(f"Password for {user}@{host}", hide_input=True)
    session = SolSession(host, user, password, port=port, tls=tls or fingerprint is not None or insecure,
                         fingerprint=fingerprint, verify=not insecure, preference=AUTH_CHOICES[auth],
                         timeout=timeout)
    run(_sol(session))
