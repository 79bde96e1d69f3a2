"""A fleet of simulated engines in a process of its own (for tests that kill and restart a console).

``python tests/console/jobs/fleet_process.py COUNT STATE_DIR PASSWORD`` prints one JSON line: the engines'
[address, port] pairs.  Then each line read from stdin is a command: ``powerups`` prints a JSON object
address -> times the engine audited a power-up; ``state`` address -> power state.  End of input stops it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.console.jobs._fleet import random_base

from outband.engine.launcher import LaunchOptions, launch
from outband.engine.services.logs import AUDIT_KIND
from outband.proto.amtlog import AuditApp, AuditRecord


def powerups(engine) -> int:
    records = [AuditRecord.decode(raw) for raw in engine.store.read_log(AUDIT_KIND)]
    return sum(1 for r in records if r.app_id == AuditApp.REMOTE_CONTROL and r.event_id == 0)


async def main(count: int, state_dir: Path, password: str) -> None:
    launched = await launch(LaunchOptions(
        fleet=count, fleet_base=random_base(), http_port=0, tls_port=None, redirection_port=None,
        redirection_tls_port=None, state_dir=state_dir, admin_password=password))
    print(json.dumps([[a, launched.server.bound_port(a)] for a in launched.addresses]), flush=True)
    loop = asyncio.get_running_loop()
    try:
        while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            engines = launched.engines
            if line == "powerups":
                print(json.dumps({a: powerups(e) for a, e in engines.items()}), flush=True)
            elif line == "state":
                print(json.dumps({a: int(e.platform.power_state) for a, e in engines.items()}), flush=True)
    finally:
        await launched.server.stop()
        launched.database.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))
