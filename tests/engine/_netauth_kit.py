"""Certificates for the 802.1x tests (wired and wireless): a RADIUS server's issuing root and an AMT client
identity with its key, put in the engine's store over WS-MAN as RPS does it."""

from __future__ import annotations

import datetime as dt
import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from tests.engine._shape_inventory import invoke

from outband.aio.wsman_client import WsmanTransport
from outband.proto.wsman import EndpointReference

PKI = "AMT_PublicKeyManagementService"


@functools.cache
def _key(label: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(cn: str, key: rsa.RSAPrivateKey, issuer: str, signer: rsa.RSAPrivateKey, *, ca: bool) -> bytes:
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


async def _created(t: WsmanTransport, method: str, **params: object) -> EndpointReference:
    out = await invoke(t, PKI, method, **params)
    assert out["ReturnValue"] == 0, out
    created = out.get("CreatedCertificate") or out.get("CreatedKey")
    assert isinstance(created, EndpointReference), out
    return created


async def store_root(t: WsmanTransport, cn: str = "RADIUS Root") -> EndpointReference:
    """A trusted root (AddTrustedRootCertificate): the issuer of the RADIUS server's certificate."""
    root = _key("root")
    return await _created(t, "AddTrustedRootCertificate", CertificateBlob=_certificate(cn, root, cn, root, ca=True))


async def store_client(t: WsmanTransport, cn: str = "amt-client") -> EndpointReference:
    """AMT's 802.1x identity: its key (AddKey) and a certificate for it (AddCertificate)."""
    client = _key(f"client:{cn}")
    await _created(t, "AddKey", KeyBlob=client.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return await _created(t, "AddCertificate",
                          CertificateBlob=_certificate(cn, client, "RADIUS Root", _key("root"), ca=False))
