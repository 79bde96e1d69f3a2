"""Accounts and realms: who may log in, and which AMT services each account may use.

The built-in ``admin`` has every realm (AMT's PT Administration superuser).  Other digest accounts are added
with ``AMT_AuthorizationService.AddUserAclEntryEx`` and carry a list of realms and an access permission.
Only HA1 digests are stored (``MD5(user:realm:password)``), never passwords (DESIGN.md, security rules), and
the verifier reads them through :meth:`Accounts.ha1` on every login, so ACL changes apply at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from ..proto.amt import AccessPermission, Realm
from ..proto.digest import ha1
from .state import StateStore

ALL_REALMS: Final = frozenset(Realm)
ADMIN_HANDLE: Final = 0


@dataclass(slots=True)
class Account:
    handle: int
    username: str
    ha1: str
    realms: frozenset[Realm] = field(default_factory=frozenset)
    access: AccessPermission = AccessPermission.LOCAL_AND_NETWORK
    admin: bool = False

    def may(self, realm: Realm | None) -> bool:
        if realm is None or self.admin:
            return True
        return realm in self.realms and self.access is not AccessPermission.LOCAL_ONLY

    def to_json(self) -> dict[str, object]:
        return {
            "handle": self.handle, "username": self.username, "ha1": self.ha1,
            "realms": sorted(int(r) for r in self.realms), "access": int(self.access), "admin": self.admin,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Account:
        realms = data.get("realms") or []
        assert isinstance(realms, list)
        return cls(
            handle=int(str(data["handle"])),
            username=str(data["username"]),
            ha1=str(data["ha1"]),
            realms=frozenset(Realm(int(r)) for r in realms if int(r) in Realm._value2member_map_),
            access=AccessPermission(int(str(data.get("access", 2)))),
            admin=bool(data.get("admin", False)),
        )


class Accounts:
    """The engine's ACL, persisted under ``acl/<handle>`` keys of the state store."""

    def __init__(self, store: StateStore, realm: str) -> None:
        self.store = store
        self.realm = realm
        self._by_name: dict[str, Account] = {}
        self._by_handle: dict[int, Account] = {}
        for key in store.keys("acl/"):
            self._index(Account.from_json(store.get(key)))

    def _index(self, account: Account) -> None:
        self._by_name[account.username] = account
        self._by_handle[account.handle] = account

    @property
    def admin(self) -> Account | None:
        return self._by_handle.get(ADMIN_HANDLE)

    def set_admin(self, username: str, password: str) -> Account:
        """(Re)define the built-in admin account from a password."""
        return self.save(Account(ADMIN_HANDLE, username, ha1(username, self.realm, password),
                                 ALL_REALMS, admin=True))

    def save(self, account: Account) -> Account:
        old = self._by_handle.get(account.handle)
        self.store.set(f"acl/{account.handle}", account.to_json())
        if old is not None:
            self._by_name.pop(old.username, None)
        self._index(account)
        return account

    def remove(self, handle: int) -> Account | None:
        account = self._by_handle.pop(handle, None)
        if account is not None:
            self._by_name.pop(account.username, None)
            self.store.delete(f"acl/{handle}")
        return account

    def next_handle(self) -> int:
        return max(self._by_handle, default=ADMIN_HANDLE) + 1

    def by_name(self, username: str) -> Account | None:
        return self._by_name.get(username)

    def by_handle(self, handle: int) -> Account | None:
        return self._by_handle.get(handle)

    def users(self) -> list[Account]:
        """Non-admin accounts, by handle."""
        return [a for h, a in sorted(self._by_handle.items()) if h != ADMIN_HANDLE]

    def ha1(self, username: str) -> str | None:
        """Credential lookup for the Digest verifier."""
        account = self._by_name.get(username)
        return account.ha1 if account is not None else None
