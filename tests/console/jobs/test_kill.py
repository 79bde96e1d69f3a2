"""kill -9 of the console in the middle of a 1,000-device job: after a restart the job completes, every device
has exactly one final result, and no engine was powered on twice.

Two processes besides pytest: 1,000 simulated engines (each its own loopback address) and the console on a
SQLite file (or the PostgreSQL database in OUTBAND_TEST_DB).  The console is killed with SIGKILL once a good
part of the devices are done, then started again on the same data directory; it resumes the job by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from tests.console._kit import ADMIN_PASSWORD
from tests.console.jobs._fleet import PASSWORD
from tests.console.jobs._kit import wait_job

from outband.console.api.deps import CSRF_HEADER
from outband.console.secrets import generate_key

DEVICES = 1000
HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    def __init__(self, process: asyncio.subprocess.Process, engines: list[tuple[str, int]]) -> None:
        self.process = process
        self.engines = engines

    async def ask(self, command: str) -> dict[str, int]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return json.loads(await self.process.stdout.readline())


@asynccontextmanager
async def fleet_process(state: Path) -> AsyncIterator[Fleet]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "fleet_process.py"), str(DEVICES), str(state), PASSWORD,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=2**22)
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):
            engines = [tuple(pair) for pair in json.loads(await process.stdout.readline())]
        yield Fleet(process, engines)  # type: ignore[arg-type]
    finally:
        if process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def start_console(env: dict[str, str], url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, str(HERE / "console_process.py")], env=env, stdout=out,  # noqa: ASYNC220
                                   stderr=subprocess.STDOUT)
    async with httpx2.AsyncClient(base_url=url, timeout=5) as probe, asyncio.timeout(60):
        while True:
            assert process.poll() is None, "the console stopped; see " + str(log)
            try:
                if (await probe.get("/api/health")).status_code == 200:
                    return process
            except httpx2.TransportError:
                pass
            await asyncio.sleep(0.1)


async def signed_in(url: str) -> httpx2.AsyncClient:
    client = httpx2.AsyncClient(base_url=url, timeout=60)
    reply = await client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert reply.status_code == 200, reply.text
    client.headers[CSRF_HEADER] = reply.json()["csrf_token"]
    return client


async def test_kill_9_mid_job_then_restart_completes_each_device_exactly_once(tmp_path, db_url):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OUTBAND_DATA_DIR": str(tmp_path / "console"), "OUTBAND_LISTEN": f"127.0.0.1:{port}",
           "OUTBAND_ADMIN_PASSWORD": ADMIN_PASSWORD, "OUTBAND_SECRET_KEY": generate_key(),
           "OUTBAND_DEVICE_CONCURRENCY": "32", "OUTBAND_HEALTH_INTERVAL": "0", "OUTBAND_LOG_LEVEL": "WARNING",
           "OUTBAND_DB": db_url}
    log = tmp_path / "console.log"
    async with fleet_process(tmp_path / "fleet") as fleet:
        console = await start_console(env, url, log)
        try:
            api = await signed_in(url)
            csv = "name,host,http_port\n" + "".join(f"pc-{i},{a},{p}\n" for i, (a, p) in enumerate(fleet.engines))
            imported = await api.post("/api/devices/import", files={"file": ("fleet.csv", csv, "text/csv")},
                                      data={"password": PASSWORD})
            assert imported.json()["added"] == DEVICES
            job_id = (await api.post("/api/operations/power", json={"target": {"all": True},
                                                                    "params": {"action": "on"}})).json()["id"]
            async with asyncio.timeout(60):
                while True:
                    counts = (await api.get(f"/api/jobs/{job_id}", params={"limit": 1})).json()["counts"]
                    if counts["succeeded"] >= DEVICES // 5:
                        break
                    await asyncio.sleep(0.02)
            console.send_signal(signal.SIGKILL)
            console.wait()
            await api.aclose()
            assert counts["succeeded"] < DEVICES, "the job finished before the kill; the test proves nothing"

            console = await start_console(env, url, log)
            api = await signed_in(url)
            job = await wait_job(api, job_id, seconds=90)
            await api.aclose()
        finally:
            if console.poll() is None:
                console.send_signal(signal.SIGTERM)
                console.wait(timeout=30)
        powerups = await fleet.ask("powerups")
        states = await fleet.ask("state")

    assert job["status"] == "succeeded", json.dumps(job["counts"])
    assert job["counts"] == {"pending": 0, "running": 0, "succeeded": DEVICES, "failed": 0, "cancelled": 0}
    rows = job["devices"]
    assert len(rows) == DEVICES
    assert len({row["device_id"] for row in rows}) == DEVICES  # one row per device
    assert {row["status"] for row in rows} == {"succeeded"}
    # the devices in flight at the kill ran again (power-on may be repeated), found their host on, and left
    # it alone: every engine performed exactly one power-up
    assert sorted(set(powerups.values())) == [1]
    assert set(states.values()) == {2}
    rerun = [row for row in rows if row["attempts"] > 1]
    assert {row["attempts"] for row in rerun} <= {2}  # claimed once before the kill, once after
    found_on = sum(1 for row in rerun if row["result"]["changed"] is False)
    print(f"killed after {counts['succeeded']} of {DEVICES}; {len(rerun)} device(s) were mid-call and ran again, "
          f"{found_on} of them found their host already on")
