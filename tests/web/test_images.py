"""The IDE-R image library (uploads in pieces, limits, checksums, content checks) and booting a device from
one of its images over IDE-R while the console watches the boot."""

from __future__ import annotations

import hashlib
import stat

import aiohttp
from sqlalchemy import select
from tests.web._kit import Served, eventually, register, sim_engine

from outband.console.db.models import AuditEntry
from outband.console.images.library import image_library
from outband.engine.platforms.base import BootDevice, PowerState
from outband.testing.images import floppy_image, iso_image


async def declare(http: aiohttp.ClientSession, console: Served, name: str, kind: str, size: int,
                  sha256: str | None = None, expect: int = 201) -> dict:
    body = {"name": name, "kind": kind, "size": size, **({"sha256": sha256} if sha256 else {})}
    async with http.post(f"{console.url}/api/images", json=body) as reply:
        assert reply.status == expect, await reply.text()
        return dict(await reply.json())


async def put_piece(http: aiohttp.ClientSession, console: Served, image_id: str, offset: int, data: bytes,
                    expect: int = 200) -> dict:
    async with http.put(f"{console.url}/api/images/{image_id}/content?offset={offset}", data=data,
                        headers={"Content-Type": "application/octet-stream"}) as reply:
        assert reply.status == expect, await reply.text()
        return dict(await reply.json())


async def upload(http: aiohttp.ClientSession, console: Served, name: str, kind: str, data: bytes,
                 piece: int = 40_000) -> dict:
    image = await declare(http, console, name, kind, len(data), hashlib.sha256(data).hexdigest())
    for offset in range(0, len(data), piece):
        image = await put_piece(http, console, image["id"], offset, data[offset:offset + piece])
    return image


async def finished_run(http: aiohttp.ClientSession, console: Served, run_id: str) -> dict:
    """An IDE-R boot run once it has ended (done, failed or cancelled)."""
    latest: dict = {}

    async def finished() -> bool:
        async with http.get(f"{console.url}/api/ider-runs/{run_id}") as reply:
            latest.update(await reply.json())
        return latest["state"] in ("done", "failed", "cancelled")

    await eventually(finished, within=40)
    return latest


async def test_an_image_arrives_in_pieces_is_checked_and_kept_read_only(console, admin) -> None:
    data = iso_image("outband rescue disc", label="RESCUE")
    image = await declare(admin, console, "rescue.iso", "cd", len(data), hashlib.sha256(data).hexdigest().upper())
    assert (image["state"], image["received"]) == ("uploading", 0)
    half = len(data) // 2
    assert (await put_piece(admin, console, image["id"], 0, data[:half]))["received"] == half
    conflict = await put_piece(admin, console, image["id"], 0, data[:half], expect=409)  # a repeat
    assert f"continues at byte {half}" in conflict["detail"]
    image_library(console.runtime)._uploads.clear()  # as after a restart: the digest is rebuilt from the disk
    done = await put_piece(admin, console, image["id"], half, data[half:])
    assert done["state"] == "ready"
    assert done["sha256"] == hashlib.sha256(data).hexdigest()
    stored = image_library(console.runtime).path(image_library(console.runtime).get(image["id"]))
    assert stored.read_bytes() == data
    assert not stat.S_IMODE(stored.stat().st_mode) & 0o222
    await put_piece(admin, console, image["id"], len(data), b"more", expect=409)
    async with admin.get(f"{console.url}/api/images") as reply:
        assert [(i["name"], i["state"]) for i in await reply.json()] == [("rescue.iso", "ready")]


async def test_what_the_library_refuses(console, admin) -> None:
    library = image_library(console.runtime)
    library.max_image_bytes = 1024 * 1024
    await declare(admin, console, "big.iso", "cd", 2 * 1024 * 1024, expect=413)
    await declare(admin, console, "odd.img", "floppy", 1000, expect=422)
    library.max_total_bytes = 512 * 1024 + 512
    floppy = floppy_image("boot floppy", label="FLOPPY")[: 512 * 1024]
    await upload(admin, console, "half.img", "floppy", floppy)
    await declare(admin, console, "second.img", "floppy", 1024, expect=413)  # the library is full
    library.max_total_bytes = 64 * 1024 * 1024
    fake = b"\x00" * (64 * 2048)  # the right size for a CD, but no ISO 9660 volume
    image = await declare(admin, console, "fake.iso", "cd", len(fake))
    refusal = await put_piece(admin, console, image["id"], 0, fake, expect=422)
    assert "not an ISO 9660 image" in refusal["detail"]
    data = iso_image("x message here", label="X")
    wrong = await declare(admin, console, "wrong.iso", "cd", len(data), "0" * 64)
    refusal = await put_piece(admin, console, wrong["id"], 0, data, expect=422)
    assert "SHA-256 mismatch" in refusal["detail"]
    too_much = await declare(admin, console, "short.iso", "cd", 2048 * 17)
    await put_piece(admin, console, too_much["id"], 0, data, expect=422)
    async with admin.get(f"{console.url}/api/images") as reply:
        assert [i["name"] for i in await reply.json()] == ["half.img", "short.iso"]  # the refused ones are gone


async def test_a_viewer_sees_the_library_but_cannot_change_it(console, admin, viewer) -> None:
    image = await upload(admin, console, "boot.img", "floppy", floppy_image("floppy message", label="F"))
    async with viewer.get(f"{console.url}/api/images") as reply:
        assert reply.status == 200
        assert [i["id"] for i in await reply.json()] == [image["id"]]
    await declare(viewer, console, "mine.img", "floppy", 512, expect=403)
    async with viewer.delete(f"{console.url}/api/images/{image['id']}") as reply:
        assert reply.status == 403
    async with viewer.post(f"{console.url}/api/devices/1/ider-boot", json={"image_id": image["id"]}) as reply:
        assert reply.status == 403


async def test_booting_a_device_from_an_image_reports_what_the_machine_found(console, admin) -> None:
    data = iso_image("outband installer says hello", label="INSTALLER")
    image = await upload(admin, console, "installer.iso", "cd", data)
    async with sim_engine(powered=False) as env:
        device_id = await register(console.runtime, env, "pc-1")
        async with admin.post(f"{console.url}/api/devices/{device_id}/ider-boot",
                              json={"image_id": image["id"], "idle_seconds": 30}) as reply:
            assert reply.status == 202, await reply.text()
            run = await reply.json()
        assert run["state"] in ("connecting", "serving", "booting")
        async with admin.delete(f"{console.url}/api/images/{image['id']}") as reply:
            assert reply.status == 409  # in use while it is being served
        latest = await finished_run(admin, console, run["id"])
        assert latest["state"] == "done", latest
        assert latest["outcome"] == "the host ejected the medium"
        assert latest["reads"] >= 3  # volume descriptors, boot catalog, boot image
        assert latest["bytes_sent"] >= 3 * 2048
        assert "Booted from IDE-R CD-ROM: INSTALLER" in latest["console"]
        assert "outband installer says hello" in latest["console"]
        assert env.machine.power_state is PowerState.ON
        assert env.machine.last_boot is not None
        assert env.machine.last_boot.device is BootDevice.IDER_CD
    entries: list[AuditEntry] = []

    async def audited() -> bool:  # written as the run closes, just after it reports done
        async with console.runtime.db.read() as session:
            query = select(AuditEntry).where(AuditEntry.action == "ider.boot")
            entries[:] = (await session.execute(query)).scalars()
        return bool(entries)

    await eventually(audited)
    [entry] = entries
    assert entry.outcome == "ok"
    assert entry.detail["sha256"] == hashlib.sha256(data).hexdigest()
    async with admin.delete(f"{console.url}/api/images/{image['id']}") as reply:
        assert reply.status == 204


async def test_a_boot_that_cannot_start_says_why(console, admin) -> None:
    image = await upload(admin, console, "boot.img", "floppy", floppy_image("floppy message", label="F"))
    async with sim_engine(features=False) as env:
        device_id = await register(console.runtime, env, "pc-1", host="127.0.0.1")  # nothing listens on 16994
        async with admin.post(f"{console.url}/api/devices/{device_id}/ider-boot",
                              json={"image_id": image["id"]}) as reply:
            run = await reply.json()
        latest: dict = {}

        async def finished() -> bool:
            async with admin.get(f"{console.url}/api/ider-runs?device_id={device_id}") as reply:
                latest.update((await reply.json())[0])
            return latest["state"] in ("done", "failed", "cancelled")

        await eventually(finished)
        assert latest["id"] == run["id"]
        assert latest["state"] == "failed"
        assert latest["error_code"] == "unreachable"
