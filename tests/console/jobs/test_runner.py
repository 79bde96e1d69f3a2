"""LocalRunner: the global cap, one conversation per device, cancel, resuming what a dead process left, and
jobs whose devices or parameters went away."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

import pytest
from sqlalchemy import delete, select, update
from tests.console.jobs._faults import black_hole
from tests.console.jobs._fleet import Fleet, running_fleet
from tests.console.jobs._kit import by_name, eventually, wait_job

from outband.console.db.models import Device, Job, JobDevice, Status, Transport
from outband.console.jobs import store
from outband.console.jobs.execute import RetryPolicy
from outband.console.jobs.runner import JobRequest, LocalRunner, wait_for_job
from outband.console.mps.registry import TunnelRegistry
from outband.engine.platforms.base import PowerState
from outband.proto.amtlog import AuditApp


@pytest.fixture
async def fleet(tmp_path, api) -> Fleet:
    async with running_fleet(8, tmp_path / "fleet") as running:
        for body in running.device_rows():
            assert (await api.post("/api/devices?check=false", json=body)).status_code == 201
        yield running


async def device_ids(runtime, *names: str) -> list[int]:
    async with runtime.db.read() as session:
        query = select(Device.id).order_by(Device.id)
        if names:
            query = query.where(Device.name.in_(names))
        return list((await session.execute(query)).scalars())


class CountingConnector:
    """Wraps the console's connector to see how many device conversations are open at once."""

    def __init__(self, connector):
        self.inner = connector
        self.open = 0
        self.most = 0

    def client(self, target, *, operation="other"):
        client = self.inner.client(target, operation=operation)
        self.open += 1
        self.most = max(self.most, self.open)
        close = client.close

        async def counted_close():
            self.open -= 1
            await close()

        client.close = counted_close
        return client

    def __getattr__(self, name):
        return getattr(self.inner, name)


async def test_the_global_cap_bounds_conversations_across_jobs(runtime, api, monkeypatch):
    runner = runtime.service("jobs")
    monkeypatch.setattr(runner, "_concurrency", 3)
    runner._slots = asyncio.Semaphore(3)
    monkeypatch.setattr(runner, "retry", RetryPolicy(max_attempts=1))
    counting = CountingConnector(runtime.connector)
    monkeypatch.setattr(runtime, "connector", counting)
    async with black_hole() as silent:
        for i in range(8):
            await api.post("/api/devices?check=false", json={"name": f"slow-{i}", "host": "127.0.0.1",
                                                            "http_port": silent.port, "password": "Any-pass-1!"})
        first = (await api.post("/api/operations/power", json={"target": {"all": True},
                                                               "params": {"action": "state"}})).json()
        second = (await api.post("/api/operations/power", json={"target": {"all": True},
                                                                "params": {"action": "on"}})).json()
        done = [await wait_job(api, first["id"]), await wait_job(api, second["id"])]
    assert [job["counts"]["failed"] for job in done] == [8, 8]
    assert counting.most == 3
    assert counting.open == 0


async def test_one_conversation_per_device_across_jobs(runtime, api, fleet):
    names = ["pc-0", "pc-1", "pc-2"]
    replies = [await api.post("/api/operations/inventory", json={"target": {"names": names}}) for _ in range(3)]
    jobs = [await wait_job(api, r.json()["id"]) for r in replies]
    assert {job["status"] for job in jobs} == {"succeeded"}
    for name in names:
        spans = sorted((dt.datetime.fromisoformat(by_name(job)[name]["started_at"]),
                        dt.datetime.fromisoformat(by_name(job)[name]["finished_at"])) for job in jobs)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"{name}: two jobs talked to it at once"


async def test_cancel_stops_devices_not_yet_contacted(runtime, api, monkeypatch):
    runner = runtime.service("jobs")
    monkeypatch.setattr(runner, "_concurrency", 2)
    runner._slots = asyncio.Semaphore(2)
    async with black_hole() as silent:
        for i in range(10):
            await api.post("/api/devices?check=false", json={"name": f"slow-{i}", "host": "127.0.0.1",
                                                            "http_port": silent.port, "password": "Any-pass-1!"})
        job = (await api.post("/api/operations/power", json={"target": {"all": True},
                                                             "params": {"action": "on"}})).json()
        async with asyncio.timeout(10):
            await silent.arrived.wait()
        reply = await api.post(f"/api/jobs/{job['id']}/cancel")
        assert reply.status_code == 200, reply.text
        assert reply.json()["cancel_requested"] is True
        done = await wait_job(api, job["id"])
        sent = silent.requests
        await asyncio.sleep(0.3)
        assert silent.requests == sent  # nothing more goes out after the job ended
    assert done["status"] == "cancelled"
    assert done["counts"]["cancelled"] >= 8
    assert done["counts"]["cancelled"] + done["counts"]["failed"] == 10
    assert {d["status"] for d in done["devices"]} <= {"cancelled", "failed"}
    assert (await api.post(f"/api/jobs/{job['id']}/cancel")).status_code == 409
    assert (await api.post("/api/jobs/999999/cancel")).status_code == 404


async def test_a_restart_resumes_pending_rows_and_settles_interrupted_ones(runtime, api, fleet):
    """What a killed process leaves: a running job with rows done, rows claimed mid-call and rows untouched."""
    ids = await device_ids(runtime)
    for operation, params in (("power", {"action": "on"}), ("power", {"action": "cycle"})):
        async with runtime.db.write() as session:
            job_id = await store.create_job(session, operation=operation, params=params, device_ids=ids)
            rows = list((await session.execute(select(JobDevice).where(JobDevice.job_id == job_id)
                                               .order_by(JobDevice.id))).scalars())
            await session.execute(update(Job).where(Job.id == job_id).values(status=Status.RUNNING))
            rows[0].status, rows[0].attempts, rows[0].result = Status.SUCCEEDED, 1, {"changed": True}
            rows[1].status, rows[1].attempts = Status.RUNNING, 1  # claimed, outcome unknown
        fresh = LocalRunner(retry=RetryPolicy(base=0.01))
        await fresh.start(runtime)
        try:
            async with asyncio.timeout(30):
                final = await wait_for_job(runtime.db, fresh.events, job_id)
        finally:
            await fresh.stop()
        job = (await api.get(f"/api/jobs/{job_id}")).json()
        results = by_name(job)
        assert final["counts"]["pending"] == final["counts"]["running"] == 0
        assert results["pc-0"]["result"] == {"changed": True}  # a finished row is never run again
        if operation == "power" and params["action"] == "on":
            assert results["pc-1"]["status"] == "succeeded"  # power-on may be repeated: it ran again
            assert results["pc-1"]["attempts"] == 2
        else:
            assert results["pc-1"]["status"] == "failed"  # a cycle is not sent twice on a guess
            assert results["pc-1"]["reason"] == "interrupted"
            assert results["pc-1"]["attempts"] == 1
        assert {results[f"pc-{i}"]["status"] for i in range(2, 8)} == {"succeeded"}
    addresses = fleet.addresses
    assert fleet.audit_events(addresses[0], AuditApp.REMOTE_CONTROL, 0) == 0
    assert fleet.audit_events(addresses[1], AuditApp.REMOTE_CONTROL, 0) == 1
    assert fleet.audit_events(addresses[1], AuditApp.REMOTE_CONTROL, 2) == 0
    assert [fleet.audit_events(a, AuditApp.REMOTE_CONTROL, 2) for a in addresses[2:]] == [1] * 6


async def test_deleted_devices_and_unusable_parameters(runtime, api, fleet):
    ids = await device_ids(runtime, "pc-0", "pc-1")
    runner = runtime.service("jobs")
    async with runtime.db.write() as session:
        job_id = await store.create_job(session, operation="power", params={"action": "on"}, device_ids=ids)
        await session.execute(delete(Device).where(Device.id == ids[0]))
        bad = await store.create_job(session, operation="power", params={"action": "explode"}, device_ids=ids[1:])
    await runner.enqueue(job_id)
    await runner.enqueue(bad)
    job = await wait_job(api, job_id)
    assert by_name(job)["pc-0"]["reason"] == "no_device"
    assert by_name(job)["pc-0"]["device_id"] is None
    assert by_name(job)["pc-1"]["status"] == "succeeded"
    broken = await wait_job(api, bad)
    assert broken["status"] == "failed"
    assert broken["devices"][0]["reason"] == "bad_params"
    assert fleet.engine(fleet.addresses[1]).platform.power_state is PowerState.ON


async def test_submit_refuses_unknown_operations(runtime, runner):
    with pytest.raises(ValueError, match="no operation"):
        await runner.submit(JobRequest("launch_missiles", {}, [1]))


async def test_a_stopped_runner_leaves_work_for_the_next_start(runtime, api, fleet):
    runner = runtime.service("jobs")
    await runner.stop()
    ids = await device_ids(runtime)
    async with runtime.db.write() as session:
        job_id = await store.create_job(session, operation="power", params={"action": "on"}, device_ids=ids)
    await runner.enqueue(job_id)  # stopping: stored, not run
    async with runtime.db.read() as session:
        assert (await session.get(Job, job_id)).status is Status.PENDING
    fresh = LocalRunner()
    await fresh.start(runtime)
    try:
        async with asyncio.timeout(30):
            final = await wait_for_job(runtime.db, fresh.events, job_id)
    finally:
        await fresh.stop()
    assert final["counts"]["succeeded"] == 8


async def cira_laptop(runtime, api, name: str) -> int:
    """A CIRA device that has never dialled in."""
    reply = await api.post("/api/devices?check=false", json={"name": name, "host": f"{name}.example",
                                                            "password": "Any-pass-1!"})
    assert reply.status_code == 201, reply.text
    async with runtime.db.write() as session:
        await session.execute(update(Device).where(Device.name == name).values(transport=Transport.CIRA))
    return reply.json()["id"]


async def test_an_offline_cira_device_waits_without_spending_attempts_then_fails_as_offline(runtime, api, monkeypatch):
    runner = runtime.service("jobs")
    monkeypatch.setattr(runner, "retry", RetryPolicy(max_attempts=1, offline_wait=0.6, offline_poll=0.1))
    await cira_laptop(runtime, api, "laptop")
    retries = runner.metrics.retries.labels(operation="power", reason="offline")
    before = retries._value.get()
    job = (await api.post("/api/operations/power", json={"target": {"names": ["laptop"]},
                                                         "params": {"action": "on"}})).json()
    done = await wait_job(api, job["id"])
    (row,) = done["devices"]
    assert (done["status"], row["status"], row["reason"]) == ("failed", "failed", "offline"), done
    assert row["attempts"] == 1  # one attempt allowed, yet it was looked for several times
    assert retries._value.get() - before >= 2
    assert "did not dial in within 0.6 s" in row["error"]
    async with runtime.db.read() as session:
        device = (await session.execute(select(Device).where(Device.name == "laptop"))).scalar_one()
    assert device.reachable is False
    assert "offline" in device.last_error


async def test_cancelling_a_job_forgets_its_wait_for_an_offline_device(runtime, api, monkeypatch):
    registry = TunnelRegistry()
    monkeypatch.setattr(runtime.connector, "cira", registry)
    device_id = await cira_laptop(runtime, api, "closed-laptop")
    job = (await api.post("/api/operations/power", json={"target": {"names": ["closed-laptop"]},
                                                         "params": {"action": "on"}})).json()

    async def waiting_for_it() -> bool:
        return bool(registry._waiters.get(device_id))

    await eventually(waiting_for_it)
    waiting = (await api.get(f"/api/jobs/{job['id']}")).json()
    assert (waiting["status"], waiting["waiting_offline"], waiting["counts"]["pending"]) == ("running", 1, 1)
    assert (await api.post(f"/api/jobs/{job['id']}/cancel")).status_code in (200, 202)
    done = await wait_job(api, job["id"])
    assert done["status"] == "cancelled"
    assert done["devices"][0]["status"] == "cancelled"
    assert device_id not in registry._waiters
