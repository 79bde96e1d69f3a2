"""Request dependencies: the runtime, who is calling, and the one permission check every route declares.

Authentication, in order: ``Authorization: Bearer <API token>`` (no cookie consulted, no CSRF needed: a
browser never adds that header by itself), else the session cookie, for which every unsafe request must also
carry the session's CSRF token in ``X-CSRF-Token``.

Every route declares exactly one of ``Depends(require(Permission.X))`` or :data:`PUBLIC`; the app refuses
to start otherwise (``api.app``).  ``require`` also opens the audit scope of unsafe requests and records it
when the route ends, with the outcome.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Final

from fastapi import Depends, HTTPException, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from ..audit import DENIED, ERROR, FAILED, OK, AuditScope, record
from ..auth import Principal, csrf_matches, session_principal, token_principal
from ..permissions import Permission
from ..runtime import Runtime

SESSION_COOKIE: Final = "outband_session"
CSRF_COOKIE: Final = "outband_csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def action_name(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "name", None) or f"{request.method} {request.url.path}"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request, runtime: RuntimeDep) -> Principal:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise _unauthorized("use Authorization: Bearer <API token>")
        principal = await token_principal(runtime.db, credentials.strip())
        if principal is None:
            raise _unauthorized("invalid or expired API token")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = await session_principal(runtime.db, runtime.settings, cookie)
        if principal is None:
            raise _unauthorized("session expired; log in again")
        if request.method not in SAFE_METHODS and not csrf_matches(principal, request.headers.get(CSRF_HEADER)):
            await record(runtime.db, _scope(request, principal, detail={"reason": "csrf"}), outcome=DENIED,
                         status_code=403)
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"CSRF token missing or wrong (send {CSRF_HEADER})")
        return principal
    raise _unauthorized("authentication required")


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def _scope(request: Request, principal: Principal, detail: dict[str, Any] | None = None) -> AuditScope:
    return AuditScope(action=action_name(request), actor=principal.username, actor_id=principal.user_id,
                      via=principal.via, client=client_address(request), detail=detail or {})


class require:
    # lower case: reads as a function at the use site, Depends(require(Permission.POWER))
    """The permission check.  Yields the request's :class:`AuditScope`; for unsafe methods the scope is
    recorded when the route returns (``ok``) or raises (``failed`` for 4xx, ``error`` otherwise)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __repr__(self) -> str:
        return f"require({self.permission.value!r})"

    async def __call__(self, request: Request, principal: PrincipalDep, runtime: RuntimeDep
                       ) -> AsyncIterator[AuditScope]:
        scope = _scope(request, principal)
        if not principal.can(self.permission):
            scope.detail = {"permission": self.permission.value, "role": principal.role.value}
            await record(runtime.db, scope, outcome=DENIED, status_code=403)
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"the role {principal.role.value} does not allow {self.permission.value}")
        if request.method in SAFE_METHODS:
            yield scope
            return
        try:
            yield scope
        except HTTPException as exc:
            await record(runtime.db, scope, outcome=FAILED if exc.status_code < 500 else ERROR,
                         status_code=exc.status_code)
            raise
        except RequestValidationError:
            await record(runtime.db, scope, outcome=FAILED, status_code=422)
            raise
        except Exception:
            await record(runtime.db, scope, outcome=ERROR, status_code=500)
            raise
        route = request.scope.get("route")
        await record(runtime.db, scope, outcome=OK, status_code=getattr(route, "status_code", None) or 200)


# One alias per permission: ``audit: RequiresPower`` in a route's signature is the check, and its value is the
# audit scope.  ``scope="function"`` writes the audit entry before the response goes out.
RequiresSelf = Annotated[AuditScope, Depends(require(Permission.SELF), scope="function")]
RequiresDeviceRead = Annotated[AuditScope, Depends(require(Permission.DEVICE_READ), scope="function")]
RequiresJobRead = Annotated[AuditScope, Depends(require(Permission.JOB_READ), scope="function")]
RequiresScheduleRead = Annotated[AuditScope, Depends(require(Permission.SCHEDULE_READ), scope="function")]
RequiresMetricsRead = Annotated[AuditScope, Depends(require(Permission.METRICS_READ), scope="function")]
RequiresAuditRead = Annotated[AuditScope, Depends(require(Permission.AUDIT_READ), scope="function")]
RequiresPower = Annotated[AuditScope, Depends(require(Permission.POWER), scope="function")]
RequiresBoot = Annotated[AuditScope, Depends(require(Permission.BOOT), scope="function")]
RequiresInventory = Annotated[AuditScope, Depends(require(Permission.INVENTORY), scope="function")]
RequiresLogs = Annotated[AuditScope, Depends(require(Permission.LOGS), scope="function")]
RequiresAlarms = Annotated[AuditScope, Depends(require(Permission.ALARMS), scope="function")]
RequiresConsent = Annotated[AuditScope, Depends(require(Permission.CONSENT), scope="function")]
RequiresFeatures = Annotated[AuditScope, Depends(require(Permission.FEATURES), scope="function")]
RequiresRedirect = Annotated[AuditScope, Depends(require(Permission.REDIRECT), scope="function")]
RequiresJobCancel = Annotated[AuditScope, Depends(require(Permission.JOB_CANCEL), scope="function")]
RequiresDeviceWrite = Annotated[AuditScope, Depends(require(Permission.DEVICE_WRITE), scope="function")]
RequiresScheduleWrite = Annotated[AuditScope, Depends(require(Permission.SCHEDULE_WRITE), scope="function")]
RequiresDeviceDiscover = Annotated[AuditScope, Depends(require(Permission.DEVICE_DISCOVER), scope="function")]
RequiresUserAdmin = Annotated[AuditScope, Depends(require(Permission.USER_ADMIN), scope="function")]
RequiresSecretsRotate = Annotated[AuditScope, Depends(require(Permission.SECRETS_ROTATE), scope="function")]


def public_route() -> None:
    """Marks a route that needs no account (login, health)."""


PUBLIC: Final = Depends(public_route)


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def route_permission(route: APIRoute) -> Permission | None:
    """The permission a route requires (None for a public route); ValueError unless it declares exactly one
    check or the public marker."""
    calls = list(_calls(route.dependant))
    checks = [c for c in calls if isinstance(c, require)]
    public = sum(1 for c in calls if c is public_route)
    if len(checks) + public != 1:
        methods = ", ".join(sorted(route.methods or ()))
        raise ValueError(f"route {route.name} ({methods} {route.path}) must declare exactly one permission check "
                         f"or PUBLIC; it has {len(checks)} checks and {public} markers")
    return checks[0].permission if checks else None
