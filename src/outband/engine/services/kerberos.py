"""AMT_KerberosSettingData: the Kerberos realm AMT would accept tickets from, and its credential cache switch.

The instance carries AMT's own spelling: ``InstanceID`` is ``Intel (r) AMT: Kerberos Settings`` (with a space
before ``(r)``) while ``ElementName`` is ``Intel(r) AMT: Kerberos Settings`` (FX ``amt/kerberos/get.xml``).  A
factory AMT shows Kerberos off and the three encryption types it supports (0 RC4-HMAC, 1 AES128, 2 AES256).

What a Put may change: the realm, the service principal names with their protocols (two parallel arrays of
the same length), the key version, the encryption algorithm, the clock tolerance and the algorithms in use,
plus the secret that derives the service key -- either ``MasterKey`` (16 bytes for RC4-HMAC and AES128, 32
for AES256) or ``Passphrase`` with ``Salt`` and ``IterationCount``.  Secrets are write-only: they are kept in
their own state key and never read back, as AMT never shows them.

Decision: ``KrbEnabled`` cannot become true.  This engine authenticates with HTTP digest only (there is no
Kerberos verifier, and AMT_AuthorizationService refuses Kerberos users for the same reason), so accepting it
would make a console believe Kerberos logins work.  Such a Put is an InvalidRepresentation fault and changes
nothing; everything else is stored, so a console's Get-modify-Put of the settings round-trips.

Credential cache: Get/SetCredentialCacheState read and set a persisted flag (off by default, FX
``amt/kerberos/getcredentialcachestate.xml``).  Audit: 1613 "Kerberos Settings Modified" for a settings change
or a cache change, 1614 "Kerberos Main Key Modified" when the key material changes.  Reads and writes need
PT Administration (the class belongs to security administration).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from ...proto.amt import Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimObject
from ...proto.wsman import faults as F
from ..core import Engine
from ..registry import Context, Service
from ..settings import SettingsClass
from .servicekit import bool_param, status_method

service = Service("kerberos")

CLASS: Final = "AMT_KerberosSettingData"
INSTANCE_ID: Final = "Intel (r) AMT: Kerberos Settings"
ELEMENT_NAME: Final = "Intel(r) AMT: Kerberos Settings"
SECRETS_KEY: Final = "kerberos/secrets"
CACHE_KEY: Final = "kerberos/credential-cache"

SUPPORTED_ALGORITHMS: Final = (0, 1, 2)
"""0 RC4-HMAC, 1 AES128-CTS-HMAC-SHA1-96, 2 AES256-CTS-HMAC-SHA1-96."""
KEY_LENGTHS: Final = {0: (16,), 1: (16,), 2: (32,)}
"""Bytes of a master key per algorithm: 16 for RC4-HMAC and AES128, 32 for AES256."""
MAX_TEXT: Final = 255
MAX_PRINCIPALS: Final = 4
PROTOCOLS: Final = frozenset({0, 1, 2, 3})
"""ServicePrincipalProtocol: 0 HTTP, 1 HTTPS, 2 SOL and IDE-R, 3 SOL and IDE-R over TLS."""

SETTINGS_MODIFIED: Final = 13
MAIN_KEY_MODIFIED: Final = 14
_SECRETS: Final = ("MasterKey", "Passphrase", "Salt", "IterationCount")

SETTINGS = SettingsClass(
    CLASS,
    INSTANCE_ID,
    lambda _engine: {
        "ElementName": ELEMENT_NAME,
        "InstanceID": INSTANCE_ID,
        "KrbEnabled": False,
        "SupportedEncryptionAlgorithms": list(SUPPORTED_ALGORITHMS),
    },
    frozenset({"RealmName", "ServicePrincipalName", "ServicePrincipalProtocol", "KeyVersion", "EncryptionAlgorithm",
               "MaximumClockTolerance", "ConfiguredEncryptionAlgorithms"}),
)


def _invalid(reason: str) -> F.InvalidRepresentation:
    return F.InvalidRepresentation(reason, detail=F.detail_uri("InvalidValues"))


def _audit(ctx: Context, event: int) -> None:
    ctx.engine.audit(AuditApp.SECURITY_ADMIN, event, account=ctx.account, address=ctx.peer)


@service.instances(CLASS, realm=Realm.PT_ADMINISTRATION)
def kerberos_settings(engine: Engine) -> Iterable[CimObject]:
    return [SETTINGS.instance(engine)]


def _texts(value: object, name: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if len(values) > MAX_PRINCIPALS or not all(isinstance(v, str) and 0 < len(v) <= MAX_TEXT for v in values):
        raise _invalid(f"{name}: at most {MAX_PRINCIPALS} names of 1..{MAX_TEXT} characters")
    return [str(v) for v in values]


def _numbers(value: object, name: str, allowed: Iterable[int]) -> list[int]:
    values = value if isinstance(value, list) else [value]
    accepted = frozenset(allowed)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v in accepted for v in values):
        raise _invalid(f"{name} values are {sorted(accepted)}")
    return [int(v) for v in values if isinstance(v, int)]


def _check_settings(merged: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a Put leaves, validated as a whole (arrays normalised to lists)."""
    checked = dict(merged)
    realm = checked.get("RealmName")
    if realm is not None and (not isinstance(realm, str) or len(realm) > MAX_TEXT):
        raise _invalid(f"RealmName has at most {MAX_TEXT} characters")
    names = _texts(checked["ServicePrincipalName"], "ServicePrincipalName") \
        if "ServicePrincipalName" in checked else []
    protocols = _numbers(checked["ServicePrincipalProtocol"], "ServicePrincipalProtocol", PROTOCOLS) \
        if "ServicePrincipalProtocol" in checked else []
    if len(names) != len(protocols):
        raise _invalid("ServicePrincipalName and ServicePrincipalProtocol pair up: one protocol per name")
    if names:
        checked["ServicePrincipalName"], checked["ServicePrincipalProtocol"] = names, protocols
    if "EncryptionAlgorithm" in checked:
        _numbers(checked["EncryptionAlgorithm"], "EncryptionAlgorithm", SUPPORTED_ALGORITHMS)
    if "ConfiguredEncryptionAlgorithms" in checked:
        checked["ConfiguredEncryptionAlgorithms"] = _numbers(
            checked["ConfiguredEncryptionAlgorithms"], "ConfiguredEncryptionAlgorithms", SUPPORTED_ALGORITHMS)
    return checked


def _secrets(new: CimObject, algorithm: int) -> dict[str, Any] | None:
    """The key material a Put sends (None when it sends none), checked; never stored with the settings."""
    given = {name: new[name] for name in _SECRETS if new.get(name) not in (None, "", b"")}
    if not given:
        return None
    if "MasterKey" in given:
        key = given["MasterKey"]
        if not isinstance(key, bytes) or len(key) not in KEY_LENGTHS[algorithm]:
            raise _invalid(f"MasterKey is {' or '.join(map(str, KEY_LENGTHS[algorithm]))} bytes for algorithm "
                           f"{algorithm}")
        return {"master_key": key.hex()}
    passphrase, salt, iterations = given.get("Passphrase"), given.get("Salt"), given.get("IterationCount")
    if not (isinstance(passphrase, str) and 0 < len(passphrase) <= MAX_TEXT):
        raise _invalid("key material is a MasterKey, or a Passphrase (with Salt and IterationCount)")
    if not isinstance(salt, str) or len(salt) > MAX_TEXT:
        raise _invalid(f"Salt is text of at most {MAX_TEXT} characters")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise _invalid("IterationCount is a positive integer")
    return {"passphrase": passphrase, "salt": salt, "iterations": iterations}


@service.put(CLASS)
async def put_kerberos_settings(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    engine = ctx.engine
    enabled = new.get("KrbEnabled", False)
    if not isinstance(enabled, bool):
        raise _invalid("KrbEnabled is boolean")
    if enabled:
        raise _invalid("this engine authenticates with HTTP digest only: Kerberos cannot be enabled")
    changes = SETTINGS.changes_from_put(current, new)
    checked = _check_settings({**SETTINGS.values(engine), **changes})
    changes = {k: checked[k] for k in changes}
    algorithm = checked.get("EncryptionAlgorithm", 0)
    secrets = _secrets(new, int(algorithm) if isinstance(algorithm, int) else 0)
    with engine.store.transaction():
        if changes:
            SETTINGS.update(engine, changes)
            _audit(ctx, SETTINGS_MODIFIED)
        if secrets is not None and secrets != engine.store.get(SECRETS_KEY):
            engine.store.set(SECRETS_KEY, secrets)
            _audit(ctx, MAIN_KEY_MODIFIED)
    return SETTINGS.instance(engine)


def credential_cache_enabled(engine: Engine) -> bool:
    return bool(engine.store.get(CACHE_KEY))


@status_method(service, CLASS, "GetCredentialCacheState", realm=Realm.PT_ADMINISTRATION)
async def get_credential_cache_state(ctx: Context, target: CimObject | None, message: CimObject
                                     ) -> Mapping[str, Any]:
    return {"Enabled": credential_cache_enabled(ctx.engine)}


@status_method(service, CLASS, "SetCredentialCacheState", realm=Realm.PT_ADMINISTRATION)
async def set_credential_cache_state(ctx: Context, target: CimObject | None, message: CimObject
                                     ) -> Mapping[str, Any]:
    enable = bool_param(message, "Enable")
    engine = ctx.engine
    if enable != credential_cache_enabled(engine):
        with engine.store.transaction():
            engine.store.set(CACHE_KEY, enable)
            _audit(ctx, SETTINGS_MODIFIED)
    return {}
