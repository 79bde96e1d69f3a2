"""Schedules: the API (validation, permissions), runs at their time as their creator, a missed run made up once
at start, and one job per run even with two schedulers racing."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from tests.console._kit import USER_PASSWORD, create_user, login
from tests.console.jobs._fleet import Fleet, running_fleet
from tests.console.jobs._kit import client, eventually, wait_job

from outband.console.db.models import AuditEntry, Job, Schedule, User
from outband.console.jobs.scheduler import Scheduler
from outband.console.permissions import Role
from outband.engine.platforms.base import PowerState

WEEKDAYS_7AM = {"name": "morning", "operation": "power", "params": {"action": "on"}, "target": {"tags": ["lab"]},
                "cron": "0 7 * * 1-5", "timezone": "Europe/Berlin"}


@pytest.fixture
async def fleet(tmp_path, api) -> Fleet:
    async with running_fleet(3, tmp_path / "fleet") as running:
        for body in running.device_rows():
            assert (await api.post("/api/devices?check=false", json={**body, "tags": ["lab"]})).status_code == 201
        yield running


async def jobs_of(runtime, schedule_id: int) -> list[Job]:
    async with runtime.db.read() as session:
        return list((await session.execute(select(Job).where(Job.schedule_id == schedule_id)
                                           .order_by(Job.id))).scalars())


async def test_create_validates_and_plans_the_next_run(api, roles):
    reply = await api.post("/api/schedules", json=WEEKDAYS_7AM)
    assert reply.status_code == 201, reply.text
    schedule = reply.json()
    next_run = dt.datetime.fromisoformat(schedule["next_run_at"])
    local = next_run.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute, local.isoweekday() <= 5) == (7, 0, True)
    assert next_run > dt.datetime.now(dt.UTC)
    assert (await api.post("/api/schedules", json=WEEKDAYS_7AM)).status_code == 409
    for change, where in [({"cron": "0 7 * *"}, "five fields"), ({"cron": "0 25 * * *"}, "hour"),
                          ({"timezone": "Mars/Base"}, "time zone"), ({"params": {"action": "fly"}}, "params"),
                          ({"operation": "explode"}, "no operation"), ({"target": {}}, "select devices")]:
        reply = await api.post("/api/schedules", json={**WEEKDAYS_7AM, "name": "other", **change})
        assert reply.status_code == 422, (change, reply.text)
        assert where in reply.text
    assert (await roles[Role.POWER_ONLY].post("/api/schedules", json={**WEEKDAYS_7AM, "name": "x"})).status_code == 403
    listed = (await roles[Role.VIEWER].get("/api/schedules")).json()
    assert [s["name"] for s in listed] == ["morning"]


async def test_update_disable_enable_delete(api):
    schedule = (await api.post("/api/schedules", json=WEEKDAYS_7AM)).json()
    disabled = (await api.patch(f"/api/schedules/{schedule['id']}", json={"enabled": False})).json()
    assert disabled["next_run_at"] is None
    changed = await api.patch(f"/api/schedules/{schedule['id']}", json={"enabled": True, "cron": "30 6 * * *",
                                                                        "timezone": "UTC"})
    assert changed.status_code == 200, changed.text
    assert dt.datetime.fromisoformat(changed.json()["next_run_at"]).time() == dt.time(6, 30)
    assert (await api.patch(f"/api/schedules/{schedule['id']}", json={"params": {"action": "x"}})).status_code == 422
    assert (await api.delete(f"/api/schedules/{schedule['id']}")).status_code == 204
    assert (await api.get(f"/api/schedules/{schedule['id']}")).status_code == 404


async def test_a_due_schedule_runs_once_as_its_creator(runtime, api, fleet):
    schedule = (await api.post("/api/schedules", json=WEEKDAYS_7AM)).json()
    due = dt.datetime.fromisoformat(schedule["next_run_at"])
    clock = [due - dt.timedelta(seconds=1)]
    scheduler = Scheduler(clock=lambda: clock[0])
    scheduler._runtime = runtime
    await scheduler.tick()
    assert await jobs_of(runtime, schedule["id"]) == []  # not yet
    clock[0] = due
    upcoming = await scheduler.tick()
    assert upcoming > due
    await scheduler.tick()  # the same moment again: nothing new
    (job,) = await jobs_of(runtime, schedule["id"])
    assert job.created_by == "admin"
    done = await wait_job(api, job.id)
    assert done["status"] == "succeeded"
    assert all(fleet.engine(a).platform.power_state is PowerState.ON for a in fleet.addresses)
    clock[0] = upcoming
    await scheduler.tick()
    assert len(await jobs_of(runtime, schedule["id"])) == 2


async def test_a_run_missed_while_down_is_made_up_once_at_start(runtime, api, fleet):
    schedule = (await api.post("/api/schedules", json={**WEEKDAYS_7AM, "cron": "*/5 * * * *"})).json()
    three_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    async with runtime.db.write() as session:
        await session.execute(update(Schedule).where(Schedule.id == schedule["id"]).values(next_run_at=three_days_ago))
    scheduler = Scheduler()
    await runtime.start_service(scheduler)

    async def ran() -> bool:
        return len(await jobs_of(runtime, schedule["id"])) >= 1

    await eventually(ran)
    await asyncio.sleep(0.3)
    assert len(await jobs_of(runtime, schedule["id"])) == 1  # 860 missed runs make one job
    after = (await api.get(f"/api/schedules/{schedule['id']}")).json()
    assert dt.datetime.fromisoformat(after["next_run_at"]) > dt.datetime.now(dt.UTC)
    assert after["last_run_at"] is not None


async def test_two_schedulers_racing_start_one_job(runtime, api, fleet):
    schedule = (await api.post("/api/schedules", json=WEEKDAYS_7AM)).json()
    due = dt.datetime.fromisoformat(schedule["next_run_at"])
    racers = [Scheduler(clock=lambda: due) for _ in range(2)]
    for racer in racers:
        racer._runtime = runtime
    await asyncio.gather(*(racer.tick() for racer in racers))
    assert len(await jobs_of(runtime, schedule["id"])) == 1


async def test_runs_are_refused_when_the_creator_lost_the_right_or_the_target_is_gone(runtime, api, fleet):
    user_id = await create_user(runtime, "op", Role.OPERATOR)
    async with client(runtime) as operator:
        await login(operator, "op", USER_PASSWORD)
        made = await operator.post("/api/schedules", json={**WEEKDAYS_7AM, "operation": "inventory", "params": {}})
        assert made.status_code == 201, made.text
    gone_tag = (await api.post("/api/schedules", json={**WEEKDAYS_7AM, "name": "gone",
                                                       "target": {"tags": ["lab"]}})).json()
    async with runtime.db.write() as session:
        await session.execute(update(User).where(User.id == user_id).values(role=Role.VIEWER))
    assert (await api.delete("/api/tags/lab")).status_code == 204
    due = max(dt.datetime.fromisoformat(made.json()["next_run_at"]),
              dt.datetime.fromisoformat(gone_tag["next_run_at"]))
    scheduler = Scheduler(clock=lambda: due)
    scheduler._runtime = runtime
    await scheduler.tick()
    async with runtime.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(Job))).scalar_one() == 0
        runs = (await session.execute(select(AuditEntry).where(AuditEntry.action == "schedule_run")
                                      .order_by(AuditEntry.id))).scalars().all()
    assert [(r.outcome, r.detail["schedule"]) for r in runs] == [("denied", "morning"), ("failed", "gone")]
    assert "no longer allows device.inventory" in runs[0].detail["reason"]
    assert "no such tag 'lab'" in runs[1].detail["reason"]
    assert runs[0].via == "system"
