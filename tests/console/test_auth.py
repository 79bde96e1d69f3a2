"""Sign-in, sessions with CSRF protection, API tokens, lockout, and the account rules."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from tests.console._kit import ADMIN_PASSWORD, USER_PASSWORD, asgi_client, create_user, login

from outband.console.api.deps import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from outband.console.auth import hash_password, lockout_seconds, verify_password
from outband.console.db.models import ApiToken, AuditEntry, User, WebSession
from outband.console.permissions import Role


async def audit_actions(runtime, action: str) -> list[tuple[str | None, str]]:
    async with runtime.db.read() as session:
        rows = await session.execute(select(AuditEntry.actor, AuditEntry.outcome).where(AuditEntry.action == action)
                                     .order_by(AuditEntry.id))
        return [tuple(r) for r in rows]


def test_password_hashes_verify_and_differ():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second  # salted
    assert verify_password("correct horse", first)
    assert not verify_password("correct horsE", first)
    assert not verify_password("correct horse", "garbage")


def test_lockout_grows_and_is_capped():
    assert [lockout_seconds(n, 5) for n in (4, 5, 6, 7)] == [0, 5, 10, 20]
    assert lockout_seconds(40, 5) == 900


async def test_first_start_created_admin_only_once(runtime):
    async with runtime.db.read() as session:
        users = (await session.execute(select(User.username, User.role))).all()
    assert [tuple(u) for u in users] == [("admin", Role.ADMIN)]
    assert runtime.generated_admin_password is None  # OUTBAND_ADMIN_PASSWORD was given


async def test_login_sets_hardened_cookies_and_audits(runtime, anon):
    reply = await anon.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert reply.status_code == 200
    cookies = {c.split("=", 1)[0]: c.lower() for c in reply.headers.get_list("set-cookie")}
    assert "httponly" in cookies[SESSION_COOKIE]
    assert "samesite=strict" in cookies[SESSION_COOKIE]
    assert "httponly" not in cookies[CSRF_COOKIE]
    assert "samesite=strict" in cookies[CSRF_COOKIE]
    assert reply.json()["csrf_token"] == anon.cookies[CSRF_COOKIE]
    async with runtime.db.read() as session:
        stored = (await session.execute(select(WebSession.token_hash))).scalar_one()
    assert stored != anon.cookies[SESSION_COOKIE]  # only the digest is stored
    assert await audit_actions(runtime, "login") == [("admin", "ok")]


async def test_wrong_password_is_refused_and_audited(runtime, anon):
    for username in ("admin", "nobody"):
        reply = await anon.post("/api/auth/login", json={"username": username, "password": "wrong-password"})
        assert reply.status_code == 401
        assert reply.json()["detail"] == "wrong user name or password"
    assert await audit_actions(runtime, "login") == [("admin", "failed"), ("nobody", "failed")]
    assert (await anon.get("/api/auth/me")).status_code == 401


async def test_cookie_session_needs_the_csrf_header_for_changes(runtime, admin):
    token = admin.headers.pop(CSRF_HEADER)
    assert (await admin.get("/api/devices")).status_code == 200  # reads need no CSRF token
    refused = await admin.post("/api/groups", json={"name": "lab"})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    admin.headers[CSRF_HEADER] = "not-the-token"
    assert (await admin.post("/api/groups", json={"name": "lab"})).status_code == 403
    assert (await admin.get("/api/groups")).json() == []
    admin.headers[CSRF_HEADER] = token
    assert (await admin.post("/api/groups", json={"name": "lab"})).status_code == 201
    assert await audit_actions(runtime, "create_group") == [("admin", "denied"), ("admin", "denied"), ("admin", "ok")]


async def test_another_sessions_csrf_token_does_not_fit(runtime, admin):
    async with asgi_client(runtime) as other:
        await login(other, "admin", ADMIN_PASSWORD)
        admin.headers[CSRF_HEADER] = other.headers[CSRF_HEADER]
        assert (await admin.post("/api/groups", json={"name": "lab"})).status_code == 403


async def test_logout_ends_the_session(admin):
    assert (await admin.post("/api/auth/logout")).status_code == 204
    assert (await admin.get("/api/auth/me")).status_code == 401


async def test_idle_session_expires(runtime, admin):
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=runtime.settings.session_idle_seconds + 5)
    async with runtime.db.write() as session:
        await session.execute(update(WebSession).values(last_seen_at=long_ago))
    reply = await admin.get("/api/auth/me")
    assert reply.status_code == 401
    assert "expired" in reply.json()["detail"]


async def test_repeated_failures_lock_the_account(runtime, anon):
    await create_user(runtime, "olga", Role.OPERATOR)
    for _ in range(runtime.settings.login_failures_before_lockout):
        assert (await anon.post("/api/auth/login", json={"username": "olga", "password": "x" * 12})).status_code == 401
    locked = await anon.post("/api/auth/login", json={"username": "olga", "password": USER_PASSWORD})
    assert locked.status_code == 429  # even the right password, while locked
    assert 1 <= int(locked.headers["retry-after"]) <= 5
    async with runtime.db.write() as session:
        await session.execute(update(User).where(User.username == "olga")
                              .values(locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert (await anon.post("/api/auth/login", json={"username": "olga", "password": USER_PASSWORD})).status_code == 200
    async with runtime.db.read() as session:
        user = (await session.execute(select(User).where(User.username == "olga"))).scalar_one()
    assert user.failed_logins == 0
    assert user.locked_until is None
    assert ("olga", "denied") in await audit_actions(runtime, "login")


async def test_api_token_lifecycle(runtime, admin):
    created = await admin.post("/api/auth/tokens", json={"name": "ci", "role": "viewer", "expires_in_days": 30})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert token.startswith("obt_")
    assert created.json()["prefix"] == token[:12]
    listed = (await admin.get("/api/auth/tokens")).json()
    assert [t["name"] for t in listed] == ["ci"]
    assert "token" not in listed[0]
    async with asgi_client(runtime) as bearer:
        bearer.headers["Authorization"] = f"Bearer {token}"
        me = (await bearer.get("/api/auth/me")).json()
        assert (me["via"], me["role"], me["user"]["role"]) == ("token", "viewer", "admin")
        assert "device.write" not in me["permissions"]
        assert (await bearer.post("/api/auth/logout")).status_code == 204  # no CSRF needed with a bearer token
        assert (await admin.delete(f"/api/auth/tokens/{created.json()['id']}")).status_code == 204
        assert (await bearer.get("/api/auth/me")).status_code == 401
        bearer.headers["Authorization"] = "Bearer obt_made-up-token-value-xxxxxxxxxxxxxxxxxx"
        assert (await bearer.get("/api/auth/me")).status_code == 401
        bearer.headers["Authorization"] = "Basic YWRtaW46eA=="
        assert (await bearer.get("/api/auth/me")).status_code == 401


async def test_a_token_cannot_outrank_its_owner(clients):
    reply = await clients[Role.OPERATOR].post("/api/auth/tokens", json={"name": "up", "role": "admin"})
    assert reply.status_code == 403
    assert (await clients[Role.OPERATOR].post("/api/auth/tokens", json={"name": "ok", "role": "viewer"})
            ).status_code == 201


async def test_expired_token_is_refused(runtime, admin):
    token = (await admin.post("/api/auth/tokens", json={"name": "short", "expires_in_days": 1})).json()["token"]
    async with runtime.db.write() as session:
        await session.execute(update(ApiToken).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    async with asgi_client(runtime) as bearer:
        bearer.headers["Authorization"] = f"Bearer {token}"
        assert (await bearer.get("/api/auth/me")).status_code == 401


async def test_password_change_needs_the_current_one_and_ends_other_sessions(runtime, admin):
    async with asgi_client(runtime) as other:
        await login(other, "admin", ADMIN_PASSWORD)
        wrong = await admin.post("/api/auth/password", json={"current_password": "nope-nope-nope",
                                                              "new_password": "Brand-new-pass-1"})
        assert wrong.status_code == 403
        ok = await admin.post("/api/auth/password", json={"current_password": ADMIN_PASSWORD,
                                                           "new_password": "Brand-new-pass-1"})
        assert ok.status_code == 204
        assert (await admin.get("/api/auth/me")).status_code == 200  # this session stays
        assert (await other.get("/api/auth/me")).status_code == 401
    async with asgi_client(runtime) as fresh:
        await login(fresh, "admin", "Brand-new-pass-1")


async def test_user_admin_keeps_an_active_admin(runtime, admin):
    me = (await admin.get("/api/auth/me")).json()["user"]["id"]
    assert (await admin.patch(f"/api/users/{me}", json={"role": "viewer"})).status_code == 409
    assert (await admin.delete(f"/api/users/{me}")).status_code == 409
    created = await admin.post("/api/users", json={"username": "second", "password": USER_PASSWORD, "role": "admin"})
    assert created.status_code == 201, created.text
    assert (await admin.post("/api/users", json={"username": "second", "password": USER_PASSWORD,
                                                 "role": "viewer"})).status_code == 409
    assert (await admin.patch(f"/api/users/{me}", json={"role": "operator"})).status_code == 200
    async with asgi_client(runtime) as second:
        await login(second, "second", USER_PASSWORD)
        assert (await second.patch(f"/api/users/{created.json()['id']}", json={"disabled": True})).status_code == 409
        assert (await second.delete(f"/api/users/{me}")).status_code == 204


async def test_weak_and_odd_input_is_a_422(admin):
    for body in ({"username": "bob", "password": "short", "role": "viewer"},
                 {"username": "bad name", "password": USER_PASSWORD, "role": "viewer"},
                 {"username": "bob", "password": USER_PASSWORD, "role": "root"},
                 {"username": "bob", "password": "nul\x00in-password", "role": "viewer"}):
        assert (await admin.post("/api/users", json=body)).status_code == 422, body
