"""Discovery: Identify over a small loopback range where engines listen on the standard AMT ports."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from outband.console.db.models import Status
from outband.console.devices.discovery import parse_network, probe_count
from outband.engine.launcher import Launched, LaunchOptions, launch


@pytest.fixture
async def engine_pair(tmp_path: Path) -> AsyncIterator[Launched]:
    """Two engines on 127.a.b.1 and 127.a.b.2 (a random /29 so parallel runs do not collide), 16992 + 16993."""
    for _ in range(5):
        base = f"127.{random.randint(100, 250)}.{random.randint(0, 250)}.1"
        try:
            launched = await launch(LaunchOptions(fleet=2, fleet_base=base, state_dir=tmp_path / base,
                                                  redirection_port=None, redirection_tls_port=None))
        except OSError:
            continue
        try:
            yield launched
        finally:
            await launched.server.stop()
            launched.database.close()
        return
    pytest.fail("no free loopback range for the discovery engines")


async def wait_finished(client, discovery_id: int) -> dict:
    for _ in range(200):
        scan = (await client.get(f"/api/discovery/{discovery_id}")).json()
        if Status(scan["status"]).finished:
            return scan
        await asyncio.sleep(0.05)
    raise AssertionError(f"discovery still {scan['status']}")


def test_ranges_are_bounded():
    assert str(parse_network("10.1.2.3/24", 65536)) == "10.1.2.0/24"
    assert probe_count(parse_network("10.0.0.0/24", 65536), 16992, 16993) == 2 * 254
    assert probe_count(parse_network("10.0.0.7", 65536), 16992, None) == 1
    for bad, message in (("10.0.0.0/15", "at most 65536"), ("224.0.0.0/24", "not a range"), ("nope", "not an"),
                         ("0.0.0.0/24", "not a range"), ("2001:db8::/100", "at most")):
        with pytest.raises(ValueError, match=message):
            parse_network(bad, 65536)


async def test_discovery_finds_the_engines(runtime, admin, engine_pair):
    first, second = engine_pair.addresses
    network = first.rsplit(".", 1)[0] + ".0/29"
    known = await admin.post("/api/devices?check=false", json={"name": "known", "host": first, "password": "Pw-1234a"})
    started = await admin.post("/api/discovery", json={"network": network})
    assert started.status_code == 202, started.text
    assert started.json()["total"] == 12  # six hosts, two ports each
    scan = await wait_finished(admin, started.json()["id"])
    assert scan["status"] == "succeeded"
    assert scan["probed"] == 12
    found = {(e["address"], e["port"]): e for e in scan["found"]}
    assert set(found) == {(first, 16992), (first, 16993), (second, 16992), (second, 16993)}
    assert found[(first, 16993)]["fingerprint"] == engine_pair.tls_fingerprint
    assert found[(first, 16992)]["fingerprint"] is None
    assert found[(second, 16992)]["product_vendor"] == "Intel Corporation"
    assert found[(first, 16992)]["device_id"] == known.json()["id"]
    assert found[(second, 16992)]["device_id"] is None
    listed = (await admin.get("/api/discovery")).json()
    assert [s["id"] for s in listed] == [scan["id"]]
    audit = (await admin.get("/api/audit", params={"action": "start_discovery"})).json()["items"][0]
    assert audit["detail"]["network"] == network


async def test_discovery_is_for_admins_and_sane_ranges(clients):
    from outband.console.permissions import Role
    assert (await clients[Role.OPERATOR].post("/api/discovery", json={"network": "127.0.0.1"})).status_code == 403
    admin = clients[Role.ADMIN]
    assert (await admin.post("/api/discovery", json={"network": "10.0.0.0/8"})).status_code == 422
    assert (await admin.post("/api/discovery", json={"network": "10.0.0.1", "http_port": None,
                                                     "tls_port": None})).status_code == 422


async def test_a_running_discovery_can_be_cancelled(runtime, admin):
    # 131,068 probes of the benchmarking range (RFC 2544), which never holds AMT devices: whether they are
    # refused at once or time out, the scan is still running when the cancel arrives.
    started = (await admin.post("/api/discovery", json={"network": "198.18.0.0/16"})).json()
    assert started["total"] == 2 * 65534
    cancelled = await admin.post(f"/api/discovery/{started['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert (await admin.post(f"/api/discovery/{started['id']}/cancel")).status_code == 409
