"""CSV import: every row judged on its own and reported by line; optional connection checks."""

from __future__ import annotations

from sqlalchemy import select

from outband.console.db.models import Device


def csv_file(text: str) -> dict:
    return {"file": ("devices.csv", text.encode(), "text/csv")}


async def test_import_reports_each_row(runtime, admin):
    assert (await admin.post("/api/devices?check=false", json={"name": "exists", "host": "192.0.2.1",
                                                               "password": "Secret-1"})).status_code == 201
    text = (
        "name,host,http_port,password,tags,group,tls\n"
        "a,192.0.2.10,16992,Pw-aaaaa1,lab;north,site-1,no\n"
        "b,192.0.2.11,99999,Pw-bbbbb1,,,\n"
        "c,192.0.2.12,,,lab,,yes\n"
        "a,192.0.2.13,,Pw-ddddd1,,,\n"
        "\n"
        "exists,192.0.2.14,,Pw-eeeee1,,,\n"
        "f,192.0.2.15,16992\n"
        "g,192.0.2.16,,Pw-ggggg1,,,maybe\n"
    )
    reply = await admin.post("/api/devices/import", files=csv_file(text), data={"password": "Default-pw1"})
    assert reply.status_code == 200, reply.text
    report = reply.json()
    by_line = {r["row"]: r for r in report["rows"]}
    assert (report["added"], report["failed"]) == (2, 5)
    assert by_line[2]["status"] == "added"
    assert "http_port" in by_line[3]["error"]
    assert by_line[4]["status"] == "added"  # password from the form's default
    assert "already used on line 2" in by_line[5]["error"]
    assert "exists" in by_line[7]["error"]
    assert "fields" in by_line[8]["error"]
    assert "tls" in by_line[9]["error"]
    async with runtime.db.read() as session:
        stored = {d.name: d for d in (await session.execute(select(Device))).scalars()}
    assert set(stored) == {"exists", "a", "c"}
    assert runtime.box.decrypt(stored["c"].password_enc) == "Default-pw1"
    assert stored["c"].use_tls is True
    assert (await admin.get("/api/devices", params={"tag": "lab"})).json()["total"] == 2
    audit = (await admin.get("/api/audit", params={"action": "import_devices"})).json()["items"][0]
    assert audit["devices"] == sorted(by_line[n]["device_id"] for n in (2, 4))
    assert "Default-pw1" not in str(audit)


async def test_import_with_checks_connects_to_each_device(admin, engine_env):
    text = (
        "name,host,http_port,password\n"
        f"good,127.0.0.1,{engine_env.port},{engine_env.password}\n"
        f"bad,127.0.0.1,{engine_env.port},Wrong-pass-9\n"
    )
    report = (await admin.post("/api/devices/import", files=csv_file(text), data={"check": "true"})).json()
    assert [(r["name"], r["status"]) for r in report["rows"]] == [("good", "added"), ("bad", "failed")]
    assert report["rows"][1]["error"].startswith("auth_refused")
    good = (await admin.get(f"/api/devices/{report['rows'][0]['device_id']}")).json()
    assert good["state"]["reachable"] is True


async def test_unreadable_files_are_refused_whole(runtime, admin):
    for content, message in ((b"name,host,colour\nx,1.2.3.4,red\n", "unknown column"),
                             (b"host\n1.2.3.4\n", "missing column"),
                             (b"", "empty"),
                             (b"name,host\n\xff\xfe,1.2.3.4\n", "UTF-8")):
        reply = await admin.post("/api/devices/import", files={"file": ("d.csv", content, "text/csv")})
        assert reply.status_code == 422
        assert message in reply.json()["detail"]
    async with runtime.db.read() as session:
        assert (await session.execute(select(Device.id))).first() is None


async def test_oversized_bodies_are_refused_before_parsing(admin):
    reply = await admin.post("/api/devices/import", content=b"x" * 64,
                             headers={"content-length": str(100 * 1024 * 1024), "content-type": "text/csv"})
    assert reply.status_code == 413
