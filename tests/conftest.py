"""Shared fixtures: the conformance captures beside the checkout, and an engine on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from outband.testing.engine import RunningEngine, running_engine

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "wsman-responses"


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.fail(f"conformance captures not found at {CONFORMANCE} (../shared must sit beside the checkout)")
    return CONFORMANCE


@pytest.fixture
async def engine_env() -> AsyncIterator[RunningEngine]:
    async with running_engine() as env:
        yield env
