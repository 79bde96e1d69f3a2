"""The console's ASGI application.

``create_app(runtime)`` serves the REST API under ``/api`` (OpenAPI at ``/api/openapi.json``, docs at
``/api/docs``) and Prometheus metrics at ``/metrics``.  The caller owns the runtime (``open_runtime`` /
``Runtime.close``), so tests, ``outband console`` and ``outband up`` start it the same way.

Before serving, every route is checked to declare exactly one permission (or PUBLIC); a route without one
stops the app from being built.  ``app.state.operations`` lists (path, route) of every operation, for tests
that walk them.  The permission each operation needs is published in the OpenAPI document as
``x-permission``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ... import __version__
from ..runtime import Runtime
from ..web.serve import WebApp
from .deps import route_permission
from .routes import (
    audit,
    auth,
    device_data,
    devices,
    discovery,
    images,
    jobs,
    relay,
    schedules,
    system,
    users,
)
from .routes import operations as operation_routes

API_ROUTERS: Final[Sequence[APIRouter]] = (
    auth.router, users.router, devices.router, device_data.router, discovery.router, audit.router, system.router,
    operation_routes.router, jobs.router, schedules.router, relay.router, images.router,
)
"""Everything under /api, in the order the docs show it."""
API_PREFIX: Final = "/api"

MAX_BODY_BYTES: Final = 24 * 1024 * 1024
"""Largest request body (a CSV import of the largest fleet fits); checked before any parsing."""

SECURITY_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


class _Hardening:
    """Caps request bodies (Content-Length up front, streamed bodies as they arrive) and adds security
    headers (and ``Cache-Control: no-store`` on API answers) to every response."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _reply(send, status.HTTP_413_CONTENT_TOO_LARGE, f"request bodies are at most {self.max_body} bytes")
            return
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                                        f"request bodies are at most {self.max_body} bytes")
            return message

        no_store = scope["path"].startswith("/api/")

        async def hardened_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                if no_store:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, capped_receive, hardened_send)


async def _reply(send: Send, code: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    """Two writers raced for the same unique name (possible on PostgreSQL): the loser gets a conflict."""
    return JSONResponse({"detail": "conflicts with a concurrent change; retry"}, status.HTTP_409_CONFLICT)


def operations(routers: Sequence[tuple[str, APIRouter]]) -> list[tuple[str, APIRoute]]:
    """(full path, route) of every operation the routers define, each under its prefix."""
    return [(prefix + route.path, route) for prefix, router in routers for route in router.routes
            if isinstance(route, APIRoute)]


def publish_permissions(routes: Sequence[tuple[str, APIRoute]]) -> None:
    """Fail unless every route declares its permission; record it in the OpenAPI document."""
    for _, route in routes:
        permission = route_permission(route)
        route.openapi_extra = {**(route.openapi_extra or {}),
                               "x-permission": permission.value if permission else "public"}


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="outband console",
        summary="Fleet management for Intel AMT devices and outband engines.",
        version=__version__,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.runtime = runtime
    metrics = system.public_metrics_router if runtime.settings.metrics_public else system.metrics_router
    routers = [*((API_PREFIX, router) for router in API_ROUTERS), ("", metrics)]
    app.state.operations = operations(routers)
    publish_permissions(app.state.operations)
    for prefix, router in routers:
        app.include_router(router, prefix=prefix)
    app.mount("/", WebApp())  # last: the web UI's pages answer every path no route above claims
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_middleware(_Hardening, max_body=MAX_BODY_BYTES)
    return app
