"""Everything the console does for a LAN device, done for a CIRA device through the console's MPS: a power job
from the REST API, SOL through the relay's session opener, and the faults -- the tunnel cut (TCP killed) or
silenced mid-session, the device marked offline within the keepalive window, back online after the engine
redials, and a job queued while it was away run exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from tests.cira._kit import enable_redirection
from tests.console._kit import ADMIN_PASSWORD, login
from tests.console._mpskit import (
    WITHIN,
    Relay,
    add_cira_device,
    device_row,
    dial,
    dialling_engine,
    sim_machine,
    sol_echoes,
    start_mps,
    stored_online,
    until,
)
from tests.console.jobs._kit import client, run_op, wait_job

from outband.console.devices.connect import DeviceTarget
from outband.console.jobs.runner import LocalRunner
from outband.console.mps import MpsService
from outband.console.relay.kvm import KvmRelay
from outband.console.runtime import Runtime
from outband.engine.platforms.base import PowerState
from outband.engine.services.logs import AUDIT_KIND
from outband.proto.amtlog import AuditApp, AuditRecord
from outband.proto.redir.frames import RawData

AMT_PASSWORD = "Amt!pass-1234"
RFB_VERSION = b"RFB 003.008\n"


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx2.AsyncClient]:
    await runtime.start_service(LocalRunner())  # the default policy: a job waits for an offline device
    async with client(runtime) as admin:
        yield await login(admin, "admin", ADMIN_PASSWORD)


async def target_of(runtime: Runtime, device_id: int) -> DeviceTarget:
    device = await device_row(runtime, device_id)
    return DeviceTarget.of(device, runtime.box.decrypt(device.password_enc))


def power_ons(env_store_log: list[bytes]) -> int:
    """How many power-ups the engine audited (AMT's Remote Control event 0)."""
    records = [AuditRecord.decode(raw) for raw in env_store_log]
    return sum(1 for r in records if r.app_id == AuditApp.REMOTE_CONTROL and r.event_id == 0)


async def test_a_power_job_runs_over_cira(runtime: Runtime, api: httpx2.AsyncClient, tmp_path: Path) -> None:
    mps = await start_mps(runtime)
    machine = sim_machine("power")
    device_id = await add_cira_device(runtime, "cira-power", machine, AMT_PASSWORD)
    async with dialling_engine(tmp_path, dial(mps), machine, AMT_PASSWORD) as env:
        await stored_online(runtime, device_id, True)
        job = await run_op(api, "power", {"names": ["cira-power"]}, {"action": "on"})
        assert job["status"] == "succeeded", job
        assert machine.power_state is PowerState.ON
        assert power_ons(env.engine.store.read_log(AUDIT_KIND)) == 1
        state = await run_op(api, "power", {"names": ["cira-power"]}, {"action": "state"})
        assert state["devices"][0]["result"]["power"] == "on"
        assert (await device_row(runtime, device_id)).power_state == 2


@asynccontextmanager
async def redirection_ready(runtime: Runtime, tmp_path: Path, name: str) -> AsyncIterator[DeviceTarget]:
    """A powered-on CIRA device online through the console's MPS, SOL, IDE-R and KVM switched on (over the
    tunnel, as consoles do): its target, for the relay to open sessions to."""
    mps = await start_mps(runtime)
    machine = sim_machine(name, PowerState.ON)
    device_id = await add_cira_device(runtime, f"cira-{name}", machine, AMT_PASSWORD)
    async with dialling_engine(tmp_path, dial(mps), machine, AMT_PASSWORD):
        await stored_online(runtime, device_id, True)
        target = await target_of(runtime, device_id)
        async with runtime.connector.client(target) as amt:
            await enable_redirection(amt)
        yield target


async def test_sol_through_the_relay_over_cira(runtime: Runtime, tmp_path: Path) -> None:
    async with redirection_ready(runtime, tmp_path, "sol") as target:
        await sol_echoes(runtime, target, "over the console mps")


async def test_kvm_through_the_relay_over_cira(runtime: Runtime, tmp_path: Path) -> None:
    async with redirection_ready(runtime, tmp_path, "kvm") as target:
        relay = await KvmRelay.open(runtime, target)  # what the browser's KVM WebSocket opens
        try:
            rfb = relay.channel.early
            async with asyncio.timeout(WITHIN):
                while len(rfb) < len(RFB_VERSION):
                    item = await relay.channel.client.receive()
                    assert isinstance(item, RawData), item
                    rfb += item.data
            assert rfb.startswith(RFB_VERSION)  # the device's RFB handshake, for noVNC
        finally:
            await relay.close()


async def held_logins(mps: MpsService, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Hold every login at the MPS until the returned event is set: the device stays away as long as a test
    needs, while its engine keeps redialling."""
    gate = asyncio.Event()
    login_as_usual = mps._login

    async def held(*args: object) -> object:
        await gate.wait()
        return await login_as_usual(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(mps, "_login", held)
    return gate


@pytest.mark.parametrize("fault", ["cut", "silence"])
async def test_a_lost_tunnel_is_seen_redialled_and_a_job_queued_meanwhile_runs_once(
        runtime: Runtime, api: httpx2.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        fault: str) -> None:
    """``cut`` kills the TCP connection (both ends see it at once); ``silence`` leaves it open and passes
    nothing (only the missing keepalives tell): either way the device goes offline within the keepalive
    window, and comes back when the engine has redialled."""
    mps = await start_mps(runtime)
    machine = sim_machine(f"fault-{fault}")
    device_id = await add_cira_device(runtime, f"cira-{fault}", machine, AMT_PASSWORD)
    async with Relay(mps) as relay, dialling_engine(tmp_path, dial(relay), machine, AMT_PASSWORD) as env:
        first = await stored_online(runtime, device_id, True)
        gate = await held_logins(mps, monkeypatch)
        relay.cut() if fault == "cut" else relay.silence()

        gone = await stored_online(runtime, device_id, False)
        assert gone.last_error
        assert (await device_row(runtime, device_id)).reachable is False
        reply = await api.post("/api/operations/power", json={"target": {"names": [f"cira-{fault}"]},
                                                              "params": {"action": "on"}})
        assert reply.status_code == 202, reply.text
        job_id = reply.json()["id"]

        async def tried_while_away() -> bool:  # the runner met the device offline and keeps it pending
            row = (await api.get(f"/api/jobs/{job_id}")).json()["devices"][0]
            return row["status"] == "pending" and row["reason"] == "offline"

        await until(tried_while_away)
        row = (await api.get(f"/api/jobs/{job_id}")).json()["devices"][0]
        assert row["attempts"] == 0, row  # meeting the device away spends no attempt
        assert "dial in" in row["error"]
        await asyncio.sleep(4)  # longer than the default policy's three attempts take: still waiting
        row = (await api.get(f"/api/jobs/{job_id}")).json()["devices"][0]
        assert (row["status"], row["reason"], row["attempts"]) == ("pending", "offline", 0), row
        assert machine.power_state is not PowerState.ON
        assert env.client.status.connects == 1  # redials so far were held at the login

        gate.set()
        back = await stored_online(runtime, device_id, True)
        assert back.connected_since is not None
        assert first.connected_since is not None
        assert back.connected_since > first.connected_since
        job = await wait_job(api, job_id, seconds=WITHIN)
        assert job["status"] == "succeeded", job
        (row,) = job["devices"]
        assert row["attempts"] == 1  # the one that reached the device
        assert machine.power_state is PowerState.ON
        assert power_ons(env.engine.store.read_log(AUDIT_KIND)) == 1  # once, not once per attempt
        assert machine.boot_count == 1
        history = (await api.get(f"/api/devices/{device_id}/history")).json()["items"]
        tunnel_events = [c["reason"] for c in history if c["operation"] == "cira"]
        up = "tunnel up from 127.0.0.1 to MPS node node-a"
        assert tunnel_events == [up, f"tunnel ended: {gone.last_error}", up]  # newest first: back, the cut, the first
        assert [c["reachable"] for c in history if c["operation"] == "cira"] == [True, False, True]
