"""Jobs reuse each device's Digest nonce: the first job over a fleet pays one challenge per device, the jobs
after it none (counted at the engines)."""

from __future__ import annotations

from tests.client._engine_tap import tap
from tests.console.jobs._fleet import running_fleet
from tests.console.jobs._kit import run_op

from outband.proto.digest import Reason


async def test_a_power_state_job_after_the_first_sends_no_challenge_requests(runtime, api, tmp_path):
    async with running_fleet(6, tmp_path / "fleet") as fleet:
        for body in fleet.device_rows():
            assert (await api.post("/api/devices?check=false", json=body)).status_code == 201
        taps = {address: tap(fleet.engine(address)) for address in fleet.addresses}

        def requests() -> int:
            return sum(len(seen.reasons) for seen in taps.values())

        job = await run_op(api, "power", {"all": True}, {"action": "state"})
        assert job["status"] == "succeeded", job
        first = requests()
        assert [seen.challenged for seen in taps.values()] == [1] * 6  # one bare request per device

        for _ in range(2):  # the cache outlives the job's attempts and the job itself
            job = await run_op(api, "power", {"all": True}, {"action": "state"})
            assert job["status"] == "succeeded", job
        again = (requests() - first) // 2
        assert [seen.challenged for seen in taps.values()] == [1] * 6
        assert first == again + 6  # N challenges fewer: 2 requests per device (Enumerate, Pull) instead of 3
        assert all(seen.failures == [] for seen in taps.values())
        assert all(seen.reasons.count(Reason.OK) == len(seen.reasons) - 1 for seen in taps.values())
