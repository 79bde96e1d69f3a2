"""TLS contexts for talking to AMT (client) and for answering like AMT (server).

AMT devices ship self-signed certificates, and several AMT clients offer only RSA key exchange with AES on
TLS 1.2 (AMT-PROTOCOLS.md §1, §11).  So: the server side enables TLS 1.3 plus the RSA+AES suites on 1.2; the
client side either verifies against a CA, or pins the certificate's SHA-256 fingerprint, or (explicitly
asked for) skips verification.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# ECDHE first for modern peers, then the RSA key-exchange AES suites old AMT clients need.
SERVER_CIPHERS = (
    "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:"
    "AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:AES128-SHA256:AES256-SHA:AES128-SHA"
)


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(SERVER_CIPHERS)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


@functools.lru_cache(maxsize=16)
def client_context(*, verify: bool = True, cafile: Path | None = None, legacy: bool = False) -> ssl.SSLContext:
    """A client context, shared: loading the CA store costs tens of milliseconds, far too much per device
    call at fleet scale.  ``verify=False`` is for pinning (the fingerprint is checked instead) or opt-in
    insecure use; ``legacy`` re-enables TLS 1.0/1.1 for very old firmware."""
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if legacy:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def generate_self_signed(cert_file: Path, key_file: Path, common_name: str, *, hosts: list[str] | None = None,
                         days: int = 3650) -> None:
    """Write a fresh RSA-2048 key (mode 0600) and a self-signed certificate, as AMT makes on first start."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    alt: list[x509.GeneralName] = []
    for host in hosts or []:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_file.touch(mode=0o600, exist_ok=True)
    key_file.chmod(0o600)
    key_file.write_bytes(key_bytes)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def fingerprint_of(cert_file: Path) -> str:
    """SHA-256 fingerprint (hex) of a PEM certificate: what a console pins for a self-signed device."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex()


def normalize_fingerprint(value: str) -> bytes:
    """Accept ``AB:CD:..``, ``abcd..`` or ``sha256:abcd..``; return the 32 raw bytes."""
    text = value.strip().lower().removeprefix("sha256:").replace(":", "").replace(" ", "")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"not a hex fingerprint: {value!r}") from None
    if len(raw) != 32:
        raise ValueError("a SHA-256 fingerprint has 32 bytes (64 hex digits)")
    return raw
