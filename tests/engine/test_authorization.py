"""AMT_AuthorizationService over real HTTP: the ACL as consoles manage it, AMT's refusals, and logins that
follow every change at once."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from tests.engine._shape import assert_same_shape

from outband.aio.errors import AuthenticationError
from outband.aio.wsman_client import WsmanTransport
from outband.proto.amt import AccessPermission, PTStatus, Realm
from outband.proto.amtlog import AuditRecord
from outband.proto.cim.model import CimObject
from outband.proto.digest import amt_digest_password
from outband.proto.wsman import EnumerateResponse, Envelope, parse_envelope
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine, running_engine

AUTH = "AMT_AuthorizationService"
PASSWORD = "Secr3t!pw"
INVALID_NAME = 0x0C
MAX_LIMIT_REACHED = 0x17


def digest_password(username: str, realm: str, password: str) -> bytes:
    """The raw 16 bytes a console base64-encodes into DigestPassword."""
    return base64.b64decode(amt_digest_password(username, realm, password))


def request(method: str, **params: object) -> Envelope:
    return msg.invoke(CimObject.method_input(AUTH, method, **params))


async def call(t: WsmanTransport, method: str, **params: object) -> CimObject:
    reply = await t.send(request(method, **params))
    assert reply.fault is None, reply.fault
    assert isinstance(reply.body, CimObject)
    assert reply.body.element == f"{method}_OUTPUT"
    return reply.body


async def add_user(env: RunningEngine, name: str, realms: list[int], *, password: str = PASSWORD,
                   access: int = AccessPermission.LOCAL_AND_NETWORK) -> CimObject:
    return await call(env.transport(), "AddUserAclEntryEx", DigestUsername=name,
                      DigestPassword=digest_password(name, env.engine.realm, password),
                      AccessPermission=access, Realms=realms)


async def added(env: RunningEngine, name: str, realms: list[int]) -> int:
    out = await add_user(env, name, realms)
    assert out["ReturnValue"] == PTStatus.SUCCESS
    handle = out["Handle"]
    assert isinstance(handle, int)
    return handle


def audits(env: RunningEngine) -> list[AuditRecord]:
    return [AuditRecord.decode(r) for r in env.engine.store.read_log("audit")]


async def test_get_and_pull_match_the_firmware_captures(engine_env: RunningEngine, conformance_dir: Path) -> None:
    t = engine_env.transport()
    got = await t.send(msg.get(AUTH))
    capture = conformance_dir / "amt/authorization/get.xml"
    assert_same_shape(got.to_bytes(), capture)
    assert got.body == parse_envelope(capture.read_bytes()).body  # a service carries no device-specific values

    context = await t.send(msg.enumerate_(AUTH))
    captured = parse_envelope((conformance_dir / "amt/authorization/enumerate.xml").read_bytes())
    assert (context.header.action, context.header.resource_uri) == (captured.header.action,
                                                                   captured.header.resource_uri)
    assert isinstance(context.body, EnumerateResponse)
    assert context.body.context
    pulled = await t.send(msg.pull(AUTH, context.body.context))
    assert_same_shape(pulled.to_bytes(), conformance_dir / "amt/authorization/pull.xml")


async def test_user_lifecycle_replies_have_the_captured_shapes(
    engine_env: RunningEngine, conformance_dir: Path
) -> None:
    env, t = engine_env, engine_env.transport()
    first = await added(env, "alice", [Realm.HARDWARE_ASSET, Realm.GENERAL_INFO])
    second = await added(env, "bob", [Realm.REDIRECTION])
    assert second > first > 0

    listed = await t.send(request("EnumerateUserAclEntries", StartIndex=1))
    assert_same_shape(listed.to_bytes(), conformance_dir / "amt/authorization/enumerateuseraclentries.xml")
    assert listed.body["Handles"] == [first, second]  # type: ignore[index]
    assert listed.body["TotalCount"] == listed.body["HandlesCount"] == 2  # type: ignore[index]

    single = await t.send(request("GetUserAclEntryEx", Handle=second))  # one realm, as the capture has
    assert_same_shape(single.to_bytes(), conformance_dir / "amt/authorization/getuseraclentryex.xml")
    entry = await t.send(request("GetUserAclEntryEx", Handle=first))
    body = entry.body
    assert isinstance(body, CimObject)
    assert body["DigestUsername"] == "alice"
    assert body["AccessPermission"] == AccessPermission.LOCAL_AND_NETWORK
    assert body["Realms"] == [Realm.HARDWARE_ASSET, Realm.GENERAL_INFO]
    assert "DigestPassword" not in body  # the hash is confidential

    for method, capture in (("GetAclEnabledState", "getaclenabledstate.xml"),
                            ("SetAclEnabledState", "setaclenabledstate.xml"),
                            ("RemoveUserAclEntry", "removeuseraclentry.xml")):
        params: dict[str, object] = {"Handle": second}
        if method == "SetAclEnabledState":
            params["Enabled"] = True
        reply = await t.send(request(method, **params))
        assert_same_shape(reply.to_bytes(), conformance_dir / f"amt/authorization/{capture}")
        assert reply.body["ReturnValue"] == 0  # type: ignore[index]

    for method, capture in (("GetAdminAclEntry", "getadminaclentry.xml"),
                            ("GetAdminAclEntryStatus", "getadminaclentrystatus.xml"),
                            ("GetAdminNetAclEntryStatus", "getadminnetaclentrystatus.xml")):
        reply = await t.send(request(method))
        assert_same_shape(reply.to_bytes(), conformance_dir / f"amt/authorization/{capture}")
    admin = await call(t, "GetAdminAclEntry")
    assert admin["Username"] == "admin"
    assert (await call(t, "GetAdminAclEntryStatus"))["IsDefault"] is False

    after = await call(t, "EnumerateUserAclEntries", StartIndex=1)
    assert after["Handles"] == [first]
    paged = await call(t, "EnumerateUserAclEntries", StartIndex=2)
    assert (paged["TotalCount"], paged["HandlesCount"], paged.getlist("Handles")) == (1, 0, [])
    assert (await call(t, "EnumerateUserAclEntries", StartIndex=0))["ReturnValue"] == PTStatus.INVALID_INDEX


@pytest.mark.parametrize(
    ("name", "realms", "password_bytes", "status"),
    [
        ("x" * 17, [Realm.GENERAL_INFO], 16, INVALID_NAME),
        ("", [Realm.GENERAL_INFO], 16, INVALID_NAME),
        ("ali:ce", [Realm.GENERAL_INFO], 16, INVALID_NAME),
        ("a<b", [Realm.GENERAL_INFO], 16, INVALID_NAME),
        ("$$uns", [Realm.GENERAL_INFO], 16, INVALID_NAME),
        ("Admin", [Realm.GENERAL_INFO], 16, INVALID_NAME),
        ("carol", [], 16, PTStatus.INVALID_REALM),
        ("carol", [0], 16, PTStatus.INVALID_REALM),
        ("carol", [22], 16, PTStatus.INVALID_REALM),
        ("carol", [Realm.GENERAL_INFO, 99], 16, PTStatus.INVALID_REALM),
        ("carol", [Realm.GENERAL_INFO], 15, PTStatus.INVALID_PASSWORD),
    ],
)
async def test_add_refuses_what_amt_refuses(
    engine_env: RunningEngine, name: str, realms: list[int], password_bytes: int, status: int
) -> None:
    out = await call(engine_env.transport(), "AddUserAclEntryEx", DigestUsername=name,
                     DigestPassword=bytes(password_bytes), AccessPermission=2, Realms=realms)
    assert out["ReturnValue"] == status
    assert "Handle" not in out
    assert engine_env.engine.accounts.users() == []


async def test_duplicates_kerberos_and_the_eight_entry_limit(engine_env: RunningEngine) -> None:
    env, t = engine_env, engine_env.transport()
    await added(env, "dave", [Realm.GENERAL_INFO])
    assert (await add_user(env, "dave", [Realm.GENERAL_INFO]))["ReturnValue"] == PTStatus.DUPLICATE
    kerberos = await call(t, "AddUserAclEntryEx", KerberosUserSid=bytes(28), AccessPermission=2,
                          Realms=[Realm.GENERAL_INFO])
    assert kerberos["ReturnValue"] == PTStatus.NOT_PERMITTED  # no Kerberos facility to enable
    bad_access = await add_user(env, "erin", [Realm.GENERAL_INFO], access=7)
    assert bad_access["ReturnValue"] == PTStatus.INVALID_PARAMETER
    for i in range(6):
        await added(env, f"user{i}", [Realm.GENERAL_INFO])
    assert len(env.engine.accounts.users()) == 7
    assert (await add_user(env, "eighth", [Realm.GENERAL_INFO]))["ReturnValue"] == MAX_LIMIT_REACHED


async def test_unknown_and_admin_handles_are_invalid(engine_env: RunningEngine) -> None:
    t = engine_env.transport()
    for handle in (0, 42):
        for method, extra in (("GetUserAclEntryEx", {}), ("RemoveUserAclEntry", {}), ("GetAclEnabledState", {}),
                              ("SetAclEnabledState", {"Enabled": False}),
                              ("UpdateUserAclEntryEx", {"AccessPermission": 2, "Realms": [Realm.GENERAL_INFO]})):
            out = await call(t, method, Handle=handle, **extra)
            assert out.names() == ["ReturnValue"]
            assert out["ReturnValue"] == PTStatus.INVALID_HANDLE, (method, handle)
    assert engine_env.engine.accounts.admin is not None


async def test_new_user_logs_in_with_its_realms_only(engine_env: RunningEngine) -> None:
    env = engine_env
    await added(env, "reader", [Realm.GENERAL_INFO])
    reader = env.transport("reader", PASSWORD)
    got = await reader.send(msg.get("AMT_GeneralSettings"))
    assert got.fault is None
    assert got.body["DigestRealm"] == env.engine.realm  # type: ignore[index]
    denied = await reader.send(request("EnumerateUserAclEntries", StartIndex=1))
    assert isinstance(denied.fault, F.AccessDenied)
    with pytest.raises(AuthenticationError):
        await env.transport("reader", "wrong-password").send(msg.get("AMT_GeneralSettings"))


async def test_removed_or_disabled_user_is_refused_on_its_next_request(engine_env: RunningEngine) -> None:
    env, admin = engine_env, engine_env.transport()
    handle = await added(env, "temp", [Realm.GENERAL_INFO])
    session = env.transport("temp", PASSWORD)
    assert (await session.send(msg.get("AMT_GeneralSettings"))).fault is None

    assert (await call(admin, "SetAclEnabledState", Handle=handle, Enabled=False))["ReturnValue"] == 0
    assert (await call(admin, "GetAclEnabledState", Handle=handle))["Enabled"] is False
    with pytest.raises(AuthenticationError):
        await session.send(msg.get("AMT_GeneralSettings"))
    assert (await call(admin, "SetAclEnabledState", Handle=handle, Enabled=True))["ReturnValue"] == 0
    assert (await session.send(msg.get("AMT_GeneralSettings"))).fault is None

    assert (await call(admin, "RemoveUserAclEntry", Handle=handle))["ReturnValue"] == 0
    with pytest.raises(AuthenticationError):
        await session.send(msg.get("AMT_GeneralSettings"))
    # Handles are never reused: a stale handle cannot reach whoever is added next.
    assert await added(env, "next", [Realm.GENERAL_INFO]) > handle
    assert (await call(admin, "GetUserAclEntryEx", Handle=handle))["ReturnValue"] == PTStatus.INVALID_HANDLE


async def test_update_changes_access_at_once_and_renames_need_a_password(engine_env: RunningEngine) -> None:
    env, admin = engine_env, engine_env.transport()
    handle = await added(env, "frank", [Realm.HARDWARE_ASSET])
    frank = env.transport("frank", PASSWORD)
    assert isinstance((await frank.send(msg.get("AMT_GeneralSettings"))).fault, F.AccessDenied)

    out = await call(admin, "UpdateUserAclEntryEx", Handle=handle, AccessPermission=2,
                     Realms=[Realm.GENERAL_INFO])
    assert out["ReturnValue"] == 0
    assert (await frank.send(msg.get("AMT_GeneralSettings"))).fault is None

    rename = await call(admin, "UpdateUserAclEntryEx", Handle=handle, DigestUsername="franz", AccessPermission=2,
                        Realms=[Realm.GENERAL_INFO])
    assert rename["ReturnValue"] == PTStatus.INVALID_PASSWORD  # the stored HA1 hashes the old name
    rename = await call(admin, "UpdateUserAclEntryEx", Handle=handle, DigestUsername="franz",
                        DigestPassword=digest_password("franz", env.engine.realm, "N3w!pass"),
                        AccessPermission=2, Realms=[Realm.GENERAL_INFO])
    assert rename["ReturnValue"] == 0
    assert (await env.transport("franz", "N3w!pass").send(msg.get("AMT_GeneralSettings"))).fault is None
    assert (await call(admin, "GetUserAclEntryEx", Handle=handle))["DigestUsername"] == "franz"


async def test_acl_realm_cannot_hand_out_realms_it_lacks(engine_env: RunningEngine) -> None:
    env = engine_env
    await added(env, "acladmin", [Realm.ACL, Realm.GENERAL_INFO])
    delegate = env.transport("acladmin", PASSWORD)
    escalate = await call(delegate, "AddUserAclEntryEx", DigestUsername="mallory",
                          DigestPassword=digest_password("mallory", env.engine.realm, PASSWORD),
                          AccessPermission=2, Realms=[Realm.PT_ADMINISTRATION])
    assert escalate["ReturnValue"] == PTStatus.NOT_PERMITTED
    allowed = await call(delegate, "AddUserAclEntryEx", DigestUsername="helper",
                         DigestPassword=digest_password("helper", env.engine.realm, PASSWORD),
                         AccessPermission=2, Realms=[Realm.GENERAL_INFO])
    assert allowed["ReturnValue"] == 0


async def test_set_admin_is_for_the_admin_and_changes_its_login(engine_env: RunningEngine) -> None:
    env, admin = engine_env, engine_env.transport()
    await added(env, "ptadmin", [Realm.PT_ADMINISTRATION])
    other = env.transport("ptadmin", PASSWORD)
    # PT Administration reaches every realm (IRG administrativeusers.htm) ...
    assert (await call(other, "GetAdminAclEntry"))["Username"] == "admin"
    # ... but only the admin itself redefines the admin entry.
    refused = await other.send(request("SetAdminAclEntryEx", Username="admin",
                                       DigestPassword=digest_password("admin", env.engine.realm, "x")))
    assert isinstance(refused.fault, F.AccessDenied)

    taken = await call(admin, "SetAdminAclEntryEx", Username="ptadmin",
                       DigestPassword=digest_password("ptadmin", env.engine.realm, "Chang3d!"))
    assert taken["ReturnValue"] == PTStatus.DUPLICATE
    changed = await call(admin, "SetAdminAclEntryEx", Username="root",
                         DigestPassword=digest_password("root", env.engine.realm, "Chang3d!"))
    assert changed["ReturnValue"] == 0
    with pytest.raises(AuthenticationError):
        await admin.send(msg.get("AMT_GeneralSettings"))
    root = env.transport("root", "Chang3d!")
    assert (await call(root, "GetAdminAclEntry"))["Username"] == "root"


async def test_every_change_is_audited_with_who_and_whom(engine_env: RunningEngine) -> None:
    env, admin = engine_env, engine_env.transport()
    handle = await added(env, "gina", [Realm.GENERAL_INFO])
    await call(admin, "UpdateUserAclEntryEx", Handle=handle, AccessPermission=1, Realms=[Realm.GENERAL_INFO])
    await call(admin, "SetAclEnabledState", Handle=handle, Enabled=False)
    await call(admin, "RemoveUserAclEntry", Handle=handle)
    records = [r for r in audits(env) if r.app_id == 16]
    assert [r.full_id for r in records] == [1602, 1603, 1606, 1604]
    assert all(r.initiator == "admin" and r.address == "127.0.0.1" for r in records)
    # The extended data MeshCommander decodes: [0 = digest, length, name], with a prefix for 1603/1606.
    assert records[0].extended == b"\x00\x04gina"
    assert records[1].extended == b"\x04\x00\x04gina"  # access/realms changed
    assert records[2].extended == b"\x00\x00\x04gina"  # disabled
    assert records[3].extended == b"\x00\x04gina"


async def test_users_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "engine.db"
    async with running_engine(state=state, password="Adm1n!pass") as env:
        handle = await added(env, "henry", [Realm.GENERAL_INFO])
    async with running_engine(state=state, password="Adm1n!pass") as env:
        assert (await call(env.transport(), "GetUserAclEntryEx", Handle=handle))["DigestUsername"] == "henry"
        assert (await env.transport("henry", PASSWORD).send(msg.get("AMT_GeneralSettings"))).fault is None


async def test_a_local_only_user_is_refused_over_the_network(engine_env: RunningEngine) -> None:
    out = await add_user(engine_env, "localop", [Realm.GENERAL_INFO], access=AccessPermission.LOCAL_ONLY)
    assert out["ReturnValue"] == 0
    local = engine_env.transport("localop", PASSWORD)
    assert isinstance((await local.send(msg.get("AMT_GeneralSettings"))).fault, F.AccessDenied)
    network = await add_user(engine_env, "netop", [Realm.GENERAL_INFO], access=AccessPermission.NETWORK_ONLY)
    assert network["ReturnValue"] == 0
    assert (await engine_env.transport("netop", PASSWORD).send(msg.get("AMT_GeneralSettings"))).fault is None
