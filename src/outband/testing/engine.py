"""An engine on loopback for tests: ``async with running_engine() as env: await env.transport().send(...)``."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..aio.tls import generate_self_signed, server_context
from ..aio.wsman_client import WsmanTransport
from ..engine.core import Engine, EngineConfig, all_services
from ..engine.platforms.sim import SimMachine
from ..engine.server import EngineServer, Ports
from ..engine.state import Database, StateStore


@dataclass
class RunningEngine:
    engine: Engine
    server: EngineServer
    machine: SimMachine
    password: str
    host: str = "127.0.0.1"
    transports: list[WsmanTransport] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.bound_port(self.host)

    @property
    def tls_port(self) -> int:
        return self.server.bound_port(self.host, tls=True)

    @property
    def redirection_port(self) -> int:
        """The redirection listener (SOL, IDE-R, KVM; 16994 on a real engine)."""
        return self.server.bound_port(self.host, redirection=True)

    @property
    def redirection_tls_port(self) -> int:
        return self.server.bound_port(self.host, tls=True, redirection=True)

    def transport(self, username: str = "admin", password: str | None = None, *, tls: bool = False,
                  **kwargs: object) -> WsmanTransport:
        """A client transport to this engine (closed when the context exits)."""
        t = WsmanTransport(
            self.host, username, self.password if password is None else password,
            port=self.tls_port if tls else self.port, tls=tls, **kwargs,  # type: ignore[arg-type]
        )
        self.transports.append(t)
        return t


@asynccontextmanager
async def running_engine(
    *,
    password: str | None = None,
    state: Path | None = None,
    machine: SimMachine | None = None,
    config: EngineConfig | None = None,
    clock: Callable[[], float] | None = None,
    monotonic: Callable[[], float] | None = None,
    tls_dir: Path | None = None,
    host: str = "127.0.0.1",
    ports: Ports | None = None,
) -> AsyncIterator[RunningEngine]:
    """Start one engine on ``host`` (127.0.0.1) with ephemeral ports unless ``ports`` are given (clients that
    insist on 16992/16993 get a loopback address of their own); TLS too when ``tls_dir`` is given."""
    password = password or "Aa1!" + secrets.token_urlsafe(12)
    db = Database(state if state is not None else ":memory:")
    machine = machine or SimMachine()
    cfg = config or EngineConfig(services=all_services())
    cfg.admin_password = password
    kwargs = {}
    if clock is not None:
        kwargs["clock"] = clock
    if monotonic is not None:
        kwargs["monotonic"] = monotonic
    engine = Engine(cfg, machine, StateStore(db, cfg.engine_id), **kwargs)
    tls_context = None
    if tls_dir is not None:
        cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
        if not cert.exists():
            generate_self_signed(cert, key, "outband-test", hosts=["127.0.0.1", "localhost"])
        tls_context = server_context(cert, key)
    if ports is None:
        ports = Ports(0, 0 if tls_context else None, redirection=0, redirection_tls=0 if tls_context else None)
    server = EngineServer({host: engine}, ports, tls_context)
    await server.start()
    env = RunningEngine(engine, server, machine, password, host)
    try:
        yield env
    finally:
        for t in env.transports:
            await t.close()
        await server.stop()
        db.close()
