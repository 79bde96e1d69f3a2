"""Provisioning: AMT_SetupAndConfigurationService and IPS_HostBasedSetupService (AMT-PROTOCOLS.md §6).

Theory of operation.  An engine is in one of three provisioning states, persisted under ``provisioning/status``:

* pre-provisioning (``ProvisioningState`` 0, ``CurrentControlMode`` 0): factory state.  Host-based setup turns
  it into
* post-provisioning in Client Control Mode (``Setup``: state 2, ``ProvisioningMode`` 4, control mode 1), or
* post-provisioning in Admin Control Mode (``AdminSetup``, or ``UpgradeClientToAdmin`` from CCM: state 2,
  ``ProvisioningMode`` 1, control mode 2).
* ``Unprovision`` (and ``DisableClientControlMode`` from CCM) return to pre-provisioning and erase the AMT
  configuration (:func:`unprovision`).

Outband engines start provisioned in ACM with the admin password they were given, so existing consoles manage
them at once; :func:`set_provisioning` makes a factory-fresh engine instead.

ACM needs proof that the configurator holds a provisioning certificate AMT trusts.  The console sends the chain
leaf first (``AddNextCertInChain``; ``CertChainStatus`` 1 while it grows, 2 once the root arrived and the chain
verified), then signs ``ConfigurationNonce || McNonce`` with the leaf's key (``AdminSetup``).  The chain must
verify link by link with ``cryptography``, end in a root whose hash the operator trusted
(:func:`set_trusted_root_hashes`, state key ``provisioning/trusted_root_hashes``: there are no built-in vendor
hashes), and its leaf must carry the AMT provisioning EKU (2.16.840.1.113741.1.2.3) or the OU
``Intel(R) Client Setup Certificate`` and a CN inside the PKI DNS suffix.  The nonce and the chain are volatile,
as in firmware: a fresh 20-byte nonce per engine start and after every signature check, so a signature
can never be replayed.

Stand-in for the host: AMT accepts host-based setup only from the local OS administrator (over LMS, with the
local system account rpc-go reads through MEI).  An engine has no host interface, so in pre-provisioning the
admin credential the engine was started with plays that role.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from ...proto.amt import Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimObject
from ..acl import ADMIN_HANDLE, Account
from ..core import Engine
from ..registry import Context, Service
from .certificates import commit_tls
from .servicekit import (
    MethodError,
    bool_param,
    bytes_param,
    int_param,
    status_method,
    str_param,
)
from .support import me_service, runtime

service = Service("provisioning")

STATUS_KEY: Final = "provisioning/status"
TRUSTED_HASHES_KEY: Final = "provisioning/trusted_root_hashes"
HASH_ENTRIES_KEY: Final = "provisioning/hash_entries"
"""Descriptions and disabled flags of the trusted hashes (AMT_ProvisioningCertificateHash)."""
DNS_SUFFIX_KEY: Final = "provisioning/pki_dns_suffix"
MEBX_KEY: Final = "provisioning/mebx_password"

SETUP_SERVICE: Final = "Intel(r) AMT Setup and Configuration Service"
HOST_SETUP_SERVICE: Final = "Intel(r) AMT Host Based Setup Service"
PROVISIONING_EKU: Final = x509.ObjectIdentifier("2.16.840.1.113741.1.2.3")
PROVISIONING_OU: Final = "Intel(R) Client Setup Certificate"
NONCE_BYTES: Final = 20
MAX_CHAIN: Final = 5
MAX_CERT_BYTES: Final = 8192
MAX_SIGNATURE_BYTES: Final = 1024

# AMT_SetupAndConfigurationService return values (PT_STATUS; GWM setupandconfiguration/decoder.go).
NOT_PERMITTED: Final = 16
INVALID_PASSWORD: Final = 2054

# IPS_HostBasedSetupService return values (GWM ips/hostbasedsetup/decoder.go).
SETUP_INVALID_STATE: Final = 2
SETUP_INVALID_PARAM: Final = 3
SETUP_AUTH_FAILED: Final = 5
CHAIN_INVALID_PARAM: Final = 1
CHAIN_INVALID_STATE: Final = 3
CHAIN_VERIFY_FAILED: Final = 4
CHAIN_TOO_LONG: Final = 5

UNPROVISION_BY_REMOTE_WSMAN: Final = 4
"""Audit 1619's initiator byte: 0 BIOS, 1 MEBx, 2 local MEI, 3 local WS-MAN, 4 remote WS-MAN (MCMD)."""


class ProvisioningState(enum.IntEnum):
    PRE = 0
    IN = 1
    POST = 2


class ControlMode(enum.IntEnum):
    """IPS_HostBasedSetupService.CurrentControlMode."""

    NONE = 0
    CLIENT = 1
    ADMIN = 2


@dataclass(frozen=True, slots=True)
class Provisioning:
    mode: ControlMode
    state: ProvisioningState

    @property
    def provisioning_mode(self) -> int:
        """AMT_SetupAndConfigurationService.ProvisioningMode: 4 in CCM, else 1 (ACM, and AMT's default)."""
        return 4 if self.mode is ControlMode.CLIENT else 1


def provisioning(engine: Engine) -> Provisioning:
    """The engine's provisioning state; an engine never set otherwise is provisioned in ACM."""
    data = engine.store.get(STATUS_KEY)
    if data is None:
        return Provisioning(ControlMode.ADMIN, ProvisioningState.POST)
    return Provisioning(ControlMode(int(data["mode"])), ProvisioningState(int(data["state"])))


def set_provisioning(engine: Engine, mode: ControlMode, state: ProvisioningState = ProvisioningState.POST) -> None:
    """Put the engine in a provisioning state directly (operator action, like the factory or MEBx would)."""
    if (state is ProvisioningState.PRE) != (mode is ControlMode.NONE) or state is ProvisioningState.IN:
        raise ValueError("pre-provisioning goes with control mode NONE, post-provisioning with CLIENT or ADMIN")
    engine.store.set(STATUS_KEY, {"mode": int(mode), "state": int(state)})


def is_provisioned(engine: Engine) -> bool:
    return provisioning(engine).state is ProvisioningState.POST


PRE_PROVISIONING_CLASSES: Final = frozenset({
    "AMT_GeneralSettings",  # rpc-go and RPS read the Digest realm to hash the new admin password
    "AMT_SetupAndConfigurationService",
    "IPS_HostBasedSetupService",
    "CIM_SoftwareIdentity",  # consoles read the firmware version first
    "AMT_AuditLog",  # IRG: reading the audit log stays enabled in an unconfigured state (8.0+)
})


@service.gate
def reachable(engine: Engine, class_name: str) -> bool:
    """Whether a request for ``class_name`` is served in the engine's current provisioning state: before
    provisioning AMT answers only what host-based setup needs (the dispatcher should answer AccessDenied else)."""
    return class_name in PRE_PROVISIONING_CLASSES or is_provisioned(engine)


# ---------------------------------------------------------------------------------------------- operator settings

_HASH_LENGTHS: Final[Mapping[int, hashes.HashAlgorithm]] = {
    40: hashes.SHA1(),  # noqa: S303 - AMT keeps SHA-1 hashes of old vendor roots
    64: hashes.SHA256(),
    96: hashes.SHA384(),
}


def normalize_hash(value: str) -> str:
    """A certificate hash as lower-case hex (colons and spaces allowed in the input): SHA-1, -256 or -384."""
    text = value.strip().lower().replace(":", "").replace(" ", "")
    if len(text) not in _HASH_LENGTHS or re.fullmatch(r"[0-9a-f]+", text) is None:
        raise ValueError(f"not a SHA-1/256/384 certificate hash: {value!r}")
    return text


def trusted_root_hashes(engine: Engine) -> list[str]:
    return list(engine.store.get(TRUSTED_HASHES_KEY) or [])


def set_trusted_root_hashes(engine: Engine, values: Iterable[str]) -> None:
    """Trust provisioning roots by certificate hash (what MEBx's "add custom hash" does on real AMT)."""
    normalized = sorted({normalize_hash(v) for v in values})
    if normalized:
        engine.store.set(TRUSTED_HASHES_KEY, normalized)
    else:
        engine.store.delete(TRUSTED_HASHES_KEY)


def pki_dns_suffix(engine: Engine) -> str:
    """The domain a provisioning certificate's CN must lie in: the operator's PKI DNS suffix, else the engine's
    domain (AMT takes it from MEBx or DHCP option 15)."""
    return str(engine.store.get(DNS_SUFFIX_KEY) or engine.config.domain or "").strip(".").lower()


def set_pki_dns_suffix(engine: Engine, suffix: str | None) -> None:
    if suffix:
        engine.store.set(DNS_SUFFIX_KEY, suffix.strip().strip(".").lower())
    else:
        engine.store.delete(DNS_SUFFIX_KEY)


def password_problem(password: str) -> str | None:
    """Why ``password`` fails AMT's strong-password rule (MEBx and network admin), or None when it passes.

    8-32 printable 7-bit ASCII characters without ``:``, ``,`` or ``"``; at least one digit, one lower- and one
    upper-case letter and one non-alphanumeric character other than ``_`` and space, which are allowed but do
    not count (AMT-PROTOCOLS.md §6.2; MEBx help text).
    """
    if not 8 <= len(password) <= 32:
        return "must be 8 to 32 characters long"
    if any(not 0x20 <= ord(c) < 0x7F for c in password):
        return "must be printable 7-bit ASCII"
    if any(c in ':,"' for c in password):
        return 'must not contain : , or "'
    if not any(c.isdigit() for c in password):
        return "needs a digit"
    if not (any(c.islower() for c in password) and any(c.isupper() for c in password)):
        return "needs upper- and lower-case letters"
    if not any(not c.isalnum() and c not in "_ " for c in password):
        return "needs a special character other than _ and space"
    return None


# ---------------------------------------------------------------------------------------------- unprovisioning

_KEPT_PREFIXES: Final = ("identity/", "acl_meta/")
_KEPT_KEYS: Final = frozenset({f"acl/{ADMIN_HANDLE}", DNS_SUFFIX_KEY, MEBX_KEY})


def unprovision(engine: Engine, *, account: Account | None, address: str, initiator: int = UNPROVISION_BY_REMOTE_WSMAN,
                keep_custom_hashes: bool = False) -> None:
    """Return to pre-provisioning, erasing AMT's configuration as AMT does (IRG "Restoring Intel AMT to Factory
    Mode"): every state key except the engine identity is configuration and goes -- settings, certificates and
    keys, CIRA, user accounts, custom provisioning hashes -- and the event log is cleared.  What survives: the
    audit log (with the 1619 record written first), the Digest realm, the PKI DNS suffix (kept since AMT 12),
    the MEBx password, and the admin credential (the stand-in for the host's credential, see the module doc)."""
    with engine.store.transaction():
        engine.audit(AuditApp.SECURITY_ADMIN, 19, account=account, address=address, extended=bytes([initiator]))
        for key in engine.store.keys(prefix=""):
            if key.startswith(_KEPT_PREFIXES) or key in _KEPT_KEYS:
                continue
            if keep_custom_hashes and key in (TRUSTED_HASHES_KEY, HASH_ENTRIES_KEY):
                continue
            if key.startswith("acl/"):
                engine.accounts.remove(int(key.removeprefix("acl/")))
            else:
                engine.store.delete(key)
        engine.store.clear_log("event")
        set_provisioning(engine, ControlMode.NONE, ProvisioningState.PRE)
    _session(engine).renew()


# ---------------------------------------------------------------------------------------------- setup session


@dataclass(slots=True)
class _SetupSession:
    """What host-based setup keeps in RAM (lost on an ME reset): the nonce to sign and the chain being built."""

    nonce: bytes = field(default_factory=lambda: secrets.token_bytes(NONCE_BYTES))
    chain: list[x509.Certificate] = field(default_factory=list)
    complete: bool = False

    @property
    def chain_status(self) -> int:
        return 2 if self.complete else 1 if self.chain else 0

    def renew(self) -> _SetupSession:
        """Start over with a fresh nonce and no chain; return what was current (every signature check uses the
        nonce up, so no signature can be replayed)."""
        spent = _SetupSession(self.nonce, self.chain, self.complete)
        self.nonce, self.chain, self.complete = secrets.token_bytes(NONCE_BYTES), [], False
        return spent


def _session(engine: Engine) -> _SetupSession:
    return runtime(engine, "provisioning.setup", _SetupSession)


def _root_is_trusted(engine: Engine, root: x509.Certificate) -> bool:
    trusted = set(trusted_root_hashes(engine))
    return any(root.fingerprint(algorithm).hex() in trusted for algorithm in _HASH_LENGTHS.values())


def _common_names(name: x509.Name) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _is_provisioning_certificate(leaf: x509.Certificate) -> bool:
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if PROVISIONING_EKU in usages:
            return True
    except x509.ExtensionNotFound:
        pass
    units = leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return any(str(u.value) == PROVISIONING_OU for u in units)


def _in_domain(common_name: str, suffix: str) -> bool:
    cn = common_name.strip(".").lower()
    return bool(suffix) and (cn == suffix or cn.endswith("." + suffix))


def chain_problem(engine: Engine, chain: list[x509.Certificate]) -> str | None:
    """Why a provisioning chain (leaf first, root last) is not acceptable, or None.

    Each certificate must be signed by the next (``verify_directly_issued_by``), the issuers must be CAs, all must
    be valid now, and the root must be self-signed and trusted by hash.  cryptography's policy verifier is not
    used: its Web PKI profile rejects provisioning certificates (their EKU is Intel's, not serverAuth alone).
    """
    now = engine.clock()
    root, leaf = chain[-1], chain[0]
    try:
        for child, issuer in itertools.pairwise(chain):
            child.verify_directly_issued_by(issuer)
        root.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
        return f"the chain does not verify: {exc}"
    for issuer in chain[1:]:
        try:
            if not issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                return f"{issuer.subject.rfc4514_string()} is not a CA"
        except x509.ExtensionNotFound:
            pass
    for cert in chain:
        if not cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp():
            return f"{cert.subject.rfc4514_string()} is not valid now"
    if not _root_is_trusted(engine, root):
        return "the root's hash is not among the trusted provisioning hashes"
    if not _is_provisioning_certificate(leaf):
        return "the leaf has neither the AMT provisioning EKU nor the Intel(R) Client Setup Certificate OU"
    suffix = pki_dns_suffix(engine)
    if not any(_in_domain(cn, suffix) for cn in _common_names(leaf.subject)):
        return f"the leaf's CN is not inside the PKI DNS suffix {suffix!r}"
    return None


def _check_signature(session: _SetupSession, mc_nonce: bytes, signature: bytes) -> None:
    """The configurator's proof: RSA-SHA256 (PKCS#1 v1.5) over ConfigurationNonce || McNonce by the leaf key."""
    if not session.complete:
        raise MethodError(SETUP_INVALID_STATE, "no verified certificate chain (AddNextCertInChain)")
    public = session.chain[0].public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise MethodError(SETUP_AUTH_FAILED, "the leaf key is not RSA")
    try:
        public.verify(signature, session.nonce + mc_nonce, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise MethodError(SETUP_AUTH_FAILED, "DigitalSignature does not verify over the nonces") from None


def _signed_inputs(message: CimObject) -> tuple[bytes, bytes]:
    """McNonce and DigitalSignature of AdminSetup/UpgradeClientToAdmin, with SigningAlgorithm 2 (RSA-SHA256)."""
    int_param(message, "SigningAlgorithm", allowed={2}, code=SETUP_INVALID_PARAM)
    mc_nonce = bytes_param(message, "McNonce", max_length=NONCE_BYTES, code=SETUP_INVALID_PARAM)
    if len(mc_nonce) != NONCE_BYTES:
        raise MethodError(SETUP_INVALID_PARAM, f"McNonce must be {NONCE_BYTES} bytes")
    signature = bytes_param(message, "DigitalSignature", max_length=MAX_SIGNATURE_BYTES, code=SETUP_INVALID_PARAM)
    return mc_nonce, signature


def _admin_ha1(message: CimObject) -> str:
    """NetworkAdminPassword of Setup/AdminSetup: hex MD5("admin:" realm ":" password), i.e. the HA1 AMT stores."""
    int_param(message, "NetAdminPassEncryptionType", allowed={2}, code=SETUP_INVALID_PARAM)
    value = str_param(message, "NetworkAdminPassword", max_length=64, code=SETUP_INVALID_PARAM).strip()
    if re.fullmatch(r"[0-9A-Fa-f]{32}", value) is None:
        raise MethodError(SETUP_INVALID_PARAM, "NetworkAdminPassword is not 32 hex digits")
    return value.lower()


def _become(engine: Engine, mode: ControlMode, *, admin_ha1: str | None = None) -> None:
    if admin_ha1 is not None:
        engine.accounts.set_admin_ha1("admin", admin_ha1)
    set_provisioning(engine, mode, ProvisioningState.POST)


# ---------------------------------------------------------------------------------------------- WS-MAN


@service.instances("AMT_SetupAndConfigurationService", realm=Realm.GENERAL_INFO)
def setup_service(engine: Engine) -> Iterable[CimObject]:
    status = provisioning(engine)
    return [me_service(
        "AMT_SetupAndConfigurationService", SETUP_SERVICE,
        EnabledState=5,
        PasswordModel=1,
        ProvisioningMode=status.provisioning_mode,
        ProvisioningServerOTP=bytes(32),
        ProvisioningState=int(status.state),
        RequestedState=12,
        # Remote (zero-touch) configuration is possible exactly when a provisioning root is trusted.
        ZeroTouchConfigurationEnabled=bool(trusted_root_hashes(engine)),
    )]


@status_method(service, "AMT_SetupAndConfigurationService", "GetUuid", realm=Realm.GENERAL_INFO)
async def get_uuid(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    # SMBIOS byte order: the first three fields little-endian (MCMD guidToStr; APF PROTOCOL_VERSION likewise).
    return {"UUID": uuid.UUID(ctx.engine.uuid).bytes_le}


@status_method(service, "AMT_SetupAndConfigurationService", "CommitChanges", realm=Realm.PT_ADMINISTRATION)
async def commit_changes(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    commit_tls(ctx.engine)
    return {}


async def _unprovision(ctx: Context, *, keep_custom_hashes: bool) -> Mapping[str, Any]:
    if not is_provisioned(ctx.engine):
        raise MethodError(NOT_PERMITTED, "the engine is not provisioned")
    unprovision(ctx.engine, account=ctx.account, address=ctx.peer, keep_custom_hashes=keep_custom_hashes)
    return {}


@status_method(service, "AMT_SetupAndConfigurationService", "Unprovision", realm=Realm.PT_ADMINISTRATION)
async def unprovision_method(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    # rpc-go sends ProvisioningMode 1, Intel's own sample 0; AMT ignores it beyond checking it is a mode.
    int_param(message, "ProvisioningMode", allowed={0, 1, 4})
    return await _unprovision(ctx, keep_custom_hashes=False)


@status_method(service, "AMT_SetupAndConfigurationService", "PartialUnprovision", realm=Realm.PT_ADMINISTRATION)
async def partial_unprovision(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    return await _unprovision(ctx, keep_custom_hashes=True)


@status_method(service, "AMT_SetupAndConfigurationService", "SetMEBxPassword", realm=Realm.PT_ADMINISTRATION)
async def set_mebx_password(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    password = str_param(message, "Password", max_length=64)
    if provisioning(ctx.engine).mode is not ControlMode.ADMIN:
        raise MethodError(NOT_PERMITTED, "the MEBx password can be set remotely only in admin control mode")
    problem = password_problem(password)
    if problem is not None:
        raise MethodError(INVALID_PASSWORD, f"the MEBx password {problem}")
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, 200_000)
    ctx.engine.store.set(MEBX_KEY, {"pbkdf2_sha256": digest.hex(), "salt": salt.hex(), "iterations": 200_000})
    return {}


@service.instances("IPS_HostBasedSetupService", realm=Realm.GENERAL_INFO)
def host_setup_service(engine: Engine) -> Iterable[CimObject]:
    session = _session(engine)
    return [me_service(
        "IPS_HostBasedSetupService", HOST_SETUP_SERVICE,
        AllowedControlModes=[2, 1],
        CertChainStatus=session.chain_status,
        ConfigurationNonce=session.nonce,
        CurrentControlMode=int(provisioning(engine).mode),
    )]


@status_method(service, "IPS_HostBasedSetupService", "Setup", realm=Realm.PT_ADMINISTRATION)
async def setup(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    """Client Control Mode: the admin password is all the host gives."""
    ha1 = _admin_ha1(message)
    if provisioning(ctx.engine).state is not ProvisioningState.PRE:
        raise MethodError(SETUP_INVALID_STATE, "already provisioned")
    with ctx.engine.store.transaction():
        _become(ctx.engine, ControlMode.CLIENT, admin_ha1=ha1)
    return {}


@status_method(service, "IPS_HostBasedSetupService", "AddNextCertInChain", realm=Realm.PT_ADMINISTRATION)
async def add_next_cert_in_chain(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    blob = bytes_param(message, "NextCertificate", max_length=MAX_CERT_BYTES, code=CHAIN_INVALID_PARAM)
    is_leaf = bool_param(message, "IsLeafCertificate", code=CHAIN_INVALID_PARAM)
    is_root = bool_param(message, "IsRootCertificate", code=CHAIN_INVALID_PARAM)
    try:
        cert = x509.load_der_x509_certificate(blob)
    except ValueError:
        raise MethodError(CHAIN_INVALID_PARAM, "NextCertificate is not a DER X.509 certificate") from None
    if provisioning(engine).mode is ControlMode.ADMIN:
        raise MethodError(CHAIN_INVALID_STATE, "already in admin control mode")
    session = _session(engine)
    if is_leaf:
        session.chain, session.complete = [], False
    elif not session.chain or session.complete:
        raise MethodError(CHAIN_INVALID_STATE, "a chain starts with its leaf certificate")
    session.chain.append(cert)
    if len(session.chain) > MAX_CHAIN:
        session.chain = []
        raise MethodError(CHAIN_TOO_LONG, f"a provisioning chain has at most {MAX_CHAIN} certificates")
    if is_root:
        problem = chain_problem(engine, session.chain)
        if problem is not None:
            session.chain = []
            raise MethodError(CHAIN_VERIFY_FAILED, problem)
        session.complete = True
    return {}


@status_method(service, "IPS_HostBasedSetupService", "AdminSetup", realm=Realm.PT_ADMINISTRATION)
async def admin_setup(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    """Admin Control Mode from pre-provisioning: the admin password plus the signed nonces."""
    engine = ctx.engine
    ha1 = _admin_ha1(message)
    mc_nonce, signature = _signed_inputs(message)
    if provisioning(engine).state is not ProvisioningState.PRE:
        raise MethodError(SETUP_INVALID_STATE, "already provisioned")
    _check_signature(_session(engine).renew(), mc_nonce, signature)
    with engine.store.transaction():
        _become(engine, ControlMode.ADMIN, admin_ha1=ha1)
        # 1601 Provisioning Completed, method 5 = host-based provisioning admin mode (IRG security admin events).
        engine.audit(AuditApp.SECURITY_ADMIN, 1, account=ctx.account, address=ctx.peer, extended=b"\x05")
    return {}


@status_method(service, "IPS_HostBasedSetupService", "UpgradeClientToAdmin", realm=Realm.PT_ADMINISTRATION)
async def upgrade_client_to_admin(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    mc_nonce, signature = _signed_inputs(message)
    if provisioning(engine).mode is not ControlMode.CLIENT:
        raise MethodError(SETUP_INVALID_STATE, "only client control mode can be upgraded")
    _check_signature(_session(engine).renew(), mc_nonce, signature)
    with engine.store.transaction():
        _become(engine, ControlMode.ADMIN)
        engine.audit(AuditApp.SECURITY_ADMIN, 18, account=ctx.account, address=ctx.peer)
    return {}


@status_method(service, "IPS_HostBasedSetupService", "DisableClientControlMode", realm=Realm.PT_ADMINISTRATION)
async def disable_client_control_mode(ctx: Context, target: CimObject | None, message: CimObject
                                      ) -> Mapping[str, Any]:
    if provisioning(ctx.engine).mode is not ControlMode.CLIENT:
        raise MethodError(SETUP_INVALID_STATE, "not in client control mode")
    unprovision(ctx.engine, account=ctx.account, address=ctx.peer)
    return {}

