"""Running real third-party AMT clients (the "peers") against an engine, for the interoperability tests.

The peers are installed by ``scripts/setup.sh --dev``: Debian's wsl and curl, the ``amt`` PyPI package
(amtctrl), and node with MeshCentral and Open AMT's wsman-messages in ``tests/peers/node_modules``.  A missing
peer raises :class:`PeerMissing` with the command that installs it: the tests must fail, not skip, when a
peer is absent (CI installs them all).

Peers run as subprocesses through asyncio, never blocking: the engine they talk to runs in the test's own
event loop.  Some clients hard-code AMT's ports (amtctrl always dials 16992), so
:func:`engine_on_standard_ports` serves an engine on a loopback address of its own with the standard ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import random
import secrets
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.core import Engine, EngineConfig, all_services
from ..engine.platforms.sim import SimMachine
from ..engine.server import EngineServer, Ports
from ..engine.state import Database, StateStore
from .engine import RunningEngine

INSTALL_HINT = "install the peers with `bash scripts/setup.sh --dev` (apt packages, the test group, npm ci)"
NODE_PACKAGES = ("meshcentral", "@open-amt-cloud-toolkit/wsman-messages")
OUTPUT_CAP = 4 * 1024 * 1024
"""Bytes kept from a peer's stdout or stderr: a runaway client must not fill the test's memory."""


class PeerMissing(RuntimeError):
    """A peer (program or node package) is not installed."""


class PeerFailed(RuntimeError):
    """A peer ran but did not produce a usable result (crash, timeout, unreadable output)."""


def peers_dir() -> Path:
    """``tests/peers`` of this checkout (``OUTBAND_PEERS_DIR`` overrides it for an installed package)."""
    override = os.environ.get("OUTBAND_PEERS_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[3] / "tests" / "peers"


def require_program(name: str) -> str:
    """Absolute path of an installed program, looked up on PATH and beside this Python (for amtctrl)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
    found = shutil.which(name, path=search)
    if found is None:
        raise PeerMissing(f"{name} is not installed: {INSTALL_HINT}")
    return found


def node_modules() -> Path:
    """The peers' node_modules, checked to hold every pinned package."""
    modules = peers_dir() / "node_modules"
    missing = [p for p in NODE_PACKAGES if not (modules / p / "package.json").is_file()]
    if missing:
        raise PeerMissing(f"node packages {', '.join(missing)} are not in {modules}: {INSTALL_HINT}")
    return modules


@dataclass(frozen=True, slots=True)
class PeerRun:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        """The run for a failure message: command, exit status and the tail of both streams."""
        return (f"$ {' '.join(self.argv)}\nexit status {self.returncode}\n"
                f"--- stdout (tail) ---\n{self.stdout[-3000:]}\n--- stderr (tail) ---\n{self.stderr[-3000:]}")


async def _read_capped(stream: asyncio.StreamReader | None) -> bytes:
    if stream is None:
        return b""
    kept = bytearray()
    while chunk := await stream.read(65536):
        kept += chunk[: max(0, OUTPUT_CAP - len(kept))]
    return bytes(kept)


async def run_peer(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None, kill_after: float = 20.0,
) -> PeerRun:
    """Run a peer to completion without blocking the event loop; kill it (and fail) after ``kill_after`` s."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
    )
    finished = asyncio.ensure_future(
        asyncio.gather(_read_capped(process.stdout), _read_capped(process.stderr), process.wait()))
    done, _ = await asyncio.wait({finished}, timeout=kill_after)
    if not done:  # kill the whole process group (wsl runs curl under bash), then collect what it said
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    out, err, code = await finished
    run = PeerRun(tuple(argv), code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    if not done:
        raise PeerFailed(f"peer killed after {kill_after} s\n{run.describe()}")
    return run


async def run_node_json(
    script: Path, args: Sequence[str], *, env: Mapping[str, str] | None = None, kill_after: float = 20.0,
) -> Any:
    """Run a node script of ``tests/peers`` that prints one JSON document as its last line; return it."""
    node = require_program("node")
    node_modules()
    run = await run_peer([node, str(script), *args], env={**os.environ, **(env or {})}, cwd=script.parent,
                         kill_after=kill_after)
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines:
        raise PeerFailed(f"node script failed\n{run.describe()}")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise PeerFailed(f"node script printed no JSON ({exc})\n{run.describe()}") from None


def isolated_home(home: Path, **extra: str) -> dict[str, str]:
    """An environment whose HOME (and XDG config dir) is ``home``: peers read and write their config there."""
    (home / ".config").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "CURL_", "WS"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), LC_ALL="C.UTF-8", **extra)
    return env


def peer_password() -> str:
    """An admin password that satisfies AMT's rule and survives the peers' handling of it: wsl pastes it
    unquoted into a shell command line and amtctrl stores it in an interpolating ConfigParser file, so it
    holds only letters, digits and dots."""
    return f"Peer.Test.{secrets.token_hex(6)}.Z9"


@asynccontextmanager
async def engine_on_standard_ports(
    *, password: str, machine: SimMachine | None = None, attempts: int = 20,
) -> AsyncIterator[RunningEngine]:
    """An engine listening on 16992 (no TLS) of a random address in 127.77.0.0/16, for clients that cannot be
    told a port.  A random address keeps parallel test runs on one machine apart; a taken one is retried."""
    db = Database(":memory:")
    machine = machine or SimMachine()
    config = EngineConfig(services=all_services(), admin_password=password)
    engine = Engine(config, machine, StateStore(db, config.engine_id))
    try:
        for _ in range(attempts):
            address = f"127.77.{random.randint(0, 255)}.{random.randint(1, 254)}"  # noqa: S311 - not a secret
            server = EngineServer({address: engine}, Ports(16992, None))
            try:
                await server.start()
            except OSError as exc:
                await server.stop()
                if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                    continue
                raise
            break
        else:
            raise OSError(f"no free loopback address in 127.77.0.0/16 for port 16992 after {attempts} tries")
        env = RunningEngine(engine, server, machine, password, host=address)
        try:
            yield env
        finally:
            for transport in env.transports:
                await transport.close()
            await server.stop()
    finally:
        db.close()
