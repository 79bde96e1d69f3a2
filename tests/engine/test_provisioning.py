"""Provisioning over real HTTP: the setup services as consoles read them, host-based setup into CCM and ACM the
way rpc-go/RPS drive it, AMT's refusals with its return codes, and unprovisioning back to factory state."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from tests.engine._provisioning_kit import (
    DOMAIN,
    ProvisioningChain,
    assert_method_shape,
    audits,
    call,
    configuration_nonce,
    der,
    engine_config,
    get,
    invoke,
    provisioning_chain,
    pull_all,
    returns,
    rsa_key,
    send_chain,
)
from tests.engine.wire_shape import assert_same_shape, load_capture

from outband.aio.errors import AuthenticationError
from outband.aio.wsman_client import WsmanTransport
from outband.engine.acl import Account
from outband.engine.services import certificates, provisioning, remoteaccess
from outband.engine.services.provisioning import ControlMode, ProvisioningState
from outband.proto.amt import Realm
from outband.proto.cim.model import XmlFragment
from outband.proto.digest import ha1
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine, running_engine

SETUP = "AMT_SetupAndConfigurationService"
HBS = "IPS_HostBasedSetupService"
NEW_PASSWORD = "N3w!Admin-pw"


@pytest.fixture
async def env():
    async with running_engine(config=engine_config()) as running:
        yield running


@pytest.fixture
async def factory_env():
    """An engine as it leaves the factory: pre-provisioning, ready for host-based setup."""
    async with running_engine(config=engine_config()) as running:
        provisioning.set_provisioning(running.engine, ControlMode.NONE, ProvisioningState.PRE)
        yield running


def admin_ha1(env: RunningEngine, password: str = NEW_PASSWORD) -> str:
    """NetworkAdminPassword as rpc-go/RPS compute it: hex MD5 of "admin:" + DigestRealm + ":" + password."""
    return hashlib.md5(f"admin:{env.engine.realm}:{password}".encode()).hexdigest()


async def control_mode(t: WsmanTransport) -> tuple[object, object, object]:
    """(CurrentControlMode, ProvisioningMode, ProvisioningState) as a console reads them."""
    hbs, setup = await get(t, HBS), await get(t, SETUP)
    return hbs["CurrentControlMode"], setup["ProvisioningMode"], setup["ProvisioningState"]


async def admin_setup(env: RunningEngine, chain: ProvisioningChain, **overrides: object) -> int:
    """AdminSetup as rpc-go sends it: the hashed password, a fresh McNonce, and the signature over both nonces."""
    t = env.transport()
    fw_nonce, mc_nonce = await configuration_nonce(t), secrets.token_bytes(20)
    params: dict[str, object] = {
        "NetAdminPassEncryptionType": 2, "NetworkAdminPassword": admin_ha1(env), "McNonce": mc_nonce,
        "SigningAlgorithm": 2, "DigitalSignature": chain.sign(fw_nonce, mc_nonce),
    }
    params.update(overrides)
    return await returns(t, HBS, "AdminSetup", **params)


def trust(env: RunningEngine, chain: ProvisioningChain) -> None:
    provisioning.set_trusted_root_hashes(env.engine, [chain.root_hash])


# ---------------------------------------------------------------------------------------------- reading


async def test_setup_service_matches_the_captures_and_reports_acm_by_default(env, conformance_dir: Path) -> None:
    t = env.transport()
    got = await t.send(msg.get(SETUP))
    assert_same_shape(got, load_capture(conformance_dir, "amt/setupandconfiguration/get.xml"))
    capture = load_capture(conformance_dir, "amt/setupandconfiguration/get.xml").body
    assert isinstance(got.body, type(capture))
    differing = [n for n in capture.names() if got.body[n] != capture[n]]  # type: ignore[union-attr,index]
    assert differing == ["ZeroTouchConfigurationEnabled"]  # provisioned ACM like the capture; no root trusted yet
    enumerated, pulled = await pull_all(t, SETUP)
    assert enumerated.header.action == load_capture(conformance_dir,
                                                    "amt/setupandconfiguration/enumerate.xml").header.action
    assert_same_shape(pulled, load_capture(conformance_dir, "amt/setupandconfiguration/pull.xml"))


async def test_zero_touch_flag_follows_the_trusted_hashes(env) -> None:
    t = env.transport()
    assert (await get(t, SETUP))["ZeroTouchConfigurationEnabled"] is False
    trust(env, provisioning_chain())
    assert (await get(t, SETUP))["ZeroTouchConfigurationEnabled"] is True


async def test_get_uuid_is_the_system_uuid_in_smbios_byte_order(env) -> None:
    out = await call(env.transport(), SETUP, "GetUuid")
    raw = out["UUID"]
    assert isinstance(raw, bytes)
    assert out["ReturnValue"] == 0
    # Consoles turn it back into the UUID string the first three fields little-endian (MCMD guidToStr).
    assert str(uuid.UUID(bytes_le=raw)) == env.engine.uuid
    assert raw != uuid.UUID(env.engine.uuid).bytes


async def test_host_based_setup_service_matches_the_captures_and_keeps_its_nonce(env, conformance_dir: Path) -> None:
    t = env.transport()
    got = await t.send(msg.get(HBS))
    assert_same_shape(got, load_capture(conformance_dir, "ips/hostbasedsetup/get.xml"))
    _, pulled = await pull_all(t, HBS)
    assert_same_shape(pulled, load_capture(conformance_dir, "ips/hostbasedsetup/pull.xml"))
    body = got.body
    assert (body["CurrentControlMode"], body["CertChainStatus"]) == (2, 0)  # type: ignore[index]
    assert body["AllowedControlModes"] == [2, 1]  # type: ignore[index]
    nonce = body["ConfigurationNonce"]  # type: ignore[index]
    assert isinstance(nonce, bytes)
    assert len(nonce) == 20
    assert await configuration_nonce(t) == nonce  # stable until used


# ---------------------------------------------------------------------------------------------- CCM


async def test_ccm_setup_sets_the_admin_password_from_the_hash(factory_env, conformance_dir: Path) -> None:
    env = factory_env
    t = env.transport()
    assert await control_mode(t) == (0, 1, 0)
    reply = await t.send(invoke(HBS, "Setup", NetAdminPassEncryptionType=2, NetworkAdminPassword=admin_ha1(env)))
    assert_method_shape(reply, conformance_dir, "ips/hostbasedsetup/setup.xml")
    assert reply.body["ReturnValue"] == 0  # type: ignore[index]

    fresh = env.transport(password=NEW_PASSWORD)
    assert await control_mode(fresh) == (1, 4, 2)
    with pytest.raises(AuthenticationError):
        await env.transport(password=env.password).send(msg.get(SETUP))
    # A second Setup finds the engine provisioned.
    assert await returns(fresh, HBS, "Setup", NetAdminPassEncryptionType=2,
                         NetworkAdminPassword=admin_ha1(env)) == provisioning.SETUP_INVALID_STATE


@pytest.mark.parametrize(("params", "why"), [
    ({"NetAdminPassEncryptionType": 1, "NetworkAdminPassword": "0" * 32}, "only HTTP digest MD5(A1)"),
    ({"NetAdminPassEncryptionType": 2, "NetworkAdminPassword": "z" * 32}, "not hex"),
    ({"NetAdminPassEncryptionType": 2, "NetworkAdminPassword": "ab" * 17}, "34 digits"),
    ({"NetAdminPassEncryptionType": 2}, "missing password"),
])
async def test_ccm_setup_refuses_bad_parameters_and_changes_nothing(factory_env, params, why) -> None:
    t = factory_env.transport()
    assert await returns(t, HBS, "Setup", **params) == provisioning.SETUP_INVALID_PARAM, why
    assert provisioning.provisioning(factory_env.engine).state is ProvisioningState.PRE


async def test_disable_client_control_mode_returns_to_pre_provisioning(factory_env) -> None:
    env = factory_env
    assert await returns(env.transport(), HBS, "Setup", NetAdminPassEncryptionType=2,
                         NetworkAdminPassword=admin_ha1(env)) == 0
    t = env.transport(password=NEW_PASSWORD)
    assert await returns(t, HBS, "DisableClientControlMode") == 0
    assert provisioning.provisioning(env.engine) == provisioning.Provisioning(ControlMode.NONE,
                                                                              ProvisioningState.PRE)
    assert [a.full_id for a in audits(env)][-1] == 1619


async def test_disable_client_control_mode_is_refused_in_acm(env) -> None:
    assert await returns(env.transport(), HBS, "DisableClientControlMode") == provisioning.SETUP_INVALID_STATE
    assert provisioning.is_provisioned(env.engine)


# ---------------------------------------------------------------------------------------------- ACM


async def test_acm_admin_setup_with_a_trusted_chain(factory_env, conformance_dir: Path) -> None:
    env = factory_env
    chain = provisioning_chain()
    trust(env, chain)
    t = env.transport()
    results = []
    for i, cert in enumerate(chain.certificates):
        reply = await t.send(invoke(HBS, "AddNextCertInChain", NextCertificate=der(cert),
                                    IsLeafCertificate=i == 0, IsRootCertificate=i == 2))
        assert_method_shape(reply, conformance_dir, "ips/hostbasedsetup/addnextcertinchain.xml")
        results.append(reply.body["ReturnValue"])  # type: ignore[index]
        if i < 2:
            assert (await get(t, HBS))["CertChainStatus"] == 1
    assert results == [0, 0, 0]
    assert (await get(t, HBS))["CertChainStatus"] == 2

    fw_nonce, mc_nonce = await configuration_nonce(t), secrets.token_bytes(20)
    reply = await t.send(invoke(HBS, "AdminSetup", NetAdminPassEncryptionType=2,
                                NetworkAdminPassword=admin_ha1(env), McNonce=mc_nonce, SigningAlgorithm=2,
                                DigitalSignature=chain.sign(fw_nonce, mc_nonce)))
    assert_method_shape(reply, conformance_dir, "ips/hostbasedsetup/adminsetup.xml")
    assert reply.body["ReturnValue"] == 0  # type: ignore[index]

    admin = env.transport(password=NEW_PASSWORD)
    hbs = await get(admin, HBS)
    assert (hbs["CurrentControlMode"], hbs["CertChainStatus"]) == (2, 0)
    assert hbs["ConfigurationNonce"] != fw_nonce  # used up
    assert (await get(admin, SETUP))["ProvisioningState"] == 2
    completed = [a for a in audits(env) if a.full_id == 1601]
    assert completed
    assert completed[-1].extended == b"\x05"


async def test_acm_accepts_the_client_setup_ou_instead_of_the_eku_and_sha1_hashes(factory_env) -> None:
    env = factory_env
    chain = provisioning_chain(eku=False, ou=True)
    provisioning.set_trusted_root_hashes(env.engine, [chain.root.fingerprint(hashes.SHA1()).hex()])
    assert await send_chain(env.transport(), chain) == [0, 0, 0]
    assert await admin_setup(env, chain) == 0


async def test_untrusted_root_fails_verification(factory_env) -> None:
    env = factory_env
    trust(env, provisioning_chain(root_label="other-root"))
    t = env.transport()
    assert await send_chain(t, provisioning_chain()) == [0, 0, provisioning.CHAIN_VERIFY_FAILED]
    assert (await get(t, HBS))["CertChainStatus"] == 0
    assert await admin_setup(env, provisioning_chain()) == provisioning.SETUP_INVALID_STATE  # no verified chain
    assert not provisioning.is_provisioned(env.engine)


@pytest.mark.parametrize(("chain_kwargs", "why"), [
    ({"eku": False}, "no provisioning EKU and no Client Setup OU"),
    ({"cn": "rps.elsewhere.example"}, "CN outside the PKI DNS suffix"),
])
async def test_leaf_requirements(factory_env, chain_kwargs, why) -> None:
    chain = provisioning_chain(**chain_kwargs)
    trust(factory_env, chain)
    assert await send_chain(factory_env.transport(), chain) == [0, 0, provisioning.CHAIN_VERIFY_FAILED], why


async def test_a_chain_that_does_not_link_fails(factory_env) -> None:
    good, foreign = provisioning_chain(), provisioning_chain(root_label="other-root")
    # The leaf and intermediate of one chain, topped with another (trusted) root: the signatures do not link.
    chain = ProvisioningChain((good.certificates[0], good.certificates[1], foreign.root), good.leaf_key)
    trust(factory_env, foreign)
    assert await send_chain(factory_env.transport(), chain) == [0, 0, provisioning.CHAIN_VERIFY_FAILED]


async def test_bad_signature_fails_and_uses_the_nonce_up(factory_env) -> None:
    env = factory_env
    chain = provisioning_chain()
    trust(env, chain)
    t = env.transport()
    assert await send_chain(t, chain) == [0, 0, 0]
    before = await configuration_nonce(t)
    # Signed over the right nonces by a key that is not the leaf's (the intermediate's).
    mc_nonce = secrets.token_bytes(20)
    forged = rsa_key("intermediate").sign(before + mc_nonce, padding.PKCS1v15(), hashes.SHA256())
    assert await admin_setup(env, chain, McNonce=mc_nonce, DigitalSignature=forged) == provisioning.SETUP_AUTH_FAILED
    assert await configuration_nonce(t) != before
    assert (await get(t, HBS))["CertChainStatus"] == 0
    assert not provisioning.is_provisioned(env.engine)


async def test_a_signature_over_a_used_nonce_is_refused(factory_env) -> None:
    env = factory_env
    chain = provisioning_chain()
    trust(env, chain)
    t = env.transport()
    assert await send_chain(t, chain) == [0, 0, 0]
    old_nonce, mc_nonce = await configuration_nonce(t), secrets.token_bytes(20)
    signature = chain.sign(old_nonce, mc_nonce)
    # Something uses the nonce (a failed attempt), then the captured signature is replayed with a fresh chain.
    assert await admin_setup(env, chain, DigitalSignature=b"\x00" * 256) == provisioning.SETUP_AUTH_FAILED
    assert await send_chain(t, chain) == [0, 0, 0]
    assert await admin_setup(env, chain, McNonce=mc_nonce, DigitalSignature=signature) == \
        provisioning.SETUP_AUTH_FAILED
    assert not provisioning.is_provisioned(env.engine)


@pytest.mark.parametrize(("overrides", "code"), [
    ({"SigningAlgorithm": 1}, provisioning.SETUP_INVALID_PARAM),
    ({"McNonce": b"short"}, provisioning.SETUP_INVALID_PARAM),
    ({"NetAdminPassEncryptionType": 0}, provisioning.SETUP_INVALID_PARAM),
])
async def test_admin_setup_parameter_checks(factory_env, overrides, code) -> None:
    chain = provisioning_chain()
    trust(factory_env, chain)
    assert await send_chain(factory_env.transport(), chain) == [0, 0, 0]
    assert await admin_setup(factory_env, chain, **overrides) == code
    assert (await get(factory_env.transport(), HBS))["CertChainStatus"] == 2  # a malformed call spends nothing


async def test_add_next_cert_in_chain_order_and_input_checks(factory_env) -> None:
    t = factory_env.transport()
    chain = provisioning_chain()
    root = der(chain.root)
    # Not starting with the leaf.
    assert await returns(t, HBS, "AddNextCertInChain", NextCertificate=root, IsLeafCertificate=False,
                         IsRootCertificate=True) == provisioning.CHAIN_INVALID_STATE
    # Not a certificate, not base64, flags missing.
    assert await returns(t, HBS, "AddNextCertInChain", NextCertificate=b"garbage", IsLeafCertificate=True,
                         IsRootCertificate=False) == provisioning.CHAIN_INVALID_PARAM
    assert await returns(t, HBS, "AddNextCertInChain", NextCertificate=XmlFragment("***"), IsLeafCertificate=True,
                         IsRootCertificate=False) == provisioning.CHAIN_INVALID_PARAM
    assert await returns(t, HBS, "AddNextCertInChain", NextCertificate=root) == provisioning.CHAIN_INVALID_PARAM
    # Too long: a sixth certificate before the root.
    leaf = der(chain.certificates[0])
    results = [await returns(t, HBS, "AddNextCertInChain", NextCertificate=leaf, IsLeafCertificate=i == 0,
                             IsRootCertificate=False) for i in range(provisioning.MAX_CHAIN + 1)]
    assert results == [0] * provisioning.MAX_CHAIN + [provisioning.CHAIN_TOO_LONG]
    assert (await get(t, HBS))["CertChainStatus"] == 0


async def test_admin_setup_is_refused_once_provisioned(env) -> None:
    chain = provisioning_chain()
    trust(env, chain)
    assert await send_chain(env.transport(), chain) == [provisioning.CHAIN_INVALID_STATE] * 3  # already ACM
    assert await admin_setup(env, chain) == provisioning.SETUP_INVALID_STATE


async def test_upgrade_client_to_admin(factory_env, conformance_dir: Path) -> None:
    env = factory_env
    assert await returns(env.transport(), HBS, "Setup", NetAdminPassEncryptionType=2,
                         NetworkAdminPassword=admin_ha1(env)) == 0
    t = env.transport(password=NEW_PASSWORD)
    chain = provisioning_chain()
    trust(env, chain)
    assert await send_chain(t, chain) == [0, 0, 0]
    fw_nonce, mc_nonce = await configuration_nonce(t), secrets.token_bytes(20)
    reply = await t.send(invoke(HBS, "UpgradeClientToAdmin", McNonce=mc_nonce, SigningAlgorithm=2,
                                DigitalSignature=chain.sign(fw_nonce, mc_nonce)))
    assert_method_shape(reply, conformance_dir, "ips/hostbasedsetup/upgradeclienttoadmin.xml")
    assert reply.body["ReturnValue"] == 0  # type: ignore[index]
    assert (await get(t, HBS))["CurrentControlMode"] == 2
    assert [a.full_id for a in audits(env)][-1] == 1618
    # The password stays what CCM set; ACM cannot be "upgraded" again.
    assert await returns(t, HBS, "UpgradeClientToAdmin", McNonce=mc_nonce, SigningAlgorithm=2,
                         DigitalSignature=b"x" * 256) == provisioning.SETUP_INVALID_STATE


# ---------------------------------------------------------------------------------------------- setup service methods


async def test_unprovision_erases_configuration_and_keeps_the_audit_trail(env, conformance_dir: Path) -> None:
    engine, t = env.engine, env.transport()
    chain = provisioning_chain()
    trust(env, chain)
    provisioning.set_pki_dns_suffix(engine, DOMAIN)
    added = await call(t, "AMT_PublicKeyManagementService", "AddTrustedRootCertificate",
                       CertificateBlob=der(chain.root))
    assert added["ReturnValue"] == 0
    engine.accounts.save(Account(engine.accounts.next_handle(), "operator", ha1("operator", engine.realm, "x"),
                                 frozenset({Realm.REMOTE_CONTROL})))
    engine.store.set("settings/AMT_GeneralSettings/Intel(r) AMT: General Settings", {"HostName": "changed"})
    engine.store.append_log("event", bytes(21))
    assert await returns(t, "AMT_RemoteAccessService", "AddMpServer", AccessInfo="mps.example.com", InfoFormat=201,
                         Port=4433, AuthMethod=2, Username="cira", Password="Cira!pw1") == 0
    assert await returns(t, SETUP, "CommitChanges") == 0

    reply = await t.send(invoke(SETUP, "Unprovision", ProvisioningMode=1))
    assert_method_shape(reply, conformance_dir, "amt/setupandconfiguration/unprovision.xml")
    assert reply.body["ReturnValue"] == 0  # type: ignore[index]

    assert provisioning.provisioning(engine).state is ProvisioningState.PRE
    assert certificates.certificates(engine) == []
    assert engine.accounts.users() == []
    assert provisioning.trusted_root_hashes(engine) == []  # custom hashes go (IRG)
    assert provisioning.pki_dns_suffix(engine) == DOMAIN  # the DNS suffix stays since AMT 12
    assert engine.store.get("settings/AMT_GeneralSettings/Intel(r) AMT: General Settings") is None
    assert engine.store.count_log("event") == 0
    assert remoteaccess.cira_config(engine) is None
    assert certificates.tls_configuration(engine) is None
    last = audits(env)[-1]
    assert (last.full_id, last.initiator, last.extended) == (1619, "admin", bytes([4]))
    # The admin credential still works (it stands in for the host's), and a second Unprovision is refused.
    assert await returns(t, SETUP, "Unprovision", ProvisioningMode=1) == provisioning.NOT_PERMITTED
    assert (await get(t, HBS))["CurrentControlMode"] == 0


async def test_partial_unprovision_keeps_the_custom_hashes(env) -> None:
    chain = provisioning_chain()
    trust(env, chain)
    assert await returns(env.transport(), SETUP, "PartialUnprovision") == 0
    assert provisioning.trusted_root_hashes(env.engine) == [chain.root_hash]
    assert not provisioning.is_provisioned(env.engine)


async def test_unprovision_rejects_a_nonsense_mode(env) -> None:
    assert await returns(env.transport(), SETUP, "Unprovision", ProvisioningMode=7) == 36
    assert provisioning.is_provisioned(env.engine)


async def test_setup_methods_need_pt_administration(env) -> None:
    engine = env.engine
    engine.accounts.save(Account(engine.accounts.next_handle(), "viewer", ha1("viewer", engine.realm, "V1ewer!pw"),
                                 frozenset({Realm.GENERAL_INFO})))
    viewer = env.transport("viewer", "V1ewer!pw")
    assert (await get(viewer, SETUP))["ProvisioningState"] == 2  # reading is General Info
    reply = await viewer.send(invoke(SETUP, "Unprovision", ProvisioningMode=1))
    assert isinstance(reply.fault, F.AccessDenied)
    assert provisioning.is_provisioned(engine)


async def test_set_mebx_password(env, conformance_dir: Path) -> None:
    t = env.transport()
    reply = await t.send(invoke(SETUP, "SetMEBxPassword", Password="Mebx!Pass1"))
    assert_same_shape(reply, load_capture(conformance_dir, "amt/setupandconfiguration/setmebxpassword.xml"))
    assert reply.body["ReturnValue"] == 0  # type: ignore[index]
    stored = env.engine.store.get(provisioning.MEBX_KEY)
    assert "Mebx!Pass1" not in str(stored)
    derived = hashlib.pbkdf2_hmac("sha256", b"Mebx!Pass1", bytes.fromhex(stored["salt"]), stored["iterations"])
    assert derived.hex() == stored["pbkdf2_sha256"]
    for weak in ("Sh0rt!a", "alllower1!", "NoDigits!!", "NoSpecial1a", "Has:Colon1a", "Ünicode1!a"):
        assert await returns(t, SETUP, "SetMEBxPassword", Password=weak) == provisioning.INVALID_PASSWORD, weak
    assert env.engine.store.get(provisioning.MEBX_KEY) == stored


async def test_set_mebx_password_is_acm_only(factory_env) -> None:
    env = factory_env
    assert await returns(env.transport(), HBS, "Setup", NetAdminPassEncryptionType=2,
                         NetworkAdminPassword=admin_ha1(env)) == 0
    assert await returns(env.transport(password=NEW_PASSWORD), SETUP, "SetMEBxPassword",
                         Password="Mebx!Pass1") == provisioning.NOT_PERMITTED


async def test_commit_changes(env, conformance_dir: Path) -> None:
    reply = await env.transport().send(invoke(SETUP, "CommitChanges"))
    assert_method_shape(reply, conformance_dir, "amt/setupandconfiguration/commitchanges.xml")
    assert reply.body["ReturnValue"] == 0  # type: ignore[index]


# ---------------------------------------------------------------------------------------------- persistence, policy


async def test_state_survives_a_restart_and_the_nonce_does_not(tmp_path: Path) -> None:
    state = tmp_path / "engine.db"
    async with running_engine(config=engine_config(), state=state) as first:
        provisioning.set_provisioning(first.engine, ControlMode.NONE, ProvisioningState.PRE)
        assert await returns(first.transport(), HBS, "Setup", NetAdminPassEncryptionType=2,
                             NetworkAdminPassword=admin_ha1(first)) == 0
        nonce = await configuration_nonce(first.transport(password=NEW_PASSWORD))
    async with running_engine(config=engine_config(), state=state, password=NEW_PASSWORD) as second:
        t = second.transport()
        assert (await get(t, HBS))["CurrentControlMode"] == 1
        assert (await get(t, SETUP))["ProvisioningMode"] == 4
        assert await configuration_nonce(t) != nonce


async def test_pre_provisioning_answers_only_what_setup_needs(env) -> None:
    engine = env.engine
    assert provisioning.reachable(engine, "CIM_PowerManagementService")
    provisioning.set_provisioning(engine, ControlMode.NONE, ProvisioningState.PRE)
    assert not provisioning.reachable(engine, "CIM_PowerManagementService")
    assert not provisioning.reachable(engine, "AMT_PublicKeyManagementService")
    for name in ("IPS_HostBasedSetupService", "AMT_GeneralSettings", "AMT_SetupAndConfigurationService"):
        assert provisioning.reachable(engine, name)


def test_operator_settings_are_validated() -> None:
    assert provisioning.normalize_hash("AB:" * 31 + "CD") == "ab" * 31 + "cd"
    with pytest.raises(ValueError, match="hash"):
        provisioning.normalize_hash("1234")
    with pytest.raises(ValueError, match="pre-provisioning"):
        provisioning.set_provisioning(object(), ControlMode.ADMIN, ProvisioningState.PRE)  # type: ignore[arg-type]


@pytest.mark.parametrize(("password", "ok"), [
    ("Adm1n!pass", True),
    ("P@ssw0rd", True),
    ("Aa1_ bcde", False),  # underscore and space do not count as special
    ("Aa1!" + "x" * 29, False),  # 33 characters
    ('Aa1!"quote', False),
    ("aa1!aaaa", False),
    ("AA1!AAAA", False),
    ("Aa!aaaaa", False),
])
def test_password_rule(password: str, ok: bool) -> None:
    assert (provisioning.password_problem(password) is None) is ok
