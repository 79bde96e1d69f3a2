"""The certificate store and TLS setup over real HTTP: the sequences MeshCommander and RPS run (root, key pair,
CSR or direct issue, AddCertificate, TLS credential context, TLS settings, CommitChanges), their captured
shapes, AMT's refusals, and private keys that never leave the engine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import SignatureAlgorithmOID
from tests.engine._provisioning_kit import (
    audits,
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

from outband.engine.services import certificates
from outband.proto.cim.model import CimObject, XmlFragment
from outband.proto.wsman import EndpointReference, ResourceCreated, SelectorSet
from outband.proto.wsman import faults as F
from outband.proto.wsman import messages as msg
from outband.proto.wsman.namespaces import resource_uri
from outband.testing.engine import RunningEngine, running_engine

PKMS = "AMT_PublicKeyManagementService"
CERT = "AMT_PublicKeyCertificate"
KEY = "AMT_PublicPrivateKeyPair"
TLS = "AMT_TLSSettingData"
CONTEXT = "AMT_TLSCredentialContext"
SETUP = "AMT_SetupAndConfigurationService"


@pytest.fixture
async def env():
    async with running_engine(config=engine_config()) as running:
        yield running


def captured_root(conformance_dir: Path) -> bytes:
    """The MPS root certificate of the firmware capture (RPS's ``MPSRoot-0af1d5``)."""
    body = load_capture(conformance_dir, "amt/publickey/certificate/get.xml").body
    assert isinstance(body, CimObject)
    blob = body["X509Certificate"]
    assert isinstance(blob, bytes)
    return blob


async def generate_key(t) -> tuple[EndpointReference, rsa.RSAPublicKey]:
    out = await call(t, PKMS, "GenerateKeyPair", KeyAlgorithm=0, KeyLength=2048)
    assert out["ReturnValue"] == 0
    epr = out["KeyPair"]
    assert isinstance(epr, EndpointReference)
    key = await get(t, KEY, epr.selector_dict)
    public = serialization.load_der_public_key(key["DERKey"])  # type: ignore[arg-type]
    assert isinstance(public, rsa.RSAPublicKey)
    return epr, public


def der_tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + content


def null_signed_request(subject: x509.Name, public: rsa.RSAPublicKey) -> bytes:
    """A PKCS#10 request with a placeholder signature, as an enterprise CA assistant hands it to AMT."""
    info = der_tlv(0x30, bytes.fromhex("020100") + subject.public_bytes()
                   + public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
                   + bytes.fromhex("a000"))
    return der_tlv(0x30, info + bytes.fromhex("300d06092a864886f70d01010b0500") + der_tlv(0x03, bytes(257)))


def tls_certificate(public: rsa.RSAPublicKey, cn: str = "outband-sim") -> x509.Certificate:
    """What MeshCommander's switchToTls does: sign AMT's public key with a console CA."""
    ca = rsa_key("console-ca")
    return issue(name(cn), public, name("Console CA"), ca, ca=False)


async def tls_identity(env: RunningEngine) -> tuple[EndpointReference, x509.Certificate]:
    t = env.transport()
    _, public = await generate_key(t)
    cert = tls_certificate(public)
    out = await call(t, PKMS, "AddCertificate", CertificateBlob=der(cert))
    assert out["ReturnValue"] == 0
    created = out["CreatedCertificate"]
    assert isinstance(created, EndpointReference)
    return created, cert


def context_object(cert_epr: EndpointReference, collection: str = "TLSProtocolEndpointInstances Collection"
                   ) -> CimObject:
    """The Create body MeshCommander and go-wsman-messages send (their collection name lacks a space)."""
    return CimObject.new(
        CONTEXT,
        ElementInContext=dataclasses.replace(cert_epr, address="/wsman"),
        ElementProvidingContext=EndpointReference(resource_uri("AMT_TLSProtocolEndpointCollection"),
                                                  SelectorSet.of({"ElementName": collection}), "/wsman"),
    )


# ---------------------------------------------------------------------------------------------- the store


async def test_management_service_matches_the_capture(env, conformance_dir: Path) -> None:
    t = env.transport()
    got = await t.send(msg.get(PKMS))
    capture = load_capture(conformance_dir, "amt/publickey/management/get.xml")
    assert_same_shape(got, capture)
    assert got.body == capture.body
    _, pulled = await pull_all(t, PKMS)
    assert_same_shape(pulled, load_capture(conformance_dir, "amt/publickey/management/pull.xml"))


async def test_trusted_root_reads_back_exactly_as_firmware_shows_it(env, conformance_dir: Path) -> None:
    t = env.transport()
    blob = captured_root(conformance_dir)
    reply = await t.send(invoke(PKMS, "AddTrustedRootCertificate", CertificateBlob=blob))
    assert_same_shape(reply, load_capture(conformance_dir, "amt/publickey/management/addtrustedrootcertificate.xml"))
    created = reply.body["CreatedCertificate"]  # type: ignore[index]
    assert created == EndpointReference.to(resource_uri(CERT), {"InstanceID": "Intel(r) AMT Certificate: Handle: 0"})

    got = await t.send(msg.get(CERT, created.selector_dict))
    capture = load_capture(conformance_dir, "amt/publickey/certificate/get.xml")
    assert_same_shape(got, capture)
    assert got.body == capture.body  # same certificate, handle and flag: Issuer/Subject spelled as AMT does
    assert [a.full_id for a in audits(env)][-1] == 1610

    assert await returns(t, PKMS, "AddTrustedRootCertificate", CertificateBlob=blob) == certificates.DUPLICATE
    assert await returns(t, PKMS, "AddCertificate", CertificateBlob=blob) == certificates.DUPLICATE
    listed = await instances(t, CERT)
    assert [c["InstanceID"] for c in listed] == ["Intel(r) AMT Certificate: Handle: 0"]
    pull_capture = load_capture(conformance_dir, "amt/publickey/certificate/pull.xml").body.items  # type: ignore[union-attr]
    assert listed[0] == pull_capture[0]


@pytest.mark.parametrize(("blob", "code"), [
    (b"not a certificate", certificates.INVALID_CERT),
    (XmlFragment("%%% not base64 %%%"), 36),
    (b"0" * (certificates.MAX_CERT_BYTES + 1), 36),
])
async def test_bad_certificates_are_refused(env, blob, code) -> None:
    t = env.transport()
    assert await returns(t, PKMS, "AddTrustedRootCertificate", CertificateBlob=blob) == code
    assert await returns(t, PKMS, "AddCertificate", CertificateBlob=blob) == code
    assert await instances(t, CERT) == []


async def test_certificate_store_has_a_limit(env, conformance_dir: Path) -> None:
    t = env.transport()
    ca = rsa_key("console-ca")
    for i in range(certificates.MAX_CERTIFICATES):
        cert = issue(name(f"root {i}"), ca.public_key(), name(f"root {i}"), ca, ca=True)
        assert await returns(t, PKMS, "AddTrustedRootCertificate", CertificateBlob=der(cert)) == 0
    assert await returns(t, PKMS, "AddTrustedRootCertificate",
                         CertificateBlob=captured_root(conformance_dir)) == certificates.MAX_LIMIT_REACHED


async def test_put_certificate_changes_nothing(env, conformance_dir: Path) -> None:
    t = env.transport()
    await call(t, PKMS, "AddTrustedRootCertificate", CertificateBlob=captured_root(conformance_dir))
    current = await get(t, CERT)
    reply = await t.send(msg.put(current, {"InstanceID": current["InstanceID"]}))
    assert_same_shape(reply, load_capture(conformance_dir, "amt/publickey/certificate/put.xml"))
    current["Subject"] = "CN=forged"
    assert isinstance((await t.send(msg.put(current, {"InstanceID": current["InstanceID"]}))).fault,
                      F.InvalidRepresentation)
    assert (await get(t, CERT))["Subject"] == "C=unknown,O=unknown,CN=MPSRoot-0af1d5"


async def test_deleting_a_root_is_audited(env, conformance_dir: Path) -> None:
    t = env.transport()
    await call(t, PKMS, "AddTrustedRootCertificate", CertificateBlob=captured_root(conformance_dir))
    reply = await t.send(msg.delete(CERT, {"InstanceID": "Intel(r) AMT Certificate: Handle: 0"}))
    assert reply.fault is None
    assert reply.body is None
    assert reply.header.action == load_capture(conformance_dir, "amt/publickey/certificate/delete.xml").header.action
    assert [a.full_id for a in audits(env)][-1] == 1611
    assert isinstance((await t.send(msg.delete(CERT, {"InstanceID": "Intel(r) AMT Certificate: Handle: 0"}))).fault,
                      F.DestinationUnreachable)
    # Handles are not reused: the next certificate is handle 1.
    out = await call(t, PKMS, "AddTrustedRootCertificate", CertificateBlob=captured_root(conformance_dir))
    assert out["CreatedCertificate"].selector_dict["InstanceID"].endswith("Handle: 1")  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------- keys and CSRs


async def test_generate_key_pair_matches_the_captures(env, conformance_dir: Path) -> None:
    t = env.transport()
    reply = await t.send(invoke(PKMS, "GenerateKeyPair", KeyAlgorithm=0, KeyLength=2048))
    assert_same_shape(reply, load_capture(conformance_dir, "amt/publickey/management/generatekeypair.xml"))
    assert reply.body["KeyPair"] == load_capture(  # type: ignore[index]
        conformance_dir, "amt/publickey/management/generatekeypair.xml").body["KeyPair"]  # type: ignore[index]
    got = await t.send(msg.get(KEY, {"InstanceID": "Intel(r) AMT Key: Handle: 0"}))
    assert_same_shape(got, load_capture(conformance_dir, "amt/publicprivate/get.xml"))
    derkey = got.body["DERKey"]  # type: ignore[index]
    # PKCS#1 RSAPublicKey, as AMT 12 sends it ("MIIBCgKCAQEA..."), 2048 bits.
    public = serialization.load_der_public_key(derkey)
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 2048
    assert derkey[:8] == bytes.fromhex("3082010a02820101")
    second = await t.send(invoke(PKMS, "GenerateKeyPair", KeyAlgorithm=0, KeyLength=2048))
    assert second.body["ReturnValue"] == 0  # type: ignore[index]
    _, pulled = await pull_all(t, KEY)
    assert_same_shape(pulled, load_capture(conformance_dir, "amt/publicprivate/pull.xml"))


@pytest.mark.parametrize(("params", "code"), [
    ({"KeyAlgorithm": 0, "KeyLength": 1024}, certificates.INVALID_KEY_LENGTH),
    ({"KeyAlgorithm": 0, "KeyLength": 4096}, certificates.INVALID_KEY_LENGTH),
    ({"KeyAlgorithm": 1, "KeyLength": 2048}, 36),
    ({"KeyLength": 2048}, 36),
])
async def test_generate_key_pair_refusals(env, params, code) -> None:
    t = env.transport()
    assert await returns(t, PKMS, "GenerateKeyPair", **params) == code
    assert await instances(t, KEY) == []


@pytest.mark.parametrize(("algorithm", "digest", "oid"), [
    (1, hashes.SHA256(), SignatureAlgorithmOID.RSA_WITH_SHA256),
    (0, hashes.SHA1(), SignatureAlgorithmOID.RSA_WITH_SHA1),
])
async def test_pkcs10_request_is_signed_by_the_key_pair(env, conformance_dir: Path, algorithm, digest, oid) -> None:
    t = env.transport()
    epr, public = await generate_key(t)
    subject = name("outband-sim.vprodemo.example")
    reply = await t.send(invoke(PKMS, "GeneratePKCS10RequestEx", KeyPair=epr, SigningAlgorithm=algorithm,
                                NullSignedCertificateRequest=null_signed_request(subject, public)))
    capture = load_capture(conformance_dir, "amt/publickey/management/generatepkcs10requestex.xml")
    # The capture's value is a placeholder ("test?"), so compare the envelope, not the value's kind.
    assert reply.header.action == capture.header.action
    assert reply.body.names() == capture.body.names()  # type: ignore[union-attr]
    assert reply.body["ReturnValue"] == 0  # type: ignore[index]
    csr = x509.load_der_x509_csr(reply.body["SignedCertificateRequest"])  # type: ignore[index,arg-type]
    assert csr.signature_algorithm_oid == oid
    # cryptography no longer vouches for SHA-1 signatures itself, so verify the signature by hand.
    public.verify(csr.signature, csr.tbs_certrequest_bytes, padding.PKCS1v15(), digest)
    assert csr.subject == subject
    assert csr.public_key() == public


async def test_pkcs10_refusals(env) -> None:
    t = env.transport()
    epr, public = await generate_key(t)
    other = rsa_key("console-ca").public_key()
    good = null_signed_request(name("x"), public)
    unknown = EndpointReference.to(resource_uri(KEY), {"InstanceID": "Intel(r) AMT Key: Handle: 9"})
    cases = [
        {"KeyPair": unknown, "SigningAlgorithm": 1, "NullSignedCertificateRequest": good},
        {"KeyPair": epr, "SigningAlgorithm": 1, "NullSignedCertificateRequest": null_signed_request(name("x"), other)},
        {"KeyPair": epr, "SigningAlgorithm": 1, "NullSignedCertificateRequest": b"\x30\x05garbage"},
        {"KeyPair": epr, "SigningAlgorithm": 1, "NullSignedCertificateRequest": good + b"trailing"},
        {"KeyPair": epr, "SigningAlgorithm": 2, "NullSignedCertificateRequest": good},
        {"SigningAlgorithm": 1, "NullSignedCertificateRequest": good},
    ]
    for params in cases:
        out = await call(t, PKMS, "GeneratePKCS10RequestEx", **params)
        assert out["ReturnValue"] == 36
        assert "SignedCertificateRequest" not in out


async def test_add_key(env, conformance_dir: Path) -> None:
    t = env.transport()
    pkcs8 = rsa_key("imported").private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
    reply = await t.send(invoke(PKMS, "AddKey", KeyBlob=pkcs8))
    capture = load_capture(conformance_dir, "amt/publickey/management/addkey.xml")
    assert reply.header.action == capture.header.action
    assert reply.body.names() == capture.body.names()  # type: ignore[union-attr]
    # The capture's EPR names AMT_PublicKeyCertificate (a fixture slip); a created key is a key pair.
    assert reply.body["CreatedKey"] == EndpointReference.to(  # type: ignore[index]
        resource_uri(KEY), {"InstanceID": "Intel(r) AMT Key: Handle: 0"})
    pkcs1 = rsa_key("imported").private_bytes(serialization.Encoding.DER,
                                              serialization.PrivateFormat.TraditionalOpenSSL,
                                              serialization.NoEncryption())
    assert await returns(t, PKMS, "AddKey", KeyBlob=pkcs1) == certificates.DUPLICATE
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert await returns(t, PKMS, "AddKey", KeyBlob=small) == certificates.INVALID_KEY_LENGTH
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert await returns(t, PKMS, "AddKey", KeyBlob=ec_key) == 36
    assert await returns(t, PKMS, "AddKey", KeyBlob=b"junk") == 36
    assert len(await instances(t, KEY)) == 1


async def test_private_keys_never_leave_the_engine(env) -> None:
    t = env.transport()
    await generate_key(t)
    pkcs8 = rsa_key("imported").private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
    await call(t, PKMS, "AddKey", KeyBlob=pkcs8)
    secrets_ = [k.private_key.private_numbers().d.to_bytes(256, "big") for k in certificates.key_pairs(env.engine)]
    for obj in await instances(t, KEY):
        assert set(obj.names()) == {"DERKey", "ElementName", "InstanceID"}
        assert not any(s[:32] in obj["DERKey"] for s in secrets_)  # type: ignore[operator]


# ---------------------------------------------------------------------------------------------- TLS


async def test_tls_setup_as_meshcommander_does_it(env, conformance_dir: Path) -> None:
    t = env.transport()
    # Settings before anything: the two captured instances, with the captured values.
    _, pulled = await pull_all(t, TLS)
    capture = load_capture(conformance_dir, "amt/tls/settingdata/pull.xml")
    assert_same_shape(pulled, capture)
    assert pulled.body.items == capture.body.items  # type: ignore[union-attr]

    # TLS cannot be switched on before there is a certificate.
    network = await get(t, TLS, {"InstanceID": "Intel(r) AMT 802.3 TLS Settings"})
    network["Enabled"] = True
    refused = await t.send(msg.put(network, {"InstanceID": network["InstanceID"]}))
    assert isinstance(refused.fault, F.InternalError)

    cert_epr, cert = await tls_identity(env)
    created = await t.send(msg.create(context_object(cert_epr)))
    assert created.fault is None
    assert created.header.action == load_capture(conformance_dir,
                                                 "amt/tls/credentialcontext/create.xml").header.action
    assert isinstance(created.body, ResourceCreated)
    selectors = created.body.epr.selector_dict
    assert selectors["ElementInContext"] == cert_epr
    assert selectors["ElementProvidingContext"].selector_dict == {  # type: ignore[union-attr]
        "ElementName": "TLSProtocolEndpoint Instances Collection"}
    assert [a.full_id for a in audits(env)][-1] == 1608
    again = await t.send(msg.create(context_object(cert_epr)))
    assert isinstance(again.fault, F.AlreadyExists)

    _, contexts = await pull_all(t, CONTEXT)
    assert_same_shape(contexts, load_capture(conformance_dir, "amt/tls/credentialcontext/pull.xml"))
    collection = await t.send(msg.get("AMT_TLSProtocolEndpointCollection"))
    assert_same_shape(collection, load_capture(conformance_dir, "amt/tls/protocolendpointcollection/get.xml"))
    _, collections = await pull_all(t, "AMT_TLSProtocolEndpointCollection")
    assert_same_shape(collections, load_capture(conformance_dir, "amt/tls/protocolendpointcollection/pull.xml"))

    # Get-modify-Put of both settings instances (MCMD deletes TrustedCN; the LMS Put carries no selectors).
    put = await t.send(msg.put(network, {"InstanceID": network["InstanceID"]}))
    assert_same_shape(put, load_capture(conformance_dir, "amt/tls/settingdata/put.xml"))
    assert put.body["Enabled"] is True  # type: ignore[index]
    assert audits(env)[-1].full_id == 1607
    assert audits(env)[-1].extended == bytes([1, 0])
    local = await get(t, TLS, {"InstanceID": "Intel(r) AMT LMS TLS Settings"})
    local["Enabled"] = True
    assert (await t.send(msg.put(local))).body["InstanceID"] == "Intel(r) AMT LMS TLS Settings"  # type: ignore[index]
    assert audits(env)[-1].extended == bytes([1, 1])

    # Nothing is in force until CommitChanges.
    assert certificates.tls_configuration(env.engine) is None
    assert await returns(t, SETUP, "CommitChanges") == 0
    active = certificates.tls_configuration(env.engine)
    assert active is not None
    assert active.network.enabled
    assert active.local.enabled
    assert not active.network.mutual_authentication
    assert active.certificate_der == der(cert)
    key = serialization.load_pem_private_key(active.private_key_pem, None)  # type: ignore[arg-type]
    assert key.public_key() == cert.public_key()


async def test_tls_credential_context_put_and_delete_rules(env) -> None:
    t = env.transport()
    cert_epr, _ = await tls_identity(env)
    assert (await t.send(msg.create(context_object(cert_epr)))).fault is None
    # A second identity replaces the first with Put (go-wsman-messages CredentialContext.Put).
    second_epr, second = await tls_identity(env)
    current = (await instances(t, CONTEXT))[0]
    replaced = await t.send(msg.put(context_object(second_epr)))
    assert replaced.fault is None
    assert replaced.body["ElementInContext"] == second_epr  # type: ignore[index]
    assert current["ElementInContext"] == cert_epr
    # A root, or a certificate without its key, cannot be the TLS identity.
    foreign = issue(name("foreign"), rsa_key("console-ca").public_key(), name("Console CA"), rsa_key("console-ca"),
                    ca=False)
    out = await call(t, PKMS, "AddCertificate", CertificateBlob=der(foreign))
    refused = await t.send(msg.put(context_object(out["CreatedCertificate"])))  # type: ignore[arg-type]
    assert isinstance(refused.fault, F.InvalidRepresentation)

    network = await get(t, TLS, {"InstanceID": "Intel(r) AMT 802.3 TLS Settings"})
    network["Enabled"] = True
    assert (await t.send(msg.put(network, {"InstanceID": network["InstanceID"]}))).fault is None
    # In use: the certificate, its key and (while TLS is on) the context cannot go.
    in_use = await t.send(msg.delete(CERT, second_epr.selector_dict))
    assert isinstance(in_use.fault, F.InternalError)
    assert in_use.fault.detail == "AMT-STATUS 16"
    keys = await instances(t, KEY)
    for k in keys:
        await t.send(msg.delete(KEY, {"InstanceID": k["InstanceID"]}))
    remaining = {k.handle for k in certificates.key_pairs(env.engine)}
    assert certificates.key_for(env.engine, second) is not None
    assert len(remaining) == 1
    context_selectors = {"ElementInContext": second_epr,
                         "ElementProvidingContext": EndpointReference.to(
                             resource_uri("AMT_TLSProtocolEndpointCollection"),
                             {"ElementName": "TLSProtocolEndpoint Instances Collection"})}
    assert isinstance((await t.send(msg.delete(CONTEXT, context_selectors))).fault, F.InternalError)
    network["Enabled"] = False
    assert (await t.send(msg.put(network, {"InstanceID": network["InstanceID"]}))).fault is None
    assert (await t.send(msg.delete(CONTEXT, context_selectors))).fault is None
    assert [a.full_id for a in audits(env)][-1] == 1609
    assert (await t.send(msg.delete(CERT, second_epr.selector_dict))).fault is None


async def test_tls_settings_validation(env) -> None:
    t = env.transport()
    network = await get(t, TLS, {"InstanceID": "Intel(r) AMT 802.3 TLS Settings"})
    network["TrustedCN"] = [f"host{i}.example" for i in range(certificates.MAX_TRUSTED_CN + 1)]
    assert isinstance((await t.send(msg.put(network, {"InstanceID": network["InstanceID"]}))).fault,
                      F.InvalidRepresentation)
    network["TrustedCN"] = ["console.example"]
    network["InstanceID"] = "Intel(r) AMT LMS TLS Settings"
    assert isinstance((await t.send(msg.put(network, {"InstanceID": "Intel(r) AMT 802.3 TLS Settings"}))).fault,
                      F.InvalidRepresentation)  # the key cannot change


async def test_store_survives_a_restart(tmp_path: Path, conformance_dir: Path) -> None:
    state = tmp_path / "engine.db"
    async with running_engine(config=engine_config(), state=state) as first:
        t = first.transport()
        await call(t, PKMS, "AddTrustedRootCertificate", CertificateBlob=captured_root(conformance_dir))
        cert_epr, cert = await tls_identity(first)
        assert (await t.send(msg.create(context_object(cert_epr)))).fault is None
        assert await returns(t, SETUP, "CommitChanges") == 0
        password = first.password
    async with running_engine(config=engine_config(), state=state, password=password) as second:
        t = second.transport()
        assert len(await instances(t, CERT)) == 2
        assert len(await instances(t, KEY)) == 1
        assert (await instances(t, CONTEXT))[0]["ElementInContext"] == cert_epr
        active = certificates.tls_configuration(second.engine)
        assert active is not None
        assert active.certificate_der == der(cert)
        # The persisted key still signs.
        epr = (await instances(t, KEY))[0]
        public = cert.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        out = await call(t, PKMS, "GeneratePKCS10RequestEx",
                         KeyPair=EndpointReference.to(resource_uri(KEY), {"InstanceID": epr["InstanceID"]}),
                         SigningAlgorithm=1, NullSignedCertificateRequest=null_signed_request(name("x"), public))
        assert x509.load_der_x509_csr(out["SignedCertificateRequest"]).is_signature_valid  # type: ignore[arg-type]
