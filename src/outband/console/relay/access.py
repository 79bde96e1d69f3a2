"""Who opens a redirection WebSocket, and whether they may.

Credentials, the first one present decides: ``?ticket=`` (single-use, see :mod:`.tickets`), then
``Authorization: Bearer <API token>``, then the session cookie.  The cookie is only taken from a handshake
whose ``Origin`` is the console's own host (or that has none: not a browser), because a WebSocket is not
covered by the same-origin policy and another site's page could otherwise open one with the user's cookie.
A ticket's account is read again when it is redeemed: an account disabled, a session ended or a token revoked
since the ticket was issued opens nothing.  Whatever the credential, the role must allow
``device.redirect``; refusals of a known account are audited as ``denied``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from fastapi import WebSocket
from sqlalchemy import select

from ..api.deps import SESSION_COOKIE
from ..audit import DENIED, record_entry
from ..auth import Principal, session_principal, token_principal
from ..db.base import utcnow
from ..db.models import ApiToken, User, WebSession
from ..permissions import Permission, at_most
from ..runtime import Runtime
from .tickets import RelayKind, TicketHolder, ticket_book

CLOSE_UNAUTHORIZED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
CLOSE_NOT_FOUND: Final = 4404
CLOSE_UNAVAILABLE: Final = 4503
"""WebSocket close codes (4000-4999 are the application's): the HTTP status they stand for, plus 4000."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a WebSocket cannot open: ``code`` for programs, ``message`` for people."""

    code: str
    message: str
    close_code: int


async def websocket_principal(ws: WebSocket, runtime: Runtime, device_id: int, kind: RelayKind
                              ) -> Principal | Refusal:
    principal = await _credential(ws, runtime, device_id, kind)
    if isinstance(principal, Refusal):
        return principal
    if not principal.can(Permission.REDIRECT):
        await _deny(runtime, ws, principal, device_id, kind, {"permission": Permission.REDIRECT.value,
                                                              "role": principal.role.value})
        return Refusal("forbidden", f"the role {principal.role.value} does not allow {Permission.REDIRECT.value}",
                       CLOSE_FORBIDDEN)
    return principal


async def _credential(ws: WebSocket, runtime: Runtime, device_id: int, kind: RelayKind) -> Principal | Refusal:
    ticket = ws.query_params.get("ticket")
    if ticket is not None:
        issued = await ticket_book(runtime).redeem(ticket, device_id, kind)
        current = await current_principal(runtime, issued) if issued is not None else None
        return current or Refusal("unauthorized", "the ticket is invalid, expired or used; ask for a new one",
                                  CLOSE_UNAUTHORIZED)
    header = ws.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        principal = await token_principal(runtime.db, token.strip()) if scheme.lower() == "bearer" else None
        return principal or Refusal("unauthorized", "invalid or expired API token", CLOSE_UNAUTHORIZED)
    cookie = ws.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = await session_principal(runtime.db, runtime.settings, cookie)
        if principal is None:
            return Refusal("unauthorized", "session expired; sign in again", CLOSE_UNAUTHORIZED)
        if not same_origin(ws):
            await _deny(runtime, ws, principal, device_id, kind, {"reason": "origin",
                                                                  "origin": ws.headers.get("origin", "")[:64]})
            return Refusal("forbidden", "a session cookie is only accepted from the console's own pages",
                           CLOSE_FORBIDDEN)
        return principal
    return Refusal("unauthorized", "authentication required (a ticket, an API token or a session)",
                   CLOSE_UNAUTHORIZED)


def same_origin(ws: WebSocket) -> bool:
    """The handshake comes from a page of this console (or from no page at all)."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True
    host = ws.headers.get("host")
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


async def current_principal(runtime: Runtime, issued: TicketHolder) -> Principal | None:
    """``issued`` as it stands now: None when its account is disabled or gone, or its session or token ended;
    the role as the account (and token) allow it today."""
    now = utcnow()
    async with runtime.db.read() as session:
        user = await session.get(User, issued.user_id)
        if user is None or user.disabled:
            return None
        if issued.via == "session":
            web_session = await session.get(WebSession, issued.credential_id)
            if web_session is None or web_session.user_id != user.id or web_session.expires_at <= now:
                return None
            role = user.role
        else:
            token = (await session.execute(select(ApiToken).where(ApiToken.id == issued.credential_id))
                     ).scalar_one_or_none()
            if token is None or token.user_id != user.id or (token.expires_at is not None and token.expires_at <= now):
                return None
            role = at_most(user.role, token.role)
    return Principal(user.id, user.username, role, issued.via, issued.credential_id)


async def _deny(runtime: Runtime, ws: WebSocket, principal: Principal, device_id: int, kind: RelayKind,
                detail: dict[str, str]) -> None:
    await record_entry(runtime.db, action=f"{kind}.open", outcome=DENIED, actor=principal.username,
                       actor_id=principal.user_id, via=principal.via, client=ws.client.host if ws.client else None,
                       status_code=403, devices=[device_id], detail=detail)
