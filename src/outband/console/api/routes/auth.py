"""Signing in and out, the caller's own account, and API tokens."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import delete, select, update

from ...audit import DENIED, FAILED, OK, record_entry
from ...auth import (
    LoginLocked,
    LoginRefused,
    check_login,
    close_session,
    hash_password_async,
    new_api_token,
    open_session,
    token_digest,
    verify_password_async,
)
from ...db.base import utcnow
from ...db.models import ApiToken, User, WebSession
from ...permissions import PERMISSIONS, at_most
from ...schemas import (
    LoginRequest,
    LoginResponse,
    Me,
    PasswordChange,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserPublic,
)
from ..common import NOT_FOUND, ErrorDetail, IdPath, not_found
from ..deps import (
    CSRF_COOKIE,
    PUBLIC,
    SESSION_COOKIE,
    PrincipalDep,
    RequiresSelf,
    RuntimeDep,
    client_address,
)

router = APIRouter(prefix="/auth", tags=["auth"])


def _cookie_secure(request: Request, configured: bool | None) -> bool:
    return configured if configured is not None else request.url.scheme == "https"


@router.post("/login", dependencies=[PUBLIC], responses={401: {"model": ErrorDetail}, 429: {"model": ErrorDetail}})
async def login(body: LoginRequest, request: Request, response: Response, runtime: RuntimeDep) -> LoginResponse:
    """Open a browser session: sets the HttpOnly session cookie and the CSRF cookie; send the CSRF token back
    as X-CSRF-Token on every unsafe request."""
    client = client_address(request)
    try:
        user = await check_login(runtime.db, runtime.settings, body.username, body.password)
    except LoginLocked as exc:
        await record_entry(runtime.db, action="login", outcome=DENIED, actor=body.username, via="login",
                           client=client, status_code=429, detail={"reason": "locked"})
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc),
                            headers={"Retry-After": str(exc.retry_after)}) from None
    except LoginRefused:
        await record_entry(runtime.db, action="login", outcome=FAILED, actor=body.username, via="login",
                           client=client, status_code=401)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password") from None
    opened = await open_session(runtime.db, runtime.settings, user, client)
    secure = _cookie_secure(request, runtime.settings.cookie_secure)
    max_age = runtime.settings.session_max_seconds
    response.set_cookie(SESSION_COOKIE, opened.token, max_age=max_age, httponly=True, samesite="strict",
                        secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, opened.csrf_token, max_age=max_age, httponly=False, samesite="strict",
                        secure=secure, path="/")
    await record_entry(runtime.db, action="login", outcome=OK, actor=user.username, actor_id=user.id, via="login",
                       client=client, status_code=200)
    return LoginResponse(user=UserPublic.model_validate(user), csrf_token=opened.csrf_token,
                         expires_at=opened.expires_at)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(response: Response, principal: PrincipalDep, runtime: RuntimeDep, audit: RequiresSelf) -> None:
    """End this browser session (a token-authenticated call changes nothing)."""
    if principal.via == "session":
        await close_session(runtime.db, principal.credential_id)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


async def _user(runtime: RuntimeDep, user_id: int) -> User:
    async with runtime.db.read() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise not_found("account")
    return user


@router.get("/me")
async def me(principal: PrincipalDep, runtime: RuntimeDep, audit: RequiresSelf) -> Me:
    user = await _user(runtime, principal.user_id)
    return Me(user=UserPublic.model_validate(user), via=principal.via, role=principal.role,
              permissions=sorted(PERMISSIONS[principal.role]))


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT, responses={403: {"model": ErrorDetail}})
async def change_password(body: PasswordChange, principal: PrincipalDep, runtime: RuntimeDep,
                          audit: RequiresSelf) -> None:
    """Change your own password; your other sessions end."""
    user = await _user(runtime, principal.user_id)
    if not await verify_password_async(body.current_password, user.password_hash):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the current password is wrong")
    password_hash = await hash_password_async(body.new_password)
    async with runtime.db.write() as session:
        await session.execute(update(User).where(User.id == user.id)
                              .values(password_hash=password_hash, password_changed_at=utcnow()))
        others = delete(WebSession).where(WebSession.user_id == user.id)
        if principal.via == "session":
            others = others.where(WebSession.id != principal.credential_id)
        await session.execute(others)


@router.get("/tokens")
async def list_tokens(principal: PrincipalDep, runtime: RuntimeDep, audit: RequiresSelf) -> list[TokenPublic]:
    async with runtime.db.read() as session:
        tokens = (await session.execute(
            select(ApiToken).where(ApiToken.user_id == principal.user_id).order_by(ApiToken.id))).scalars()
        return [TokenPublic.model_validate(t) for t in tokens]


@router.post("/tokens", status_code=status.HTTP_201_CREATED, responses={403: {"model": ErrorDetail}})
async def create_token(body: TokenCreate, principal: PrincipalDep, runtime: RuntimeDep,
                       audit: RequiresSelf) -> TokenCreated:
    """A new API token for your account; the token itself is shown only in this response."""
    if body.role is not None and at_most(principal.role, body.role) is not body.role:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"a token cannot act with more than your role "
                            f"({principal.role.value})")
    token = new_api_token()
    expires = utcnow() + dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None
    async with runtime.db.write() as session:
        row = ApiToken(user_id=principal.user_id, name=body.name, token_hash=token_digest(token), prefix=token[:12],
                       role=body.role, expires_at=expires)
        session.add(row)
        await session.flush()
        created = TokenCreated(token=token, **TokenPublic.model_validate(row).model_dump())
    audit.detail = {"token_id": created.id, "name": body.name, "role": body.role}
    return created


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def revoke_token(token_id: IdPath, principal: PrincipalDep, runtime: RuntimeDep, audit: RequiresSelf) -> None:
    audit.detail = {"token_id": token_id}
    async with runtime.db.write() as session:
        result = await session.execute(
            delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == principal.user_id))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise not_found("token")


