"""Two console processes on one database (two runtimes here, each with its own MPS node and relay): a device
whose tunnel node B holds is managed from node A -- WS-MAN, a job, SOL, TLS pinned inside the channel -- and from
a process with no MPS at all; and what a relay refuses: requests not made with the console's key, replays,
garbage and over-long lines, a node presenting another certificate, a device no node holds."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import update
from tests.console._mpskit import (
    WITHIN,
    add_cira_device,
    device_row,
    dial,
    dialling_engine,
    sim_machine,
    sol_echoes,
    start_mps,
    stored_online,
)

from outband.aio.errors import CertificateMismatch, ConnectError
from outband.aio.tls import fingerprint_of
from outband.client import services
from outband.console.config import Settings
from outband.console.db.base import utcnow
from outband.console.db.models import CiraPresence, Device, MpsNode
from outband.console.devices.connect import DeviceOffline, DeviceTarget
from outband.console.jobs.runner import JobRequest, LocalRunner, wait_for_job
from outband.console.mps import MpsService
from outband.console.mps.nodes import (
    DEAD_AFTER_BEATS,
    HEARTBEAT_SECONDS,
    MAX_LINE,
    NodeRelay,
    RelayRequest,
    encode_request,
    register_node,
    sweep_dead_nodes,
)
from outband.console.runtime import Runtime, open_runtime
from outband.console.secrets import SecretBox, generate_key
from outband.engine.platforms.base import PowerState

AMT_PASSWORD = "Amt!pass-1234"


@pytest.fixture
async def node_b(settings: Settings, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A second console process on the same database and key (its own data directory, so its own certificate)."""
    other = await open_runtime(settings.model_copy(update={"data_dir": tmp_path / "data-b"}))
    try:
        yield other
    finally:
        await other.close()


async def relaying(runtime: Runtime, name: str) -> MpsService:
    return await start_mps(runtime, mps_node=name, mps_relay_listen="127.0.0.1:0")


async def target_of(runtime: Runtime, device_id: int) -> DeviceTarget:
    device = await device_row(runtime, device_id)
    return DeviceTarget.of(device, runtime.box.decrypt(device.password_enc))


async def test_a_device_on_another_node_is_managed_through_its_relay(runtime: Runtime, node_b: Runtime,
                                                                    tmp_path: Path) -> None:
    node_a = await relaying(runtime, "node-a")
    holder = await relaying(node_b, "node-b")
    machine = sim_machine("roaming", PowerState.OFF_SOFT)
    device_id = await add_cira_device(runtime, "roaming", machine, AMT_PASSWORD)
    async with dialling_engine(tmp_path, dial(holder), machine, AMT_PASSWORD) as env:
        await stored_online(runtime, device_id, True)
        assert device_id in holder.registry
        assert device_id not in node_a.registry
        runner = LocalRunner()
        await runtime.start_service(runner)  # node A's runner: every call of these jobs crosses to node B

        async def job(operation: str, params: dict[str, object]) -> dict[str, object]:
            job_id = await runner.submit(JobRequest(operation, params, [device_id]))
            async with asyncio.timeout(WITHIN):
                return await wait_for_job(runtime.db, runner.events, job_id)

        assert (await job("power", {"action": "on"}))["status"] == "succeeded"
        assert machine.power_state is PowerState.ON
        assert (await job("features", {"listener": True, "sol": True}))["status"] == "succeeded"

        target = await target_of(runtime, device_id)
        await sol_echoes(runtime, target, "across nodes")  # the browser's SOL on node A, the tunnel on node B

        # TLS to the device inside the channel, made and pinned by node B as for its own calls
        engine_fingerprint = fingerprint_of(tmp_path / machine.profile.system_uuid / "engine-cert.pem")
        pinned = DeviceTarget(device_id, "roaming", target.host, "admin", AMT_PASSWORD, use_tls=True,
                              fingerprint=engine_fingerprint, transport=target.transport)
        amt = runtime.connector.client(pinned)
        try:
            assert await services.power_state(amt) == 2
        finally:
            await amt.close()
        wrong = DeviceTarget(device_id, "roaming", target.host, "admin", AMT_PASSWORD, use_tls=True,
                             fingerprint="ab" * 32, transport=target.transport)
        amt = runtime.connector.client(wrong)
        try:
            with pytest.raises(CertificateMismatch):
                await services.power_state(amt)
        finally:
            await amt.close()

        worker = NodeRelay(runtime.db, runtime.box, None)  # a process with no MPS: a queue worker
        reader, writer = await worker.open(target, 16992, tls=False, pin=None, verify=False, hostname=None,
                                           seconds=WITHIN)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(WITHIN):
            assert (await reader.readline()).startswith(b"HTTP/1.1 ")  # the engine's own web server answers
        writer.close()
        assert env.client.status.connects == 1


async def relay_line(service: MpsService, line: bytes) -> bytes:
    """Send one request line to a node's relay as another node would; its answer line ('' if it hung up)."""
    assert service.relay is not None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", service.relay.port, ssl=context)
    try:
        writer.write(line)
        async with asyncio.timeout(WITHIN):
            return await reader.readline()
    finally:
        writer.close()


async def test_what_a_relay_refuses(runtime: Runtime, node_b: Runtime, tmp_path: Path) -> None:
    holder = await relaying(node_b, "node-b")
    machine = sim_machine("guarded", PowerState.ON)
    device_id = await add_cira_device(runtime, "guarded", machine, AMT_PASSWORD)
    async with dialling_engine(tmp_path, dial(holder), machine, AMT_PASSWORD):
        await stored_online(runtime, device_id, True)
        request = RelayRequest(node="node-x", device=device_id, port=16992, nonce=uuid.uuid4().hex)
        stranger = SecretBox([generate_key()])  # not the console's key
        assert (await relay_line(holder, encode_request(stranger, request))).startswith(b"ERR refused")
        assert (await relay_line(holder, b"not a token\n")).startswith(b"ERR refused")
        assert (await relay_line(holder, b"A" * (MAX_LINE * 4))).startswith(b"ERR refused")  # no newline, too long
        genuine = encode_request(runtime.box, request)
        assert await relay_line(holder, genuine) == b"OK\n"
        assert (await relay_line(holder, genuine)).startswith(b"ERR refused")  # the same line again: a replay
        away = RelayRequest(node="node-x", device=device_id + 1, port=16992, nonce=uuid.uuid4().hex)
        assert (await relay_line(holder, encode_request(runtime.box, away))).startswith(b"ERR offline")
        fresh = RelayRequest(node="node-x", device=device_id, port=16992, nonce=uuid.uuid4().hex)
        assert await relay_line(holder, encode_request(runtime.box, fresh)) == b"OK\n"  # still serving

        target = await target_of(runtime, device_id)
        async with runtime.db.write() as session:  # node B now "presents" a certificate other than the registered one
            await session.execute(update(MpsNode).where(MpsNode.name == "node-b").values(fingerprint="00" * 32))
        with pytest.raises(CertificateMismatch):
            await NodeRelay(runtime.db, runtime.box, "node-a").open(target, 16992, tls=False, pin=None,
                                                                    verify=False, hostname=None, seconds=WITHIN)


async def test_a_device_no_node_holds_is_offline_a_dead_node_unreachable_until_its_heartbeat_stops(
        runtime: Runtime, node_b: Runtime, tmp_path: Path) -> None:
    await relaying(runtime, "node-a")
    machine = sim_machine("nowhere")
    device_id = await add_cira_device(runtime, "nowhere", machine, AMT_PASSWORD)
    target = await target_of(runtime, device_id)
    with pytest.raises(DeviceOffline, match="not connected to any MPS node"):
        await runtime.connector.redirection_streams(target, 2.0)()

    holder = await relaying(node_b, "node-b")
    async with dialling_engine(tmp_path, dial(holder), machine, AMT_PASSWORD):
        await stored_online(runtime, device_id, True)
    assert holder.relay is not None
    assert holder.cert_file is not None
    left_behind = ("node-b", f"127.0.0.1:{holder.relay.port}", holder.cert_file)
    await node_b.close()  # a clean stop takes the node's row and its devices' presence with it
    async with runtime.db.read() as session:
        assert await session.get(MpsNode, "node-b") is None
    # a node killed outright leaves both behind: its row, and its devices "online" on it
    await register_node(runtime.db, *left_behind)
    async with runtime.db.write() as session:
        await session.execute(update(CiraPresence).where(CiraPresence.device_id == device_id)
                              .values(online=True, mps_node="node-b"))
        await session.execute(update(Device).where(Device.id == device_id).values(reachable=True))
    with pytest.raises(ConnectError, match="cannot reach MPS node node-b") as caught:
        await runtime.connector.redirection_streams(target, 2.0)()
    assert not isinstance(caught.value, DeviceOffline)  # a node down is not the device away: jobs retry it

    now = utcnow()
    assert await sweep_dead_nodes(runtime.db, "node-a", now) == []  # its heartbeat is recent
    later = now + dt.timedelta(seconds=HEARTBEAT_SECONDS * DEAD_AFTER_BEATS + 1)
    assert await sweep_dead_nodes(runtime.db, "node-a", later) == ["node-b"]
    assert await sweep_dead_nodes(runtime.db, "node-a", later) == []  # node A's own beat was renewed
    with pytest.raises(DeviceOffline, match="not connected to any MPS node"):  # jobs now wait for it
        await runtime.connector.redirection_streams(target, 2.0)()
    assert (await device_row(runtime, device_id)).reachable is False
    async with runtime.db.read() as session:
        presence = await session.get(CiraPresence, device_id)
    assert presence is not None
    assert presence.last_error == "MPS node node-b stopped answering (no heartbeat)"
