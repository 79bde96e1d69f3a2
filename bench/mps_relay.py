"""What crossing to another MPS node costs: WS-MAN calls to CIRA devices from the node holding their tunnels,
against the same calls from a second node through the first one's relay, in the same run.

    python bench/mps_relay.py                       # 200 devices, 16 at once, 5 s per run, 3 runs per path
    python bench/mps_relay.py --devices 50 --seconds 2 --rounds 1         # quick look

Two console runtimes share one SQLite database and secret key in this process, as two console processes share
PostgreSQL: node B runs the MPS the devices dial (with auto-registration) and a relay; node A runs only the
relay's client.  The devices are ``outband engine --fleet N`` in a child process, dialling node B with the
engine's own CIRA client, so their CPU is not counted here.  Each path runs ``--workers`` clients at once, each
on its own device: back-to-back Gets of ``AMT_GeneralSettings`` on a kept connection (a session), then a fresh
client per Get (a job attempt: a new channel, and through the relay a new TLS connection to node B too; the
connector's Digest cache lets it answer with the device's last nonce, so no challenge request comes first).
Printed per path: calls per second and this process's CPU per call (both nodes' share when A goes through B),
and the ratios relay/local.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from sqlalchemy import select

from outband.console.config import Settings
from outband.console.db.models import Device
from outband.console.devices.connect import DeviceConnector, DeviceTarget
from outband.console.mps import MpsService, MpsSettings
from outband.console.runtime import Runtime, open_runtime
from outband.console.secrets import generate_key

FLEET_BASE = "127.79.0.1"
MPS_USER = "bench-cira"


@contextlib.asynccontextmanager
async def node(workdir: Path, name: str, db: str, key: str, amt_password: str, mps_password: str, *,
               relay: bool) -> AsyncIterator[tuple[Runtime, MpsService]]:
    settings = Settings(data_dir=workdir / name, db=db, secret_key=key, admin_password="Bench!" + secrets.token_hex(8),
                        device_timeout=30, device_concurrency=1024)
    runtime = await open_runtime(settings)
    try:
        mps = MpsService(MpsSettings(
            mps_listen="127.0.0.1:0", mps_node=name, mps_relay_listen="127.0.0.1:0" if relay else "off",
            mps_username=MPS_USER, mps_password=mps_password, mps_auto_register=True, mps_amt_password=amt_password,
            mps_keepalive=30))
        await runtime.start_service(mps)
        yield runtime, mps
    finally:
        await runtime.close()


async def calls(connector: DeviceConnector, targets: list[DeviceTarget], workers: int, seconds: float, *,
                fresh: bool) -> tuple[int, float]:
    """Gets done in ``seconds`` by ``workers`` clients at once; returns (calls, CPU seconds of this process)."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(target: DeviceTarget) -> None:
        nonlocal done
        client = None
        try:
            while time.perf_counter() < deadline:
                if client is None:
                    client = connector.client(target, operation="bench")
                await client.get("AMT_GeneralSettings")
                done += 1
                if fresh:
                    await client.close()
                    client = None
        finally:
            if client is not None:
                await client.close()

    started = time.process_time()
    await asyncio.gather(*(worker(targets[i % len(targets)]) for i in range(workers)))
    return done, time.process_time() - started


async def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 -- the registry is filled by other tasks; a look per 100 ms is plenty
            await asyncio.sleep(0.1)


async def main_async(args: argparse.Namespace) -> None:
    amt_password = "Bench!" + secrets.token_hex(6)
    mps_password = "Mps!" + secrets.token_hex(6)
    with tempfile.TemporaryDirectory(prefix="outband-relay-bench-") as tmp:
        workdir = Path(tmp)
        db, key = f"sqlite+aiosqlite:///{workdir / 'console.db'}", generate_key()
        async with node(workdir, "node-b", db, key, amt_password, mps_password, relay=True) as (holder_rt, holder), \
                node(workdir, "node-a", db, key, amt_password, mps_password, relay=False) as (other_rt, _):
            assert holder.cert_file is not None
            command = [str(Path(sys.executable).with_name("outband")), "engine", "--fleet", str(args.devices),
                       "--fleet-base", FLEET_BASE, "--admin-password", amt_password, "--state-dir",
                       str(workdir / "engines"), "--cira", f"127.0.0.1:{holder.port}", "--cira-user", MPS_USER,
                       "--cira-password", mps_password, "--cira-ca", str(holder.cert_file)]
            fleet = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # noqa: ASYNC220
                                     env={**os.environ, "PYTHONWARNINGS": "ignore"})
            try:
                print(f"{args.devices} engines dialling node B ...", flush=True)
                await wait_for(lambda: len(holder.registry) >= args.devices, 60 + args.devices / 20)
                print(f"  {len(holder.registry)} tunnels on node B", flush=True)
                await holder.presence.flushed()
                async with holder_rt.db.read() as session:
                    devices = list((await session.execute(select(Device).order_by(Device.id))).scalars())
                targets = [DeviceTarget.of(d, amt_password) for d in devices]
                paths = {"local": holder_rt.connector, "relay": other_rt.connector}
                for fresh in (False, True):
                    kind = "a new client per Get (job attempts)" if fresh else "kept connections (sessions)"
                    best: dict[str, tuple[float, float]] = {}
                    for _ in range(args.rounds):
                        for path, connector in paths.items():
                            n, cpu = await calls(connector, targets, args.workers, args.seconds, fresh=fresh)
                            rate = n / args.seconds
                            if n and (path not in best or rate > best[path][0]):
                                best[path] = (rate, cpu / n * 1e6)
                    print(f"\n{kind}, {args.workers} at once (best of {args.rounds} x {args.seconds:g} s):")
                    for path in paths:
                        rate, per_call = best.get(path, (0.0, 0.0))
                        print(f"  {path:6} {rate:8.0f} Gets/s   {per_call:7.0f} us CPU per Get (this process)")
                    if "local" in best and "relay" in best:
                        print(f"  relay/local: {best['relay'][0] / best['local'][0]:.2f}x the rate, "
                              f"{best['relay'][1] / best['local'][1]:.2f}x the CPU per Get")
            finally:
                fleet.terminate()
                fleet.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200, help="simulated CIRA devices (200)")
    parser.add_argument("--workers", type=int, default=16, help="clients at once (16)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run (5)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per path, alternating; best kept (3)")
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
