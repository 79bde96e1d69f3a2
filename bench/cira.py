"""How many CIRA devices one console MPS process holds, what each costs, how fast they connect, WS-MAN through
tunnels against direct -- and the same fleet held by MeshCentral's MPS, in the same run.

    python bench/cira.py                          # 1,000 then 10,000 devices, then MeshCentral; a few minutes
    python bench/cira.py --devices 500 --hold 5 --seconds 3 --no-meshcentral      # quick look

Three kinds of process, so each side is measured alone:

* the console's MPS (``_mps``): a console runtime (SQLite in a temporary directory, the devices registered by
  UUID beforehand, as ``outband up`` does) running :class:`~outband.console.mps.MpsService`, the real thing:
  TLS, logins checked against the database, presence written, the tunnel registry.  It also runs the WS-MAN
  load, through its device connector exactly as jobs do: ``--workers`` devices, each its own client, Gets of
  ``AMT_GeneralSettings`` back to back for ``--seconds``, over CIRA channels and then direct over TCP;
* the fleet (``_fleet``): ``--workers`` engines (``outband engine``'s launcher, one loopback address each) and
  N simulated devices that dial the MPS with the engine's own CIRA code (``aio.apf.dial_mps`` with
  ``proto.apf.AmtConnection``: TLS, PROTOCOL_VERSION with the device's UUID, password login, four port
  forwards, keepalives), ``--concurrency`` dials at a time, retried on failure.  A channel to 16992 is spliced
  to engine ``i % workers``, so the tunnel and the direct WS-MAN runs reach the same engines one connection each;
* MeshCentral (``tests/peers/node_modules/meshcentral``), WAN mode so its MPS listens, its AMT manager off (it
  would otherwise open channels to manage every device; our MPS opens none unless asked), an agentless device
  group whose id gives the devices' CIRA user name.

Printed per fleet: devices connected (as the fleet sees them, and as the MPS does, after ``--hold`` seconds),
connect rate (devices established per second of dialling), the MPS process's resident memory before and after
and per tunnel; then WS-MAN calls per second through tunnels and direct, and the console process's CPU per call.
A figure that cannot be had is printed with the reason.  Each tunnel costs a descriptor on each side, so the
largest fleet is capped by ``ulimit -n`` (20,000 here: 10,000 tunnels with room for the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlalchemy import insert, select

from outband.aio.apf import AmtTunnel, ChannelHandler, dial_mps, splice_to_tcp
from outband.console.config import Settings
from outband.console.db.models import Device, Transport
from outband.console.devices.connect import DeviceTarget
from outband.console.mps import MpsService, MpsSettings
from outband.console.runtime import Runtime, open_runtime
from outband.console.secrets import generate_key
from outband.engine.launcher import LaunchOptions, launch
from outband.proto.apf import AMT_PORTS, AmtConnection, ChannelRequested, OpenFailureReason
from outband.testing.peers import PeerFailed, PeerMissing, node_modules, require_program, run_peer

SCRIPT: Final = Path(__file__).resolve()
AMT_PASSWORD: Final = "Bench!Amt-pass1"
MPS_USER: Final = "bench-cira"
MPS_PASSWORD: Final = "Bench!Mps-pass1"
ADMIN_PASSWORD: Final = "Bench-admin-pass1"
UUID_SPACE: Final = uuid.UUID("6f757462-616e-6443-4952-410000000000")
MESH_SERVER_NAME: Final = "mps.outband.bench"
MESH_ADMIN: Final = ("admin", "Mesh.Admin.Bench1")
DIAL_ATTEMPTS: Final = 5
WSMAN_CLASS: Final = "AMT_GeneralSettings"


def device_uuid(index: int) -> uuid.UUID:
    return uuid.uuid5(UUID_SPACE, f"device-{index}")


def process_tree(pid: int) -> list[int]:
    """A process and its descendants (MeshCentral serves from a child process of the one started)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            child, parent = int(stat.parent.name), int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def rss_kib(pid: int) -> int:
    """Resident memory of the process tree."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of the process tree so far."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------ child I/O


async def commands(handle: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> None:
    """Answer JSON commands from stdin (one per line) on stdout until ``stop`` or end of input."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "stop":
            return
        say(await handle(command))


def say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


@dataclass
class Child:
    """A child process of this script, spoken to in JSON lines."""

    process: asyncio.subprocess.Process
    role: str

    @classmethod
    async def start(cls, role: str, *args: str) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(SCRIPT), role, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 20)
        return cls(process, role)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def read(self, seconds: float = 600.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(seconds):
            line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.role} ended (exit {await self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def ask(self, command: str, *, within: float = 600.0, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"cmd": command, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        return await self.read(within)

    async def stop(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            assert self.process.stdin is not None
            self.process.stdin.write(b'{"cmd": "stop"}\n')
            await self.process.stdin.drain()
        try:
            async with asyncio.timeout(60):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


# ------------------------------------------------------------------------------------------------ the console MPS


async def mps_main(devices: int, workdir: Path) -> None:
    settings = Settings(data_dir=workdir, admin_password=ADMIN_PASSWORD, secret_key=generate_key(),
                        device_timeout=60, device_connect_timeout=30, log_level="WARNING")
    runtime = await open_runtime(settings)
    try:
        ids = await register(runtime, devices)
        mps = MpsService(MpsSettings(mps_listen="127.0.0.1:0", mps_username=MPS_USER, mps_password=MPS_PASSWORD,
                                     mps_node="bench"))
        await runtime.start_service(mps)
        assert mps.cert_file is not None
        say({"port": mps.port, "cert": str(mps.cert_file)})

        async def handle(command: dict[str, Any]) -> dict[str, Any]:
            if command["cmd"] == "online":
                await mps.presence.flushed()
                return {"online": len(mps.registry)}
            if command["cmd"] == "wait_online":
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(command["seconds"]):
                        await mps.registry.wait_until(lambda r: len(r) >= command["count"])
                await mps.presence.flushed()
                return {"online": len(mps.registry)}
            if command["cmd"] == "wsman":
                if command["mode"] == "cira":
                    targets = [DeviceTarget(ids[i], f"d{i}", str(device_uuid(i)), "admin", AMT_PASSWORD,
                                            transport=Transport.CIRA) for i in range(command["workers"])]
                else:
                    targets = [DeviceTarget(None, f"e{i}", host, "admin", AMT_PASSWORD, http_port=port)
                               for i, (host, port) in enumerate(command["engines"])]
                return await wsman_load(runtime, targets, command["seconds"])
            raise ValueError(f"unknown command {command!r}")

        await commands(handle)
    finally:
        await runtime.close()


async def register(runtime: Runtime, devices: int) -> list[int]:
    """N CIRA devices by UUID (one encrypted password shared by all: the cost here is rows, not crypto)."""
    token = runtime.box.encrypt(AMT_PASSWORD)
    rows = [{"name": f"cira-{i:05d}", "host": str(device_uuid(i)), "uuid": str(device_uuid(i)),
             "transport": Transport.CIRA, "username": "admin", "password_enc": token} for i in range(devices)]
    async with runtime.db.write() as session:
        for start in range(0, len(rows), 2000):
            await session.execute(insert(Device), rows[start:start + 2000])
    async with runtime.db.read() as session:
        by_uuid = {row.uuid: row.id for row in await session.execute(select(Device.uuid, Device.id))}
    return [by_uuid[str(device_uuid(i))] for i in range(devices)]


async def wsman_load(runtime: Runtime, targets: list[DeviceTarget], seconds: float) -> dict[str, Any]:
    """Each target its own client (reused: its connection or channel kept alive), Gets back to back."""
    clients = [runtime.connector.client(target, operation="bench") for target in targets]
    counts = [0] * len(clients)
    errors: Counter[str] = Counter()
    try:
        await asyncio.gather(*(client.get(WSMAN_CLASS) for client in clients))  # warm: connected, challenged
        cpu = time.process_time()
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(i: int) -> None:
            while time.perf_counter() < deadline:
                try:
                    await clients[i].get(WSMAN_CLASS)
                except Exception as exc:  # counted and shown, the run goes on
                    errors[type(exc).__name__] += 1
                else:
                    counts[i] += 1

        await asyncio.gather(*(worker(i) for i in range(len(clients))))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    finally:
        for client in clients:
            await client.close()
    calls = sum(counts)
    return {"calls": calls, "rate": calls / elapsed, "cpu_per_call": cpu / max(calls, 1), "errors": dict(errors)}


# ------------------------------------------------------------------------------------------------ the fleet


@dataclass
class FleetStats:
    tunnels: list[AmtTunnel] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    gave_up: int = 0


async def fleet_main(args: argparse.Namespace, workdir: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    base = f"127.{random.randint(64, 250)}.{random.randint(0, 250)}.1"
    launched = await launch(LaunchOptions(fleet=args.workers, fleet_base=base, http_port=0, tls_port=None,
                                          redirection_port=None, redirection_tls_port=None, state_dir=workdir,
                                          admin_password=AMT_PASSWORD))
    engines = [(address, launched.server.bound_port(address)) for address in launched.addresses]
    context = ssl.create_default_context(cafile=args.ca)
    context.hostname_checks_common_name = True
    splices: set[asyncio.Task[None]] = set()

    def channel_to_engine(index: int) -> ChannelHandler:
        """Device ``index``'s channels to 16992 reach engine ``index % workers``; others are refused."""
        host, port = engines[index % len(engines)]

        def on_channel(tunnel: AmtTunnel, request: ChannelRequested) -> None:
            if request.port != 16992:
                tunnel.reject_channel(request.channel_id, OpenFailureReason.CONNECT_FAILED)
                return
            task = asyncio.get_running_loop().create_task(splice_to_tcp(tunnel, request, host, port))
            splices.add(task)
            task.add_done_callback(splices.discard)

        return on_channel

    stats = FleetStats()
    gate = asyncio.Semaphore(args.concurrency)

    async def dial(index: int) -> None:
        for attempt in range(DIAL_ATTEMPTS):
            async with gate:
                machine = AmtConnection(system_uuid=device_uuid(index), username=args.user, password=args.password,
                                        hostname=f"bench-{index}", ports=AMT_PORTS, handshake_timeout=120)
                try:
                    tunnel = await dial_mps("127.0.0.1", args.port, machine, channel_to_engine(index),
                                            ssl_context=context, server_hostname=args.server_name, dial_timeout=120)
                except Exception as exc:  # counted by kind; retried
                    stats.failures[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
                else:
                    stats.tunnels.append(tunnel)
                    return
            await asyncio.sleep(0.5 * 2 ** attempt)
        stats.gave_up += 1

    start = time.perf_counter()
    await asyncio.gather(*(dial(i) for i in range(args.devices)))
    seconds = time.perf_counter() - start
    say({"established": len(stats.tunnels), "seconds": seconds, "gave_up": stats.gave_up,
         "failures": dict(stats.failures.most_common(5)), "engines": engines})

    async def handle(command: dict[str, Any]) -> dict[str, Any]:
        if command["cmd"] == "alive":
            return {"alive": sum(1 for t in stats.tunnels if not t.closed.done())}
        raise ValueError(f"unknown command {command!r}")

    try:
        await commands(handle)
    finally:
        for tunnel in stats.tunnels:
            tunnel.close()
        for task in list(splices):
            task.cancel()
        await launched.server.stop()
        launched.database.close()


# ------------------------------------------------------------------------------------------------ MeshCentral


@dataclass
class MeshCentral:
    process: asyncio.subprocess.Process
    datapath: Path
    port: int
    mps_port: int
    output: list[str]

    async def ctl(self, *args: str, seconds: float = 120) -> str:
        modules = node_modules()
        run = await run_peer([require_program("node"), str(modules / "meshcentral" / "meshctrl.js"), *args,
                              "--url", f"wss://127.0.0.1:{self.port}", "--loginuser", MESH_ADMIN[0],
                              "--loginpass", MESH_ADMIN[1]], cwd=modules / "meshcentral", kill_after=seconds)
        if run.returncode != 0:
            raise PeerFailed(f"meshctrl {args[0]} failed\n{run.describe()}")
        return run.stdout

    async def cira_connections(self) -> int:
        """The MPS's own count of CIRA connections (its ``mpsstats`` server console command).  Not the device
        list: MeshCentral adds devices to its database after a reverse DNS lookup each, which at thousands lags
        minutes behind, and meshctrl cuts long listings short."""
        run = await run_peer([require_program("node"), "-e", MPS_STATS_JS, "--", f"wss://127.0.0.1:{self.port}/control.ashx",
                              *MESH_ADMIN], cwd=node_modules().parent, kill_after=60)
        for line in run.stdout.splitlines():
            if line.startswith("ciraConnections:"):
                return int(line.split(":")[1])
        raise PeerFailed(f"no ciraConnections in MeshCentral's mpsstats\n{run.describe()}")

    async def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                await self.process.wait()
        except TimeoutError:
            os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()


MPS_STATS_JS: Final = """
const WebSocket = require('ws');
const [url, user, pass] = process.argv.slice(-3);
const auth = Buffer.from(user).toString('base64') + ',' + Buffer.from(pass).toString('base64');
const ws = new WebSocket(url, { rejectUnauthorized: false, headers: { 'x-meshauth': auth } });
ws.on('open', () => ws.send(JSON.stringify({ action: 'serverconsole', value: 'mpsstats', tag: 'bench' })));
ws.on('message', (data) => {
    const message = JSON.parse(data);
    if (message.action === 'serverconsole') { process.stdout.write(message.value, () => process.exit(0)); }
});
ws.on('error', (error) => { console.error(String(error)); process.exit(2); });
setTimeout(() => { console.error('no answer'); process.exit(3); }, 30000);
"""
"""Asks MeshCentral's server console for its MPS statistics, as an administrator (meshctrl has no command for it)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_mesh_config(datapath: Path, port: int, mps_port: int) -> None:
    """WAN mode (a server name with a dot) so the MPS listens; everything on loopback; the AMT manager off."""
    datapath.mkdir(parents=True, exist_ok=True)
    (datapath / "config.json").write_text(json.dumps({
        "settings": {"cert": MESH_SERVER_NAME, "WANonly": True, "port": port, "portBind": "127.0.0.1",
                     "redirPort": 0, "mpsPort": mps_port, "mpsPortBind": "127.0.0.1", "mpsPass": MPS_PASSWORD,
                     "selfUpdate": False, "exactPorts": True, "amtScanner": False, "meshScanner": False,
                     "amtManager": False, "sessionKey": os.urandom(16).hex()},
        "domains": {"": {"title": "outband CIRA bench"}},
    }))


async def start_meshcentral(datapath: Path) -> MeshCentral:
    node = require_program("node")
    script = str(node_modules() / "meshcentral" / "meshcentral.js")
    port, mps_port = free_port(), free_port()
    write_mesh_config(datapath, port, mps_port)
    for args in (["--createaccount", MESH_ADMIN[0], "--pass", MESH_ADMIN[1]], ["--adminaccount", MESH_ADMIN[0]]):
        run = await run_peer([node, script, "--datapath", str(datapath), *args], kill_after=120)
        if run.returncode != 0:
            raise PeerFailed(f"MeshCentral account setup failed\n{run.describe()}")
    process = await asyncio.create_subprocess_exec(
        node, "--max-old-space-size=4096", script, "--datapath", str(datapath), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    output: list[str] = []
    assert process.stdout is not None
    try:
        async with asyncio.timeout(180):
            while "HTTPS server running" not in "\n".join(output[-5:]):
                line = await process.stdout.readline()
                if not line:
                    raise PeerFailed("MeshCentral ended while starting:\n" + "\n".join(output))
                output.append(line.decode("utf-8", "replace").rstrip())
    except TimeoutError:
        process.kill()
        raise PeerFailed("MeshCentral did not start:\n" + "\n".join(output)) from None
    server = MeshCentral(process, datapath, port, mps_port, output)
    asyncio.get_running_loop().create_task(_drain(process, output))
    if not any("Intel(R) AMT server running" in line for line in output):
        await server.stop()
        raise PeerFailed("MeshCentral started without its MPS:\n" + "\n".join(output))
    return server


async def _drain(process: asyncio.subprocess.Process, output: list[str]) -> None:
    assert process.stdout is not None
    while line := await process.stdout.readline():
        output.append(line.decode("utf-8", "replace").rstrip())
        del output[:-200]


def mesh_cira_user(mesh_id: str) -> str:
    """MeshCentral takes a device's CIRA user name as the first 16 characters of its group id (@, $ as X)."""
    return mesh_id.split("/")[-1][:16].replace("@", "X").replace("$", "X")


# ------------------------------------------------------------------------------------------------ driver


@dataclass
class Held:
    label: str
    devices: int
    established: int
    seconds: float
    alive: int
    seen_by_mps: int | str
    rss_before: int
    rss_after: int
    mps_cpu: float
    """CPU seconds the MPS used while the fleet dialled."""
    failures: dict[str, int]
    engines: list[tuple[str, int]]
    """The fleet's engines (address, WS-MAN port): the direct path to the devices' engines."""

    @property
    def rate(self) -> float:
        return self.established / self.seconds if self.seconds else 0.0

    @property
    def per_tunnel_kib(self) -> float:
        return (self.rss_after - self.rss_before) / max(self.established, 1)

    def row(self) -> str:
        return (f"{self.label:<18} {self.devices:>7} {self.established:>7} {self.alive:>7} {self.seen_by_mps!s:>11} "
                f"{self.rate:>7.0f} {self.mps_cpu / max(self.established, 1) * 1e3:>8.2f} "
                f"{self.rss_before / 1024:>8.0f} {self.rss_after / 1024:>7.0f} {self.per_tunnel_kib:>8.1f}")


HELD_HEADER = (f"{'MPS':<18} {'devices':>7} {'dialled':>7} {'alive':>7} {'mps says':>11} {'conn/s':>7} "
               f"{'ms CPU/c':>8} {'RSS MiB':>8} {'after':>7} {'KiB/tun':>8}")


async def run_fleet(label: str, mps_pid: int, port: int, ca: str, server_name: str, user: str, password: str,
                    args: argparse.Namespace, devices: int,
                    seen_by_mps: Callable[[int], Awaitable[int | str]]) -> tuple[Held, Child]:
    rss_before, cpu_before = rss_kib(mps_pid), cpu_seconds(mps_pid)
    fleet = await Child.start("_fleet", "--port", str(port), "--ca", ca, "--server-name", server_name,
                              "--user", user, "--password", password, "--devices", str(devices),
                              "--workers", str(args.workers), "--concurrency", str(args.concurrency))
    result = await fleet.read(seconds=1800)
    mps_cpu = cpu_seconds(mps_pid) - cpu_before
    await seen_by_mps(result["established"])  # the MPS has caught up with what the fleet saw
    await asyncio.sleep(args.hold)  # held: keepalives flow, nothing should drop
    alive = (await fleet.ask("alive"))["alive"]
    seen = await seen_by_mps(alive)
    held = Held(label, devices, result["established"], result["seconds"], alive, seen, rss_before,
                rss_kib(mps_pid), mps_cpu, result["failures"], [tuple(engine) for engine in result["engines"]])
    return held, fleet


async def bench_ours(args: argparse.Namespace, devices: int, workdir: Path) -> None:
    mps = await Child.start("_mps", "--devices", str(devices), "--workdir", str(workdir / f"console-{devices}"))
    fleet: Child | None = None
    try:
        started = await mps.read(seconds=300)

        async def online(count: int) -> int:
            return int((await mps.ask("wait_online", count=count, seconds=30))["online"])

        held, fleet = await run_fleet("outband (console)", mps.pid, started["port"], started["cert"], "127.0.0.1",
                                      MPS_USER, MPS_PASSWORD, args, devices, online)
        print(held.row(), flush=True)
        if held.failures:
            print(f"{'':<18} dial failures (retried): {held.failures}")
        if held.established < args.workers:
            print(f"{'':<18} WS-MAN: not measured (fewer tunnels than --workers)")
            return
        best: dict[str, dict[str, Any]] = {}
        for _ in range(args.rounds):  # alternating, best of each: other load on the machine comes and goes
            for mode in ("cira", "direct"):
                cpu_before = cpu_seconds(fleet.pid)
                result = await mps.ask("wsman", mode=mode, workers=args.workers, engines=held.engines,
                                       seconds=args.seconds)
                result["device_cpu_per_call"] = (cpu_seconds(fleet.pid) - cpu_before) / max(result["calls"], 1)
                if mode not in best or result["rate"] > best[mode]["rate"]:
                    best[mode] = result
        print(f"{'':<18} WS-MAN Get {WSMAN_CLASS}, {args.workers} devices at once, best of {args.rounds} x "
              f"{args.seconds:g} s:")
        for name, result in (("through tunnels", best["cira"]), ("direct (TCP)", best["direct"])):
            errors = f", errors {result['errors']}" if result["errors"] else ""
            print(f"{'':<24} {name:<16} {result['rate']:>7.0f} calls/s   console CPU "
                  f"{result['cpu_per_call'] * 1e6:>5.0f} us/call   device side CPU "
                  f"{result['device_cpu_per_call'] * 1e6:>5.0f} us/call{errors}")
        ratio = best["cira"]["rate"] / best["direct"]["rate"] if best["direct"]["rate"] else float("nan")
        print(f"{'':<24} tunnels/direct     {ratio:>7.2f}x", flush=True)
    finally:
        if fleet is not None:
            await fleet.stop()
        await mps.stop()


async def bench_meshcentral(args: argparse.Namespace, devices: int, workdir: Path) -> None:
    label = "MeshCentral"
    try:
        server = await start_meshcentral(workdir / "meshcentral")
    except (PeerMissing, PeerFailed) as exc:
        print(f"{label:<18} not measured: {str(exc).splitlines()[0]}")
        return
    fleet: Child | None = None
    try:
        mesh_id = (await server.ctl("adddevicegroup", "--name", "cira bench", "--amtonly")).split()[-1]
        root = str(server.datapath / "root-cert-public.crt")

        async def listed(count: int) -> int | str:
            try:
                return await server.cira_connections()
            except (PeerFailed, ValueError) as exc:
                return f"n/a ({str(exc).splitlines()[0][:40]})"

        held, fleet = await run_fleet(label, server.process.pid, server.mps_port, root, MESH_SERVER_NAME,
                                      mesh_cira_user(mesh_id), MPS_PASSWORD, args, devices, listed)
        print(held.row(), flush=True)
        if held.failures:
            print(f"{'':<18} dial failures (retried): {held.failures}")
        print(f"{'':<18} WS-MAN through MeshCentral: not measured (its tunnels are reached through its web relay, "
              "not an API this script drives)")
    finally:
        if fleet is not None:
            await fleet.stop()
        await server.stop()


async def main_async(args: argparse.Namespace) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    largest = max(args.devices)
    if hard != resource.RLIM_INFINITY and largest + 1024 > hard:
        print(f"note: {largest} tunnels need about {largest + 1024} descriptors per process and the limit is {hard}; "
              "larger fleets are not attempted")
    workdir = Path(tempfile.mkdtemp(prefix="outband-cira-bench-"))
    try:
        print(f"{os.cpu_count()} CPU(s); the fleet dials {args.concurrency} at a time and is held {args.hold:g} s "
              "before counting")
        print(HELD_HEADER)
        for devices in args.devices:
            if hard != resource.RLIM_INFINITY and devices + 1024 > hard:
                print(f"{'outband (console)':<18} {devices:>7} not attempted: the descriptor limit is {hard}")
                continue
            await bench_ours(args, devices, workdir)
        if args.meshcentral:
            await bench_meshcentral(args, max(d for d in args.devices if d + 1024 <= hard or
                                              hard == resource.RLIM_INFINITY), workdir)
        print("conn/s: devices logged in with ports registered per second of dialling (one fleet process dials "
              "both MPSs: it often sets the pace); ms CPU/c: the MPS's CPU time per connection while they dialled; "
              "alive: tunnels still up after the hold; mps says: the MPS's own count; KiB/tun: the MPS process's "
              "resident memory growth per tunnel")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_mps":
        parser = argparse.ArgumentParser()
        parser.add_argument("--devices", type=int, required=True)
        parser.add_argument("--workdir", type=Path, required=True)
        child = parser.parse_args(argv[1:])
        asyncio.run(mps_main(child.devices, child.workdir))
        return 0
    if argv and argv[0] == "_fleet":
        parser = argparse.ArgumentParser()
        for name in ("--ca", "--server-name", "--user", "--password"):
            parser.add_argument(name, required=True)
        for name in ("--port", "--devices", "--workers", "--concurrency"):
            parser.add_argument(name, type=int, required=True)
        child = parser.parse_args(argv[1:])
        with tempfile.TemporaryDirectory(prefix="outband-cira-fleet-") as workdir:
            asyncio.run(fleet_main(child, Path(workdir)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=lambda text: [int(n) for n in text.split(",")], default=[1000, 10_000],
                        help="fleet sizes, comma-separated (1000,10000)")
    parser.add_argument("--workers", type=int, default=16, help="devices called at once in the WS-MAN runs (16)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each WS-MAN run (5)")
    parser.add_argument("--rounds", type=int, default=3, help="WS-MAN runs per path, alternating; best kept (3)")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds the fleet is held before counting (10)")
    parser.add_argument("--concurrency", type=int, default=64, help="dials in flight at once (64)")
    parser.add_argument("--no-meshcentral", dest="meshcentral", action="store_false",
                        help="skip MeshCentral's MPS")
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
