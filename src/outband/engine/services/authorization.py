"""AMT_AuthorizationService: the ACL of digest users, managed over WS-MAN as AMT does it.

The admin entry is separate from the user list (IRG ``administrativeusers.htm``: it cannot be removed or
disabled, and neither GetUserAclEntryEx nor EnumerateUserAclEntries return it); it changes only through
SetAdminAclEntryEx.  Users carry a digest HA1 (``DigestPassword`` is base64 of the raw 16-byte
MD5(user:DigestRealm:password), AMT-PROTOCOLS.md §3.3), an AccessPermission and a list of realms.

Return values are AMT's PT_STATUS codes from the method's ValueMap (GWM ``amt/authorization/types.go``:
SUCCESS, INTERNAL_ERROR, INVALID_NAME, NOT_PERMITTED, MAX_LIMIT_REACHED, FLASH_WRITE_LIMIT_EXCEEDED,
INVALID_PASSWORD, INVALID_REALM, DUPLICATE, ...), INVALID_HANDLE for a handle that names no user.  Kerberos
users need AMT's Kerberos facility enabled first (IRG ``authenticationoptions.htm``); outband has none, so a
KerberosUserSid is NOT_PERMITTED.  A caller without the admin's powers cannot hand out realms it does not
hold itself (otherwise the ACL realm alone would be a path to PT Administration).

Every change is audited (1602 added, 1603 modified, 1604 removed, 1606 state) with the extended data
MeshCommander decodes: ``[initiator type 0 = digest, name length, name]``, prefixed for 1603 by a bit mask of
what changed (1 name, 2 password, 4 access or realms) and for 1606 by the new state.  The verifier looks
credentials up on every request, so each change takes effect on the next one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

from ...proto.amt import AccessPermission, PTStatus, Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimObject
from ...proto.digest import DigestError, ha1_from_amt_digest_password
from ...proto.wsman import faults as F
from ..acl import MAX_DIGEST_USERS, Account, username_problem
from ..core import Engine
from ..registry import Context, Service
from .servicekit import MethodError, StatusHandler, bool_param, int_param, service_instance, status_method

service = Service("authorization")

CLASS: Final = "AMT_AuthorizationService"
SERVICE_NAME: Final = "Intel(r) AMT Authorization Service"
MAX_HANDLES_PER_CALL: Final = 50
"""EnumerateUserAclEntries pages its answer (the caller repeats with StartIndex past what it got)."""

INVALID_NAME: Final = 0x0C
"""PT_STATUS_INVALID_NAME (not yet in :class:`PTStatus`)."""
MAX_LIMIT_REACHED: Final = 0x17
"""PT_STATUS_MAX_LIMIT_REACHED (not yet in :class:`PTStatus`)."""


class _Changed(enum.IntFlag):
    """Audit 1603's bit mask of what an update changed."""

    NAME = 1
    PASSWORD = 2
    ACCESS = 4


@service.instances(CLASS, realm=Realm.GENERAL_INFO)
def authorization_service(engine: Engine) -> Iterable[CimObject]:
    # Only qop=auth/auth-int answers are accepted (DigestVerifier), which is what the value 1 states.
    return [service_instance(CLASS, SERVICE_NAME, AllowHttpQopAuthOnly=1, EnabledState=5, RequestedState=12)]


def _method(name: str, realm: Realm = Realm.ACL) -> Callable[[StatusHandler], StatusHandler]:
    return status_method(service, CLASS, name, realm=realm)


# ---------------------------------------------------------------------------------------------- helpers


def _digest_entry(username: str) -> bytes:
    raw = username.encode("ascii", "replace")[:255]
    return bytes([0, len(raw)]) + raw


def _audit(ctx: Context, event: int, extended: bytes) -> None:
    ctx.engine.audit(AuditApp.SECURITY_ADMIN, event, account=ctx.account, address=ctx.peer, extended=extended)


def _user(engine: Engine, message: CimObject) -> Account:
    handle = int_param(message, "Handle", code=PTStatus.INVALID_HANDLE)
    account = engine.accounts.by_handle(handle)
    if account is None or account.admin:
        raise MethodError(PTStatus.INVALID_HANDLE, f"no user entry {handle}")
    return account


def _ha1(value: object) -> str:
    """HA1 hex from a DigestPassword: 16 raw bytes, typed by the catalog or still base64 text."""
    if isinstance(value, bytes) and len(value) == 16:
        return value.hex()
    if isinstance(value, str):
        try:
            return ha1_from_amt_digest_password("".join(value.split()))
        except DigestError:
            pass
    raise MethodError(PTStatus.INVALID_PASSWORD, "DigestPassword is not a base64 16-byte digest")


def _username(engine: Engine, value: object, *, handle: int, for_admin: bool = False) -> str:
    problem = username_problem(value, for_admin=for_admin) if isinstance(value, str) else "no user name"
    if problem is not None:
        raise MethodError(INVALID_NAME, problem)
    assert isinstance(value, str)
    other = engine.accounts.by_name(value)
    if other is not None and other.handle != handle:
        raise MethodError(PTStatus.DUPLICATE, f"{value!r} exists")
    return value


def _access(message: CimObject) -> AccessPermission:
    value = int_param(message, "AccessPermission", allowed=AccessPermission._value2member_map_)
    return AccessPermission(value)


def _realms(ctx: Context, message: CimObject) -> frozenset[Realm]:
    values = message.getlist("Realms")
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v not in Realm._value2member_map_
                         for v in values):
        raise MethodError(PTStatus.INVALID_REALM, f"realms {values!r}")
    realms = frozenset(Realm(v) for v in values if isinstance(v, int))
    if not all(ctx.account.may(r) for r in realms):
        raise MethodError(PTStatus.NOT_PERMITTED, "a caller cannot grant realms it does not hold")
    return realms


def _no_kerberos(message: CimObject) -> None:
    if message.get("KerberosUserSid") not in (None, "", b""):
        raise MethodError(PTStatus.NOT_PERMITTED, "Kerberos users need the Kerberos facility, which is off")


# ---------------------------------------------------------------------------------------------- users


@_method("AddUserAclEntryEx")
async def add_user(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    _no_kerberos(message)
    handle = engine.accounts.next_handle()
    username = _username(engine, message.get("DigestUsername"), handle=handle)
    if len(engine.accounts.users()) >= MAX_DIGEST_USERS:
        raise MethodError(MAX_LIMIT_REACHED, f"already {MAX_DIGEST_USERS} digest users")
    account = Account(handle=handle, username=username, ha1=_ha1(message.get("DigestPassword")),
                      realms=_realms(ctx, message), access=_access(message))
    with engine.store.transaction():
        engine.accounts.save(account)
        _audit(ctx, 2, _digest_entry(username))
    return {"Handle": handle}


@_method("EnumerateUserAclEntries")
async def enumerate_users(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    start = int_param(message, "StartIndex", low=1, code=PTStatus.INVALID_INDEX)
    handles = [a.handle for a in ctx.engine.accounts.users()]
    page = handles[start - 1 : start - 1 + MAX_HANDLES_PER_CALL]
    return {"TotalCount": len(handles), "HandlesCount": len(page), "Handles": page}


@_method("GetUserAclEntryEx")
async def get_user(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    account = _user(ctx.engine, message)
    # The password hash is confidential and never returned (IRG GetUserAclEntryEx).
    return {"DigestUsername": account.username, "AccessPermission": int(account.access),
            "Realms": sorted(int(r) for r in account.realms)}


@_method("UpdateUserAclEntryEx")
async def update_user(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    old = _user(engine, message)
    _no_kerberos(message)
    new = old
    if message.get("DigestUsername") is not None:
        new = replace(new, username=_username(engine, message.get("DigestUsername"), handle=old.handle))
    if message.get("DigestPassword") not in (None, "", b""):
        new = replace(new, ha1=_ha1(message.get("DigestPassword")))
    elif new.username != old.username:
        raise MethodError(PTStatus.INVALID_PASSWORD, "a new name needs a new DigestPassword (HA1 hashes the name)")
    if message.get("AccessPermission") is not None:
        new = replace(new, access=_access(message))
    if message.get("Realms") is not None:
        new = replace(new, realms=_realms(ctx, message))
    changed = (
        (_Changed.NAME if new.username != old.username else 0)
        | (_Changed.PASSWORD if new.ha1 != old.ha1 else 0)
        | (_Changed.ACCESS if (new.access, new.realms) != (old.access, old.realms) else 0)
    )
    with engine.store.transaction():
        engine.accounts.save(new)
        _audit(ctx, 3, bytes([int(changed)]) + _digest_entry(new.username))
    return {}


@_method("RemoveUserAclEntry")
async def remove_user(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    account = _user(engine, message)
    with engine.store.transaction():
        engine.accounts.remove(account.handle)
        _audit(ctx, 4, _digest_entry(account.username))
    return {}


@_method("GetAclEnabledState")
async def get_enabled(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    return {"Enabled": _user(ctx.engine, message).enabled}


@_method("SetAclEnabledState")
async def set_enabled(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    account = _user(engine, message)
    enabled = bool_param(message, "Enabled")
    with engine.store.transaction():
        engine.accounts.save(replace(account, enabled=enabled))
        _audit(ctx, 6, bytes([int(enabled)]) + _digest_entry(account.username))
    return {}


# ---------------------------------------------------------------------------------------------- admin


@_method("GetAdminAclEntry")
async def get_admin(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    admin = ctx.engine.accounts.admin
    if admin is None:
        raise MethodError(PTStatus.INTERNAL_ERROR, "no admin entry")
    return {"Username": admin.username}


async def _admin_is_default(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    # AMT tells whether the factory password is still set; outband never ships one (DESIGN.md).
    return {"IsDefault": False}


_method("GetAdminAclEntryStatus")(_admin_is_default)
_method("GetAdminNetAclEntryStatus")(_admin_is_default)


@_method("SetAdminAclEntryEx", Realm.PT_ADMINISTRATION)
async def set_admin(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    if not ctx.account.admin:
        raise F.AccessDenied()
    engine = ctx.engine
    admin = ctx.account
    username = _username(engine, message.get("Username"), handle=admin.handle, for_admin=True)
    digest = _ha1(message.get("DigestPassword"))
    changed = (_Changed.NAME if username != admin.username else 0) | (_Changed.PASSWORD if digest != admin.ha1 else 0)
    with engine.store.transaction():
        engine.accounts.set_admin_ha1(username, digest)
        _audit(ctx, 3, bytes([int(changed)]) + _digest_entry(username))
    return {}
