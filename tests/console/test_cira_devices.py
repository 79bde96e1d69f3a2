"""CIRA devices through the devices API: added by UUID (no host, no connection check: it has not dialled in yet),
with their own MPS login or the shared one, the MPS password write-only, a UUID only one CIRA device may have,
changed between transports, imported from CSV; and once an engine dials in with that login, the API shows it
online with its tunnel's details and the health poller has read its power state."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx2
from sqlalchemy import select
from tests.console._mpskit import dial, dialling_engine, sim_machine, start_mps, stored_online, until
from tests.console.test_devices import closed_port

from outband.console.db.models import Device
from outband.console.jobs.health import HealthPoller
from outband.console.runtime import Runtime
from outband.engine.platforms.base import PowerState

AMT_PASSWORD = "Amt!pass-1234"
OWN_LOGIN = ("laptop-7", "Cira!own-9876")


def cira_body(name: str, device_uuid: str, **extra: object) -> dict[str, object]:
    return {"name": name, "transport": "cira", "uuid": device_uuid, "password": AMT_PASSWORD, **extra}


async def stored(runtime: Runtime, device_id: int) -> Device:
    async with runtime.db.read() as session:
        device = await session.get(Device, device_id)
        assert device is not None
        return device


async def test_a_cira_device_is_added_by_uuid_without_a_check(runtime: Runtime, admin: httpx2.AsyncClient) -> None:
    device_uuid = str(uuid.uuid4())
    reply = await admin.post("/api/devices", json=cira_body(
        "laptop", device_uuid.upper(), cira_username=OWN_LOGIN[0], cira_password=OWN_LOGIN[1]))
    assert reply.status_code == 201, reply.text  # check=true (the default) did not try to reach it
    device = reply.json()
    assert device["transport"] == "cira"
    assert device["host"] == device_uuid  # the name its certificate is checked against, unless given
    assert device["cira"]["login"] == "own"
    assert device["cira"]["cira_username"] == OWN_LOGIN[0]
    assert device["cira"]["online"] is False
    assert device["cira"]["connected_since"] is None
    assert OWN_LOGIN[1] not in reply.text
    assert AMT_PASSWORD not in reply.text
    row = await stored(runtime, device["id"])
    assert row.uuid == device_uuid  # canonical form: what the MPS compares with the UUID the device presents
    assert row.cira_password_enc is not None
    assert OWN_LOGIN[1] not in row.cira_password_enc
    assert runtime.box.decrypt(row.cira_password_enc) == OWN_LOGIN[1]
    listed = (await admin.get("/api/devices")).json()["items"]
    assert [d["cira"]["login"] for d in listed] == ["own"]


async def test_what_a_cira_device_needs_and_what_only_one_may_have(admin: httpx2.AsyncClient) -> None:
    device_uuid = str(uuid.uuid4())
    refusals = {
        "no uuid": {"name": "a", "transport": "cira", "password": AMT_PASSWORD},
        "no host": {"name": "b", "password": AMT_PASSWORD},
        "half a login": cira_body("c", device_uuid, cira_username="only-the-name"),
        "login for a LAN device": {"name": "d", "host": "10.0.0.4", "password": AMT_PASSWORD,
                                   "cira_username": "x", "cira_password": "Some-pass-1"},
        "not a uuid": cira_body("e", "not-a-uuid"),
    }
    for why, body in refusals.items():
        reply = await admin.post("/api/devices", json=body)
        assert reply.status_code == 422, (why, reply.text)
    assert (await admin.post("/api/devices", json=cira_body("first", device_uuid))).status_code == 201
    twin = await admin.post("/api/devices", json=cira_body("second", device_uuid))
    assert twin.status_code == 409
    assert device_uuid in twin.text
    lan_twin = await admin.post("/api/devices?check=false", json={  # a LAN device may share it (dual-homed PC)
        "name": "lan-side", "host": "10.0.0.9", "uuid": device_uuid, "password": AMT_PASSWORD})
    assert lan_twin.status_code == 201, lan_twin.text


async def test_a_device_moves_between_transports_and_logins(runtime: Runtime, admin: httpx2.AsyncClient) -> None:
    added = await admin.post("/api/devices?check=false", json={"name": "pc", "host": "10.0.0.5",
                                                               "password": AMT_PASSWORD})
    device_id = added.json()["id"]
    assert added.json()["cira"] is None
    to_cira = await admin.patch(f"/api/devices/{device_id}", json={"transport": "cira"})
    assert to_cira.status_code == 422  # not without the UUID it will present
    device_uuid = str(uuid.uuid4())
    to_cira = await admin.patch(f"/api/devices/{device_id}", json={  # checked only when it is connected: it is not
        "transport": "cira", "uuid": device_uuid, "cira_username": OWN_LOGIN[0], "cira_password": OWN_LOGIN[1]})
    assert to_cira.status_code == 200, to_cira.text
    assert to_cira.json()["cira"]["login"] == "own"
    half = await admin.patch(f"/api/devices/{device_id}", json={"cira_username": None})
    assert half.status_code == 422
    shared = await admin.patch(f"/api/devices/{device_id}", json={"cira_username": None, "cira_password": None})
    assert shared.json()["cira"] == {**shared.json()["cira"], "login": "shared", "cira_username": None}
    row = await stored(runtime, device_id)
    assert (row.cira_username, row.cira_password_enc) == (None, None)
    back = await admin.patch(f"/api/devices/{device_id}?check=false", json={"transport": "direct"})
    assert back.json()["cira"] is None


async def test_csv_import_takes_cira_rows(runtime: Runtime, admin: httpx2.AsyncClient) -> None:
    one, two = str(uuid.uuid4()), str(uuid.uuid4())
    csv = "\n".join([
        "name,host,http_port,transport,uuid,cira_username,cira_password",
        f"branch-1,,,cira,{one},b1,Branch!pass-1",
        f"branch-2,,,cira,{two},,",
        f"branch-3,,,cira,{one},,",  # the same UUID twice in a file
        "branch-4,,,cira,,,",  # no UUID
        f"lan-1,127.0.0.1,{closed_port()},,,,",
    ]) + "\n"
    reply = await admin.post("/api/devices/import", files={"file": ("fleet.csv", csv.encode(), "text/csv")},
                             data={"password": AMT_PASSWORD, "check": "true"})
    assert reply.status_code == 200, reply.text
    rows = {r["name"]: r for r in reply.json()["rows"]}
    assert rows["branch-1"]["status"] == rows["branch-2"]["status"] == "added"
    assert "already used on line 2" in rows["branch-3"]["error"]
    assert "uuid" in rows["branch-4"]["error"]
    assert rows["lan-1"]["status"] == "failed"  # the check was asked for (and skipped for the CIRA rows)
    async with runtime.db.read() as session:
        found = {d.name: d for d in (await session.execute(select(Device))).scalars()}
    assert found["branch-1"].cira_username == "b1"
    assert found["branch-2"].cira_username is None
    assert found["branch-2"].uuid == two


async def test_an_added_cira_device_dials_in_with_its_own_login_and_shows_online(
        runtime: Runtime, admin: httpx2.AsyncClient, tmp_path: Path) -> None:
    poller = HealthPoller(interval=3600)  # its own schedule would not come round in this test
    await runtime.start_service(poller)
    mps = await start_mps(runtime)
    machine = sim_machine("api-laptop", power=PowerState.ON)
    added = await admin.post("/api/devices", json=cira_body(
        "api-laptop", machine.profile.system_uuid, cira_username=OWN_LOGIN[0], cira_password=OWN_LOGIN[1]))
    device_id = added.json()["id"]
    async with dialling_engine(tmp_path, dial(mps, user=OWN_LOGIN[0], password=OWN_LOGIN[1]), machine, AMT_PASSWORD):
        await stored_online(runtime, device_id, True)
        shown = (await admin.get(f"/api/devices/{device_id}")).json()
        assert shown["cira"]["online"] is True
        assert shown["cira"]["mps_node"] == "node-a"
        assert shown["cira"]["peer"].startswith("127.0.0.1")
        assert shown["cira"]["connected_since"] is not None

        async def power_read() -> bool:  # read through the tunnel on dial-in, not at the poller's next round
            return (await stored(runtime, device_id)).power_state == 2

        await until(power_read)


async def test_the_health_poller_leaves_a_cira_device_to_the_process_holding_its_tunnel(
        runtime: Runtime, admin: httpx2.AsyncClient) -> None:
    poller = HealthPoller(interval=3600)
    await runtime.start_service(poller)
    added = await admin.post("/api/devices", json=cira_body("away-laptop", str(uuid.uuid4())))
    device_id = added.json()["id"]
    skipped = poller.metrics.skipped_elsewhere
    before = skipped._value.get()
    poller.poll_soon(device_id)

    async def passed_over() -> bool:
        return skipped._value.get() > before

    await until(passed_over)
    device = await stored(runtime, device_id)
    assert (device.last_checked_at, device.reachable, device.last_error) == (None, None, None)  # no call was made
