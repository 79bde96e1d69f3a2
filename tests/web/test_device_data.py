"""The read-only views of what the console stored about a device: its newest inventory, its log records page
by page, and its reachability over recent job attempts."""

from __future__ import annotations

import datetime as dt

from tests.web._kit import Served

from outband.console.db.models import (
    Device,
    DeviceLogRecord,
    InventorySnapshot,
    Job,
    JobDevice,
    LogKind,
    Status,
)

T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


async def stored_device(console: Served) -> int:
    async with console.runtime.db.write() as session:
        device = Device(name="pc-1", host="10.0.0.1", password_enc=console.runtime.box.encrypt("x"))
        session.add(device)
        await session.flush()
        session.add_all([
            InventorySnapshot(device_id=device.id, taken_at=T0, data={"CIM_Chassis": [{"Model": "old"}]}),
            InventorySnapshot(device_id=device.id, taken_at=T0 + dt.timedelta(days=1),
                              data={"CIM_Chassis": [{"Model": "new"}]}),
            *(DeviceLogRecord(device_id=device.id, kind=LogKind.EVENT, seq=seq, recorded_at=T0, data={"n": seq})
              for seq in range(1, 8)),
            DeviceLogRecord(device_id=device.id, kind=LogKind.AUDIT, seq=1, data={"description": "login"}),
        ])
        job = Job(operation="power", params={"action": "state"}, status=Status.SUCCEEDED, total=3)
        session.add(job)
        await session.flush()
        outcomes = [(Status.SUCCEEDED, None), (Status.FAILED, "unreachable"), (Status.FAILED, "refused"),
                    (Status.CANCELLED, None)]
        for minutes, (status, reason) in enumerate(outcomes):
            other = Job(operation="inventory", status=Status.SUCCEEDED, total=1)
            session.add(other)
            await session.flush()
            session.add(JobDevice(job_id=other.id, device_id=device.id, device_name="pc-1", status=status,
                                  finished_at=T0 + dt.timedelta(minutes=minutes),
                                  result={"reason": reason} if reason else {"power": "on"}))
        return device.id


async def test_a_viewer_reads_the_newest_inventory_the_logs_and_the_history(console, viewer) -> None:
    device_id = await stored_device(console)
    async with viewer.get(f"{console.url}/api/devices/{device_id}/inventory") as reply:
        assert [s["data"] for s in await reply.json()] == [{"CIM_Chassis": [{"Model": "new"}]}]
    async with viewer.get(f"{console.url}/api/devices/{device_id}/inventory?limit=5") as reply:
        assert [s["data"]["CIM_Chassis"][0]["Model"] for s in await reply.json()] == ["new", "old"]
    async with viewer.get(f"{console.url}/api/devices/{device_id}/logs?limit=3") as reply:
        page = await reply.json()
    assert [r["seq"] for r in page["items"]] == [7, 6, 5]
    async with viewer.get(f"{console.url}/api/devices/{device_id}/logs?limit=3&before={page['next_before']}") as reply:
        assert [r["seq"] for r in (await reply.json())["items"]] == [4, 3, 2]
    async with viewer.get(f"{console.url}/api/devices/{device_id}/logs?kind=audit") as reply:
        page = await reply.json()
    assert [r["data"]["description"] for r in page["items"]] == ["login"]
    assert page["next_before"] is None
    async with viewer.get(f"{console.url}/api/devices/{device_id}/history") as reply:
        contacts = (await reply.json())["items"]
    # newest first; a refusal is an answer (reachable), a cancelled attempt is no contact at all
    assert [(c["reachable"], c["reason"]) for c in contacts] == [
        (True, "refused"), (False, "unreachable"), (True, None)]


async def test_a_device_without_data_and_a_missing_device(console, viewer) -> None:
    async with console.runtime.db.write() as session:
        device = Device(name="bare", host="10.0.0.2", password_enc=console.runtime.box.encrypt("x"))
        session.add(device)
        await session.flush()
        bare = device.id
    async with viewer.get(f"{console.url}/api/devices/{bare}/inventory") as reply:
        assert await reply.json() == []
    async with viewer.get(f"{console.url}/api/devices/{bare}/history") as reply:
        assert (await reply.json())["items"] == []
    for view in ("inventory", "logs", "history"):
        async with viewer.get(f"{console.url}/api/devices/999/{view}") as reply:
            assert reply.status == 404
            assert (await reply.json())["detail"] == "no such device"
