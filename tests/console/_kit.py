"""Helpers for the console tests: clients, accounts, tokens."""

from __future__ import annotations

import httpx2

from outband.console.api.app import create_app
from outband.console.api.deps import CSRF_HEADER
from outband.console.auth import hash_password_async, new_api_token, token_digest
from outband.console.db.models import ApiToken, User
from outband.console.permissions import Role
from outband.console.runtime import Runtime

ADMIN_PASSWORD = "Admin-pass-1234"
USER_PASSWORD = "User-pass-12345"


def asgi_client(runtime: Runtime) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=create_app(runtime)), base_url="http://testserver")


async def login(client: httpx2.AsyncClient, username: str, password: str) -> httpx2.AsyncClient:
    """Sign the client in with a session; every later request carries the CSRF header."""
    reply = await client.post("/api/auth/login", json={"username": username, "password": password})
    assert reply.status_code == 200, reply.text
    client.headers[CSRF_HEADER] = reply.json()["csrf_token"]
    return client


async def create_user(runtime: Runtime, username: str, role: Role, password: str = USER_PASSWORD) -> int:
    password_hash = await hash_password_async(password)
    async with runtime.db.write() as session:
        user = User(username=username, password_hash=password_hash, role=role)
        session.add(user)
        await session.flush()
        return user.id


async def create_token(runtime: Runtime, user_id: int, role: Role | None = None) -> str:
    token = new_api_token()
    async with runtime.db.write() as session:
        session.add(ApiToken(user_id=user_id, name="test", token_hash=token_digest(token), prefix=token[:12],
                             role=role))
    return token
