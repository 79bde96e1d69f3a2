"""CIRA configuration over real HTTP: RPS's ciraConfiguration sequence step by step against the firmware captures,
MeshCommander's edits, AMT's refusals, and what the CIRA client reads back (``cira_config``)."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from tests.engine._provisioning_kit import (
    call,
    der,
    engine_config,
    get,
    instances,
    invoke,
    issue,
    name,
    pull_all,
    returns,
    rsa_key,
)
from tests.engine.wire_shape import assert_same_shape, load_capture

from outband.engine.services import certificates, remoteaccess
from outband.proto.cim.model import CimObject
from outband.proto.wsman import EndpointReference, Envelope
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.proto.wsman.namespaces import resource_uri
from outband.testing.engine import RunningEngine, running_engine

RAS = "AMT_RemoteAccessService"
MPS = "AMT_ManagementPresenceRemoteSAP"
RULE = "AMT_RemoteAccessPolicyRule"
APPLIES = "AMT_RemoteAccessPolicyAppliesToMPS"
UIC = "AMT_UserInitiatedConnectionService"
ENV = "AMT_EnvironmentDetectionSettingData"
CREDENTIAL = "AMT_MPSUsernamePassword"
PERIODIC_25S = base64.b64decode("AAAAAAAAABk=")
MPS_USER, MPS_PASSWORD = "mpsuser0001", "Mps!Passw0rd"


@pytest.fixture
async def env():
    async with running_engine(config=engine_config()) as running:
        yield running


def mps_by_name(name_: str) -> EndpointReference:
    """What RPS and MeshCommander pass as MpServer: only the Name selector."""
    return EndpointReference.to(resource_uri(MPS), {"Name": name_})


async def add_server(t, host: str = "192.168.0.208", **overrides: object) -> CimObject:
    params: dict[str, object] = {"AccessInfo": host, "InfoFormat": 3, "Port": 4433, "AuthMethod": 2,
                                 "Username": MPS_USER, "Password": MPS_PASSWORD, "CN": host}
    params.update(overrides)
    return await call(t, RAS, "AddMpServer", **{k: v for k, v in params.items() if v is not None})


async def rps_cira_configuration(env: RunningEngine, conformance_dir: Path) -> str:
    """RPS ``ciraConfiguration.ts`` in order, each reply checked against its capture.  Returns the DNS suffix
    written to environment detection."""
    t = env.transport()
    mps_root = load_capture(conformance_dir, "amt/publickey/certificate/get.xml").body["X509Certificate"]  # type: ignore[index]
    assert await returns(t, "AMT_PublicKeyManagementService", "AddTrustedRootCertificate",
                         CertificateBlob=mps_root) == 0

    reply = await t.send(invoke(RAS, "AddMpServer", AccessInfo="192.168.0.208", InfoFormat=3, Port=4433,
                                AuthMethod=2, Username=MPS_USER, Password=MPS_PASSWORD, CN="192.168.0.208"))
    capture = load_capture(conformance_dir, "amt/remoteaccess/service/addmpsserver.xml")
    assert_same_shape(reply, capture)
    assert reply.body == capture.body

    _, pulled = await pull_all(t, MPS)
    assert_same_shape(pulled, load_capture(conformance_dir, "amt/managementpresence/pull.xml"))
    server_name = pulled.body.items[0]["Name"]  # type: ignore[union-attr,index]

    reply = await t.send(invoke(RAS, "AddRemoteAccessPolicyRule", Trigger=2, TunnelLifeTime=0,
                                ExtendedData=PERIODIC_25S, MpServer=mps_by_name(server_name)))
    capture = load_capture(conformance_dir, "amt/remoteaccess/service/addremoteaccessservice.xml")
    assert_same_shape(reply, capture)
    assert reply.body == capture.body
    assert await returns(t, RAS, "AddRemoteAccessPolicyRule", Trigger=0, TunnelLifeTime=300, ExtendedData=b"",
                         MpServer=mps_by_name(server_name)) == 0

    _, links = await pull_all(t, APPLIES)
    items = [i for i in links.body.items if isinstance(i, CimObject)]  # type: ignore[union-attr]
    captured_item = load_capture(conformance_dir, "amt/remoteaccess/policyappliestomps/pull.xml").body.items[0]  # type: ignore[union-attr]
    periodic = [i for i in items if i["PolicySet"].selector_dict["PolicyRuleName"] == "Periodic"]  # type: ignore[union-attr]
    assert periodic == [captured_item]  # the periodic link, before RPS edits it
    for item in items:
        item["MpsType"], item["OrderOfAccess"] = 2, 0
        put = await t.send(msg.put(item, {"ManagedElement": item["ManagedElement"], "PolicySet": item["PolicySet"]}))
        assert put.fault is None, put.fault
        assert put.header.action == load_capture(conformance_dir,
                                                 "amt/remoteaccess/policyappliestomps/put.xml").header.action

    reply = await t.send(invoke(UIC, "RequestStateChange", RequestedState=32771))
    assert_same_shape(reply, load_capture(conformance_dir, "amt/userinitiatedconnection/request.xml"))
    assert reply.body["ReturnValue"] == 0  # type: ignore[index]

    settings = await get(t, ENV)
    suffix = f"{uuid.uuid4()}.com"
    settings["DetectionStrings"] = [suffix]
    put = await t.send(msg.put(settings))
    assert_same_shape(put, load_capture(conformance_dir, "amt/environmentdetection/put.xml"))
    return suffix


async def test_rps_cira_configuration_round_trip(env, conformance_dir: Path) -> None:
    suffix = await rps_cira_configuration(env, conformance_dir)
    config = remoteaccess.cira_config(env.engine)
    assert config is not None
    (server,) = config.servers
    assert (server.host, server.port, server.common_name, server.info_format) == ("192.168.0.208", 4433,
                                                                                  "192.168.0.208", 3)
    assert (server.auth_method, server.username, server.password) == (2, MPS_USER, MPS_PASSWORD)
    periodic, user = config.policy(2), config.policy(0)
    assert periodic is not None
    assert user is not None
    assert (periodic.interval, periodic.daily_at, periodic.tunnel_lifetime, periodic.servers) == (25, None, 0,
                                                                                                  (server,))
    assert (user.tunnel_lifetime, user.servers) == (300, (server,))
    assert config.policy(1) is None
    mps_root = load_capture(conformance_dir, "amt/publickey/certificate/get.xml").body["X509Certificate"]  # type: ignore[index]
    assert config.trusted_roots_der == (mps_root,)
    assert config.user_initiated == 32771
    assert config.detection_strings == (suffix,)
    assert config.outside_intranet("corp.example")
    assert not config.outside_intranet(f"host.{suffix}")

    t = env.transport()
    links = await instances(t, APPLIES)
    assert [(lk["MpsType"], lk["OrderOfAccess"]) for lk in links] == [(2, 0), (2, 0)]
    assert [r["PolicyRuleName"] for r in await instances(t, RULE)] == ["User Initiated", "Periodic"]


async def test_reads_match_the_captures(env, conformance_dir: Path) -> None:
    await rps_cira_configuration(env, conformance_dir)
    t = env.transport()
    pairs: list[tuple[Envelope, str]] = [
        (await t.send(msg.get(RAS)), "amt/remoteaccess/service/get.xml"),
        (await t.send(msg.get(MPS)), "amt/managementpresence/get.xml"),
        (await t.send(msg.get(RULE, {"PolicyRuleName": "Periodic"})), "amt/remoteaccess/policyrule/get.xml"),
        (await t.send(msg.get(CREDENTIAL)), "amt/mps/get.xml"),
        (await t.send(msg.get(UIC)), "amt/userinitiatedconnection/get.xml"),
        (await t.send(msg.get(ENV)), "amt/environmentdetection/get.xml"),
    ]
    for reply, capture in pairs:
        assert_same_shape(reply, load_capture(conformance_dir, capture))
    rule = pairs[2][0].body
    capture_rule = load_capture(conformance_dir, "amt/remoteaccess/policyrule/get.xml").body
    assert rule == capture_rule  # ElementName "Inte(r) AMT:Remote Access Policy" included
    assert pairs[3][0].body["RemoteID"] == MPS_USER  # type: ignore[index]
    assert "Secret" not in pairs[3][0].body  # type: ignore[operator]
    assert pairs[0][0].body == load_capture(conformance_dir, "amt/remoteaccess/service/get.xml").body
    for cls, capture in ((RAS, "amt/remoteaccess/service/pull.xml"), (RULE, "amt/remoteaccess/policyrule/pull.xml"),
                         (CREDENTIAL, "amt/mps/pull.xml")):
        _, pulled = await pull_all(t, cls)
        if cls == RULE:  # the capture holds the periodic rule only
            await t.send(msg.delete(RULE, {"PolicyRuleName": "User Initiated"}))
            _, pulled = await pull_all(t, cls)
        assert_same_shape(pulled, load_capture(conformance_dir, capture))
    contexts = await instances(t, "AMT_RemoteAccessCredentialContext")
    assert [c["ElementInContext"] for c in contexts] == [EndpointReference.to(
        resource_uri(CREDENTIAL), {"InstanceID": "Intel(r) AMT:MPS Username Password 0"})]


# ---------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("overrides", "code"), [
    ({"AccessInfo": "not an address"}, 36),
    ({"AccessInfo": "mps.example.com", "InfoFormat": 4}, 36),
    ({"InfoFormat": 2}, 36),
    ({"Port": 0}, 36),
    ({"AuthMethod": 3}, 36),
    ({"Password": None}, 36),
    ({"Username": "u" * 17}, 36),
    ({"AuthMethod": 1, "Username": None, "Password": None}, 36),  # mutual auth without a certificate
])
async def test_add_mp_server_refusals(env, overrides, code) -> None:
    t = env.transport()
    assert (await add_server(t, **overrides))["ReturnValue"] == code
    assert await instances(t, MPS) == []


async def test_add_mp_server_limits_and_duplicates(env) -> None:
    t = env.transport()
    assert (await add_server(t, "mps.example.com", InfoFormat=201, CN=None))["ReturnValue"] == 0
    assert (await get(t, MPS))["CN"] == "mps.example.com"  # no CN given: the host name
    assert (await add_server(t, "MPS.example.com", InfoFormat=201))["ReturnValue"] == remoteaccess.DUPLICATE
    for i in range(1, remoteaccess.MAX_SERVERS):
        assert (await add_server(t, f"10.0.0.{i}"))["ReturnValue"] == 0
    assert (await add_server(t, "10.0.0.99"))["ReturnValue"] == remoteaccess.MAX_LIMIT_REACHED


async def test_mutual_authentication_uses_a_certificate_with_its_key(env) -> None:
    t = env.transport()
    out = await call(t, "AMT_PublicKeyManagementService", "GenerateKeyPair", KeyAlgorithm=0, KeyLength=2048)
    stored_key = certificates.key_pairs(env.engine)[0].private_key.public_key()
    client = issue(name("amt-client"), stored_key, name("Console CA"), rsa_key("console-ca"), ca=False)
    created = (await call(t, "AMT_PublicKeyManagementService", "AddCertificate",
                          CertificateBlob=der(client)))["CreatedCertificate"]
    assert out["ReturnValue"] == 0
    assert (await add_server(t, AuthMethod=1, Username=None, Password=None, Certificate=created))["ReturnValue"] == 0
    (server,) = remoteaccess.servers(env.engine)
    assert server.client_certificate == 0
    contexts = await instances(t, "AMT_RemoteAccessCredentialContext")
    assert contexts[0]["ElementInContext"] == created
    assert await instances(t, CREDENTIAL) == []  # no username/password credential for this server
    # The certificate is in use and cannot be deleted.
    refused = await t.send(msg.delete("AMT_PublicKeyCertificate", created.selector_dict))  # type: ignore[union-attr]
    assert isinstance(refused.fault, F.InternalError)


@pytest.mark.parametrize(("params", "code"), [
    ({"Trigger": 2, "TunnelLifeTime": 0, "ExtendedData": b"\x00" * 7}, 36),
    ({"Trigger": 2, "TunnelLifeTime": 0, "ExtendedData": bytes(8)}, 36),  # an interval of 0 s
    ({"Trigger": 2, "TunnelLifeTime": 0, "ExtendedData": bytes.fromhex("00000001" "00000018" "00000000")}, 36),
    ({"Trigger": 3, "TunnelLifeTime": 0}, 36),  # home provisioning is not a CIRA trigger here
    ({"Trigger": 1}, 36),
])
async def test_policy_rule_refusals(env, params, code) -> None:
    t = env.transport()
    await add_server(t)
    name_ = "Intel(r) AMT:Management Presence Server 0"
    assert await returns(t, RAS, "AddRemoteAccessPolicyRule", MpServer=mps_by_name(name_), **params) == code
    assert await instances(t, RULE) == []


async def test_policy_rules_need_known_servers_and_one_rule_per_trigger(env) -> None:
    t = env.transport()
    await add_server(t)
    unknown = mps_by_name("Intel(r) AMT:Management Presence Server 3")
    assert await returns(t, RAS, "AddRemoteAccessPolicyRule", Trigger=1, TunnelLifeTime=60, MpServer=unknown) == 36
    assert await returns(t, RAS, "AddRemoteAccessPolicyRule", Trigger=1, TunnelLifeTime=60) == 36
    known = mps_by_name("Intel(r) AMT:Management Presence Server 0")
    assert await returns(t, RAS, "AddRemoteAccessPolicyRule", Trigger=1, TunnelLifeTime=60, MpServer=known) == 0
    assert await returns(t, RAS, "AddRemoteAccessPolicyRule", Trigger=1, TunnelLifeTime=60,
                         MpServer=known) == remoteaccess.DUPLICATE
    # A daily time-of-day rule as MeshCommander writes it (type 1, 23:59), through the internal server list.
    daily = bytes.fromhex("00000001" "00000017" "0000003b")
    assert await returns(t, RAS, "AddRemoteAccessPolicyRule", Trigger=2, TunnelLifeTime=0, ExtendedData=daily,
                         InternalMpServer=known) == 0
    config = remoteaccess.cira_config(env.engine)
    assert config is not None
    periodic = config.policy(2)
    assert periodic is not None
    assert (periodic.interval, periodic.daily_at, periodic.servers) == (None, (23, 59), ())  # internal only
    links = await instances(t, APPLIES)
    assert sorted(lk["MpsType"] for lk in links) == [0, 1]


async def test_applies_to_mps_put_is_validated(env) -> None:
    t = env.transport()
    await add_server(t)
    await returns(t, RAS, "AddRemoteAccessPolicyRule", Trigger=2, TunnelLifeTime=0, ExtendedData=PERIODIC_25S,
                  MpServer=mps_by_name("Intel(r) AMT:Management Presence Server 0"))
    (link,) = await instances(t, APPLIES)
    selectors = {"ManagedElement": link["ManagedElement"], "PolicySet": link["PolicySet"]}
    link["MpsType"] = 7
    assert isinstance((await t.send(msg.put(link, selectors))).fault, F.InvalidRepresentation)
    link["MpsType"], link["OrderOfAccess"] = 1, 1
    reply = await t.send(msg.put(link, selectors))
    assert reply.fault is None
    assert ((await instances(t, APPLIES))[0]["MpsType"], (await instances(t, APPLIES))[0]["OrderOfAccess"]) == (1, 1)


# ---------------------------------------------------------------------------------------------- edits


async def test_deleting_rules_and_servers(env, conformance_dir: Path) -> None:
    await rps_cira_configuration(env, conformance_dir)
    t = env.transport()
    reply = await t.send(msg.delete(RULE, {"PolicyRuleName": "User Initiated"}))  # MCMD's selector
    assert reply.fault is None
    assert reply.header.action == load_capture(conformance_dir,
                                               "amt/remoteaccess/policyrule/delete.xml").header.action
    assert [r["PolicyRuleName"] for r in await instances(t, RULE)] == ["Periodic"]
    assert len(await instances(t, APPLIES)) == 1

    # Deleting the server takes its links and the rules left without a server.
    reply = await t.send(msg.delete(MPS, {"Name": "Intel(r) AMT:Management Presence Server 0"}))
    assert reply.fault is None
    assert reply.header.action == load_capture(conformance_dir, "amt/managementpresence/delete.xml").header.action
    assert await instances(t, RULE) == []
    assert await instances(t, APPLIES) == []
    assert remoteaccess.cira_config(env.engine) is None
    # The freed slot is used again: RPS hard-codes "... Server 0" in its AppliesToMPS selectors.
    out = await add_server(t)
    assert out["MpServer"].selector_dict["Name"] == "Intel(r) AMT:Management Presence Server 0"  # type: ignore[union-attr]
    missing = await t.send(msg.delete(RULE, {"PolicyRuleName": "Alert"}))
    assert isinstance(missing.fault, F.DestinationUnreachable)


async def test_mps_credential_put_is_write_only(env, conformance_dir: Path) -> None:
    t = env.transport()
    await add_server(t)
    current = await get(t, CREDENTIAL)
    current["RemoteID"] = "newuser"
    current["Secret"] = "N3w!Secret"
    reply = await t.send(msg.put(current))
    assert reply.fault is None
    assert reply.header.action == load_capture(conformance_dir, "amt/mps/put.xml").header.action
    assert "Secret" not in reply.body  # type: ignore[operator]
    (server,) = remoteaccess.servers(env.engine)
    assert (server.username, server.password) == ("newuser", "N3w!Secret")
    current["RemoteID"] = "x" * 17
    assert isinstance((await t.send(msg.put(current))).fault, F.InvalidRepresentation)


async def test_user_initiated_states(env) -> None:
    t = env.transport()
    for state in (32768, 32769, 32770):
        assert await returns(t, UIC, "RequestStateChange", RequestedState=state) == 0
        assert (await get(t, UIC))["EnabledState"] == state
    assert await returns(t, UIC, "RequestStateChange", RequestedState=2) == remoteaccess.REQUEST_STATE_INVALID_PARAMETER
    assert await returns(t, UIC, "RequestStateChange") == remoteaccess.REQUEST_STATE_INVALID_PARAMETER
    assert (await get(t, UIC))["EnabledState"] == 32770


async def test_environment_detection_limits(env) -> None:
    t = env.transport()
    settings = await get(t, ENV)
    settings["DetectionStrings"] = [f"d{i}.example" for i in range(remoteaccess.MAX_DETECTION_STRINGS + 1)]
    assert isinstance((await t.send(msg.put(settings))).fault, F.InvalidRepresentation)
    settings["DetectionStrings"] = ["intranet.example", "corp.example"]
    settings["DetectionAlgorithm"] = 3
    assert isinstance((await t.send(msg.put(settings))).fault, F.InvalidRepresentation)
    settings["DetectionAlgorithm"] = 0
    assert (await t.send(msg.put(settings))).fault is None
    assert (await get(t, ENV))["DetectionStrings"] == ["intranet.example", "corp.example"]


async def test_configuration_survives_a_restart(tmp_path: Path, conformance_dir: Path) -> None:
    state = tmp_path / "engine.db"
    async with running_engine(config=engine_config(), state=state) as first:
        suffix = await rps_cira_configuration(first, conformance_dir)
        before = remoteaccess.cira_config(first.engine)
        password = first.password
    async with running_engine(config=engine_config(), state=state, password=password) as second:
        assert remoteaccess.cira_config(second.engine) == before
        assert (await get(second.transport(), ENV))["DetectionStrings"] == [suffix]
