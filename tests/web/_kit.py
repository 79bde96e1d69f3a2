"""Engines on loopback addresses with the standard redirection port (the console reaches a device's SOL, KVM
and IDE-R at 16994 on its address, as on real AMT), a console served over HTTP, and helpers to register
engines as devices and to speak to the console's WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from outband.client.amt import AmtClient
from outband.console.config import Settings
from outband.console.db.models import Device
from outband.console.devices.repository import new_device
from outband.console.runtime import Runtime, open_runtime
from outband.console.schemas import DeviceCreate
from outband.console.server import ConsoleServer
from outband.engine.platforms.base import PowerState
from outband.engine.platforms.console import ConsoleTiming, SimConsole
from outband.engine.platforms.sim import SimMachine
from outband.engine.server import Ports
from outband.testing.engine import RunningEngine, running_engine

REDIRECTION_PORT = 16994
SOL_AND_IDER = 32768 + 1 + 2
"""AMT_RedirectionService.EnabledState with IDE-R and SOL on."""


def loopback_address() -> str:
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


@asynccontextmanager
async def sim_engine(*, powered: bool = True, instant: bool = True, features: bool = True, kvm_consent: bool = False
                     ) -> AsyncIterator[RunningEngine]:
    """An engine on a loopback address of its own: WS-MAN on an ephemeral port, redirection on 16994; SOL,
    IDE-R and KVM switched on (``features``), KVM consent only when ``kvm_consent``."""
    console = SimConsole(timing=ConsoleTiming.instant()) if instant else None
    for _ in range(20):
        machine = SimMachine(power_state=PowerState.ON if powered else PowerState.OFF_SOFT, console=console)
        try:
            engine = running_engine(host=loopback_address(), machine=machine,
                                    ports=Ports(0, None, redirection=REDIRECTION_PORT))
            env = await engine.__aenter__()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        try:
            if features:
                await switch_features(env, kvm_consent=kvm_consent)
            yield env
        finally:
            await engine.__aexit__(None, None, None)
        return
    raise RuntimeError("no free loopback address for an engine")


async def switch_features(env: RunningEngine, *, kvm_consent: bool) -> None:
    amt = AmtClient(env.host, transport=env.transport())
    service = await amt.get("AMT_RedirectionService")
    service["ListenerEnabled"] = True
    await amt.put(service)
    assert (await amt.invoke("AMT_RedirectionService", "RequestStateChange",
                             {"RequestedState": SOL_AND_IDER}))["ReturnValue"] == 0
    assert (await amt.invoke("CIM_KVMRedirectionSAP", "RequestStateChange",
                             {"RequestedState": 2}))["ReturnValue"] == 0
    optin = await amt.get("IPS_OptInService")
    optin["OptInRequired"] = 1 if kvm_consent else 0
    await amt.put(optin)


async def register(runtime: Runtime, env: RunningEngine, name: str, **fields: Any) -> int:
    """Store the engine as a device of the console (no connection check); its id."""
    spec = DeviceCreate(**{"name": name, "host": env.host, "password": env.password, "http_port": env.port,
                           **fields})
    async with runtime.db.write() as session:
        device: Device = new_device(spec, runtime.box, [], None)
        session.add(device)
        await session.flush()
        return device.id


@dataclass
class Served:
    """A console served over HTTP on 127.0.0.1 (WebSockets need a real server)."""

    runtime: Runtime
    server: ConsoleServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ws_url(self) -> str:
        return self.server.url.replace("http://", "ws://")


@asynccontextmanager
async def served_console(settings: Settings) -> AsyncIterator[Served]:
    runtime = await open_runtime(settings)
    server = ConsoleServer(runtime, "127.0.0.1", 0)
    try:
        await server.start()
        yield Served(runtime, server)
    finally:
        await server.stop()
        await runtime.close()


async def signed_in(http: aiohttp.ClientSession, base: str, username: str, password: str) -> str:
    """Sign the aiohttp session in; the CSRF token to send on unsafe requests."""
    async with http.post(f"{base}/api/auth/login", json={"username": username, "password": password}) as reply:
        assert reply.status == 200, await reply.text()
        return str((await reply.json())["csrf_token"])


class Socket:
    """A console WebSocket as the page sees it: JSON control messages and binary payload."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.received = bytearray()

    async def control(self, within: float = 15.0) -> dict[str, Any]:
        """The next JSON message (payload received meanwhile is kept in ``received``)."""
        async with asyncio.timeout(within):
            while True:
                message = await self.ws.receive()
                if message.type is aiohttp.WSMsgType.TEXT:
                    return dict(json.loads(message.data))
                if message.type is aiohttp.WSMsgType.BINARY:
                    self.received += message.data
                    continue
                raise AssertionError(f"the socket ended ({message.type.name}, code {self.ws.close_code})")

    async def payload_until(self, wanted: bytes, within: float = 15.0) -> bytes:
        async with asyncio.timeout(within):
            while wanted not in self.received:
                message = await self.ws.receive()
                if message.type is aiohttp.WSMsgType.BINARY:
                    self.received += message.data
                elif message.type is not aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"the socket ended ({message.type.name}) before {wanted!r}")
        return bytes(self.received)

    async def closed(self, within: float = 15.0) -> int | None:
        """Read to the end; the close code."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while not self.ws.closed:
                    message = await self.ws.receive()
                    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
        return self.ws.close_code


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Until ``check()`` holds (the server finishes a session after the client has gone)."""
    step = 0.05
    for _ in range(int(within / step)):
        if await check():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"not within {within:g} s")
