"""An engine with its redirection listener on an ephemeral port, for the redirection tests, peers and bench."""

from __future__ import annotations

import asyncio
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
    port: int
    tls_port: int | None

    @property
    def host(self) -> str:
        return self.env.host

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


@asynccontextmanager
async def redirection_engine(
    *, config: RedirectionConfig | None = None, machine: SimMachine | None = None, enable: bool = True,
    password: str | None = None, tls_dir: Path | None = None,
) -> AsyncIterator[RedirEnv]:
    async with running_engine(machine=machine or instant_machine(), password=password, tls_dir=tls_dir) as env:
        listener = RedirectionListener(env.engine, default_handlers(), config)
        servers = [await asyncio.start_server(listener.serve, env.host, 0)]
        if tls_dir is not None:
            context = server_context(tls_dir / "cert.pem", tls_dir / "key.pem")
            servers.append(await asyncio.start_server(listener.serve, env.host, 0, ssl=context))
        ports = [int(s.sockets[0].getsockname()[1]) for s in servers]
        if enable:
            await set_redirection(env)
        try:
            yield RedirEnv(env, listener, ports[0], ports[1] if len(ports) > 1 else None)
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
