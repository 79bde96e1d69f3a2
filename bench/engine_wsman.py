"""Authenticated WS-MAN Gets per second from the engine, against a bare aiohttp handler returning the same bytes.

    python bench/engine_wsman.py                   # about 40 s: 3 rounds of 5 s per side
    python bench/engine_wsman.py --seconds 2 --rounds 1        # quick look
    python bench/engine_wsman.py --profile         # plus the engine's hottest functions (cProfile)

Three processes, so that the two servers are measured alike and neither shares a core with its load:

* the server: either the engine as ``outband engine`` runs it (built by the launcher, HTTP on 127.0.0.1, state
  in a temporary directory), or a bare aiohttp application whose ``POST /wsman`` handler reads the request and
  returns the bytes the engine answered the same Get with (its only other work: a fixed Digest challenge for a
  request without credentials, so that both clients pay the same Digest arithmetic);
* the load generator: ``--connections`` workers, each with its own connection and its own
  :class:`~outband.aio.wsman_client.WsmanTransport` (a DigestClient reusing its nonce with a rising ``nc``),
  sending ``Get AMT_GeneralSettings`` back to back for ``--seconds``.

Printed per side: requests per second (wall clock) and the server's CPU time per request (user + system, from
``/proc``).  On a busy or two-core machine the load generator can be the bottleneck, which flatters the slower
side; the CPU ratio does not depend on that, so both ratios are shown.  The target is the throughput ratio
``engine / bare`` of at least 0.4.  Each figure is the best of ``--rounds`` rounds, sides alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from outband.aio.wsman_client import WsmanTransport
from outband.engine.launcher import LaunchOptions, launch
from outband.proto.wsman import messages

TARGET_RATIO = 0.4
PASSWORD = "Bench!Pass1word"
REALM = "Digest:00000000000000000000000000000000"
SCRIPT = Path(__file__).resolve()


# ------------------------------------------------------------------------------------------------ servers


async def serve_engine(state_dir: Path) -> None:
    launched = await launch(LaunchOptions(
        host="127.0.0.1", http_port=0, tls_port=None, redirection_port=None, redirection_tls_port=None,
        state_dir=state_dir, admin_password=PASSWORD,
    ))
    try:
        await announce_and_wait(launched.server.bound_port("127.0.0.1"))
    finally:
        await launched.server.stop()
        launched.database.close()


async def serve_bare(reply: bytes) -> None:
    headers = {"Content-Type": "application/soap+xml; charset=UTF-8", "X-Frame-Options": "DENY",
               "Server": "Intel(R) Active Management Technology 16.1.30.2307"}
    challenge = f'Digest realm="{REALM}", nonce="{"0" * 32}",stale="false",qop="auth"'

    async def wsman(request: web.Request) -> web.Response:
        await request.read()
        if "Authorization" not in request.headers:
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        return web.Response(body=reply, headers=headers)

    app = web.Application()
    app.router.add_post("/wsman", wsman)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        assert runner.addresses
        await announce_and_wait(int(runner.addresses[0][1]))
    finally:
        await runner.cleanup()


async def announce_and_wait(port: int) -> None:
    """Tell the parent the port, then serve until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(port, flush=True)
    await stop.wait()


# ------------------------------------------------------------------------------------------------ load


async def generate_load(port: int, password: str, connections: int, seconds: float) -> dict[str, float]:
    payload = messages.get("AMT_GeneralSettings").to_bytes()
    transports = [WsmanTransport("127.0.0.1", "admin", password, port=port) for _ in range(connections)]
    counts = [0] * connections
    failures = [0] * connections
    for t in transports:  # earn each worker its own challenge before the clock starts
        status, _ = await t.post(payload)
        if status != 200:
            raise SystemExit(f"warm-up Get answered HTTP {status}")
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(i: int) -> None:
        t = transports[i]
        while time.perf_counter() < deadline:
            status, body = await t.post(payload)
            if status == 200 and body:
                counts[i] += 1
            else:
                failures[i] += 1

    cpu_start = time.process_time()
    try:
        await asyncio.gather(*(worker(i) for i in range(connections)))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    finally:
        for t in transports:
            await t.close()
    return {"requests": sum(counts), "failures": sum(failures), "elapsed": elapsed, "client_cpu": cpu}


# ------------------------------------------------------------------------------------------------ driver


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int

    def cpu_seconds(self) -> tuple[float, float]:
        """User and system CPU seconds the server has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(*role: str) -> Server:
    process = subprocess.Popen([sys.executable, str(SCRIPT), *role], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        raise SystemExit(f"server {role[0]} did not start")
    return Server(process, int(line))


@dataclass
class Round:
    rate: float
    user_per_request: float
    system_per_request: float
    client_per_request: float
    failures: int

    @property
    def cpu_per_request(self) -> float:
        return self.user_per_request + self.system_per_request

    def row(self) -> str:
        return (f"{self.rate:8.0f} {self.cpu_per_request * 1e6:8.0f} {self.user_per_request * 1e6:6.0f} "
                f"{self.system_per_request * 1e6:6.0f} {self.client_per_request * 1e6:8.0f}")


HEADER = f"{'req/s':>8} {'server':>8} {'user':>6} {'system':>6} {'client':>8}   (us of CPU per request)"


def run_round(server: Server, connections: int, seconds: float) -> Round:
    user_before, system_before = server.cpu_seconds()
    load = subprocess.run(
        [sys.executable, str(SCRIPT), "_load", str(server.port), str(connections), str(seconds)],
        check=True, capture_output=True, text=True, env={**os.environ, "BENCH_PASSWORD": PASSWORD},
    )
    user_after, system_after = server.cpu_seconds()
    result = json.loads(load.stdout)
    requests = max(result["requests"], 1)
    # The warm-up requests are inside the CPU windows; a handful against thousands, so negligible.
    return Round(result["requests"] / result["elapsed"], (user_after - user_before) / requests,
                 (system_after - system_before) / requests, result["client_cpu"] / requests,
                 int(result["failures"]))


def capture_reply(port: int) -> bytes:
    async def once() -> bytes:
        async with WsmanTransport("127.0.0.1", "admin", PASSWORD, port=port) as t:
            status, body = await t.post(messages.get("AMT_GeneralSettings").to_bytes())
        if status != 200:
            raise SystemExit(f"the engine answered the Get with HTTP {status}")
        return body

    return asyncio.run(once())


def print_profile(path: Path, top: int) -> None:
    print(f"\nEngine's hottest functions during the load (by own time, top {top}):")
    pstats.Stats(str(path), stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(top)
    print(f"Same profile by cumulative time (top {top}):")
    pstats.Stats(str(path), stream=sys.stdout).strip_dirs().sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per round (default 5 s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side; the best one counts")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--profile", action="store_true", help="profile the engine under load (cProfile)")
    parser.add_argument("--top", type=int, default=30, help="functions to list with --profile")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="outband-bench-") as tmp:
        tmpdir = Path(tmp)
        profile_file = tmpdir / "engine.prof"
        engine_role = ["_engine", str(tmpdir / "state")] + ([str(profile_file)] if args.profile else [])
        engine = start_server(*engine_role)
        bare: Server | None = None
        try:
            reply = capture_reply(engine.port)
            (tmpdir / "reply.xml").write_bytes(reply)
            bare = start_server("_bare", str(tmpdir / "reply.xml"))
            print(f"Get AMT_GeneralSettings, {len(reply)}-byte reply, {args.connections} connections, "
                  f"{args.rounds} x {args.seconds:g} s per side")
            print(f"{'':16} {HEADER}")
            best: dict[str, Round] = {}
            for n in range(args.rounds):
                for name, server in (("engine", engine), ("bare", bare)):
                    result = run_round(server, args.connections, args.seconds)
                    print(f"round {n + 1} {name:8} {result.row()}"
                          + (f"  ({result.failures} failed)" if result.failures else ""))
                    if name not in best or result.rate > best[name].rate:
                        best[name] = result
        finally:
            engine.stop()
            if bare is not None:
                bare.stop()

        e, b = best["engine"], best["bare"]
        print(f"best of each:\n{'':16} {HEADER}")
        for name, r in best.items():
            print(f"{name:16} {r.row()}")
        ratio = e.rate / b.rate
        print(f"ratio engine/bare: throughput {ratio:.2f}, per server CPU second "
              f"{b.cpu_per_request / e.cpu_per_request:.2f}")
        # What a quiet machine with a core for each process would do: the busier of the two processes sets it.
        e_cap, b_cap = (1 / max(r.cpu_per_request, r.client_per_request) for r in (e, b))
        print(f"from CPU times, with a core each for server and load: engine {e_cap:.0f}/s, bare {b_cap:.0f}/s, "
              f"ratio {e_cap / b_cap:.2f}")
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        print(f"target: engine at least {TARGET_RATIO:.1f}x the bare handler's Gets per second -> {verdict} "
              f"({ratio:.2f}x)")
        if args.profile:
            print_profile(profile_file, args.top)
    return 0


def run_role(role: str, rest: list[str]) -> int:
    if role == "_engine":
        state_dir = Path(rest[0])
        if len(rest) > 1:
            profiler = cProfile.Profile()
            profiler.enable()
            try:
                asyncio.run(serve_engine(state_dir))
            finally:
                profiler.disable()
                profiler.dump_stats(rest[1])
        else:
            asyncio.run(serve_engine(state_dir))
    elif role == "_bare":
        asyncio.run(serve_bare(Path(rest[0]).read_bytes()))
    elif role == "_load":
        port, connections, seconds = int(rest[0]), int(rest[1]), float(rest[2])
        result = asyncio.run(generate_load(port, os.environ["BENCH_PASSWORD"], connections, seconds))
        print(json.dumps(result))
    else:
        raise SystemExit(f"unknown role {role}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        with contextlib.suppress(KeyboardInterrupt):
            raise SystemExit(run_role(sys.argv[1], sys.argv[2:]))
    raise SystemExit(main())
