"""AMT_ProvisioningCertificateHash over HTTP: the operator's trusted hashes as instances, Create/Put/Delete kept
in step with what provisioning trusts, refusals that change nothing, persistence and the realm."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.engine._shape_inventory import add_user, get_object, pull_objects

from outband.engine.services import provisioning
from outband.proto.amt import Realm
from outband.proto.cim.model import CimObject
from outband.proto.wsman import EndpointReference
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.proto.wsman.envelope import ResourceCreated
from outband.testing.engine import RunningEngine, running_engine

HASH = "AMT_ProvisioningCertificateHash"
ROOT_SHA256 = hashlib.sha256(b"a provisioning root").digest()
ROOT_SHA1 = hashlib.sha1(b"another root").digest()  # AMT keeps SHA-1 hashes of old roots


def selectors(digest: bytes) -> dict[str, str]:
    return {"InstanceID": f"Intel(r) AMT: Certificate Hash {digest.hex()}"}


async def create(env: RunningEngine, **props: object) -> ResourceCreated | F.WsmanFault:
    reply = await env.transport().send(msg.create(CimObject.new(HASH, props)))
    if reply.fault is not None:
        return reply.fault
    assert isinstance(reply.body, ResourceCreated)
    return reply.body


async def put(env: RunningEngine, digest: bytes, **changes: object) -> CimObject | F.WsmanFault:
    t = env.transport()
    current = await get_object(t, HASH, selectors(digest))
    for name, value in changes.items():
        current[name] = value
    reply = await t.send(msg.put(current, selectors(digest)))
    if reply.fault is not None:
        return reply.fault
    assert isinstance(reply.body, CimObject)
    return reply.body


async def test_operator_hashes_are_listed_as_enabled_custom_hashes(engine_env: RunningEngine) -> None:
    provisioning.set_trusted_root_hashes(engine_env.engine, [ROOT_SHA1.hex()])
    (entry,) = await pull_objects(engine_env.transport(), HASH)
    assert (entry["HashData"], entry["HashType"], entry["Enabled"], entry["IsDefault"]) == (ROOT_SHA1, 1, True, False)
    assert entry["Description"] == "Custom hash"
    assert entry["ElementName"] == "Intel(r) AMT: Provisioning Certificate Hash"


async def test_created_hash_is_trusted_and_persists(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    async with running_engine(state=state) as env:
        created = await create(env, Description="Lab root", HashData=ROOT_SHA256, HashType=2)
        assert isinstance(created, ResourceCreated)
        assert isinstance(created.epr, EndpointReference)
        assert created.epr.selector_dict == selectors(ROOT_SHA256)
        assert provisioning.trusted_root_hashes(env.engine) == [ROOT_SHA256.hex()]
    async with running_engine(state=state) as env:
        got = await get_object(env.transport(), HASH, selectors(ROOT_SHA256))
        assert (got["Description"], got["HashType"], got["Enabled"]) == ("Lab root", 2, True)


async def test_disabling_keeps_the_entry_but_stops_trusting_it(engine_env: RunningEngine) -> None:
    env = engine_env
    assert isinstance(await create(env, Description="Lab root", HashData=ROOT_SHA256), ResourceCreated)
    disabled = await put(env, ROOT_SHA256, Enabled=False)
    assert isinstance(disabled, CimObject)
    assert disabled["Enabled"] is False
    assert provisioning.trusted_root_hashes(env.engine) == []
    assert [e["Description"] for e in await pull_objects(env.transport(), HASH)] == ["Lab root"]
    renamed = await put(env, ROOT_SHA256, Enabled=True, Description="Lab root 2")
    assert isinstance(renamed, CimObject)
    assert provisioning.trusted_root_hashes(env.engine) == [ROOT_SHA256.hex()]
    assert renamed["Description"] == "Lab root 2"


async def test_delete_removes_the_hash_everywhere(engine_env: RunningEngine) -> None:
    env = engine_env
    assert isinstance(await create(env, HashData=ROOT_SHA256, Enabled=False), ResourceCreated)
    provisioning.set_trusted_root_hashes(env.engine, [ROOT_SHA256.hex(), ROOT_SHA1.hex()])
    assert (await env.transport().send(msg.delete(HASH, selectors(ROOT_SHA256)))).fault is None
    assert provisioning.trusted_root_hashes(env.engine) == [ROOT_SHA1.hex()]
    assert [e["HashData"] for e in await pull_objects(env.transport(), HASH)] == [ROOT_SHA1]
    reply = await env.transport().send(msg.delete(HASH, selectors(ROOT_SHA256)))
    assert isinstance(reply.fault, F.DestinationUnreachable)


async def test_bad_hashes_are_refused_and_change_nothing(engine_env: RunningEngine) -> None:
    env = engine_env
    assert isinstance(await create(env, HashData=b"\x01" * 16), F.InvalidRepresentation)  # MD5-sized
    assert isinstance(await create(env, HashData=ROOT_SHA256, HashType=1), F.InvalidRepresentation)
    assert isinstance(await create(env, HashData=ROOT_SHA256, Description="d" * 33), F.InvalidRepresentation)
    assert provisioning.trusted_root_hashes(env.engine) == []
    assert isinstance(await create(env, HashData=ROOT_SHA256), ResourceCreated)
    assert isinstance(await create(env, HashData=ROOT_SHA256), F.AlreadyExists)
    assert isinstance(await put(env, ROOT_SHA256, HashData=ROOT_SHA1), F.InvalidRepresentation)
    for n in range(1, 3):
        assert isinstance(await create(env, HashData=hashlib.sha256(bytes([n])).digest()), ResourceCreated)
    assert isinstance(await create(env, HashData=ROOT_SHA1), F.QuotaLimit)
    assert len(provisioning.trusted_root_hashes(env.engine)) == 3


async def test_hashes_need_pt_administration(engine_env: RunningEngine) -> None:
    viewer = add_user(engine_env, "viewer", "Viewer!Pass1", {Realm.GENERAL_INFO, Realm.REMOTE_CONTROL})
    assert isinstance((await viewer.send(msg.enumerate_(HASH))).fault, F.AccessDenied)
    reply = await viewer.send(msg.create(CimObject.new(HASH, HashData=ROOT_SHA256)))
    assert isinstance(reply.fault, F.AccessDenied)
    assert provisioning.trusted_root_hashes(engine_env.engine) == []
