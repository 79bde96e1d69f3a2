"""Engines for the peer tests: loopback, ephemeral ports, and an admin password every peer can carry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from outband.testing.engine import RunningEngine, running_engine
from outband.testing.peers import peer_password


@pytest.fixture
async def peer_env() -> AsyncIterator[RunningEngine]:
    async with running_engine(password=peer_password()) as env:
        yield env


@pytest.fixture
async def peer_tls_env(tmp_path: Path) -> AsyncIterator[RunningEngine]:
    """An engine that also listens with TLS (a self-signed certificate, as a freshly provisioned AMT has)."""
    async with running_engine(password=peer_password(), tls_dir=tmp_path) as env:
        yield env
