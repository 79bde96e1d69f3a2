"""IDE-R over CIRA from the console: a device that dialled the console's MPS is switched to IDE-R by the
console's features job and boots from an image of the library, served through a channel of its tunnel, while
the console watches the boot on its serial console -- the same run, with the same report, as for a LAN device."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp
from tests.console._mpskit import add_cira_device, dial, dialling_engine, sim_machine, start_mps, stored_online
from tests.web._kit import Served
from tests.web.test_images import finished_run, upload

from outband.console.jobs.runner import LocalRunner, wait_for_job
from outband.engine.platforms.base import BootDevice, PowerState
from outband.testing.images import iso_image

AMT_PASSWORD = "Amt!pass-1234"


async def test_a_cira_device_boots_from_an_image_through_its_tunnel(
        console: Served, admin: aiohttp.ClientSession, tmp_path: Path) -> None:
    runtime = console.runtime
    await runtime.start_service(LocalRunner())
    mps = await start_mps(runtime)
    data = iso_image("booted through the tunnel", label="CIRA-RESCUE")
    image = await upload(admin, console, "rescue.iso", "cd", data)
    machine = sim_machine("ider", PowerState.OFF_SOFT)
    device_id = await add_cira_device(runtime, "cira-ider", machine, AMT_PASSWORD)
    async with dialling_engine(tmp_path, dial(mps), machine, AMT_PASSWORD) as env:
        await stored_online(runtime, device_id, True)
        async with admin.post(f"{console.url}/api/operations/features", json={
                "target": {"devices": [device_id]}, "params": {"listener": True, "ider": True, "sol": True}}) as reply:
            assert reply.status == 202, await reply.text()
            job = await reply.json()
        switched = await wait_for_job(runtime.db, runtime.service("jobs").events, job["id"])
        assert switched["status"] == "succeeded", switched
        async with admin.post(f"{console.url}/api/devices/{device_id}/ider-boot",
                              json={"image_id": image["id"], "idle_seconds": 30}) as reply:
            assert reply.status == 202, await reply.text()
            run = await reply.json()
        latest = await finished_run(admin, console, run["id"])
        assert latest["state"] == "done", latest
        assert latest["outcome"] == "the host ejected the medium"
        assert latest["bytes_sent"] >= 3 * 2048
        assert "Booted from IDE-R CD-ROM: CIRA-RESCUE" in latest["console"]  # read over SOL, through the tunnel
        assert "booted through the tunnel" in latest["console"]
        assert machine.power_state is PowerState.ON
        assert machine.last_boot is not None
        assert machine.last_boot.device is BootDevice.IDER_CD
        assert env.client.status.connects == 1  # all of it in the one tunnel
    assert hashlib.sha256(data).hexdigest() == image["sha256"]
