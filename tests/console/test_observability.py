"""Prometheus metrics and logs that never carry a secret."""

from __future__ import annotations

import io
import json
import logging

import pytest
from tests.console._kit import ADMIN_PASSWORD, asgi_client

from outband.console.logs import JsonFormatter, configure_logging, redact, register_secret, scrub
from outband.console.permissions import Role
from outband.console.runtime import open_runtime


def sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{wanted}}} not exposed")


async def test_metrics_count_devices_by_state_and_time_wsman(anon, clients, engine_env):
    admin = clients[Role.ADMIN]
    for i in range(2):
        await admin.post("/api/devices?check=false", json={"name": f"off-{i}", "host": "192.0.2.1",
                                                           "password": "Secret-1"})
    added = await admin.post("/api/devices", json={"name": "live", "host": "127.0.0.1",
                                                   "http_port": engine_env.port, "password": engine_env.password})
    assert added.status_code == 201
    assert (await anon.get("/metrics")).status_code == 401
    reply = await clients[Role.VIEWER].get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    text = reply.text
    assert sample(text, "outband_devices_by_reachability", state="unknown") == 2
    assert sample(text, "outband_devices_by_reachability", state="reachable") == 1
    assert sample(text, "outband_devices_by_reachability", state="unreachable") == 0
    power = added.json()["state"]["power"]
    assert sample(text, "outband_devices_by_power_state", state=power) == 1
    assert sample(text, "outband_wsman_request_seconds_count", operation="check") >= 3
    assert sample(text, "outband_jobs_running") == 0


async def test_metrics_can_be_public(settings):
    runtime = await open_runtime(settings.model_copy(update={"metrics_public": True}))
    try:
        async with asgi_client(runtime) as anon:
            reply = await anon.get("/metrics")
            assert reply.status_code == 200
            assert "outband_devices_by_reachability" in reply.text
    finally:
        await runtime.close()


def test_redaction_patterns():
    register_secret("Registered-Secret-42")
    line = ('login password=hunter2222 Authorization: Bearer obt_abcdefghijklmnopqrstuvwxyz012345 '
            '{"secret_key": "k3y-value"} token gAAAAABlongfernettokenvalue0000000000 Registered-Secret-42')
    clean = redact(line)
    for leaked in ("hunter2222", "obt_abcdefghijklmnop", "k3y-value", "gAAAAABlong", "Registered-Secret-42"):
        assert leaked not in clean
    assert clean.startswith("login password=")
    assert scrub({"name": "pc", "password": "x", "nested": [{"api_key": "y"}]}) == {
        "name": "pc", "password": "[redacted]", "nested": [{"api_key": "[redacted]"}]}


@pytest.fixture
def captured_logs():
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("json", "INFO", stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_json_lines_carry_fields_but_no_secrets(captured_logs):
    log = logging.getLogger("outband.console.test")
    log.info("device %s added with password=%s", "pc-1", "Cleartext-77", extra={"device": "pc-1",
                                                                               "password": "Cleartext-77"})
    try:
        raise ValueError("boom password=Cleartext-77")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    assert lines[0]["message"].startswith("device pc-1 added")
    assert lines[0]["device"] == "pc-1"
    assert "Cleartext-77" not in captured_logs.getvalue()
    assert "ValueError" in lines[1]["exception"]
    assert isinstance(JsonFormatter(), logging.Formatter)


async def test_console_activity_logs_no_secrets(runtime, captured_logs, engine_env):
    async with asgi_client(runtime) as client:
        await client.post("/api/auth/login", json={"username": "admin", "password": "Wrong-password-1"})
        reply = await client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        client.headers["X-CSRF-Token"] = reply.json()["csrf_token"]
        await client.post("/api/devices", json={"name": "pc", "host": "127.0.0.1", "http_port": engine_env.port,
                                                "password": engine_env.password})
        token = (await client.post("/api/auth/tokens", json={"name": "t"})).json()["token"]
    text = captured_logs.getvalue()
    assert '"action": "add_device"' in text  # the audit trail is logged ...
    for secret in (ADMIN_PASSWORD, engine_env.password, token, reply.json()["csrf_token"], "Wrong-password-1"):
        assert secret not in text  # ... without any credential
