"""Fleet mode: how many engines one process hosts, what each one costs in memory, and how long they take to start.

    python bench/engine_fleet.py                               # 1,000 / 5,000 / 10,000 engines, both listener sets
    python bench/engine_fleet.py --sizes 1000 --listeners http # quick look
    python bench/engine_fleet.py --sizes 1000 --tracemalloc    # plus where an engine's memory goes

Each fleet runs in a fresh child process, built by the launcher exactly as ``outband engine --fleet N`` builds it:
engine *i* on its own loopback address (``--fleet-base`` + i) with AMT's standard ports, one shared state
database, the default hardware profile made unique per engine.  Two listener sets are measured:

* ``http``: WS-MAN on 16992 only (one listening socket per engine);
* ``all``: 16992, 16993 (TLS), 16994 and 16995 (redirection, TLS) -- four sockets per engine, as a real AMT.

Printed per fleet: the start time; the process's resident memory (``VmRSS``) once every engine listens, and the
cost per engine (growth over the same process before the launch, which already holds the imported code); then
the same after every engine has answered one authenticated Get (``--no-touch-all`` skips that), since a console
polling the fleet leaves nonces and cached instances behind.  A sample of engines (``--sample``, first and last
included) must answer a Get over HTTP, and over TLS when it is served, with their own host name.

The baseline is the process itself before the launch.  The target: 10,000 engines in under 2 GiB.  A fleet that
needs more descriptors than the hard ``RLIMIT_NOFILE`` allows is reported and skipped (raising the hard limit
needs privileges a container may not grant).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from outband.aio.wsman_client import WsmanTransport
from outband.engine.launcher import LaunchOptions, launch
from outband.proto.cim.model import CimObject
from outband.proto.wsman import messages

PASSWORD = "Fleet!Pass1word"
TARGET_ENGINES = 10_000
TARGET_BYTES = 2 * 1024**3
LISTENER_SETS = {"http": 1, "all": 4}
SPARE_DESCRIPTORS = 256
"""The database, the event loop, standard streams, and the connections of a Get in flight."""
SCRIPT = Path(__file__).resolve()


# ------------------------------------------------------------------------------------------------ the fleet


def memory() -> dict[str, int]:
    """Resident and peak resident bytes of this process."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) * 1024
    return found


def report(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def run_fleet(size: int, listeners: str, state_dir: Path, base: str, traced: bool) -> None:
    """Launch, report, then obey the parent's commands on stdin (``memory``, ``stop``)."""
    gc.collect()
    before = memory()
    if traced:
        tracemalloc.start(10)
        snapshot = tracemalloc.take_snapshot()
    start = time.perf_counter()
    every = listeners == "all"
    launched = await launch(LaunchOptions(
        http_port=16992, tls_port=16993 if every else None, redirection_port=16994 if every else None,
        redirection_tls_port=16995 if every else None, state_dir=state_dir, admin_password=PASSWORD,
        fleet=size, fleet_base=base,
    ))
    started = time.perf_counter() - start
    gc.collect()
    report(before=before["VmRSS"], started=memory()["VmRSS"], seconds=started,
           fingerprint=launched.tls_fingerprint)
    if traced:
        print_growth(snapshot, size)
    loop = asyncio.get_running_loop()
    try:
        while command := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            if command == "memory":
                gc.collect()
                report(**memory())
            elif command == "stop":
                break
    finally:
        start = time.perf_counter()
        await launched.server.stop()
        launched.database.close()
        report(stop_seconds=time.perf_counter() - start)


def print_growth(snapshot: tracemalloc.Snapshot, size: int, top: int = 20) -> None:
    """Where the launch's memory went, per engine, by the line that allocated it (to stderr)."""
    gc.collect()
    stats = tracemalloc.take_snapshot().compare_to(snapshot, "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"\nPython allocations during the launch: {total / size:.0f} B per engine; top lines:", file=sys.stderr)
    for stat in stats[:top]:
        frame = stat.traceback[0]
        print(f"  {stat.size_diff / size:8.0f} B {stat.count_diff / size:6.1f} objects  {frame.filename}:"
              f"{frame.lineno}", file=sys.stderr)


# ------------------------------------------------------------------------------------------------ the client


async def get_hostnames(addresses: list[str], *, tls: bool = False, fingerprint: str | None = None,
                        concurrency: int = 32) -> dict[str, str | None]:
    """Each engine's HostName from an authenticated Get (None where the Get failed)."""
    payload = messages.get("AMT_GeneralSettings")
    found: dict[str, str | None] = {}
    queue = list(reversed(addresses))

    async def worker() -> None:
        while queue:
            address = queue.pop()
            try:
                async with WsmanTransport(address, "admin", PASSWORD, tls=tls, fingerprint=fingerprint) as t:
                    reply = await t.send(payload)
                body = reply.body
                found[address] = str(body["HostName"]) if isinstance(body, CimObject) else None
            except Exception:  # a failure is a finding, reported as such
                found[address] = None

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return found


def sample_of(count: int, wanted: int) -> list[int]:
    if count <= wanted:
        return list(range(count))
    step = (count - 1) / (wanted - 1)
    return sorted({round(i * step) for i in range(wanted)})


# ------------------------------------------------------------------------------------------------ driver


@dataclass
class Result:
    size: int
    listeners: str
    seconds: float
    before: int
    started: int
    touched: int | None
    sample_ok: int
    sample: int

    def per_engine(self, rss: int) -> float:
        return (rss - self.before) / self.size


class Fleet:
    """The child process hosting one fleet."""

    def __init__(self, size: int, listeners: str, state_dir: Path, base: str, traced: bool) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "_fleet", str(size), listeners, str(state_dir), base]
            + (["traced"] if traced else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the fleet process ended (exit status {self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.ask("stop")
                self.process.wait(timeout=120)
            except (OSError, SystemExit, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def measure(size: int, listeners: str, base: str, sample: int, touch_all: bool, traced: bool) -> Result:
    addresses = [str(ipaddress.ip_address(base) + i) for i in range(size)]
    with tempfile.TemporaryDirectory(prefix="outband-fleet-") as tmp:
        fleet = Fleet(size, listeners, Path(tmp), base, traced)
        try:
            started = fleet.read()
            picked = [addresses[i] for i in sample_of(size, sample)]
            names = asyncio.run(get_hostnames(picked))
            if listeners == "all":
                names_tls = asyncio.run(get_hostnames(picked[:8], tls=True, fingerprint=started["fingerprint"]))
                names.update({f"{a} (TLS)": n for a, n in names_tls.items()})
            expected = {a: f"outband-sim-{addresses.index(a.split()[0])}" for a in names}
            ok = sum(1 for a, n in names.items() if n == expected[a])
            for address, name in names.items():
                if name != expected[address]:
                    print(f"  {address}: expected HostName {expected[address]}, got {name}")
            touched = None
            if touch_all:
                asyncio.run(get_hostnames(addresses, concurrency=64))
                touched = int(fleet.ask("memory")["VmRSS"])
        finally:
            fleet.close()
    return Result(size, listeners, float(started["seconds"]), int(started["before"]), int(started["started"]),
                  touched, ok, len(names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10_000])
    parser.add_argument("--listeners", choices=[*LISTENER_SETS, "both"], default="both")
    parser.add_argument("--fleet-base", default="127.77.0.1", help="first engine's address (default 127.77.0.1)")
    parser.add_argument("--sample", type=int, default=50, help="engines that must answer a Get (default 50)")
    parser.add_argument("--no-touch-all", dest="touch_all", action="store_false",
                        help="skip the Get to every engine (and the memory figure after it)")
    parser.add_argument("--tracemalloc", action="store_true", help="show where the launch's memory goes")
    args = parser.parse_args(argv)

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    sets = list(LISTENER_SETS) if args.listeners == "both" else [args.listeners]
    print(f"{'engines':>7} {'listen':>6} {'start s':>8} {'RSS MiB':>8} {'KiB/eng':>8} {'after Gets':>10} "
          f"{'KiB/eng':>8} {'sample':>8}")
    results: list[Result] = []
    for listeners in sets:
        for size in sorted(set(args.sizes)):
            needed = size * LISTENER_SETS[listeners] + SPARE_DESCRIPTORS
            if hard != resource.RLIM_INFINITY and needed > hard:
                fits = (hard - SPARE_DESCRIPTORS) // LISTENER_SETS[listeners] // 100 * 100
                done = any(r.size == fits and r.listeners == listeners for r in results)
                print(f"{size:7} {listeners:>6}  needs {needed} descriptors, the hard limit is {hard}: "
                      + (f"see {fits} above" if done else f"measuring {fits} instead"))
                if fits <= 0 or done:
                    continue
                size = fits
            r = measure(size, listeners, args.fleet_base, args.sample, args.touch_all, args.tracemalloc)
            results.append(r)
            after = (f"{r.touched / 2**20:10.0f} {r.per_engine(r.touched) / 1024:8.1f}" if r.touched is not None
                     else f"{'-':>10} {'-':>8}")
            print(f"{r.size:7} {r.listeners:>6} {r.seconds:8.1f} {r.started / 2**20:8.0f} "
                  f"{r.per_engine(r.started) / 1024:8.1f} {after} {r.sample_ok:>3}/{r.sample:<3}", flush=True)
    print(f"(RSS before each launch: {min((r.before for r in results), default=0) / 2**20:.0f} MiB of code and "
          "imports; KiB/eng is the growth per engine over it)")
    for r in results:
        if r.size >= TARGET_ENGINES:
            peak = max(r.started, r.touched or 0)
            verdict = "met" if peak < TARGET_BYTES else "MISSED"
            print(f"target: {TARGET_ENGINES:,} engines under 2 GiB ({r.listeners}) -> {verdict} "
                  f"({r.size:,} engines, {peak / 2**20:.0f} MiB)")
    return 0 if all(r.sample_ok == r.sample for r in results) else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_fleet":
        size, listeners, state_dir, base = int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), sys.argv[5]
        asyncio.run(run_fleet(size, listeners, state_dir, base, traced=len(sys.argv) > 6))
        raise SystemExit(0)
    raise SystemExit(main())
