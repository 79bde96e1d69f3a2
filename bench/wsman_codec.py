"""WS-MAN codec throughput against a bare lxml parse of the same bytes, measured in the same run.

    python bench/wsman_codec.py                 # rates and ratios per capture, then overall
    python bench/wsman_codec.py --profile       # also the hottest functions of parse_envelope

For each capture it times three things on the same bytes:

* ``bare``: ``lxml.etree.fromstring(data)`` with lxml's default parser: the floor any lxml-based codec sits on;
* ``parse``: ``parse_envelope(data)``: hardened parse, shape checks, structure checks (leaf typing
  waits for an object's first read);
* ``parse+build``: ``parse_envelope(data).to_bytes()``: what a proxy or a replaying test pays per message.

Ratios are ``bare rate / our rate`` (how many bare parses one of ours costs); the target is at most 2x for
``parse``.  Each figure is the best of several rounds, which filters out the noise of a shared machine.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from outband.proto.wsman import parse_envelope

DEFAULT_CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "wsman-responses"

REPRESENTATIVE = {
    "amt/general/get.xml": "Get of one instance (24 properties)",
    "cim/software/identity/pull.xml": "Pull with many items",
    "cim/service/availabletoelement/pull.xml": "Pull of association instances (EPR values)",
    "amt/publickey/certificate/pull.xml": "Pull of certificates (long base64 text)",
    "cim/power/managementservice/requestpowerstatechange.xml": "method output (ReturnValue)",
}

TARGET_RATIO = 2.0


def best_rate(operation: Callable[[], object], seconds: float, rounds: int) -> float:
    """Operations per second: the best of ``rounds`` rounds of about ``seconds / rounds`` each."""
    calls = 1
    while True:  # size a round so that it lasts long enough to time
        start = time.perf_counter()
        for _ in range(calls):
            operation()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / rounds / 4:
            break
        calls *= 2
    calls = max(1, int(calls * (seconds / rounds) / max(elapsed, 1e-9)))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            operation()
        best = min(best, (time.perf_counter() - start) / calls)
    return 1.0 / best


def measure(data: bytes, seconds: float, rounds: int) -> tuple[float, float, float]:
    bare = best_rate(lambda: etree.fromstring(data), seconds, rounds)
    parse = best_rate(lambda: parse_envelope(data), seconds, rounds)
    build = best_rate(lambda: parse_envelope(data).to_bytes(), seconds, rounds)
    return bare, parse, build


def profile(blobs: dict[str, bytes], top: int) -> None:
    def run() -> None:
        for _ in range(300):
            for data in blobs.values():
                parse_envelope(data).to_bytes()

    profiler = cProfile.Profile()
    profiler.runcall(run)
    print(f"\nHottest functions of parse_envelope + to_bytes (by own time, top {top}):")
    pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--captures", type=Path, default=DEFAULT_CAPTURES, help="conformance capture directory")
    parser.add_argument("--seconds", type=float, default=1.0, help="time spent per measurement (default 1 s)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per measurement; the best one counts")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the codec")
    parser.add_argument("--top", type=int, default=25, help="functions to list with --profile")
    args = parser.parse_args(argv)

    blobs = {name: (args.captures / name).read_bytes() for name in REPRESENTATIVE}
    print(f"{'capture':58} {'bytes':>6} {'bare/s':>9} {'parse/s':>9} {'ratio':>6} {'p+build/s':>9} {'ratio':>6}")
    totals = [0.0, 0.0, 0.0]  # seconds for one pass over every capture, per measurement
    for name, data in blobs.items():
        bare, parse, build = measure(data, args.seconds, args.rounds)
        for i, rate in enumerate((bare, parse, build)):
            totals[i] += 1.0 / rate
        print(f"{name:58} {len(data):6} {bare:9.0f} {parse:9.0f} {bare / parse:5.2f}x "
              f"{build:9.0f} {bare / build:5.2f}x")
        print(f"  {REPRESENTATIVE[name]}")
    bare_t, parse_t, build_t = totals
    n = len(blobs)
    print(f"{'overall (one of each, per second)':58} {'':6} {n / bare_t:9.0f} {n / parse_t:9.0f} "
          f"{parse_t / bare_t:5.2f}x {n / build_t:9.0f} {build_t / bare_t:5.2f}x")
    verdict = "met" if parse_t / bare_t <= TARGET_RATIO else "MISSED"
    print(f"target: parse at most {TARGET_RATIO:.1f}x a bare lxml parse -> {verdict} ({parse_t / bare_t:.2f}x)")
    if args.profile:
        profile(blobs, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
