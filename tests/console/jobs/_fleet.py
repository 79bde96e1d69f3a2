"""A fleet of simulated engines for job tests: many engines in one process, each on its own loopback address
(a random 127.x.y.0/16 block, so parallel runs do not meet) with an ephemeral port, all with one password."""

from __future__ import annotations

import random
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from outband.engine.core import Engine
from outband.engine.launcher import Launched, LaunchOptions, launch
from outband.engine.services.logs import AUDIT_KIND
from outband.proto.amtlog import AuditApp, AuditRecord

PASSWORD = "Fleet-pw-1!" + secrets.token_hex(3)


def random_base() -> str:
    return f"127.{random.randint(64, 250)}.{random.randint(0, 250)}.1"


@dataclass
class Fleet:
    launched: Launched
    password: str = PASSWORD

    @property
    def addresses(self) -> list[str]:
        return self.launched.addresses

    def port(self, address: str) -> int:
        return self.launched.server.bound_port(address)

    def engine(self, address: str) -> Engine:
        return self.launched.engines[address]

    def device_rows(self, prefix: str = "pc") -> list[dict[str, object]]:
        """Bodies for POST /api/devices, one per engine."""
        return [{"name": f"{prefix}-{i}", "host": a, "http_port": self.port(a), "password": self.password}
                for i, a in enumerate(self.addresses)]

    def csv(self, prefix: str = "pc", tags: str = "", group: Callable[[int], str] = lambda i: "") -> str:
        """A device import file: one row per engine, the password left to the upload's default."""
        lines = ["name,host,http_port,tags,group"]
        lines += [f"{prefix}-{i},{a},{self.port(a)},{tags},{group(i)}" for i, a in enumerate(self.addresses)]
        return "\n".join(lines) + "\n"

    def audit_events(self, address: str, app: AuditApp, event: int) -> int:
        """How many times the engine audited this event (e.g. Remote Control 0: power up)."""
        records = [AuditRecord.decode(raw) for raw in self.engine(address).store.read_log(AUDIT_KIND)]
        return sum(1 for r in records if r.app_id == app and r.event_id == event)


@asynccontextmanager
async def running_fleet(count: int, state_dir: Path) -> AsyncIterator[Fleet]:
    launched = await launch(LaunchOptions(
        fleet=count, fleet_base=random_base(), http_port=0, tls_port=None, redirection_port=None,
        redirection_tls_port=None, state_dir=state_dir, admin_password=PASSWORD))
    try:
        yield Fleet(launched)
    finally:
        await launched.server.stop()
        launched.database.close()
