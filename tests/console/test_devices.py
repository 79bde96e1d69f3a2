"""Devices: adding checks the device by connecting (against a real engine), editing, removing, listing,
tags, groups and selections."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import select

from outband.aio.tls import fingerprint_of
from outband.client import TransportError, services
from outband.console.db.models import AuditEntry, Device, audit_devices
from outband.console.devices.repository import SelectionError, load_targets, record_state, resolve_selection
from outband.console.permissions import Role
from outband.console.schemas import Selection
from outband.testing.engine import running_engine


def device_body(env, name="pc-1", **extra):
    return {"name": name, "host": "127.0.0.1", "http_port": env.port, "password": env.password, **extra}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def last_audit(runtime):
    async with runtime.db.read() as session:
        entry = (await session.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))).scalar_one()
        devices = (await session.execute(select(audit_devices.c.device_id).where(
            audit_devices.c.audit_id == entry.id))).scalars().all()
    return entry, list(devices)


async def device_count(runtime) -> int:
    async with runtime.db.read() as session:
        return len((await session.execute(select(Device.id))).all())


async def test_add_checks_the_device_and_records_what_it_said(runtime, admin, engine_env):
    reply = await admin.post("/api/devices", json=device_body(engine_env, tags=["lab", "floor-2"], group="site-a"))
    assert reply.status_code == 201, reply.text
    device = reply.json()
    assert "password" not in device
    assert engine_env.password not in reply.text
    assert device["tags"] == ["floor-2", "lab"]
    assert device["group"] == "site-a"
    state = device["state"]
    assert state["reachable"] is True
    assert state["last_seen_at"] is not None
    assert state["amt_version"] == ".".join(engine_env.engine.amt_version.split(".")[:3])
    assert state["power_state"] == int(engine_env.machine.power_state)
    assert state["uuid"] == engine_env.machine.profile.system_uuid  # PlatformGUID's byte order undone
    assert state["provisioning_mode"] in ("acm", "ccm", "pre")
    entry, devices = await last_audit(runtime)
    assert (entry.actor, entry.action, entry.outcome, devices) == ("admin", "add_device", "ok", [device["id"]])


async def test_wrong_password_is_refused_and_nothing_is_stored(runtime, admin, engine_env):
    reply = await admin.post("/api/devices", json=device_body(engine_env, password="Wrong-pass-1"))
    assert reply.status_code == 422
    failure = reply.json()["detail"]
    assert failure["reason"] == "auth_refused"
    assert "refused" in failure["message"]
    assert await device_count(runtime) == 0
    entry, _ = await last_audit(runtime)
    assert (entry.action, entry.outcome, entry.status_code) == ("add_device", "failed", 422)
    assert "Wrong-pass-1" not in str(entry.detail)


async def test_unreachable_device_is_refused(admin):
    reply = await admin.post("/api/devices", json={"name": "gone", "host": "127.0.0.1", "http_port": closed_port(),
                                                   "password": "Secret-1"})
    assert reply.status_code == 422
    assert reply.json()["detail"]["reason"] == "unreachable"


async def test_add_without_check_stores_an_unknown_state(admin):
    reply = await admin.post("/api/devices?check=false", json={"name": "later", "host": "192.0.2.7",
                                                               "password": "Secret-1"})
    assert reply.status_code == 201
    assert reply.json()["state"]["reachable"] is None


async def test_tls_pin_is_checked(admin, tmp_path: Path):
    async with running_engine(tls_dir=tmp_path / "tls") as env:
        actual = fingerprint_of(tmp_path / "tls" / "cert.pem")
        body = device_body(env, use_tls=True, tls_port=env.tls_port)
        untrusted = await admin.post("/api/devices", json=body)
        assert untrusted.status_code == 422
        assert untrusted.json()["detail"]["reason"] == "tls_untrusted"
        assert untrusted.json()["detail"]["presented_fingerprint"] == actual
        wrong = await admin.post("/api/devices", json={**body, "fingerprint": "ab" * 32})
        assert wrong.json()["detail"]["reason"] == "tls_pin_mismatch"
        assert actual in wrong.json()["detail"]["message"]
        pinned = await admin.post("/api/devices", json={**body, "fingerprint": ":".join(
            actual[i:i + 2].upper() for i in range(0, 64, 2))})
        assert pinned.status_code == 201, pinned.text
        assert pinned.json()["fingerprint"] == actual
        assert pinned.json()["state"]["reachable"] is True


async def test_duplicate_name_conflicts(admin):
    body = {"name": "twin", "host": "192.0.2.8", "password": "Secret-1"}
    assert (await admin.post("/api/devices?check=false", json=body)).status_code == 201
    assert (await admin.post("/api/devices?check=false", json=body)).status_code == 409


@pytest.mark.parametrize("bad", [
    {"host": "not a host"}, {"host": "-bad-.example"}, {"http_port": 0}, {"http_port": 70000},
    {"fingerprint": "zz"}, {"name": ""}, {"name": "x\x00y"}, {"tags": ["has space"]}, {"password": ""},
    {"unknown_field": 1},
])
async def test_bad_device_input_is_a_422(admin, bad):
    body = {"name": "pc", "host": "192.0.2.9", "password": "Secret-1", **bad}
    assert (await admin.post("/api/devices?check=false", json=body)).status_code == 422


async def test_edit_rechecks_connection_changes(runtime, admin, engine_env):
    device = (await admin.post("/api/devices", json=device_body(engine_env))).json()
    url = f"/api/devices/{device['id']}"
    renamed = await admin.patch(url, json={"name": "pc-renamed", "tags": ["x"], "group": "g"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "pc-renamed"
    refused = await admin.patch(url, json={"password": "Wrong-pass-2"})
    assert refused.status_code == 422
    assert refused.json()["detail"]["reason"] == "auth_refused"
    async with runtime.db.read() as session:
        [target] = await load_targets(session, runtime.box, [device["id"]])
    assert target.password == engine_env.password  # the refused change left the credential alone
    assert (await admin.patch(url, json={"group": None, "tags": []})).json()["group"] is None
    moved = await admin.patch(url + "?check=false", json={"http_port": closed_port()})
    assert moved.status_code == 200
    assert (await admin.patch(url, json={"http_port": engine_env.port})).json()["state"]["reachable"] is True


async def test_delete(runtime, admin):
    device = (await admin.post("/api/devices?check=false", json={"name": "bye", "host": "192.0.2.10",
                                                                 "password": "Secret-1"})).json()
    assert (await admin.delete(f"/api/devices/{device['id']}")).status_code == 204
    assert (await admin.get(f"/api/devices/{device['id']}")).status_code == 404
    assert (await admin.delete(f"/api/devices/{device['id']}")).status_code == 404
    entry, devices = await last_audit(runtime)
    assert (entry.action, entry.outcome, devices) == ("delete_device", "failed", [device["id"]])


async def add_fleet(admin, count=12):
    for i in range(count):
        body = {"name": f"pc-{i:02}", "host": f"192.0.2.{i + 20}", "password": "Secret-1",
                "tags": ["even" if i % 2 == 0 else "odd"] + (["lab"] if i < 3 else []),
                "group": "north" if i < 6 else "south"}
        assert (await admin.post("/api/devices?check=false", json=body)).status_code == 201


async def test_list_filters_and_pages(admin):
    await add_fleet(admin)
    page = (await admin.get("/api/devices", params={"limit": 5})).json()
    assert page["total"] == 12
    assert [d["name"] for d in page["items"]] == [f"pc-{i:02}" for i in range(5)]
    assert (await admin.get("/api/devices", params={"offset": 10})).json()["items"][0]["name"] == "pc-10"
    assert (await admin.get("/api/devices", params={"tag": "lab"})).json()["total"] == 3
    assert (await admin.get("/api/devices", params={"group": "south", "tag": "odd"})).json()["total"] == 3
    assert (await admin.get("/api/devices", params={"search": "192.0.2.2"})).json()["total"] == 10
    assert (await admin.get("/api/devices", params={"search": "%"})).json()["total"] == 0
    assert (await admin.get("/api/devices", params={"reachable": "true"})).json()["total"] == 0


async def test_tags_groups_and_selections(runtime, admin):
    await add_fleet(admin)
    tagged = await admin.post("/api/devices/tags", json={"target": {"groups": ["north"], "names": ["pc-11"]},
                                                         "add": ["patch-tuesday"], "remove": ["lab"]})
    assert tagged.json() == {"devices": 7}
    tags = {t["name"]: t["devices"] for t in (await admin.get("/api/tags")).json()}
    assert tags == {"even": 6, "odd": 6, "lab": 0, "patch-tuesday": 7}
    groups = {g["name"]: g["devices"] for g in (await admin.get("/api/groups")).json()}
    assert groups == {"north": 6, "south": 6}
    unknown = await admin.post("/api/devices/tags", json={"target": {"tags": ["nope"]}, "add": ["x"]})
    assert unknown.status_code == 422
    assert "tag 'nope'" in unknown.json()["detail"]
    assert (await admin.post("/api/devices/tags", json={"target": {}, "add": ["x"]})).status_code == 422
    async with runtime.db.read() as session:
        ids = await resolve_selection(session, Selection(tags=["odd"], groups=["north"]))
        assert len(ids) == 9
        assert len(await resolve_selection(session, Selection(all=True))) == 12
        with pytest.raises(SelectionError, match="device 999"):
            await resolve_selection(session, Selection(devices=[1, 999]))
        targets = await load_targets(session, runtime.box, ids)
    assert {t.password for t in targets} == {"Secret-1"}
    assert "Secret-1" not in repr(targets)
    group_id = next(g["id"] for g in (await admin.get("/api/groups")).json() if g["name"] == "north")
    assert (await admin.delete(f"/api/groups/{group_id}")).status_code == 204
    assert (await admin.get("/api/devices", params={"search": "pc-00"})).json()["items"][0]["group"] is None
    assert (await admin.delete("/api/tags/odd")).status_code == 204
    assert (await admin.get("/api/devices", params={"tag": "odd"})).json()["total"] == 0


async def test_power_only_role_cannot_change_devices(clients):
    reply = await clients[Role.POWER_ONLY].post("/api/devices?check=false", json={
        "name": "x", "host": "192.0.2.1", "password": "Secret-1"})
    assert reply.status_code == 403


async def test_operation_seam_targets_clients_and_state(runtime, admin, engine_env):
    """What a job does per device: load its target, talk through the shared connector, write the state back."""
    device = (await admin.post("/api/devices", json=device_body(engine_env))).json()
    offline = (await admin.post("/api/devices?check=false", json={"name": "gone", "host": "127.0.0.1",
                                                                  "http_port": closed_port(),
                                                                  "password": "Secret-1"})).json()
    async with runtime.db.read() as session:
        targets = await load_targets(session, runtime.box, [device["id"], offline["id"]])
    outcomes = {}
    for target in targets:
        async with runtime.connector.client(target, operation="power") as amt:
            try:
                outcomes[target.device_id] = ("ok", await services.power_state(amt))
            except TransportError as exc:
                outcomes[target.device_id] = ("unreachable", str(exc))
    async with runtime.db.write() as session:
        for device_id, (kind, value) in outcomes.items():
            if kind == "ok":
                await record_state(session, device_id, reachable=True, power_state=value)
            else:
                await record_state(session, device_id, reachable=False, error=value)
    live = (await admin.get(f"/api/devices/{device['id']}")).json()["state"]
    dead = (await admin.get(f"/api/devices/{offline['id']}")).json()["state"]
    assert live["power_state"] == int(engine_env.machine.power_state)
    assert live["last_error"] is None
    assert dead["reachable"] is False
    assert "cannot connect" in dead["last_error"]
    assert dead["last_seen_at"] is None
    with pytest.raises(TypeError, match="not device state"):
        async with runtime.db.write() as session:
            await record_state(session, device["id"], reachable=True, name="renamed")
