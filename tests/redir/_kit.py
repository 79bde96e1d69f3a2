"""An engine with its redirection listener on an ephemeral port, for the redirection tests, peers and bench."""

from __future__ import annotations

import asyncio
import errno
import random
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from outband.aio.tls import server_context
from outband.client.amt import AmtClient
from outband.engine.platforms.base import PowerState
from outband.engine.platforms.console import ConsoleTiming, SimConsole
from outband.engine.platforms.sim import SimMachine
from outband.engine.redirection import RedirectionConfig, RedirectionListener, default_handlers
from outband.proto.amtlog import AuditRecord
from outband.testing.engine import RunningEngine, running_engine

ALL_FEATURES = 32768 + 1 + 2
"""AMT_RedirectionService.EnabledState with IDE-R and SOL on."""


@dataclass
class RedirEnv:
    env: RunningEngine
    listener: RedirectionListener
    host: str
    """Where the redirection listener is (WS-MAN stays on ``env.host``)."""
    port: int
    tls_port: int | None

    @property
    def password(self) -> str:
        return self.env.password

    @property
    def machine(self) -> SimMachine:
        return self.env.machine


async def set_redirection(env: RunningEngine, *, listener: bool = True, state: int = ALL_FEATURES) -> None:
    """Switch redirection the way consoles do: Put ListenerEnabled, then RequestStateChange."""
    amt = AmtClient(env.host, transport=env.transport())
    service = await amt.get("AMT_RedirectionService")
    service["ListenerEnabled"] = listener
    await amt.put(service)
    output = await amt.invoke("AMT_RedirectionService", "RequestStateChange", {"RequestedState": state})
    assert output["ReturnValue"] == 0


def instant_machine(*, powered: bool = True) -> SimMachine:
    return SimMachine(power_state=PowerState.ON if powered else PowerState.OFF_SOFT,
                      console=SimConsole(timing=ConsoleTiming.instant()))


async def _listen(listener: RedirectionListener, tls: ssl.SSLContext | None, standard_ports: bool
                  ) -> tuple[str, list[asyncio.Server]]:
    """Ephemeral ports on 127.0.0.1, or 16994/16995 on a random 127.77.x.y for clients that hard-code them
    (MeshCentral's redirection stack); a taken address is retried."""
    wanted = [(16994, None), (16995, tls)] if standard_ports else [(0, None), (0, tls)]
    wanted = wanted if tls is not None else wanted[:1]
    for _ in range(20):
        host = f"127.77.{random.randint(0, 255)}.{random.randint(1, 254)}" if standard_ports else "127.0.0.1"
        servers: list[asyncio.Server] = []
        try:
            for port, context in wanted:
                servers.append(await asyncio.start_server(listener.serve, host, port, ssl=context))
        except OSError as exc:
            for server in servers:
                server.close()
            if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                raise
            continue
        return host, servers
    raise OSError("no free loopback address for 16994/16995")


@asynccontextmanager
async def redirection_engine(
    *, config: RedirectionConfig | None = None, machine: SimMachine | None = None, enable: bool = True,
    password: str | None = None, tls_dir: Path | None = None, standard_ports: bool = False,
) -> AsyncIterator[RedirEnv]:
    async with running_engine(machine=machine or instant_machine(), password=password, tls_dir=tls_dir) as env:
        listener = RedirectionListener(env.engine, default_handlers(), config)
        tls = server_context(tls_dir / "cert.pem", tls_dir / "key.pem") if tls_dir is not None else None
        host, servers = await _listen(listener, tls, standard_ports)
        ports = [int(s.sockets[0].getsockname()[1]) for s in servers]
        if enable:
            await set_redirection(env)
        try:
            yield RedirEnv(env, listener, host, ports[0], ports[1] if len(ports) > 1 else None)
        finally:
            for server in servers:
                server.close()
            await listener.aclose()
            for server in servers:
                await server.wait_closed()


async def eventually(predicate: Callable[[], bool], within: float = 5.0, step: float = 0.02) -> None:
    """Wait for something another task will make true (the engine's side of a connection catching up)."""
    for _ in range(int(within / step)):
        if predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"not true within {within} s")


def audit_ids(r: RedirEnv) -> list[int]:
    return [AuditRecord.decode(raw).full_id for raw in r.env.engine.store.read_log("audit")]
