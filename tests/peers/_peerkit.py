"""Shared by the peer tests: the node drivers' location and how their step reports become test failures."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

PEERS_DIR = Path(__file__).resolve().parent

Step = Mapping[str, Any]


def assert_steps_ok(steps: Iterable[Step], *, peer: str) -> None:
    """Fail with every failed step of a peer's report (not just the first), each with its HTTP status and why."""
    steps = list(steps)
    assert steps, f"{peer} reported no steps at all"
    failed = [s for s in steps if not s["ok"]]
    if failed:
        lines = [f"  {s['step']}  [HTTP {s.get('status')}]: {s['reason']}" for s in failed]
        pytest.fail(f"{peer}: {len(failed)} of {len(steps)} steps failed\n" + "\n".join(lines), pytrace=False)


def step_data(steps: Iterable[Step], name: str) -> Any:
    """The data a passed step reported (the last one of that name)."""
    matching = [s for s in steps if s["step"] == name]
    assert matching, f"no step named {name!r}"
    assert matching[-1]["ok"], f"step {name!r} failed: {matching[-1]['reason']}"
    return matching[-1]["data"]
