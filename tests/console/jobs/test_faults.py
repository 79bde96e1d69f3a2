"""Devices that time out, refuse the credentials, hang up mid-call or are not there: each is reported on its
own row with why, retried when retrying can help (and the operation may be repeated), and never holds up
the healthy devices of the same job."""

from __future__ import annotations

import datetime as dt
import socket

import pytest
from tests.console.jobs._faults import black_hole, flaky_proxy, hang_up
from tests.console.jobs._fleet import Fleet, running_fleet
from tests.console.jobs._kit import by_name, run_op

from outband.engine.platforms.base import PowerState
from outband.proto.amtlog import AuditApp

HEALTHY = 20


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def fleet(tmp_path, api) -> Fleet:
    async with running_fleet(HEALTHY + 1, tmp_path / "fleet") as running:
        rows = running.device_rows()
        for body in rows[:HEALTHY]:
            assert (await api.post("/api/devices", json={**body, "tags": ["healthy"]})).status_code == 201
        wrong = {**rows[HEALTHY], "name": "wrong-password", "password": "Not-the-1-password"}
        assert (await api.post("/api/devices?check=false", json=wrong)).status_code == 201
        yield running


async def add(api, name: str, port: int) -> None:
    reply = await api.post("/api/devices?check=false", json={"name": name, "host": "127.0.0.1", "http_port": port,
                                                             "password": "Any-pass-1!", "tags": ["faulty"]})
    assert reply.status_code == 201, reply.text


def finished(device) -> dt.datetime:
    return dt.datetime.fromisoformat(device["finished_at"])


async def test_faults_are_reported_per_device_retried_and_never_stall_the_rest(api, fleet):
    async with black_hole() as silent, hang_up() as dropper:
        await add(api, "silent", silent.port)
        await add(api, "dropper", dropper.port)
        await add(api, "absent", closed_port())
        job = await run_op(api, "power", {"all": True}, {"action": "on"})

    assert job["status"] == "failed"
    assert job["counts"] == {"pending": 0, "running": 0, "succeeded": HEALTHY, "failed": 4, "cancelled": 0}
    devices = by_name(job)
    healthy = [devices[f"pc-{i}"] for i in range(HEALTHY)]
    assert {d["status"] for d in healthy} == {"succeeded"}
    assert all(fleet.engine(a).platform.power_state is PowerState.ON for a in fleet.addresses[:HEALTHY])

    expected = {"silent": "timeout", "dropper": "connection_lost", "absent": "unreachable",
                "wrong-password": "auth_refused"}
    assert {name: devices[name]["reason"] for name in expected} == expected
    # transient failures are retried up to the limit, a refused credential never (it would feed the lockout)
    assert {name: devices[name]["attempts"] for name in expected} == {
        "silent": 3, "dropper": 3, "absent": 3, "wrong-password": 1}
    assert silent.requests == 3
    assert dropper.requests == 3
    assert "credentials refused" in devices["wrong-password"]["error"]
    assert "no reply" in devices["silent"]["error"]
    # the healthy devices were done before the silent one had used up its attempts
    assert max(finished(d) for d in healthy) < finished(devices["silent"])

    states = {d["name"]: d["state"] for d in (await api.get("/api/devices", params={"limit": 100})).json()["items"]}
    assert states["silent"]["reachable"] is False
    assert "no reply" in states["silent"]["last_error"]
    assert states["pc-0"]["reachable"] is True


async def test_a_transient_drop_is_retried_and_succeeds_once(api, fleet):
    target = fleet.addresses[0]
    async with flaky_proxy(target, fleet.port(target), drops=1) as proxy:
        reply = await api.post("/api/devices?check=false", json={
            "name": "flaky", "host": "127.0.0.1", "http_port": proxy.port, "password": fleet.password})
        assert reply.status_code == 201
        job = await run_op(api, "power", {"names": ["flaky"]}, {"action": "on"})
    (device,) = job["devices"]
    assert (device["status"], device["attempts"]) == ("succeeded", 2)
    assert fleet.audit_events(target, AuditApp.REMOTE_CONTROL, 0) == 1


async def test_an_operation_that_may_have_acted_is_not_repeated(api, fleet):
    async with hang_up() as dropper, black_hole() as silent:
        await add(api, "dropper", dropper.port)
        await add(api, "silent", silent.port)
        job = await run_op(api, "power", {"tags": ["faulty"]}, {"action": "reset"})
    devices = by_name(job)
    for name in ("dropper", "silent"):
        assert devices[name]["attempts"] == 1
        assert "not repeated" in devices[name]["error"]
    assert dropper.requests == 1
    assert silent.requests == 1


async def test_unreachable_devices_are_retried_even_for_resets(api, fleet):
    await add(api, "absent", closed_port())
    job = await run_op(api, "power", {"names": ["absent"]}, {"action": "reset"})
    (device,) = job["devices"]
    assert (device["reason"], device["attempts"]) == ("unreachable", 3)  # nothing was sent: safe to try again
