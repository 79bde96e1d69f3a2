"""AMT_KerberosSettingData over HTTP: the capture shapes, a Put that is validated, persisted and audited with the
key material kept write-only, the refusal to enable Kerberos, the credential cache flag and the realm."""

from __future__ import annotations

from pathlib import Path

from tests.engine._shape import assert_same_shape
from tests.engine._shape_inventory import add_user, enumerate_raw, get_object, invoke

from outband.engine.services import kerberos
from outband.proto.amt import Realm
from outband.proto.amtlog import AuditRecord
from outband.proto.cim.model import CimObject
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine, running_engine

KERBEROS = "AMT_KerberosSettingData"


def audits(env: RunningEngine) -> list[int]:
    return [AuditRecord.decode(r).full_id for r in env.engine.store.read_log("audit")]


async def put(env: RunningEngine, **changes: object) -> CimObject | F.WsmanFault:
    t = env.transport()
    current = await get_object(t, KERBEROS)
    for name, value in changes.items():
        current[name] = value
    reply = await t.send(msg.put(current))
    if reply.fault is not None:
        return reply.fault
    assert isinstance(reply.body, CimObject)
    return reply.body


async def test_get_pull_and_cache_state_have_the_capture_shapes(engine_env: RunningEngine,
                                                                 conformance_dir: Path) -> None:
    t = engine_env.transport()
    captures = conformance_dir / "amt/kerberos"
    status, body = await t.post(msg.get(KERBEROS).to_bytes())
    assert status == 200
    assert_same_shape(body, captures / "get.xml")
    assert_same_shape(await enumerate_raw(t, KERBEROS), captures / "pull.xml")
    status, body = await t.post(msg.invoke(CimObject.method_input(KERBEROS, "GetCredentialCacheState")).to_bytes())
    assert_same_shape(body, captures / "getcredentialcachestate.xml")
    got = await get_object(t, KERBEROS)
    assert got["InstanceID"] == "Intel (r) AMT: Kerberos Settings"  # AMT's own spelling
    assert (got["KrbEnabled"], got["SupportedEncryptionAlgorithms"]) == (False, [0, 1, 2])


async def test_settings_persist_and_the_key_is_write_only(tmp_path: Path) -> None:
    state = tmp_path / "s.db"
    async with running_engine(state=state) as env:
        result = await put(env, RealmName="CORP.EXAMPLE", ServicePrincipalName=["HTTP/amt.corp.example"],
                           ServicePrincipalProtocol=[0], EncryptionAlgorithm=0, MaximumClockTolerance=5,
                           MasterKey=bytes(range(16)))
        assert isinstance(result, CimObject)
        assert result["RealmName"] == "CORP.EXAMPLE"
        assert "MasterKey" not in result
        assert audits(env) == [1613, 1614]
        assert env.engine.store.get(kerberos.SECRETS_KEY) == {"master_key": bytes(range(16)).hex()}
        again = await put(env, MasterKey=bytes(range(16)))  # the same key again changes nothing
        assert isinstance(again, CimObject)
        assert audits(env) == [1613, 1614]
    async with running_engine(state=state) as env:
        got = await get_object(env.transport(), KERBEROS)
        assert (got["RealmName"], got["ServicePrincipalName"], got["ServicePrincipalProtocol"]) == (
            "CORP.EXAMPLE", ["HTTP/amt.corp.example"], [0])
        assert "MasterKey" not in got


async def test_bad_puts_fault_and_change_nothing(engine_env: RunningEngine) -> None:
    env = engine_env
    for changes in (
        {"KrbEnabled": True},  # no Kerberos verifier here
        {"ServicePrincipalName": ["HTTP/a"], "ServicePrincipalProtocol": [0, 1]},
        {"ServicePrincipalName": ["HTTP/a"], "ServicePrincipalProtocol": [7]},
        {"EncryptionAlgorithm": 2, "MasterKey": bytes(16)},  # AES256 needs 32 bytes
        {"Passphrase": "secret"},  # without salt and iterations
        {"RealmName": "R" * 256},
    ):
        result = await put(env, **changes)
        assert isinstance(result, F.InvalidRepresentation), changes
    assert audits(env) == []
    assert env.engine.store.get(kerberos.SECRETS_KEY) is None
    assert "RealmName" not in await get_object(env.transport(), KERBEROS)


async def test_credential_cache_flag_round_trips_and_is_audited(engine_env: RunningEngine) -> None:
    t = engine_env.transport()
    assert (await invoke(t, KERBEROS, "SetCredentialCacheState", Enable=True))["ReturnValue"] == 0
    out = await invoke(t, KERBEROS, "GetCredentialCacheState")
    assert (out["Enabled"], out["ReturnValue"]) == (True, 0)
    assert (await invoke(t, KERBEROS, "SetCredentialCacheState"))["ReturnValue"] == 36  # Enable missing
    assert audits(engine_env) == [1613]


async def test_needs_pt_administration(engine_env: RunningEngine) -> None:
    t = add_user(engine_env, "viewer", "Viewer!Pass1", {Realm.GENERAL_INFO, Realm.REDIRECTION})
    reply = await t.send(msg.get(KERBEROS))
    assert isinstance(reply.fault, F.AccessDenied)
