"""A console managing a simulated fleet of 120 engines: onboarding through the API, bulk jobs by group, tag and
selection with a result per device, the progress stream, and the metrics they leave."""

from __future__ import annotations

import json
import time

import pytest
from tests.console.jobs._fleet import Fleet, running_fleet
from tests.console.jobs._kit import by_name, run_op

from outband.engine.platforms.base import PowerState

FLEET = 120
pytestmark = pytest.mark.slow


@pytest.fixture
async def fleet(tmp_path, api) -> Fleet:
    async with running_fleet(FLEET, tmp_path / "fleet") as running:
        csv = running.csv(tags="lab", group=lambda i: "even" if i % 2 == 0 else "odd")
        reply = await api.post("/api/devices/import", files={"file": ("fleet.csv", csv, "text/csv")},
                               data={"password": running.password, "check": "true"})
        assert reply.status_code == 200, reply.text
        report = reply.json()
        assert (report["added"], report["failed"]) == (FLEET, 0)
        yield running


async def test_onboarding_checked_every_device(api, fleet):
    page = (await api.get("/api/devices", params={"limit": 1000})).json()
    assert page["total"] == FLEET
    assert {d["state"]["reachable"] for d in page["items"]} == {True}
    assert {d["group"] for d in page["items"]} == {"even", "odd"}
    groups = {g["name"]: g["devices"] for g in (await api.get("/api/groups")).json()}
    assert groups == {"even": FLEET // 2, "odd": FLEET // 2}


async def test_bulk_power_by_group_then_state_of_all(api, fleet):
    started = time.perf_counter()
    job = await run_op(api, "power", {"groups": ["even"]}, {"action": "on"})
    elapsed = time.perf_counter() - started
    print(f"power on {job['total']} devices: {elapsed:.2f} s, {job['total'] / elapsed:.0f} devices/s")
    assert job["status"] == "succeeded"
    assert job["total"] == FLEET // 2
    assert len(job["devices"]) == FLEET // 2
    assert {d["status"] for d in job["devices"]} == {"succeeded"}
    assert {d["attempts"] for d in job["devices"]} == {1}
    on = {a for a in fleet.addresses if fleet.engine(a).platform.power_state is PowerState.ON}
    assert on == set(fleet.addresses[0::2])

    state = await run_op(api, "power", {"all": True}, {"action": "state"})
    assert state["total"] == FLEET
    results = by_name(state)
    for i, address in enumerate(fleet.addresses):
        assert results[f"pc-{i}"]["result"]["power_state"] == int(fleet.engine(address).platform.power_state)
    devices = (await api.get("/api/devices", params={"power_state": 2, "limit": 1000})).json()
    assert devices["total"] == FLEET // 2


async def test_job_pages_and_filters(api, fleet):
    job = await run_op(api, "power", {"tags": ["lab"]}, {"action": "state"})
    first = (await api.get(f"/api/jobs/{job['id']}", params={"limit": 50})).json()
    assert len(first["devices"]) == 50
    rest = (await api.get(f"/api/jobs/{job['id']}", params={"after": first["next_after"], "limit": 1000})).json()
    assert len(rest["devices"]) == FLEET - 50
    assert rest["next_after"] is None
    assert {d["device_name"] for d in first["devices"] + rest["devices"]} == {f"pc-{i}" for i in range(FLEET)}
    failed = (await api.get(f"/api/jobs/{job['id']}", params={"status": "failed"})).json()
    assert failed["devices"] == []
    listed = (await api.get("/api/jobs", params={"operation": "power", "limit": 1})).json()
    assert listed["items"][0]["id"] == job["id"]


async def test_progress_stream_reports_every_device_once(api, fleet):
    reply = await api.post("/api/operations/inventory", json={"target": {"groups": ["odd"]}})
    assert reply.status_code == 202
    job_id = reply.json()["id"]
    events = []
    async with api.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = None
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                assert event["type"] == kind
                events.append(event)
    assert events[0]["type"] == "job"
    assert events[-1]["type"] == "job"
    assert events[-1]["status"] == "succeeded"
    assert events[-1]["counts"]["succeeded"] == FLEET // 2
    devices = [e for e in events if e["type"] == "device"]
    assert len(devices) + events[0]["counts"]["succeeded"] == FLEET // 2  # the snapshot counted any done before
    assert len({e["device_id"] for e in devices}) == len(devices)
    assert all(e["result"]["snapshot_id"] for e in devices)
    assert devices[-1]["counts"]["succeeded"] == FLEET // 2
    # a finished job's stream is one snapshot
    again = await api.get(f"/api/jobs/{job_id}/events")
    assert again.text.count("event: ") == 1
    assert '"status":"succeeded"' in again.text


async def test_metrics_count_jobs_and_time_wsman(api, fleet):
    await run_op(api, "power", {"groups": ["odd"]}, {"action": "on"})
    text = (await api.get("/metrics")).text
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
               for line in text.splitlines() if line and not line.startswith("#")}
    assert samples['outband_jobs_submitted_total{operation="power"}'] == 1
    assert samples['outband_job_device_results_total{operation="power",status="succeeded"}'] == FLEET // 2
    assert samples['outband_wsman_request_seconds_count{operation="power"}'] >= FLEET // 2
    assert samples['outband_job_device_attempt_seconds_count{operation="power"}'] == FLEET // 2
    assert samples['outband_devices_by_power_state{state="on"}'] == FLEET // 2
    assert samples['outband_devices_by_reachability{state="reachable"}'] == FLEET
    assert samples["outband_jobs_running"] == 0
