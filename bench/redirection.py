"""Redirection benchmarks: SOL round-trip latency through the engine, against a plain TCP echo on the same loop.

Run: ``.venv/bin/python bench/redirection.py [--rounds 500]``.

* baseline: one byte to an asyncio TCP echo server on loopback and back -- what the machine, the event loop
  and the kernel cost with no protocol at all;
* SOL keystroke: one key typed through :class:`~outband.client.redirection.SolSession` (0x28), echoed by the
  simulated shell's line discipline, back as 0x2A -- the delay a person at ``outband sol`` feels;
* SOL command: ``echo`` of a short line until its output and the next prompt are back.

Both sides run in this one process and event loop, so the figures are an upper bound for each side alone;
compare the ratio to the baseline, not the absolute numbers, across machines.  (KVM and IDE-R figures will join
this file with those session kinds.)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from outband.client.amt import AmtClient
from outband.client.redirection import SolSession
from outband.engine.platforms.base import PowerState
from outband.engine.platforms.console import ConsoleTiming, SimConsole
from outband.engine.platforms.sim import SimMachine
from outband.engine.redirection import RedirectionListener, default_handlers
from outband.testing.engine import running_engine


async def timed(rounds: int, once: Callable[[], Awaitable[None]]) -> list[float]:
    for _ in range(min(20, rounds)):  # warm up
        await once()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await once()
        samples.append(time.perf_counter() - start)
    return samples


async def tcp_echo_baseline(rounds: int) -> list[float]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(data)
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])

    async def once() -> None:
        writer.write(b"x")
        await reader.readexactly(1)

    try:
        return await timed(rounds, once)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


async def read_exactly(session: SolSession, expected: bytes) -> None:
    seen = b""
    while len(seen) < len(expected):
        chunk = await session.read()
        if not chunk:
            raise RuntimeError(f"SOL ended: {session.end_reason}")
        seen += chunk
    if seen != expected:
        raise RuntimeError(f"expected {expected!r}, got {seen!r}")


async def sol_figures(rounds: int) -> tuple[list[float], list[float]]:
    machine = SimMachine(power_state=PowerState.ON, console=SimConsole(timing=ConsoleTiming.instant()))
    async with running_engine(machine=machine) as env:
        amt = AmtClient(env.host, transport=env.transport())
        service = await amt.get("AMT_RedirectionService")
        service["ListenerEnabled"] = True
        await amt.put(service)
        await amt.invoke("AMT_RedirectionService", "RequestStateChange", {"RequestedState": 32771})
        listener = RedirectionListener(env.engine, default_handlers())
        server = await asyncio.start_server(listener.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with SolSession("127.0.0.1", password=env.password, port=port) as session:
                await asyncio.sleep(0.2)  # past the pause after the start replies
                keys = iter([b"x", b"\x7f"] * (rounds + 20))
                echoes = {b"x": b"x", b"\x7f": b"\b \b"}

                async def keystroke() -> None:
                    key = next(keys)
                    await session.write(key)
                    await read_exactly(session, echoes[key])

                async def command() -> None:
                    await session.write(b"echo bench\r")
                    await read_exactly(session, b"echo bench\r\nbench\r\nroot@outband-sim:~# ")

                return await timed(rounds, keystroke), await timed(rounds, command)
        finally:
            server.close()
            await listener.aclose()
            await server.wait_closed()


def describe(name: str, samples: list[float], baseline: float | None = None) -> str:
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[-1]
    ratio = f"{median / baseline:6.1f}x baseline" if baseline else "      baseline"
    return f"{name:<22} median {median * 1e6:8.0f} us   p95 {p95 * 1e6:8.0f} us   {ratio}   (n={len(samples)})"


async def main(rounds: int) -> None:
    baseline = await tcp_echo_baseline(rounds)
    keystroke, command = await sol_figures(rounds)
    reference = statistics.median(baseline)
    print(describe("TCP echo (1 byte)", baseline))
    print(describe("SOL keystroke echo", keystroke, reference))
    print(describe("SOL command (echo)", command, reference))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500, help="round trips per figure")
    asyncio.run(main(parser.parse_args().rounds))
