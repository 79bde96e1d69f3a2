"""The certificate store and TLS setup: what consoles drive to give AMT a TLS identity and trusted roots.

Classes: AMT_PublicKeyManagementService (add roots and certificates, import or generate RSA key pairs, sign a
CSR), AMT_PublicKeyCertificate, AMT_PublicPrivateKeyPair, AMT_TLSSettingData (network and LMS instances),
AMT_TLSCredentialContext (which certificate is the TLS server identity) and AMT_TLSProtocolEndpointCollection.

Theory of operation: certificates and key pairs live in the state store under ``pki/cert/<handle>`` and
``pki/key/<handle>``; handles come from a persisted counter, so an EPR a console still holds never names a
newer object.  Instances are computed from the store on every read (parsed DER is cached by content).  Private
keys are kept as PKCS#8 DER and never leave the engine through WS-MAN: AMT_PublicPrivateKeyPair shows only the
public half.  TLS settings and the credential context are *pending* configuration; as on AMT they take effect
when ``AMT_SetupAndConfigurationService.CommitChanges`` calls :func:`commit_tls`, which snapshots them into
``tls/active`` for the TLS listener (:func:`tls_configuration`).

Real certificate work: GenerateKeyPair makes an RSA-2048 key with ``cryptography``; GeneratePKCS10RequestEx
takes the console's null-signed request, keeps its CertificationRequestInfo byte for byte and signs it with
the key pair, as AMT does for enterprise CA enrolment (RPS ``tls.ts``/``wiredNetworkConfiguration.ts``).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ...proto.amt import PTStatus, Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimObject
from ...proto.wsman import EndpointReference
from ...proto.wsman import faults as F
from ...proto.wsman.namespaces import resource_uri
from ..core import Engine
from ..registry import Context, Service
from ..settings import SettingsClass
from .servicekit import (
    INVALID_PARAMETER,
    MethodError,
    bytes_param,
    int_param,
    ref_param,
    selector_text,
    status_method,
)
from .support import me_service

service = Service("certificates")

CERT_PREFIX: Final = "pki/cert/"
KEY_PREFIX: Final = "pki/key/"
COUNTERS_KEY: Final = "pki/next-handle"
TLS_CONTEXT_KEY: Final = "tls/credential-context"
TLS_ACTIVE_KEY: Final = "tls/active"

MAX_CERTIFICATES: Final = 32
MAX_KEYS: Final = 16
MAX_CERT_BYTES: Final = 8192
MAX_KEY_BYTES: Final = 4096
MAX_CSR_BYTES: Final = 8192
KEY_LENGTH: Final = 2048

CERT_ID_PREFIX: Final = "Intel(r) AMT Certificate: Handle: "
KEY_ID_PREFIX: Final = "Intel(r) AMT Key: Handle: "
_CERT_ID = re.compile(r"Intel\(r\) AMT Certificate: Handle: (\d{1,9})")
_KEY_ID = re.compile(r"Intel\(r\) AMT Key: Handle: (\d{1,9})")
COLLECTION_NAME: Final = "TLSProtocolEndpoint Instances Collection"

# Return values of AMT_PublicKeyManagementService (PT_STATUS; GWM amt/publickey/decoder.go).
MAX_LIMIT_REACHED: Final = 23
DUPLICATE: Final = int(PTStatus.DUPLICATE)
INVALID_KEY_LENGTH: Final = 2062
INVALID_CERT: Final = int(PTStatus.INVALID_CERT)

_SHA256_RSA: Final = bytes.fromhex("300d06092a864886f70d01010b0500")
_SHA1_RSA: Final = bytes.fromhex("300d06092a864886f70d0101050500")


def not_permitted() -> F.InternalError:
    """How an intrinsic operation (Put/Create/Delete) reports a refusal: InternalError with the PT_STATUS."""
    return F.InternalError(detail=f"AMT-STATUS {int(PTStatus.NOT_PERMITTED)}")


# ---------------------------------------------------------------------------------------------- the store


@functools.lru_cache(maxsize=512)
def _parse_certificate(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


@functools.lru_cache(maxsize=128)
def _load_private_key(der: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("stored key is not RSA")
    return key


@dataclass(frozen=True, slots=True)
class StoredCertificate:
    handle: int
    der: bytes
    trusted_root: bool

    @property
    def certificate(self) -> x509.Certificate:
        return _parse_certificate(self.der)

    @property
    def instance_id(self) -> str:
        return f"{CERT_ID_PREFIX}{self.handle}"

    @property
    def epr(self) -> EndpointReference:
        return certificate_epr(self.handle)


@dataclass(frozen=True, slots=True)
class StoredKey:
    handle: int
    der: bytes
    """PKCS#8 DER of the private key: never sent over WS-MAN."""

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        return _load_private_key(self.der)

    @property
    def instance_id(self) -> str:
        return f"{KEY_ID_PREFIX}{self.handle}"

    @property
    def epr(self) -> EndpointReference:
        return EndpointReference.to(resource_uri("AMT_PublicPrivateKeyPair"), {"InstanceID": self.instance_id})


def _handle_of(key: str, prefix: str) -> int:
    return int(key[len(prefix):])


def certificates(engine: Engine) -> list[StoredCertificate]:
    """Every certificate in the store, by handle."""
    out = []
    for key in engine.store.keys(CERT_PREFIX):
        data = engine.store.get(key)
        out.append(StoredCertificate(_handle_of(key, CERT_PREFIX), base64.b64decode(data["der"]), bool(data["root"])))
    return sorted(out, key=lambda c: c.handle)


def key_pairs(engine: Engine) -> list[StoredKey]:
    out = [StoredKey(_handle_of(k, KEY_PREFIX), base64.b64decode(engine.store.get(k)["pkcs8"]))
           for k in engine.store.keys(KEY_PREFIX)]
    return sorted(out, key=lambda k: k.handle)


def certificate(engine: Engine, handle: int) -> StoredCertificate | None:
    return next((c for c in certificates(engine) if c.handle == handle), None)


def trusted_roots(engine: Engine) -> list[StoredCertificate]:
    """The certificates AMT trusts to verify peers (MPS, 802.1x servers, TLS clients)."""
    return [c for c in certificates(engine) if c.trusted_root]


def key_for(engine: Engine, cert: x509.Certificate) -> StoredKey | None:
    """The stored key pair whose public half is the certificate's key (what makes a cert usable as an identity)."""
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        return None
    wanted = public.public_numbers()
    return next((k for k in key_pairs(engine) if k.private_key.public_key().public_numbers() == wanted), None)


def certificate_epr(handle: int) -> EndpointReference:
    return EndpointReference.to(resource_uri("AMT_PublicKeyCertificate"), {"InstanceID": f"{CERT_ID_PREFIX}{handle}"})


def _handle_in(instance_id: object, pattern: re.Pattern[str]) -> int | None:
    match = pattern.fullmatch(instance_id) if isinstance(instance_id, str) else None
    return int(match.group(1)) if match else None


def certificate_handle(epr: EndpointReference | None) -> int | None:
    """The handle an AMT_PublicKeyCertificate EPR names, or None."""
    if epr is None or epr.class_name != "AMT_PublicKeyCertificate":
        return None
    return _handle_in(selector_text(epr, "InstanceID"), _CERT_ID)


def _key_handle(epr: EndpointReference | None) -> int | None:
    if epr is None or epr.class_name != "AMT_PublicPrivateKeyPair":
        return None
    return _handle_in(selector_text(epr, "InstanceID"), _KEY_ID)


def _next_handle(engine: Engine, kind: str) -> int:
    counters = dict(engine.store.get(COUNTERS_KEY) or {})
    handle = int(counters.get(kind, 0))
    counters[kind] = handle + 1
    engine.store.set(COUNTERS_KEY, counters)
    return handle


def _parse_der_certificate(blob: bytes) -> x509.Certificate:
    """Parse as far as every later read goes (key, names), so a stored certificate can always be shown."""
    try:
        cert = _parse_certificate(blob)
        cert.public_key()
        distinguished_names(cert)
    except (ValueError, UnsupportedAlgorithm):
        raise MethodError(INVALID_CERT, "not a DER X.509 certificate") from None
    return cert


def _store_certificate(ctx: Context, blob: bytes, *, root: bool) -> StoredCertificate:
    engine = ctx.engine
    _parse_der_certificate(blob)
    existing = certificates(engine)
    if any(c.der == blob for c in existing):
        raise MethodError(DUPLICATE, "the certificate is already in the store")
    if len(existing) >= MAX_CERTIFICATES:
        raise MethodError(MAX_LIMIT_REACHED, "the certificate store is full")
    with engine.store.transaction():
        handle = _next_handle(engine, "cert")
        engine.store.set(f"{CERT_PREFIX}{handle}", {"der": base64.b64encode(blob).decode("ascii"), "root": root})
        if root:
            engine.audit(AuditApp.SECURITY_ADMIN, 10, account=ctx.account, address=ctx.peer)
    return StoredCertificate(handle, blob, root)


def _store_key(engine: Engine, key: rsa.RSAPrivateKey) -> StoredKey:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with engine.store.transaction():
        handle = _next_handle(engine, "key")
        engine.store.set(f"{KEY_PREFIX}{handle}", {"pkcs8": base64.b64encode(der).decode("ascii")})
    return StoredKey(handle, der)


# ---------------------------------------------------------------------------------------------- instances


@service.instances("AMT_PublicKeyManagementService", realm=Realm.PT_ADMINISTRATION)
def management_service(engine: Engine) -> Iterable[CimObject]:
    return [me_service(
        "AMT_PublicKeyManagementService", "Intel(r) AMT Public Key Management Service",
        ElementName="Intel(r) AMT Certificate Store Service", EnabledDefault=5, EnabledState=5, RequestedState=12,
    )]


def distinguished_names(cert: x509.Certificate) -> tuple[str, str]:
    """Issuer and Subject as AMT writes them: RFC 4514, last RDN first (``C=unknown,O=unknown,CN=MPSRoot-0af1d5``).

    Certificates in the field break X.520 length rules (RPS's MPS root has ``C=unknown``); cryptography warns
    about them and AMT accepts them, so the warning is not passed on.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return cert.issuer.rfc4514_string(), cert.subject.rfc4514_string()


def certificate_instance(stored: StoredCertificate) -> CimObject:
    issuer, subject = distinguished_names(stored.certificate)
    return CimObject.new(
        "AMT_PublicKeyCertificate",
        ElementName="Intel(r) AMT Certificate",
        InstanceID=stored.instance_id,
        Issuer=issuer,
        Subject=subject,
        TrustedRootCertficate=stored.trusted_root,
        X509Certificate=stored.der,
    )


@service.instances("AMT_PublicKeyCertificate", realm=Realm.PT_ADMINISTRATION)
def certificate_instances(engine: Engine) -> Iterable[CimObject]:
    return [certificate_instance(c) for c in certificates(engine)]


@service.instances("AMT_PublicPrivateKeyPair", realm=Realm.PT_ADMINISTRATION)
def key_pair_instances(engine: Engine) -> Iterable[CimObject]:
    # DERKey is the PKCS#1 RSAPublicKey, as AMT 12 sends it (FX amt/publicprivate/get.xml: MIIBCgKCAQEA...).
    return [
        CimObject.new(
            "AMT_PublicPrivateKeyPair",
            DERKey=k.private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                           serialization.PublicFormat.PKCS1),
            ElementName="Intel(r) AMT Key",
            InstanceID=k.instance_id,
        )
        for k in key_pairs(engine)
    ]


@service.put("AMT_PublicKeyCertificate")
async def put_certificate(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    """Every property of a stored certificate is read-only; a Put that changes nothing is answered as AMT does."""
    changed = [n for n in new.names() if n in current and new[n] != current[n]]
    if changed:
        raise F.InvalidRepresentation(f"read-only properties: {', '.join(changed)}",
                                      detail=F.detail_uri("InvalidValues"))
    return current


def _in_use_by_mps(engine: Engine, handle: int) -> bool:
    from .remoteaccess import certificates_in_use  # remote access refers to certificates, not the reverse

    return handle in certificates_in_use(engine)


@service.delete("AMT_PublicKeyCertificate")
async def delete_certificate(ctx: Context, current: CimObject) -> None:
    engine = ctx.engine
    handle = _handle_in(current.get("InstanceID"), _CERT_ID)
    stored = certificate(engine, handle) if handle is not None else None
    if stored is None:
        raise F.DestinationUnreachable()
    if _tls_certificate_handle(engine) == handle or _in_use_by_mps(engine, stored.handle):
        raise not_permitted()
    with engine.store.transaction():
        engine.store.delete(f"{CERT_PREFIX}{stored.handle}")
        if stored.trusted_root:
            engine.audit(AuditApp.SECURITY_ADMIN, 11, account=ctx.account, address=ctx.peer)


@service.delete("AMT_PublicPrivateKeyPair")
async def delete_key_pair(ctx: Context, current: CimObject) -> None:
    engine = ctx.engine
    handle = _handle_in(current.get("InstanceID"), _KEY_ID)
    stored = next((k for k in key_pairs(engine) if k.handle == handle), None)
    if stored is None:
        raise F.DestinationUnreachable()
    tls_handle = _tls_certificate_handle(engine)
    tls_cert = certificate(engine, tls_handle) if tls_handle is not None else None
    if tls_cert is not None and key_for(engine, tls_cert.certificate) == stored:
        raise not_permitted()
    engine.store.delete(f"{KEY_PREFIX}{stored.handle}")


# ---------------------------------------------------------------------------------------------- methods


@status_method(service, "AMT_PublicKeyManagementService", "AddTrustedRootCertificate",
               realm=Realm.PT_ADMINISTRATION)
async def add_trusted_root(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    blob = bytes_param(message, "CertificateBlob", max_length=MAX_CERT_BYTES)
    return {"CreatedCertificate": _store_certificate(ctx, blob, root=True).epr}


@status_method(service, "AMT_PublicKeyManagementService", "AddCertificate", realm=Realm.PT_ADMINISTRATION)
async def add_certificate(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    blob = bytes_param(message, "CertificateBlob", max_length=MAX_CERT_BYTES)
    return {"CreatedCertificate": _store_certificate(ctx, blob, root=False).epr}


@status_method(service, "AMT_PublicKeyManagementService", "AddKey", realm=Realm.PT_ADMINISTRATION)
async def add_key(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    """Import a private key (PKCS#1 or PKCS#8 DER), e.g. for an 802.1x client certificate made elsewhere."""
    blob = bytes_param(message, "KeyBlob", max_length=MAX_KEY_BYTES)
    try:
        key = serialization.load_der_private_key(blob, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise MethodError(INVALID_PARAMETER, "KeyBlob is not an unencrypted DER private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise MethodError(INVALID_PARAMETER, "only RSA keys are supported")
    if key.key_size != KEY_LENGTH:
        raise MethodError(INVALID_KEY_LENGTH, f"RSA-{key.key_size} is not supported (RSA-{KEY_LENGTH} only)")
    engine = ctx.engine
    existing = key_pairs(engine)
    if any(k.private_key.public_key().public_numbers() == key.public_key().public_numbers() for k in existing):
        raise MethodError(DUPLICATE, "the key is already in the store")
    if len(existing) >= MAX_KEYS:
        raise MethodError(MAX_LIMIT_REACHED, "the key store is full")
    return {"CreatedKey": _store_key(engine, key).epr}


@status_method(service, "AMT_PublicKeyManagementService", "GenerateKeyPair", realm=Realm.PT_ADMINISTRATION)
async def generate_key_pair(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    int_param(message, "KeyAlgorithm", allowed={0})
    int_param(message, "KeyLength", allowed={KEY_LENGTH}, code=INVALID_KEY_LENGTH)
    if len(key_pairs(ctx.engine)) >= MAX_KEYS:
        raise MethodError(MAX_LIMIT_REACHED, "the key store is full")
    key = await asyncio.to_thread(rsa.generate_private_key, public_exponent=65537, key_size=KEY_LENGTH)
    return {"KeyPair": _store_key(ctx.engine, key).epr}


@status_method(service, "AMT_PublicKeyManagementService", "GeneratePKCS10RequestEx", realm=Realm.PT_ADMINISTRATION)
async def generate_pkcs10_request(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    handle = _key_handle(ref_param(message, "KeyPair"))
    stored = next((k for k in key_pairs(ctx.engine) if k.handle == handle), None)
    if stored is None:
        raise MethodError(INVALID_PARAMETER, "KeyPair names no key pair in the store")
    algorithm = int_param(message, "SigningAlgorithm", allowed={0, 1})
    request = bytes_param(message, "NullSignedCertificateRequest", max_length=MAX_CSR_BYTES)
    info = certification_request_info(request)
    key = stored.private_key
    if algorithm == 0:
        digest: hashes.HashAlgorithm = hashes.SHA1()  # noqa: S303 - SHA1-RSA is a value AMT offers
        algorithm_id = _SHA1_RSA
    else:
        digest, algorithm_id = hashes.SHA256(), _SHA256_RSA
    signature = key.sign(info, padding.PKCS1v15(), digest)
    signed = _der(0x30, info + algorithm_id + _der(0x03, b"\x00" + signature))
    try:
        csr = x509.load_der_x509_csr(signed)
        matches = csr.public_key() == key.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise MethodError(INVALID_PARAMETER, "the request is not a PKCS#10 CertificationRequest") from None
    if not matches:
        raise MethodError(INVALID_PARAMETER, "the request is for another public key than KeyPair's")
    return {"SignedCertificateRequest": signed}


def _der(tag: int, content: bytes) -> bytes:
    """One DER TLV (definite length)."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def _der_header(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the TLV at ``at``; lengths are checked against the data."""
    if at + 2 > len(data):
        raise MethodError(INVALID_PARAMETER, "truncated DER")
    tag, first = data[at], data[at + 1]
    at += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or at + count > len(data):
            raise MethodError(INVALID_PARAMETER, "bad DER length")
        length = int.from_bytes(data[at:at + count], "big")
        at += count
    if at + length > len(data):
        raise MethodError(INVALID_PARAMETER, "DER length runs past the data")
    return tag, at, at + length


def certification_request_info(request: bytes) -> bytes:
    """The CertificationRequestInfo (the signed part) of a PKCS#10 request, whatever its placeholder signature."""
    tag, start, end = _der_header(request, 0)
    if tag != 0x30 or end != len(request):
        raise MethodError(INVALID_PARAMETER, "the request is not one DER SEQUENCE")
    inner_tag, _, inner_end = _der_header(request, start)
    if inner_tag != 0x30:
        raise MethodError(INVALID_PARAMETER, "the request does not start with a CertificationRequestInfo")
    return request[start:inner_end]


# ---------------------------------------------------------------------------------------------- TLS


def _tls_defaults(instance_id: str, accept_non_secure: bool) -> Mapping[str, Any]:
    return {
        "AcceptNonSecureConnections": accept_non_secure,
        "ElementName": instance_id,
        "Enabled": False,
        "InstanceID": instance_id,
        "MutualAuthentication": False,
    }


_TLS_WRITABLE: Final = frozenset({"Enabled", "MutualAuthentication", "AcceptNonSecureConnections", "TrustedCN"})
NETWORK_TLS = SettingsClass("AMT_TLSSettingData", "Intel(r) AMT 802.3 TLS Settings",
                            lambda _: _tls_defaults("Intel(r) AMT 802.3 TLS Settings", False), _TLS_WRITABLE)
LOCAL_TLS = SettingsClass("AMT_TLSSettingData", "Intel(r) AMT LMS TLS Settings",
                          lambda _: _tls_defaults("Intel(r) AMT LMS TLS Settings", True), _TLS_WRITABLE)
TLS_SETTINGS: Final = (NETWORK_TLS, LOCAL_TLS)
MAX_TRUSTED_CN: Final = 4
MAX_CN_LENGTH: Final = 255


@service.instances("AMT_TLSSettingData", realm=Realm.PT_ADMINISTRATION)
def tls_settings(engine: Engine) -> Iterable[CimObject]:
    return [s.instance(engine) for s in TLS_SETTINGS]


def _auth_mode(values: Mapping[str, Any]) -> int:
    """MCMD's audit 1607 vocabulary: 0 no TLS, 1 server authentication, 2 mutual authentication."""
    if not values.get("Enabled"):
        return 0
    return 2 if values.get("MutualAuthentication") else 1


@service.put("AMT_TLSSettingData")
async def put_tls_settings(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    engine = ctx.engine
    if not ctx.selectors and isinstance(new.get("InstanceID"), str):
        # Some consoles Put without selectors; the body says which of the two instances it is.
        chosen = next((s for s in TLS_SETTINGS if s.instance_id == new["InstanceID"]), None)
        current = chosen.instance(engine) if chosen is not None else current
    settings = next(s for s in TLS_SETTINGS if s.instance_id == current["InstanceID"])
    changes = settings.changes_from_put(current, new)
    if "TrustedCN" in changes:
        names = changes["TrustedCN"] if isinstance(changes["TrustedCN"], list) else [changes["TrustedCN"]]
        if len(names) > MAX_TRUSTED_CN or any(len(str(n)) > MAX_CN_LENGTH for n in names):
            raise F.InvalidRepresentation("too many or too long TrustedCN", detail=F.detail_uri("InvalidValues"))
    if changes.get("Enabled") is True and _tls_certificate_handle(engine) is None:
        raise not_permitted()
    before = [_auth_mode(s.values(engine)) for s in TLS_SETTINGS]
    with engine.store.transaction():
        settings.update(engine, changes)
        after = [_auth_mode(s.values(engine)) for s in TLS_SETTINGS]
        if after != before:
            engine.audit(AuditApp.SECURITY_ADMIN, 7, account=ctx.account, address=ctx.peer, extended=bytes(after))
    return settings.instance(engine)


def _collection_epr() -> EndpointReference:
    return EndpointReference.to(resource_uri("AMT_TLSProtocolEndpointCollection"), {"ElementName": COLLECTION_NAME})


@service.instances("AMT_TLSProtocolEndpointCollection", realm=Realm.PT_ADMINISTRATION)
def tls_collection(engine: Engine) -> Iterable[CimObject]:
    return [CimObject.new("AMT_TLSProtocolEndpointCollection", ElementName=COLLECTION_NAME)]


def _tls_certificate_handle(engine: Engine) -> int | None:
    data = engine.store.get(TLS_CONTEXT_KEY)
    return int(data["cert"]) if data is not None else None


def _context_instance(handle: int) -> CimObject:
    return CimObject.new("AMT_TLSCredentialContext", ElementInContext=certificate_epr(handle),
                         ElementProvidingContext=_collection_epr())


@service.instances("AMT_TLSCredentialContext", realm=Realm.PT_ADMINISTRATION)
def tls_credential_contexts(engine: Engine) -> Iterable[CimObject]:
    handle = _tls_certificate_handle(engine)
    return [_context_instance(handle)] if handle is not None else []


def _identity_certificate(engine: Engine, new: CimObject) -> StoredCertificate:
    """The certificate a credential context names; it must be in the store with its private key."""
    in_context = new.get("ElementInContext")
    providing = new.get("ElementProvidingContext")
    handle = certificate_handle(in_context if isinstance(in_context, EndpointReference) else None)
    stored = certificate(engine, handle) if handle is not None else None
    # The collection's ElementName is not checked: MeshCommander and go-wsman-messages both send
    # "TLSProtocolEndpointInstances Collection" (no space) and real AMT accepts it.
    if (stored is None or stored.trusted_root or key_for(engine, stored.certificate) is None
            or not isinstance(providing, EndpointReference)
            or providing.class_name != "AMT_TLSProtocolEndpointCollection"):
        raise F.InvalidRepresentation("ElementInContext must name a stored certificate with its private key, "
                                      "ElementProvidingContext the TLS protocol endpoint collection",
                                      detail=F.detail_uri("InvalidValues"))
    return stored


@service.create("AMT_TLSCredentialContext")
async def create_tls_context(ctx: Context, new: CimObject) -> EndpointReference:
    engine = ctx.engine
    if _tls_certificate_handle(engine) is not None:
        raise F.AlreadyExists()
    stored = _identity_certificate(engine, new)
    with engine.store.transaction():
        engine.store.set(TLS_CONTEXT_KEY, {"cert": stored.handle})
        engine.audit(AuditApp.SECURITY_ADMIN, 8, account=ctx.account, address=ctx.peer)
    return EndpointReference.to(resource_uri("AMT_TLSCredentialContext"), {
        "ElementInContext": certificate_epr(stored.handle), "ElementProvidingContext": _collection_epr()})


@service.put("AMT_TLSCredentialContext")
async def put_tls_context(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    """Replace the TLS certificate (go-wsman-messages ``CredentialContext.Put``)."""
    engine = ctx.engine
    stored = _identity_certificate(engine, new)
    with engine.store.transaction():
        engine.store.set(TLS_CONTEXT_KEY, {"cert": stored.handle})
        engine.audit(AuditApp.SECURITY_ADMIN, 8, account=ctx.account, address=ctx.peer)
    return _context_instance(stored.handle)


@service.delete("AMT_TLSCredentialContext")
async def delete_tls_context(ctx: Context, current: CimObject) -> None:
    engine = ctx.engine
    if any(s.values(engine).get("Enabled") for s in TLS_SETTINGS):
        raise not_permitted()
    with engine.store.transaction():
        engine.store.delete(TLS_CONTEXT_KEY)
        engine.audit(AuditApp.SECURITY_ADMIN, 9, account=ctx.account, address=ctx.peer)


@dataclass(frozen=True, slots=True)
class TlsEndpointSettings:
    enabled: bool
    mutual_authentication: bool
    accept_non_secure: bool
    trusted_cn: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TlsConfiguration:
    """The committed TLS setup, for the listener: settings plus the server identity and the roots to trust."""

    network: TlsEndpointSettings
    local: TlsEndpointSettings
    certificate_der: bytes | None
    private_key_pem: bytes | None
    trusted_roots_der: tuple[bytes, ...]


def _endpoint_json(values: Mapping[str, Any]) -> dict[str, Any]:
    cns = values.get("TrustedCN") or []
    return {
        "enabled": bool(values.get("Enabled")),
        "mutual": bool(values.get("MutualAuthentication")),
        "accept_non_secure": bool(values.get("AcceptNonSecureConnections")),
        "trusted_cn": [str(c) for c in (cns if isinstance(cns, list) else [cns])],
    }


def commit_tls(engine: Engine) -> None:
    """Make the pending TLS settings and credential the active ones (CommitChanges)."""
    engine.store.set(TLS_ACTIVE_KEY, {
        "network": _endpoint_json(NETWORK_TLS.values(engine)),
        "local": _endpoint_json(LOCAL_TLS.values(engine)),
        "cert": _tls_certificate_handle(engine),
    })


def tls_configuration(engine: Engine) -> TlsConfiguration | None:
    """The TLS setup in force since the last CommitChanges, or None when a console never committed one."""
    active = engine.store.get(TLS_ACTIVE_KEY)
    if active is None:
        return None

    def endpoint(data: Mapping[str, Any]) -> TlsEndpointSettings:
        return TlsEndpointSettings(bool(data["enabled"]), bool(data["mutual"]), bool(data["accept_non_secure"]),
                                   tuple(data["trusted_cn"]))

    stored = certificate(engine, int(active["cert"])) if active.get("cert") is not None else None
    key = key_for(engine, stored.certificate) if stored is not None else None
    pem = key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()) if key is not None else None
    return TlsConfiguration(
        endpoint(active["network"]), endpoint(active["local"]),
        stored.der if stored is not None and key is not None else None, pem,
        tuple(c.der for c in trusted_roots(engine)),
    )
