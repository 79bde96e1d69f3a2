"""Power state of a whole fleet: how fast the console sweeps N simulated engines, against what the engines
themselves can serve, and against the ``amt`` PyPI package doing it one device at a time.

    python bench/fleet_sweep.py                         # N = 1,000 and 10,000: a few minutes
    python bench/fleet_sweep.py --sizes 1000 --amt-sample 200      # quick look

For each N, the engines run in a helper process (``outband engine --fleet N``'s launcher: one engine per
loopback address from ``--fleet-base``, WS-MAN on the standard port 16992, no TLS or redirection listeners so
that 10,000 engines fit in the file-descriptor limit), and this process measures, one after the other:

1. capacity: a bare load generator (aiohttp, our Digest arithmetic, nothing else) sends each engine one
   authenticated ``Get CIM_AssociatedPowerManagementService`` -- the challenge round trip plus the Get, two
   HTTP requests per device -- ``--concurrency`` devices at a time; devices per second.  The best of
   ``--rounds`` rounds at each of the concurrency levels is the fleet's capacity: the devices' limit.
2. console: a console (SQLite in a temporary directory, the job runner, HTTP API on loopback; defaults as
   ``outband console`` runs them) with the N devices imported, asked through its REST API (the console API
   client) for ``power state`` on every device; devices per second from submitting the job to seeing it
   finished, and the ratio to (1): how close the console gets to the devices' limit (the health poller is off
   so that only the job talks to the devices).  The console reads the
   power state as real consoles do (Enumerate + Pull of ``CIM_ServiceAvailableToElement``), which is more
   WS-MAN exchanges per device than the bare Get: the figure "exchanges/device" (from the console's own
   metrics) says how many, and "HTTP requests/device" (counted at the console's transports) how many requests
   they took, Digest challenges included.  The first job meets every device for the first time; then
   ``--rounds`` more jobs (the best is printed as "next job") find the nonce each device's first job proved in
   the console's Digest cache, so they skip the challenge round trip.
3. ``amt``: ``amt.client.Client(address, password).power_status()`` for one device after another (requests,
   a new connection and Digest challenge per call, as ``amtctrl`` does).  Above ``--amt-sample`` devices it
   sweeps that many and extrapolates to N (marked ``extrapolated``).

The console and the load generator run in this process and so never share a core with the engines; on a
two-core machine the figures are for one core each.  Results are printed as a table at the end.  On a busy
machine the rates swing from run to run; the CPU each side spends per device does not, so the table also gives
the rates a core each would reach (1 / CPU per device) and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import ipaddress
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from outband.aio.wsman_client import WsmanTransport
from outband.client.console_api import ConsoleApi
from outband.console.config import Settings
from outband.console.jobs.services import JobSettings, job_services
from outband.console.runtime import open_runtime
from outband.console.secrets import generate_key
from outband.console.server import ConsoleServer
from outband.engine.launcher import LaunchOptions, launch
from outband.engine.server import raise_fd_limit
from outband.proto.digest import DigestClient
from outband.proto.wsman import messages

PASSWORD = "Bench!Pass1word"
ADMIN_PASSWORD = "Bench-admin-pass-1"
SCRIPT = Path(__file__).resolve()
POWER_RESOURCE = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_AssociatedPowerManagementService"
SOAP = {"Content-Type": "application/soap+xml;charset=UTF-8"}


# ------------------------------------------------------------------------------------------------ the fleet


async def serve_fleet(size: int, base: str, state_dir: Path) -> None:
    """Helper process: launch the engines, print ``ready``, serve until SIGTERM."""
    launched = await launch(LaunchOptions(fleet=size, fleet_base=base, state_dir=state_dir, admin_password=PASSWORD,
                                          tls_port=None, redirection_port=None, redirection_tls_port=None))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        await launched.server.stop()
        launched.database.close()


@dataclass
class Fleet:
    process: subprocess.Popen[str]
    addresses: list[str]

    def cpu_seconds(self) -> float:
        """User + system CPU the engines' process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_fleet(size: int, base: str, state_dir: Path) -> Fleet:
    process = subprocess.Popen([sys.executable, str(SCRIPT), "_fleet", str(size), base, str(state_dir)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise SystemExit(f"the fleet of {size} engines did not start")
    start = ipaddress.ip_address(base)
    return Fleet(process, [str(start + i) for i in range(size)])


# ------------------------------------------------------------------------------------------------ (1) capacity


async def bare_power_state(session: aiohttp.ClientSession, address: str, body: bytes) -> bool:
    """Challenge, then the authenticated Get; True when the reply carries a PowerState."""
    url = f"http://{address}:16992/wsman"
    async with session.post(url, data=body, headers=SOAP) as reply:
        await reply.read()
        challenge = reply.headers.get("WWW-Authenticate")
    if reply.status != 401 or challenge is None:
        return False
    digest = DigestClient("admin", PASSWORD)
    digest.handle_challenge(challenge)
    headers = {**SOAP, "Authorization": digest.authorization("POST", "/wsman", body)}
    async with session.post(url, data=body, headers=headers) as reply:
        data = await reply.read()
    return reply.status == 200 and b"PowerState>" in data


async def capacity(addresses: list[str], concurrency: int) -> Sweep:
    """One sweep by the bare load generator."""
    body = messages.get(POWER_RESOURCE).to_bytes()
    gate = asyncio.Semaphore(concurrency)
    failures = 0
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=1)

    async def one(address: str) -> None:
        nonlocal failures
        async with gate:
            try:
                ok = await bare_power_state(session, address, body)
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            failures += not ok

    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for address in addresses:
                group.create_task(one(address))
        elapsed = time.perf_counter() - started
    return Sweep(len(addresses) / elapsed, failures)


# ------------------------------------------------------------------------------------------------ (2) console


@dataclass
class Sweep:
    rate: float
    """Devices per second."""
    failed: int
    engine_cpu: float = 0.0
    """CPU seconds the engines spent per device (independent of how busy the machine is)."""
    client_cpu: float = 0.0
    """CPU seconds this process (the load generator, or the console) spent per device."""


@dataclass
class ConsoleSweep(Sweep):
    exchanges_per_device: float = 0.0
    server_seconds: float | None = None
    requests_per_device: float = 0.0
    """HTTP requests the console sent per device (a Digest challenge is one more than its exchange)."""


class RequestCounter:
    """Counts the HTTP requests every WsmanTransport in this process sends (the console's, here)."""

    def __init__(self) -> None:
        self.sent = 0
        original = WsmanTransport._round_trip

        async def counted(transport: WsmanTransport, payload: bytes, headers: dict[str, str]) -> Any:
            self.sent += 1
            return await original(transport, payload, headers)

        WsmanTransport._round_trip = counted  # type: ignore[method-assign]


def _devices_csv(addresses: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "host", "tags"])
    for index, address in enumerate(addresses):
        writer.writerow([f"bench-{index + 1:05d}", address, "bench"])
    return out.getvalue().encode()


def _wsman_exchanges(metrics: Any) -> float:
    """Samples in the console's WS-MAN latency histogram (one per exchange with a device)."""
    return sum(sample.value for family in metrics.wsman_latency.collect() for sample in family.samples
               if sample.name.endswith("_count"))


def _seconds_between(job: dict[str, Any]) -> float | None:
    if not job.get("started_at") or not job.get("finished_at"):
        return None
    return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()


async def console_sweep(fleet: Fleet, data_dir: Path, rounds: int) -> tuple[ConsoleSweep, ConsoleSweep]:
    """The first job (every device met for the first time), and the best of ``rounds`` jobs after it."""
    addresses = fleet.addresses
    settings = Settings(data_dir=data_dir, listen="127.0.0.1:0", admin_password=ADMIN_PASSWORD,
                        secret_key=generate_key(), log_level="WARNING", import_max_rows=len(addresses))
    runtime = await open_runtime(settings)
    requests = RequestCounter()
    for service in job_services(JobSettings(health_interval=0)):  # no health polls mixed into the sweep
        await runtime.start_service(service)
    server = ConsoleServer(runtime, *settings.listen_address)
    await server.start()
    try:
        api = ConsoleApi(server.url, username="admin", password=ADMIN_PASSWORD, timeout=600)
        try:
            report = await asyncio.to_thread(api.import_devices, _devices_csv(addresses), password=PASSWORD)
            if report["failed"]:
                raise SystemExit(f"{report['failed']} devices could not be imported")
            sweeps: list[ConsoleSweep] = []
            for _ in range(1 + max(rounds, 1)):
                before, cpu_before = _wsman_exchanges(runtime.metrics), fleet.cpu_seconds()
                requests_before = requests.sent
                own_cpu_before = time.process_time()
                started = time.perf_counter()
                job = await asyncio.to_thread(api.submit, "power", {"tags": ["bench"]}, {"action": "state"})
                job = await asyncio.to_thread(api.wait_job, job["id"], None, poll=0.05)
                elapsed = time.perf_counter() - started
                exchanges = _wsman_exchanges(runtime.metrics) - before
                failed = job["counts"].get("failed", 0) + job["counts"].get("cancelled", 0)
                sweep = ConsoleSweep(len(addresses) / elapsed, failed,
                                     (fleet.cpu_seconds() - cpu_before) / len(addresses),
                                     (time.process_time() - own_cpu_before) / len(addresses),
                                     exchanges / len(addresses), _seconds_between(dict(job)),
                                     (requests.sent - requests_before) / len(addresses))
                sweeps.append(sweep)
            return sweeps[0], max(sweeps[1:], key=lambda sweep: sweep.rate)
        finally:
            await asyncio.to_thread(api.close)
    finally:
        await server.stop()
        await runtime.close()


# ------------------------------------------------------------------------------------------------ (3) amt


def amt_sweep(addresses: list[str]) -> tuple[float, int]:
    """Seconds per device, and failures, for the ``amt`` package one device after another."""
    from amt.client import Client

    failures = 0
    started = time.perf_counter()
    for address in addresses:
        try:
            state = Client(address, PASSWORD).power_status()
        except Exception:  # anything requests or the XML parser raises counts as a failed device
            state = None
        failures += state is None
    return (time.perf_counter() - started) / len(addresses), failures


# ------------------------------------------------------------------------------------------------ driver


@dataclass
class Row:
    size: int
    capacity: Sweep
    capacity_concurrency: int
    console: ConsoleSweep
    """The first job."""
    console_again: ConsoleSweep
    """The best job after it (Digest nonces cached, if the console caches them)."""
    amt_seconds: float
    amt_sampled: int
    amt_failures: int

    @property
    def amt_wall(self) -> float:
        return self.amt_seconds * self.size


def measure(size: int, args: argparse.Namespace, workdir: Path) -> Row:
    print(f"\n== N = {size:,}: starting the engines ...", flush=True)
    started = time.perf_counter()
    fleet = start_fleet(size, args.fleet_base, workdir / f"fleet-{size}")
    try:
        print(f"   {size:,} engines up in {time.perf_counter() - started:.1f} s; (1) bare load ...", flush=True)
        best, best_concurrency = Sweep(0.0, 0), 0
        for concurrency in args.concurrency:
            for _ in range(args.rounds):
                cpu_before, own_cpu_before = fleet.cpu_seconds(), time.process_time()
                sweep = asyncio.run(capacity(fleet.addresses, concurrency))
                sweep.engine_cpu = (fleet.cpu_seconds() - cpu_before) / size
                sweep.client_cpu = (time.process_time() - own_cpu_before) / size
                print(f"   concurrency {concurrency}: {sweep.rate:,.0f} devices/s ({sweep.failed} failed)", flush=True)
                if sweep.rate > best.rate:
                    best, best_concurrency = sweep, concurrency
        print("   (2) console sweep through the API ...", flush=True)
        console, again = asyncio.run(console_sweep(fleet, workdir / f"console-{size}", args.rounds))
        print(f"   console: {console.rate:,.0f} devices/s ({console.failed} failed), next job {again.rate:,.0f} "
              f"devices/s ({again.failed} failed)", flush=True)
        sample = fleet.addresses[:min(size, args.amt_sample)]
        print(f"   (3) amt package, {len(sample):,} devices one at a time ...", flush=True)
        amt_seconds, amt_failures = amt_sweep(sample)
    finally:
        fleet.stop()
    return Row(size, best, best_concurrency, console, again, amt_seconds, len(sample), amt_failures)


def report(rows: list[Row]) -> None:
    print("\nPower state of every device: devices per second; CPU per device of the engines and of the side asking")
    print(f"{'N':>7} | {'capacity':>8} {'conc.':>5} {'engines':>7} {'loadgen':>7} | {'console':>7} {'ratio':>5} "
          f"{'engines':>7} {'console':>7} {'exch':>4} | {'console wall':>12} | {'amt wall':>9}  {'console vs amt':>14}")
    for row in rows:
        console_wall = row.size / row.console.rate
        print(f"{row.size:>7,} | {row.capacity.rate:>8,.0f} {row.capacity_concurrency:>5} "
              f"{_ms(row.capacity.engine_cpu)} {_ms(row.capacity.client_cpu)} | {row.console.rate:>7,.0f} "
              f"{row.console.rate / row.capacity.rate:>5.2f} "
              f"{_ms(row.console.engine_cpu)} {_ms(row.console.client_cpu)} "
              f"{row.console.exchanges_per_device:>4.1f} | {console_wall:>11.1f}s | {row.amt_wall:>8.1f}s "
              f"{row.amt_wall / console_wall:>14.1f}x")
        again = row.console_again
        print(f"        next job: {again.rate:,.0f} devices/s (ratio {again.rate / row.capacity.rate:.2f}), engines "
              f"{_ms(again.engine_cpu)}, console {_ms(again.client_cpu)}, {again.exchanges_per_device:.1f} exchanges; "
              f"HTTP requests per device {again.requests_per_device:.2f} (first job "
              f"{row.console.requests_per_device:.2f})")
        if row.capacity.engine_cpu and row.console.client_cpu:
            engines, console = 1 / row.capacity.engine_cpu, 1 / row.console.client_cpu
            print(f"        a core each (implied by CPU per device): engines {engines:,.0f}/s, "
                  f"console {console:,.0f}/s, ratio {console / engines:.2f}")
        if row.amt_sampled != row.size:
            print(f"        amt wall extrapolated from {row.amt_sampled:,} devices "
                  f"({row.amt_seconds * 1e3:.1f} ms each)")
        failures = row.capacity.failed + row.console.failed + again.failed + row.amt_failures
        if failures:
            print(f"        failures: bare {row.capacity.failed}, console {row.console.failed} then {again.failed}, "
                  f"amt {row.amt_failures}")
        if row.console.server_seconds is not None:
            print(f"        the console's job ran {row.console.server_seconds:.1f} s by its own clock")
    print("capacity: the bare load generator's best (one Get per device, --concurrency devices at a time); ratio = "
          "console / capacity (1.00: as fast as the engines answer); CPU in ms per device, which the machine's load "
          "does not change; exch: WS-MAN exchanges per device the console made; console vs amt: how many times "
          "faster than one device after another with the amt package")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:>5.2f}ms"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_fleet":
        raise_fd_limit(int(sys.argv[2]) * 2 + 1024)
        asyncio.run(serve_fleet(int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10_000],
                        help="Fleet sizes, comma-separated (default 1000,10000).")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[256, 1024],
                        help="Concurrency levels of the bare load generator (default 256,1024).")
    parser.add_argument("--rounds", type=int, default=1,
                        help="Sweeps per measurement (the console's after its first job); the best counts.")
    parser.add_argument("--amt-sample", type=int, default=1000,
                        help="Devices the amt package sweeps at most; beyond, extrapolated (default 1000).")
    parser.add_argument("--fleet-base", default="127.201.0.1", help="Loopback address of the first engine.")
    args = parser.parse_args()
    wanted = max(args.sizes) + max(args.concurrency) * 2 + 1024
    raise_fd_limit(wanted)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        print(f"note: {soft} file descriptors allowed, about {wanted} wanted; lower --concurrency if sweeps fail")
    rows = []
    with tempfile.TemporaryDirectory(prefix="fleet-sweep-") as tmp:
        for size in args.sizes:
            rows.append(measure(size, args, Path(tmp)))
    report(rows)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        os.environ.setdefault("OUTBAND_LOG_LEVEL", "WARNING")
        main()
