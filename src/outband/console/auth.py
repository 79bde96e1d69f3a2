"""Accounts, credentials and the identity of each request.

* Account passwords: scrypt (stdlib), parameters stored with each hash so they can be raised later.
* Browser sessions: a random token in an HttpOnly, SameSite=Strict cookie; the table holds its SHA-256.  Each
  session also has a CSRF token the page reads from a second cookie and echoes in ``X-CSRF-Token`` on every
  unsafe request; the server compares it with the digest it stored (``api.deps``).
* API tokens: ``obt_`` plus 43 random characters, sent as ``Authorization: Bearer``; stored as SHA-256 (they
  carry 256 bits, so a fast digest is enough).  A token may act with a lower role than its owner.
* Login lockout: after ``login_failures_before_lockout`` consecutive failures an account is locked for 5 s,
  doubling with each further failure up to 15 min; a locked account is refused before its password is
  checked, so the lock cannot be used to test guesses.  Unknown names cost the same time as known ones.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Final, Literal

from sqlalchemy import delete, func, select, update

from .config import Settings
from .db.base import utcnow
from .db.database import Database
from .db.models import ApiToken, User, WebSession
from .permissions import Permission, Role, allows, at_most

SCRYPT_N: Final = 2**15
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SCRYPT_MAXMEM: Final = 64 * 1024 * 1024
MIN_PASSWORD_LENGTH: Final = 10
MAX_PASSWORD_LENGTH: Final = 256
TOKEN_PREFIX: Final = "obt_"  # noqa: S105  (a label, not a secret)
LOCKOUT_BASE_SECONDS: Final = 5
LOCKOUT_MAX_SECONDS: Final = 900
TOUCH_INTERVAL: Final = dt.timedelta(seconds=60)
"""Session and token "last used" times are written at most this often (reads must not all become writes)."""

Via = Literal["session", "token"]


# ------------------------------------------------------------------------------------------ passwords

def check_password_policy(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise ValueError("a password must not contain control characters")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    derived = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32,
                             maxmem=SCRYPT_MAXMEM)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(derived)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        derived = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                 dklen=32, maxmem=SCRYPT_MAXMEM)
    except ValueError:
        return False
    return hmac.compare_digest(derived, base64.b64decode(expected))


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str) -> bool:
    return await asyncio.to_thread(verify_password, password, stored)


def generate_password() -> str:
    return secrets.token_urlsafe(18)


# ------------------------------------------------------------------------------------------ tokens

def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the account, the role it acts with, and the credential it showed."""

    user_id: int
    username: str
    role: Role
    via: Via
    credential_id: int
    """The session's or the API token's id."""
    csrf_hash: str | None = None
    """For sessions: the digest the ``X-CSRF-Token`` header must match on unsafe requests."""

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)


def csrf_matches(principal: Principal, header: str | None) -> bool:
    if principal.csrf_hash is None or not header:
        return False
    return hmac.compare_digest(token_digest(header), principal.csrf_hash)


# ------------------------------------------------------------------------------------------ login

class LoginRefused(Exception):
    """Wrong name or password (deliberately not saying which)."""


class LoginLocked(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


def lockout_seconds(failures: int, threshold: int) -> int:
    if failures < threshold:
        return 0
    return int(min(LOCKOUT_BASE_SECONDS * 2 ** (failures - threshold), LOCKOUT_MAX_SECONDS))


async def check_login(db: Database, settings: Settings, username: str, password: str) -> User:
    """The account ``username``/``password`` opens, or :class:`LoginRefused` / :class:`LoginLocked`."""
    now = utcnow()
    async with db.read() as session:
        user = (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()
    if user is None or user.disabled:
        await verify_password_async(password, _dummy_hash())
        raise LoginRefused
    if user.locked_until is not None and user.locked_until > now:
        raise LoginLocked(max(1, int((user.locked_until - now).total_seconds() + 0.999)))
    if await verify_password_async(password, user.password_hash):
        if user.failed_logins or user.locked_until is not None:
            async with db.write() as session:
                await session.execute(update(User).where(User.id == user.id).values(failed_logins=0, locked_until=None))
        return user
    async with db.write() as session:
        failures = (await session.execute(
            update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1)
            .returning(User.failed_logins)
        )).scalar_one()
        delay = lockout_seconds(failures, settings.login_failures_before_lockout)
        if delay:
            await session.execute(update(User).where(User.id == user.id)
                                  .values(locked_until=now + dt.timedelta(seconds=delay)))
    raise LoginRefused


# ------------------------------------------------------------------------------------------ sessions

@dataclass(frozen=True, slots=True)
class OpenedSession:
    token: str
    csrf_token: str
    expires_at: dt.datetime


async def open_session(db: Database, settings: Settings, user: User, client: str | None) -> OpenedSession:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + dt.timedelta(seconds=settings.session_max_seconds)
    async with db.write() as session:
        await session.execute(delete(WebSession).where(WebSession.expires_at <= now))
        session.add(WebSession(token_hash=token_digest(token), csrf_hash=token_digest(csrf), user_id=user.id,
                               created_at=now, last_seen_at=now, expires_at=expires, client=(client or "")[:64]))
    return OpenedSession(token, csrf, expires)


async def close_session(db: Database, session_id: int) -> None:
    async with db.write() as session:
        await session.execute(delete(WebSession).where(WebSession.id == session_id))


async def revoke_sessions(db: Database, user_id: int) -> None:
    async with db.write() as session:
        await session.execute(delete(WebSession).where(WebSession.user_id == user_id))


async def session_principal(db: Database, settings: Settings, token: str) -> Principal | None:
    now = utcnow()
    async with db.read() as session:
        row = (await session.execute(
            select(WebSession, User).join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == token_digest(token))
        )).one_or_none()
    if row is None:
        return None
    web_session, user = row
    idle_limit = web_session.last_seen_at + dt.timedelta(seconds=settings.session_idle_seconds)
    if user.disabled or web_session.expires_at <= now or idle_limit <= now:
        return None
    if now - web_session.last_seen_at >= TOUCH_INTERVAL:
        async with db.write() as session:
            await session.execute(update(WebSession).where(WebSession.id == web_session.id).values(last_seen_at=now))
    return Principal(user.id, user.username, user.role, "session", web_session.id, web_session.csrf_hash)


async def token_principal(db: Database, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    now = utcnow()
    async with db.read() as session:
        row = (await session.execute(
            select(ApiToken, User).join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == token_digest(token))
        )).one_or_none()
    if row is None:
        return None
    api_token, user = row
    if user.disabled or (api_token.expires_at is not None and api_token.expires_at <= now):
        return None
    if api_token.last_used_at is None or now - api_token.last_used_at >= TOUCH_INTERVAL:
        async with db.write() as session:
            await session.execute(update(ApiToken).where(ApiToken.id == api_token.id).values(last_used_at=now))
    return Principal(user.id, user.username, at_most(user.role, api_token.role), "token", api_token.id)


# ------------------------------------------------------------------------------------------ first start

ADMIN_USERNAME: Final = "admin"


async def bootstrap_admin(db: Database, password: str | None) -> str | None:
    """On a console without accounts, create ``admin``: with ``password``, or a generated one which is returned
    (for showing once).  Returns None when accounts exist already or the password was given."""
    async with db.read() as session:
        if (await session.execute(select(func.count()).select_from(User))).scalar_one():
            return None
    generated = None
    if password is None:
        password = generated = generate_password()
    else:
        check_password_policy(password)
    password_hash = await hash_password_async(password)
    async with db.write() as session:
        if (await session.execute(select(func.count()).select_from(User))).scalar_one():
            return None  # another console process won the race
        session.add(User(username=ADMIN_USERNAME, password_hash=password_hash, role=Role.ADMIN))
    return generated
