"""The console over real HTTP: uvicorn on 127.0.0.1 (ephemeral port), and the `outband console` command."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from tests.console._kit import ADMIN_PASSWORD
from typer.testing import CliRunner

from outband.cli.main import app as cli
from outband.console.api.deps import CSRF_HEADER, SESSION_COOKIE
from outband.console.db.migrate import head_revision
from outband.console.runtime import Runtime
from outband.console.secrets import SecretBox, generate_key
from outband.console.server import ConsoleServer


@pytest.fixture
async def served(runtime: Runtime) -> AsyncIterator[ConsoleServer]:
    server = ConsoleServer(runtime, "127.0.0.1", 0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_api_over_http(served):
    assert served.port != 0
    async with httpx2.AsyncClient(base_url=served.url) as client:
        health = await client.get("/api/health")
        assert health.json()["status"] == "ok"
        assert health.headers["x-content-type-options"] == "nosniff"
        assert health.headers["cache-control"] == "no-store"
        assert "server" not in health.headers
        spec = (await client.get("/api/openapi.json")).json()
        assert spec["info"]["title"] == "outband console"
        assert "/api/devices" in spec["paths"]
        assert "swagger" in (await client.get("/api/docs")).text.lower()
        login = await client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert login.status_code == 200
        assert SESSION_COOKIE in client.cookies
        assert (await client.post("/api/groups", json={"name": "g"})).status_code == 403
        client.headers[CSRF_HEADER] = login.json()["csrf_token"]
        assert (await client.post("/api/groups", json={"name": "g"})).status_code == 201


def test_generate_key_prints_a_usable_key():
    result = CliRunner().invoke(cli, ["console", "generate-key"])
    assert result.exit_code == 0
    SecretBox([result.output.strip()])


def test_migrate_and_rotate_commands(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OUTBAND_SECRET_KEY", generate_key())
    runner = CliRunner()
    migrated = runner.invoke(cli, ["console", "--data-dir", str(tmp_path), "migrate"])
    assert migrated.exit_code == 0, migrated.output
    assert f"revision {head_revision()}" in migrated.output
    rotated = runner.invoke(cli, ["console", "--data-dir", str(tmp_path), "rotate-key"])
    assert rotated.exit_code == 0, rotated.output
    assert "re-encrypted 0 credential(s)" in rotated.output
    bad = runner.invoke(cli, ["console", "--listen", "nowhere", "migrate"])
    assert bad.exit_code == 2


async def test_outband_console_serves_until_terminated(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBAND_")}
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "outband"), "console", "--listen", "127.0.0.1:0", "--data-dir",
        str(tmp_path / "data"), stderr=asyncio.subprocess.PIPE, env={**env, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    seen = ""
    try:
        async with asyncio.timeout(60):
            while "keep it" not in seen:
                line = await process.stderr.readline()
                assert line, f"the console exited early: {seen}"
                seen += line.decode()
        url = re.search(r"outband console: (http://\S+)", seen).group(1)
        password = re.search(r"shown once, keep it\): (\S+)", seen).group(1)
        async with httpx2.AsyncClient(base_url=url) as client:
            assert (await client.get("/api/health")).status_code == 200
            login = await client.post("/api/auth/login", json={"username": "admin", "password": password})
            assert login.status_code == 200
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rest = (await process.stderr.read()).decode()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert password not in rest  # shown once: not again in the logs
    assert (tmp_path / "data" / "secret.key").exists()
