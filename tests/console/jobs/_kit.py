"""Helpers for job tests: the console app with the jobs routers, signed-in clients per role, waiting for jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx2
from fastapi import APIRouter, FastAPI
from starlette.routing import Mount
from tests.console._kit import ADMIN_PASSWORD, USER_PASSWORD, create_user, login

from outband.console.api import app as app_module
from outband.console.api.routes import jobs, operations, schedules
from outband.console.permissions import Role
from outband.console.runtime import Runtime

JOB_ROUTERS: Sequence[APIRouter] = (operations.router, jobs.router, schedules.router)


def jobs_app(runtime: Runtime) -> FastAPI:
    """create_app, plus the jobs routers unless create_app already serves them."""
    app = app_module.create_app(runtime)
    if not any(path.startswith("/api/jobs") for path, _ in app.state.operations):
        extra = app_module.operations([("/api", router) for router in JOB_ROUTERS])
        app_module.publish_permissions(extra)
        app.state.operations += extra
        for router in JOB_ROUTERS:
            app.include_router(router, prefix="/api")
        # the web UI's catch-all mount must stay last
        catch_all = [r for r in app.router.routes if isinstance(r, Mount)]
        for route in catch_all:
            app.router.routes.remove(route)
            app.router.routes.append(route)
    return app


def client(runtime: Runtime) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=jobs_app(runtime)), base_url="http://testserver",
                              timeout=60)


async def role_clients(runtime: Runtime) -> dict[Role, httpx2.AsyncClient]:
    made: dict[Role, httpx2.AsyncClient] = {}
    for role in Role:
        c = client(runtime)
        made[role] = c
        if role is Role.ADMIN:
            await login(c, "admin", ADMIN_PASSWORD)
        else:
            await create_user(runtime, role.value, role)
            await login(c, role.value, USER_PASSWORD)
    return made


async def wait_job(api: httpx2.AsyncClient, job_id: int, *, seconds: float = 60.0) -> dict[str, Any]:
    """Poll the job until it finishes; returns it with every device (all pages)."""
    async def finished() -> bool:
        status = (await api.get(f"/api/jobs/{job_id}", params={"limit": 1})).json()["status"]
        return status in ("succeeded", "failed", "cancelled")

    await eventually(finished, seconds)
    job = (await api.get(f"/api/jobs/{job_id}", params={"limit": 5000})).json()
    devices = job["devices"]
    while job["next_after"] is not None:
        job = (await api.get(f"/api/jobs/{job_id}", params={"after": job["next_after"]})).json()
        devices += job["devices"]
    job["devices"] = devices
    return job


async def run_op(api: httpx2.AsyncClient, name: str, target: dict[str, Any], params: dict[str, Any] | None = None,
                 *, seconds: float = 60.0) -> dict[str, Any]:
    """Start an operation and wait for its job."""
    body: dict[str, Any] = {"target": target}
    if params is not None:
        body["params"] = params
    reply = await api.post(f"/api/operations/{name}", json=body)
    assert reply.status_code == 202, reply.text
    return await wait_job(api, reply.json()["id"], seconds=seconds)


def by_name(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["device_name"]: d for d in job["devices"]}


async def eventually(condition: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    """Wait until an async condition (usually a database read) holds."""
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110 -- the condition reads the database, nothing to wait on
            await asyncio.sleep(0.05)
