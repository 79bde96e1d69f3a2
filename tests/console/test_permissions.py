"""Every route checks its permission: walked over the app's routes, so a route added later is covered too."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from sqlalchemy import select
from tests.console._kit import asgi_client, create_token, create_user

from outband.console.api.app import create_app, operations, publish_permissions
from outband.console.api.deps import RequiresDeviceRead, route_permission
from outband.console.db.base import Base
from outband.console.db.models import AuditEntry
from outband.console.permissions import PERMISSIONS, ROLE_ORDER, Permission, Role, allows

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
AUDIT_TABLES = {"audit_entries", "audit_devices"}


def api_routes(runtime) -> list[tuple[str, str, APIRoute]]:
    """(method, concrete path, route) for every operation of the app; path parameters filled with 1."""
    out = []
    for template, route in create_app(runtime).state.operations:
        path = re.sub(r"\{[^}]+\}", "1", template)
        out.extend((method, path, route) for method in sorted(route.methods))
    return out


async def snapshot(runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit trail (which records the refusals themselves)."""
    rows = {}
    async with runtime.db.read() as session:
        for table in Base.metadata.sorted_tables:
            if table.name not in AUDIT_TABLES:
                result = await session.execute(select(table))
                rows[table.name] = sorted((tuple(r) for r in result), key=repr)
    return rows


async def denials(runtime) -> int:
    async with runtime.db.read() as session:
        return len((await session.execute(select(AuditEntry.id).where(AuditEntry.outcome == "denied"))).all())


def test_roles_form_a_chain():
    for weaker, stronger in itertools.pairwise(ROLE_ORDER):
        assert PERMISSIONS[weaker] < PERMISSIONS[stronger]
    assert PERMISSIONS[Role.ADMIN] == frozenset(Permission)


@pytest.mark.parametrize(("role", "allowed", "refused"), [
    (Role.VIEWER, {Permission.DEVICE_READ, Permission.JOB_READ}, {Permission.POWER, Permission.DEVICE_WRITE,
                                                                    Permission.AUDIT_READ}),
    (Role.POWER_ONLY, {Permission.POWER, Permission.JOB_CANCEL}, {Permission.BOOT, Permission.DEVICE_WRITE,
                                                                   Permission.REDIRECT}),
    (Role.OPERATOR, {Permission.BOOT, Permission.DEVICE_WRITE, Permission.FEATURES, Permission.AUDIT_READ},
     {Permission.USER_ADMIN, Permission.DEVICE_DISCOVER, Permission.SECRETS_ROTATE}),
])
def test_permission_table(role, allowed, refused):
    assert all(allows(role, p) for p in allowed)
    assert not any(allows(role, p) for p in refused)


def test_every_route_declares_exactly_one_check(runtime):
    routes = api_routes(runtime)
    assert len(routes) > 25
    public = {(m, p) for m, p, r in routes if route_permission(r) is None}
    assert public == {("POST", "/api/auth/login"), ("GET", "/api/health")}


def test_the_walk_covers_every_served_operation(runtime):
    """What the tests walk is what the app serves: the same operations as its OpenAPI document."""
    app = create_app(runtime)
    served = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    walked = {(method, path) for path, route in app.state.operations for method in route.methods}
    assert served == walked


def test_a_route_without_a_check_stops_the_app():
    router = APIRouter()

    @router.get("/forgotten")
    async def forgotten() -> None: ...

    @router.get("/doubled")
    async def doubled(a: RequiresDeviceRead, b: RequiresDeviceRead) -> None: ...

    with pytest.raises(ValueError, match="forgotten"):
        publish_permissions(operations([("", router)]))
    with pytest.raises(ValueError, match="doubled"):
        publish_permissions([(r.path, r) for r in router.routes if r.name == "doubled"])


async def test_openapi_names_each_operations_permission(admin):
    spec = (await admin.get("/api/openapi.json")).json()
    assert spec["paths"]["/api/devices"]["post"]["x-permission"] == "device.write"
    assert spec["paths"]["/api/health"]["get"]["x-permission"] == "public"
    assert spec["paths"]["/api/users"]["get"]["x-permission"] == "user.admin"


async def test_unauthenticated_requests_get_401_and_change_nothing(runtime, anon):
    before = await snapshot(runtime)
    checked = 0
    for method, path, route in api_routes(runtime):
        if route_permission(route) is None:
            continue
        reply = await anon.request(method, path, json={})
        assert reply.status_code == 401, (method, path, reply.text)
        assert reply.headers["www-authenticate"] == "Bearer"
        checked += 1
    assert checked > 25
    assert await snapshot(runtime) == before


async def seed_device(admin) -> None:
    reply = await admin.post("/api/devices?check=false", json={
        "name": "pc-1", "host": "192.0.2.1", "password": "Secret-1", "tags": ["lab"], "group": "floor-1"})
    assert reply.status_code == 201, reply.text


@pytest.mark.parametrize("role", [Role.VIEWER, Role.POWER_ONLY, Role.OPERATOR])
async def test_each_role_is_refused_what_it_may_not_do(runtime, clients, role):
    """For every route a role's permissions do not cover: 403, nothing changed, the refusal audited."""
    await seed_device(clients[Role.ADMIN])
    client = clients[role]
    before, denied_before = await snapshot(runtime), await denials(runtime)
    refused = 0
    for method, path, route in api_routes(runtime):
        permission = route_permission(route)
        if permission is None or allows(role, permission):
            continue
        reply = await client.request(method, path, json={})
        assert reply.status_code == 403, (role, method, path, reply.text)
        refused += 1
    assert refused > 0
    assert await snapshot(runtime) == before
    assert await denials(runtime) == denied_before + refused


async def test_a_viewer_may_only_change_its_own_session_and_tokens(runtime):
    allowed_unsafe = {
        (m, path) for m, path, r in api_routes(runtime)
        if m in UNSAFE and route_permission(r) is not None and allows(Role.VIEWER, route_permission(r))
    }
    assert allowed_unsafe == {
        ("POST", "/api/auth/logout"), ("POST", "/api/auth/password"), ("POST", "/api/auth/tokens"),
        ("DELETE", "/api/auth/tokens/1"),
    }


async def test_allowed_reads_pass_the_check(clients, runtime):
    await seed_device(clients[Role.ADMIN])
    for role in Role:
        for method, path, route in api_routes(runtime):
            permission = route_permission(route)
            if method == "GET" and permission is not None and allows(role, permission):
                reply = await clients[role].get(path)
                assert reply.status_code in (200, 404), (role, path, reply.text)


async def test_a_token_acts_with_at_most_its_role(runtime, admin):
    me = (await admin.get("/api/auth/me")).json()["user"]
    token = await create_token(runtime, me["id"], Role.VIEWER)
    async with asgi_client(runtime) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        assert (await client.get("/api/devices")).status_code == 200
        reply = await client.post("/api/groups", json={"name": "x"})
        assert reply.status_code == 403
        assert "viewer" in reply.json()["detail"]


async def test_a_disabled_account_loses_access(runtime, admin):
    user_id = await create_user(runtime, "olga", Role.OPERATOR)
    token = await create_token(runtime, user_id)
    async with asgi_client(runtime) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        assert (await client.get("/api/devices")).status_code == 200
        assert (await admin.patch(f"/api/users/{user_id}", json={"disabled": True})).status_code == 200
        assert (await client.get("/api/devices")).status_code == 401
