"""``outband console`` with the job services and routes started, for tests that kill it (-9) and restart it.

Runs exactly what ``outband console`` runs (settings from the environment, the same runtime and server) plus
the job services; once ``outband console`` starts them itself this is the same thing.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.console.jobs._kit import jobs_app

from outband.console import server as server_module
from outband.console.config import load_settings
from outband.console.jobs.services import job_services
from outband.console.logs import configure_logging
from outband.console.runtime import open_runtime


async def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    runtime = await open_runtime(settings)
    try:
        if runtime.service("jobs") is None:
            for service in job_services():
                await runtime.start_service(service)
        server_module.create_app = jobs_app  # type: ignore[assignment]
        host, port = settings.listen_address
        server = server_module.ConsoleServer(runtime, host, port)
        await server.start()
        server.stop_on_signals()
        print(f"listening {server.url}", flush=True)
        await server.wait()
    finally:
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main())
