"""Accounts and realms: who may log in, and which AMT services each account may use.

The built-in ``admin`` has every realm (AMT's PT Administration superuser).  Other digest accounts are added
with ``AMT_AuthorizationService.AddUserAclEntryEx`` and carry a list of realms and an access permission.
Only HA1 digests are stored (``MD5(user:realm:password)``), never passwords (DESIGN.md, security rules), and
the verifier reads them through :meth:`Accounts.ha1` on every login, so ACL changes apply at once: a removed
or disabled account fails its very next request.

AMT's rules carried over (IRG ``administrativeusers.htm``, ``accesscontrollistsandrealms.htm``; Intel SCS 11
ACL pages): a user holding the PT Administration realm may use every realm; at most seven digest users besides
the admin; user names are 1-16 seven-bit ASCII characters without ``, : " & < >``, and neither ``admin``,
``administrator`` nor anything starting with ``$$`` (reserved for AMT's own system accounts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from ..proto.amt import AccessPermission, Realm
from ..proto.digest import ha1
from .state import StateStore

ALL_REALMS: Final = frozenset(Realm)
ADMIN_HANDLE: Final = 0
MAX_DIGEST_USERS: Final = 7
"""Digest users besides the admin (Intel SCS: "no more than seven digest users")."""
MAX_USERNAME_LENGTH: Final = 16

LAST_HANDLE_KEY: Final = "acl_meta/last_handle"
"""Highest handle ever given out: handles are never reused, so a console holding a removed user's handle
cannot silently edit whoever is added next."""

_USERNAME: Final = re.compile(r"[\x21-\x7e]+")
_FORBIDDEN_USERNAME_CHARS: Final = frozenset(',:"&<>')
_RESERVED_USERNAMES: Final = frozenset({"admin", "administrator"})


def username_problem(username: str, *, for_admin: bool = False) -> str | None:
    """Why AMT would refuse ``username`` for an ACL entry (None when it is acceptable).

    The admin entry may keep the reserved name ``admin``; ordinary users may not take it.
    """
    if not 1 <= len(username) <= MAX_USERNAME_LENGTH:
        return f"user names have 1 to {MAX_USERNAME_LENGTH} characters"
    if _USERNAME.fullmatch(username) is None:
        return "user names are printable 7-bit ASCII without spaces"
    if _FORBIDDEN_USERNAME_CHARS.intersection(username):
        return 'user names may not contain , : " & < >'
    if username.startswith("$$"):
        return "names starting with $$ are reserved for system accounts"
    if not for_admin and username.lower() in _RESERVED_USERNAMES:
        return "the admin names are reserved"
    return None


@dataclass(frozen=True, slots=True)
class Account:
    handle: int
    username: str
    ha1: str
    realms: frozenset[Realm] = field(default_factory=frozenset)
    access: AccessPermission = AccessPermission.LOCAL_AND_NETWORK
    admin: bool = False
    enabled: bool = True
    """SetAclEnabledState: a disabled entry keeps its handle but cannot log in."""

    def may(self, realm: Realm | None) -> bool:
        if not self.enabled:
            return False
        if self.admin:
            return True
        if self.access is AccessPermission.LOCAL_ONLY:  # every request reaching the engine is a network one
            return False
        return realm is None or realm in self.realms or Realm.PT_ADMINISTRATION in self.realms

    def to_json(self) -> dict[str, object]:
        return {
            "handle": self.handle, "username": self.username, "ha1": self.ha1,
            "realms": sorted(int(r) for r in self.realms), "access": int(self.access), "admin": self.admin,
            "enabled": self.enabled,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Account:
        realms = data.get("realms") or []
        assert isinstance(realms, list)
        granted = frozenset(Realm(int(r)) for r in realms if int(r) in Realm._value2member_map_)
        return cls(
            handle=int(str(data["handle"])),
            username=str(data["username"]),
            ha1=str(data["ha1"]),
            realms=ALL_REALMS if granted == ALL_REALMS else granted,  # every admin shares one set (fleets)
            access=AccessPermission(int(str(data.get("access", 2)))),
            admin=bool(data.get("admin", False)),
            enabled=bool(data.get("enabled", True)),
        )


class Accounts:
    """The engine's ACL: a view over the ``acl/<handle>`` keys of the state store.

    The store is the only truth, so a change made inside a transaction that later rolls back (say, the audit
    record could not be written) leaves no trace here either, and a removed account is gone for the very next
    lookup.  Decoding an entry is memoised on the identity of the stored document: the store replaces a
    document whenever it changes (and hands back the old one after a rollback), so a memo is used only while
    its document is still the current one.  This keeps JSON decoding out of every login.  An ACL holds at
    most eight entries, so scanning it per login costs nothing.
    """

    def __init__(self, store: StateStore, realm: str) -> None:
        self.store = store
        self.realm = realm
        self._decoded: dict[str, tuple[object, Account]] = {}

    def _account(self, key: str) -> Account | None:
        data = self.store.get(key)
        if data is None:
            self._decoded.pop(key, None)
            return None
        memo = self._decoded.get(key)
        if memo is not None and memo[0] is data:
            return memo[1]
        account = Account.from_json(data)
        self._decoded[key] = (data, account)
        return account

    def _all(self) -> list[Account]:
        return [a for a in map(self._account, self.store.keys("acl/")) if a is not None]

    @property
    def admin(self) -> Account | None:
        return self.by_handle(ADMIN_HANDLE)

    def set_admin(self, username: str, password: str) -> Account:
        """(Re)define the built-in admin account from a password."""
        return self.set_admin_ha1(username, ha1(username, self.realm, password))

    def set_admin_ha1(self, username: str, digest: str) -> Account:
        """(Re)define the admin from an HA1, as ``SetAdminAclEntryEx`` delivers it."""
        return self.save(Account(ADMIN_HANDLE, username, digest, ALL_REALMS, admin=True))

    def save(self, account: Account) -> Account:
        with self.store.transaction():
            self.store.set(f"acl/{account.handle}", account.to_json())
            if account.handle > int(self.store.get(LAST_HANDLE_KEY, ADMIN_HANDLE)):
                self.store.set(LAST_HANDLE_KEY, account.handle)
        return account

    def remove(self, handle: int) -> Account | None:
        account = self.by_handle(handle)
        if account is not None:
            self.store.delete(f"acl/{handle}")
        return account

    def next_handle(self) -> int:
        used = [a.handle for a in self._all()]
        return max(int(self.store.get(LAST_HANDLE_KEY, ADMIN_HANDLE)), *used, ADMIN_HANDLE) + 1

    def by_name(self, username: str) -> Account | None:
        return next((a for a in self._all() if a.username == username), None)

    def by_handle(self, handle: int) -> Account | None:
        return self._account(f"acl/{handle}")

    def users(self) -> list[Account]:
        """Non-admin accounts, by handle."""
        return sorted((a for a in self._all() if a.handle != ADMIN_HANDLE), key=lambda a: a.handle)

    def ha1(self, username: str) -> str | None:
        """Credential lookup for the Digest verifier; a disabled account has none."""
        account = self.by_name(username)
        return account.ha1 if account is not None and account.enabled else None
