"""The health poller keeps reachability and power state fresh, never polls one device twice at once, stays
within its concurrency, and leaves devices a job is talking to alone."""

from __future__ import annotations

import socket
from collections import Counter

import pytest
from sqlalchemy import select
from tests.console.jobs._faults import black_hole
from tests.console.jobs._fleet import Fleet, running_fleet
from tests.console.jobs._kit import eventually

from outband.console.db.models import Device
from outband.console.jobs.health import HealthPoller
from outband.engine.platforms.base import PowerAction


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Watch:
    """Wraps the connector: conversations open per device and in total, and the most of each ever seen."""

    def __init__(self, connector):
        self.inner = connector
        self.open: Counter[str] = Counter()
        self.started: Counter[str] = Counter()
        self.most_total = 0
        self.most_per_device = 0

    def client(self, target, *, operation="other"):
        client = self.inner.client(target, operation=operation)
        self.open[target.name] += 1
        self.started[target.name] += 1
        self.most_total = max(self.most_total, sum(self.open.values()))
        self.most_per_device = max(self.most_per_device, self.open[target.name])
        close = client.close

        async def counted_close():
            self.open[target.name] -= 1
            await close()

        client.close = counted_close
        return client

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
async def fleet(tmp_path, api) -> Fleet:
    async with running_fleet(4, tmp_path / "fleet") as running:
        for body in running.device_rows():
            assert (await api.post("/api/devices?check=false", json=body)).status_code == 201
        yield running


async def states(runtime) -> dict[str, Device]:
    async with runtime.db.read() as session:
        return {d.name: d for d in (await session.execute(select(Device))).scalars()}


async def test_polls_keep_reachability_and_power_state_fresh(runtime, api, fleet):
    await api.post("/api/devices?check=false", json={"name": "gone", "host": "127.0.0.1",
                                                     "http_port": closed_port(), "password": "Any-pass-1!"})
    assert {d.reachable for d in (await states(runtime)).values()} == {None}
    poller = HealthPoller(interval=0.3, concurrency=2, refresh=0.2)
    await runtime.start_service(poller)

    async def all_checked():
        return all(d.last_checked_at is not None for d in (await states(runtime)).values())

    await eventually(all_checked)
    found = await states(runtime)
    assert found["gone"].reachable is False
    assert "cannot connect" in found["gone"].last_error
    assert {found[f"pc-{i}"].reachable for i in range(4)} == {True}
    assert {found[f"pc-{i}"].power_state for i in range(4)} == {8}

    await fleet.engine(fleet.addresses[2]).platform.request_power(PowerAction.ON)

    async def noticed():
        return (await states(runtime))["pc-2"].power_state == 2

    await eventually(noticed)
    text = (await api.get("/metrics")).text
    assert 'outband_health_polls_total{outcome="ok"}' in text
    assert 'outband_health_polls_total{outcome="unreachable"}' in text


async def test_no_pile_up_and_bounded_concurrency(runtime, api):
    watch = Watch(runtime.connector)
    runtime.connector = watch
    async with black_hole() as silent:
        for i in range(6):
            await api.post("/api/devices?check=false", json={"name": f"silent-{i}", "host": "127.0.0.1",
                                                            "http_port": silent.port, "password": "Any-pass-1!"})
        poller = HealthPoller(interval=0.05, jitter=0.5, concurrency=3, refresh=0.05)
        await runtime.start_service(poller)

        async def several_rounds():
            return poller.polls_done >= 12

        await eventually(several_rounds, 30)
        await poller.stop()
    assert watch.most_total <= 3
    assert watch.most_per_device == 1  # a poll outlasting the interval is not joined by another
    found = await states(runtime)
    assert {d.reachable for d in found.values()} == {False}
    assert all("no reply" in d.last_error for d in found.values())


async def test_devices_a_job_holds_are_skipped(runtime, api, runner, fleet):
    watch = Watch(runtime.connector)
    runtime.connector = watch
    async with runtime.db.read() as session:
        held_id = (await session.execute(select(Device.id).where(Device.name == "pc-0"))).scalar_one()
    async with runner.locks.hold(held_id):
        poller = HealthPoller(interval=0.1, concurrency=4, refresh=0.1)
        await runtime.start_service(poller)

        async def others_polled_twice():
            return all(watch.started[f"pc-{i}"] >= 2 for i in (1, 2, 3))

        await eventually(others_polled_twice)
        assert watch.started["pc-0"] == 0
        assert runtime.metrics.registry.get_sample_value("outband_health_skipped_busy_total") >= 1

    async def polled_once_free():
        return watch.started["pc-0"] >= 1

    await eventually(polled_once_free)
