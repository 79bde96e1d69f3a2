"""Shared by the provisioning, certificate and remote-access tests: an engine with those services, method calls
over HTTP, and provisioning certificate chains made with ``cryptography`` the way a CA vendor would issue them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests.engine.wire_shape import assert_same_shape, load_capture

from outband.aio.wsman_client import WsmanTransport
from outband.engine.core import EngineConfig, all_services
from outband.engine.services import certificates, provisioning, remoteaccess
from outband.proto.amtlog import AuditRecord
from outband.proto.cim.model import CimObject
from outband.proto.wsman import EnumerateResponse, Envelope
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine

DOMAIN = "vprodemo.example"
PROVISIONING_EKU = x509.ObjectIdentifier("2.16.840.1.113741.1.2.3")


def engine_config(**kwargs: Any) -> EngineConfig:
    """All registered services plus the ones this work adds (until they are listed in ``services.SERVICES``)."""
    services = all_services()
    extra = tuple(s for s in (provisioning.service, certificates.service, remoteaccess.service) if s not in services)
    return EngineConfig(services=services + extra, domain=DOMAIN, **kwargs)


def invoke(cls: str, method: str, selectors: dict[str, Any] | None = None, **params: Any) -> Envelope:
    return msg.invoke(CimObject.method_input(cls, method, **params), selectors)


async def call(t: WsmanTransport, cls: str, method: str, **params: Any) -> CimObject:
    """Invoke a method and return its _OUTPUT (a fault fails the test)."""
    reply = await t.send(invoke(cls, method, **params))
    assert reply.fault is None, reply.fault
    assert isinstance(reply.body, CimObject)
    assert reply.body.element == f"{method}_OUTPUT"
    return reply.body


async def returns(t: WsmanTransport, cls: str, method: str, **params: Any) -> int:
    value = (await call(t, cls, method, **params))["ReturnValue"]
    assert isinstance(value, int)
    return value


async def get(t: WsmanTransport, cls: str, selectors: dict[str, Any] | None = None) -> CimObject:
    reply = await t.send(msg.get(cls, selectors))
    assert reply.fault is None, reply.fault
    assert isinstance(reply.body, CimObject)
    return reply.body


async def pull_all(t: WsmanTransport, cls: str) -> tuple[Envelope, Envelope]:
    """Enumerate and Pull everything: (the EnumerateResponse envelope, the PullResponse envelope)."""
    enumerated = await t.send(msg.enumerate_(cls))
    assert isinstance(enumerated.body, EnumerateResponse), enumerated.body
    assert enumerated.body.context
    return enumerated, await t.send(msg.pull(cls, enumerated.body.context))


async def instances(t: WsmanTransport, cls: str) -> list[CimObject]:
    _, pulled = await pull_all(t, cls)
    items = pulled.body.items  # type: ignore[union-attr]
    return [i for i in items if isinstance(i, CimObject)]


def assert_method_shape(ours: Envelope, conformance_dir: Path, relative: str) -> None:
    """Compare a method reply with a capture whose Action lacks the ``Response`` suffix: several go-wsman-messages
    fixtures (commitchanges.xml, unprovision.xml, the IPS_HostBasedSetupService ones) were edited by hand there,
    while real firmware answers ``<action>Response`` like every other method capture."""
    capture = load_capture(conformance_dir, relative)
    action = capture.header.action or ""
    if not action.endswith("Response"):
        capture = Envelope(dataclasses.replace(capture.header, action=action + "Response"), capture.body)
    assert_same_shape(ours, capture)


def audits(env: RunningEngine) -> list[AuditRecord]:
    return [AuditRecord.decode(r) for r in env.engine.store.read_log("audit")]


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# ---------------------------------------------------------------------------------------------- PKI


@functools.cache
def rsa_key(label: str) -> rsa.RSAPrivateKey:
    """One RSA-2048 key per label for the whole run (key generation is the slow part of these tests)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test CA")]
    if ou is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    return x509.Name(attrs)


def issue(subject: x509.Name, key: rsa.RSAPublicKey, issuer: x509.Name, issuer_key: rsa.RSAPrivateKey, *,
          ca: bool, eku: list[x509.ObjectIdentifier] | None = None, days: int = 365) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class ProvisioningChain:
    """A vendor-style chain (leaf, intermediate, root) and the leaf's key the configurator signs with."""

    certificates: tuple[x509.Certificate, ...]
    leaf_key: rsa.RSAPrivateKey

    @property
    def root(self) -> x509.Certificate:
        return self.certificates[-1]

    @property
    def root_hash(self) -> str:
        return self.root.fingerprint(hashes.SHA256()).hex()

    def sign(self, configuration_nonce: bytes, mc_nonce: bytes) -> bytes:
        """What rpc-go's ``createSignedString`` sends: RSA-SHA256 over fwNonce || mcNonce."""
        return self.leaf_key.sign(configuration_nonce + mc_nonce, padding.PKCS1v15(), hashes.SHA256())


def provisioning_chain(*, cn: str = f"rps.{DOMAIN}", eku: bool = True, ou: bool = False,
                       root_label: str = "root") -> ProvisioningChain:
    root_key, mid_key, leaf_key = rsa_key(root_label), rsa_key("intermediate"), rsa_key("leaf")
    root_name, mid_name = name(f"Test Root {root_label}"), name("Test Intermediate")
    root = issue(root_name, root_key.public_key(), root_name, root_key, ca=True)
    mid = issue(mid_name, mid_key.public_key(), root_name, root_key, ca=True)
    leaf_eku = [ExtendedKeyUsageOID.SERVER_AUTH] + ([PROVISIONING_EKU] if eku else [])
    leaf = issue(name(cn, provisioning.PROVISIONING_OU if ou else None), leaf_key.public_key(), mid_name, mid_key,
                 ca=False, eku=leaf_eku)
    return ProvisioningChain((leaf, mid, root), leaf_key)


async def send_chain(t: WsmanTransport, chain: ProvisioningChain) -> list[int]:
    """AddNextCertInChain leaf first, root last, as rpc-go's ``injectCertificate`` does."""
    results = []
    last = len(chain.certificates) - 1
    for i, cert in enumerate(chain.certificates):
        results.append(await returns(t, "IPS_HostBasedSetupService", "AddNextCertInChain", NextCertificate=der(cert),
                                     IsLeafCertificate=i == 0, IsRootCertificate=i == last))
    return results


async def configuration_nonce(t: WsmanTransport) -> bytes:
    nonce = (await get(t, "IPS_HostBasedSetupService"))["ConfigurationNonce"]
    assert isinstance(nonce, bytes)
    return nonce
