"""Helpers for the console MPS tests: the MPS as a runtime service, CIRA devices in the database, engines that
dial it (``tests.cira._kit.cira_engine``), a TCP relay that can cut or silence a tunnel, and presence reads."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from tests.cira._kit import FAST, CiraEnv, cira_engine

from outband.console.db.models import CiraPresence, CiraTunnel, Device, Transport
from outband.console.devices.connect import DeviceTarget
from outband.console.mps import MpsService, MpsSettings
from outband.console.relay.sol import SolRelay
from outband.console.runtime import Runtime
from outband.engine import cira
from outband.engine.platforms.base import PowerState
from outband.engine.platforms.console import ConsoleTiming, SimConsole
from outband.engine.platforms.profile import HardwareProfile
from outband.engine.platforms.sim import SimMachine

MPS_USER = "outband-cira"
MPS_PASSWORD = "Mps!" + secrets.token_hex(6)
KEEPALIVE = 1
IDLE = 2.5
"""The keepalive window: a tunnel silent this long is dropped (and the device marked offline)."""
WITHIN = 15.0
"""Bounds waits for things that happen within the keepalive window or a reconnect (never asserted as timings)."""


def mps_settings(**overrides: Any) -> MpsSettings:
    values: dict[str, Any] = {"mps_listen": "127.0.0.1:0", "mps_username": MPS_USER, "mps_password": MPS_PASSWORD,
                              "mps_keepalive": KEEPALIVE, "mps_idle_timeout": IDLE, "mps_node": "node-a",
                              **overrides}
    return MpsSettings(**values)


async def start_mps(runtime: Runtime, **overrides: Any) -> MpsService:
    """The MPS started as the console starts it (stopped by the runtime's close)."""
    service = MpsService(mps_settings(**overrides), presence_interval=0.05)
    await runtime.start_service(service)
    return service


def sim_machine(seed: str, power: PowerState = PowerState.OFF_SOFT) -> SimMachine:
    profile = HardwareProfile().instantiate(seed)
    return SimMachine(profile, power_state=power, console=SimConsole(profile, timing=ConsoleTiming.instant()))


async def add_cira_device(runtime: Runtime, name: str, machine: SimMachine, amt_password: str, *,
                          cira_login: tuple[str, str] | None = None) -> int:
    async with runtime.db.write() as session:
        device = Device(name=name, host=f"{name}.cira", uuid=machine.profile.system_uuid, transport=Transport.CIRA,
                        username="admin", password_enc=runtime.box.encrypt(amt_password))
        if cira_login is not None:
            device.cira_username = cira_login[0]
            device.cira_password_enc = runtime.box.encrypt(cira_login[1])
        session.add(device)
        await session.flush()
        return device.id


def dial(mps: MpsService | Relay, *, user: str = MPS_USER, password: str = MPS_PASSWORD,
         ca_file: Path | None = None) -> cira.CiraOptions:
    """The engine's --cira options for the console's MPS (or for a relay in front of it)."""
    if isinstance(mps, Relay):
        ca_file, port = mps.mps.cert_file, mps.port
    else:
        ca_file, port = ca_file or mps.cert_file, mps.port
    return cira.CiraOptions.parse(f"127.0.0.1:{port}", user, password, ca_file=ca_file)


@asynccontextmanager
async def dialling_engine(tmp_path: Path, options: cira.CiraOptions, machine: SimMachine, password: str,
                          tuning: cira.CiraTuning = FAST) -> AsyncIterator[CiraEnv]:
    tls_dir = tmp_path / machine.profile.system_uuid
    tls_dir.mkdir(parents=True, exist_ok=True)
    async with cira_engine(tls_dir, options, machine=machine, password=password, tuning=tuning) as env:
        yield env


async def presence(runtime: Runtime, device_id: int) -> CiraPresence | None:
    async with runtime.db.read() as session:
        return await session.get(CiraPresence, device_id)


async def tunnels(runtime: Runtime, device_id: int) -> list[CiraTunnel]:
    """The device's tunnel history, oldest first."""
    async with runtime.db.read() as session:
        query = select(CiraTunnel).where(CiraTunnel.device_id == device_id).order_by(CiraTunnel.id)
        return list((await session.execute(query)).scalars())


async def device_row(runtime: Runtime, device_id: int) -> Device:
    async with runtime.db.read() as session:
        device = await session.get(Device, device_id)
        assert device is not None
        return device


async def until(condition: Callable[[], Awaitable[bool]], seconds: float = WITHIN) -> None:
    """Wait until an async condition (a database read) holds."""
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110 -- the condition reads the database, nothing to wait on
            await asyncio.sleep(0.05)


async def stored_online(runtime: Runtime, device_id: int, online: bool) -> CiraPresence:
    """Wait until the presence table says the device is (not) online; returns the row."""
    found: list[CiraPresence] = []

    async def check() -> bool:
        row = await presence(runtime, device_id)
        if row is not None and row.online is online:
            found.append(row)
            return True
        return False

    await until(check)
    return found[-1]


async def sol_echoes(runtime: Runtime, target: DeviceTarget, text: str) -> None:
    """Open SOL as the browser's SOL WebSocket does, type ``echo <text>`` and wait until the device echoes it
    back on a line of its own."""
    relay = await SolRelay.open(runtime, target)
    try:
        await relay.sol.write(f"echo {text}\r".encode())
        wanted = re.compile(rb"\r\n" + re.escape(text.encode()) + rb"\r\n")
        seen = b""
        async with asyncio.timeout(WITHIN):
            while wanted.search(seen) is None:
                chunk = await relay.sol.read()
                assert chunk, relay.sol.end_reason
                seen += chunk
    finally:
        await relay.close()


class Relay:
    """A TCP relay between engines and the MPS: ``cut()`` kills the connections it carries (RST both ways),
    ``silence()`` keeps them open but passes nothing more (a link that died without a word).  Connections made
    afterwards are relayed normally."""

    def __init__(self, mps: MpsService) -> None:
        self.mps = mps
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter, list[bool]]] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.mps.port)
        live = [True]
        self._pairs.append((writer, up_writer, live))
        self._writers += [writer, up_writer]
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink, live))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, live: list[bool]) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                if live[0]:
                    sink.write(data)
            if live[0]:
                sink.close()

    def cut(self) -> None:
        for down, up, live in self._pairs:
            live[0] = False
            for writer in (down, up):
                writer.transport.abort()
        self._pairs.clear()

    def silence(self) -> None:
        for _, _, live in self._pairs:
            live[0] = False
        self._pairs.clear()
