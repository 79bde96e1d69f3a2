"""AMT_ProvisioningCertificateHash: the root certificate hashes admin-control-mode provisioning may chain to,
as instances consoles can list, add (Transfer Create), remove (Delete), and switch on or off or rename (Put
``Enabled``, ``Description``).

Where the hashes live: provisioning.py trusts exactly the hashes under ``provisioning/trusted_root_hashes``
(:func:`provisioning.trusted_root_hashes`; an operator sets them with :func:`provisioning.set_trusted_root_hashes`,
as MEBx's "add custom hash" does).  That list stays the one source of what is trusted: an enabled hash is in it,
a disabled one is not.  What the list cannot hold -- a hash's friendly name, the hashes that are disabled, which
ones are factory defaults -- is kept beside it under ``provisioning/hash_entries``, keyed by the hash.  A hash in
the trusted list without an entry (set by the operator) shows as an enabled custom hash named
:data:`OPERATOR_DESCRIPTION`.

Defaults: this engine ships no vendor hashes (provisioning.py: trust is the operator's decision), so every
instance has ``IsDefault`` false and may be deleted; the rules for defaults (they can be disabled, never deleted)
are enforced all the same for entries marked default.  Hash types are AMT's: 1 SHA-1 (20 bytes), 2 SHA-256 (32),
3 SHA-384 (48); MD5 (0) is refused, provisioning cannot use it.

Names: ``ElementName`` is ``Intel(r) AMT: Provisioning Certificate Hash`` and ``InstanceID``
``Intel(r) AMT: Certificate Hash <hex>`` -- Intel's LMS names the entries ``Certificate Hash <n>`` by position,
which shifts on every deletion; the hash itself is a stable key.  A Create beyond :data:`MAX_CUSTOM` custom
hashes is a QuotaLimit fault, a hash already present AlreadyExists, a bad one InvalidRepresentation.  Everything
needs PT Administration.  AMT's audit tables have no event for these changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from ...proto.amt import Realm
from ...proto.cim.model import CimObject, key_selectors
from ...proto.wsman import EndpointReference
from ...proto.wsman import faults as F
from ..core import Engine
from ..registry import Context, Service
from .provisioning import HASH_ENTRIES_KEY, normalize_hash, set_trusted_root_hashes, trusted_root_hashes

service = Service("provisioning_hashes")

CLASS: Final = "AMT_ProvisioningCertificateHash"
ELEMENT_NAME: Final = "Intel(r) AMT: Provisioning Certificate Hash"
INSTANCE_ID: Final = "Intel(r) AMT: Certificate Hash {}"
ENTRIES_KEY: Final = HASH_ENTRIES_KEY
OPERATOR_DESCRIPTION: Final = "Custom hash"
MAX_CUSTOM: Final = 3
"""Custom hashes AMT takes besides its embedded ones (Intel AMT SDK, "Root Certificate Hashes")."""
MAX_DESCRIPTION: Final = 32
"""The friendly name is up to 32 bytes (CFG_GetCertificateHashEntry)."""
HASH_TYPES: Final = {20: 1, 32: 2, 48: 3}
"""HashType by digest length: 1 SHA-1, 2 SHA-256, 3 SHA-384."""


@dataclass(frozen=True, slots=True)
class HashEntry:
    digest: str
    """Lower-case hex, as provisioning.py stores it."""
    description: str
    enabled: bool
    default: bool = False

    @property
    def instance_id(self) -> str:
        return INSTANCE_ID.format(self.digest)

    def instance(self) -> CimObject:
        raw = bytes.fromhex(self.digest)
        return CimObject.new(CLASS, Description=self.description, ElementName=ELEMENT_NAME, Enabled=self.enabled,
                             HashData=raw, HashType=HASH_TYPES[len(raw)], InstanceID=self.instance_id,
                             IsDefault=self.default)


def _invalid(reason: str) -> F.InvalidRepresentation:
    return F.InvalidRepresentation(reason, detail=F.detail_uri("InvalidValues"))


def _stored(engine: Engine) -> dict[str, dict[str, Any]]:
    return dict(engine.store.get(ENTRIES_KEY) or {})


def hash_entries(engine: Engine) -> list[HashEntry]:
    """Every hash AMT knows: the trusted (enabled) ones and the disabled ones, defaults first."""
    trusted = set(trusted_root_hashes(engine))
    stored = _stored(engine)
    entries = [HashEntry(d, str(meta["description"]), d in trusted, bool(meta.get("default")))
               for d, meta in stored.items()]
    entries += [HashEntry(d, OPERATOR_DESCRIPTION, True) for d in sorted(trusted) if d not in stored]
    return sorted(entries, key=lambda e: (not e.default, e.digest))


def _save(engine: Engine, entries: Iterable[HashEntry]) -> None:
    """Write both halves: the trusted list provisioning reads, and the entries beside it."""
    entries = list(entries)
    with engine.store.transaction():
        set_trusted_root_hashes(engine, [e.digest for e in entries if e.enabled])
        meta = {e.digest: {"description": e.description, "default": e.default} for e in entries}
        if meta:
            engine.store.set(ENTRIES_KEY, meta)
        else:
            engine.store.delete(ENTRIES_KEY)


def _entry_of(engine: Engine, current: CimObject) -> HashEntry:
    entry = next((e for e in hash_entries(engine) if e.instance_id == current.get("InstanceID")), None)
    if entry is None:
        raise F.DestinationUnreachable()
    return entry


@service.instances(CLASS, realm=Realm.PT_ADMINISTRATION)
def provisioning_hashes(engine: Engine) -> Iterable[CimObject]:
    return [e.instance() for e in hash_entries(engine)]


def _description(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value.encode("utf-8")) > MAX_DESCRIPTION:
        raise _invalid(f"Description is text of at most {MAX_DESCRIPTION} bytes")
    return value


def _enabled(value: object, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _invalid("Enabled is boolean")
    return value


@service.create(CLASS)
async def create_hash(ctx: Context, new: CimObject) -> EndpointReference:
    """Add a custom hash (HashType and HashData; Description and Enabled optional, enabled by default)."""
    data, hash_type = new.get("HashData"), new.get("HashType")
    if not isinstance(data, bytes) or len(data) not in HASH_TYPES:
        raise _invalid("HashData is a SHA-1, SHA-256 or SHA-384 digest (20, 32 or 48 bytes)")
    if hash_type is not None and hash_type != HASH_TYPES[len(data)]:
        raise _invalid(f"HashType {hash_type} does not match a {len(data)}-byte HashData")
    entry = HashEntry(normalize_hash(data.hex()), _description(new.get("Description")),
                      _enabled(new.get("Enabled"), True))
    engine = ctx.engine
    entries = hash_entries(engine)
    if any(e.digest == entry.digest for e in entries):
        raise F.AlreadyExists()
    if sum(not e.default for e in entries) >= MAX_CUSTOM:
        raise F.QuotaLimit(f"at most {MAX_CUSTOM} custom hashes")
    _save(engine, [*entries, entry])
    created = entry.instance()
    return EndpointReference(created.resource_uri, key_selectors(created))


@service.put(CLASS)
async def put_hash(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    """Switch a hash on or off, or rename it; the hash itself is read-only and may only be echoed."""
    for name in ("HashData", "HashType", "IsDefault", "InstanceID"):
        if name in new and new.get(name) != current.get(name):
            raise _invalid(f"{name} is read-only")
    engine = ctx.engine
    entry = _entry_of(engine, current)
    updated = HashEntry(entry.digest, _description(new.get("Description", entry.description)),
                        _enabled(new.get("Enabled"), entry.enabled), entry.default)
    if updated != entry:
        _save(engine, [updated if e.digest == entry.digest else e for e in hash_entries(engine)])
    return updated.instance()


@service.delete(CLASS)
async def delete_hash(ctx: Context, current: CimObject) -> None:
    engine = ctx.engine
    entry = _entry_of(engine, current)
    if entry.default:
        raise F.AccessDenied("a factory hash can be disabled but not deleted")
    _save(engine, [e for e in hash_entries(engine) if e.digest != entry.digest])

