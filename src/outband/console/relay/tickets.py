"""Single-use, short-lived tickets that open one redirection WebSocket.

A browser cannot put an ``X-CSRF-Token`` (or any other) header on a WebSocket handshake, so the page first
asks for a ticket with an ordinary POST -- which the CSRF check and the permission check cover, and the audit
records -- and then opens the WebSocket with ``?ticket=...``.  A ticket names the credential it acts for (the
account's session or API token), the device and the kind of session; it is good for :data:`TICKET_SECONDS`
and only once.

A ticket is sealed, not stored: a Fernet token under the console's secret key (which every console process
sharing the database holds), so the WebSocket may reach any process behind a load balancer.  Redeeming it
records its digest in ``spent_tickets`` (primary key: a second use fails on the insert, whichever process sees
it); rows go once the ticket would have expired anyway.  What the ticket acts for is looked up again when it is
redeemed (``access.current_principal``): a session ended or an account disabled meanwhile opens nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from ..auth import Principal, Via
from ..db.database import Database
from ..db.models import SpentTicket
from ..runtime import Runtime
from ..secrets import SecretBox, SecretKeyError

TICKET_SECONDS: Final = 30
MAX_TICKET_LENGTH: Final = 512
"""A sealed ticket is some 250 characters; anything much longer is refused before it is decrypted."""

RelayKind = Literal["sol", "kvm"]


class _Sealed(BaseModel):
    """What a ticket carries (short names: it travels in a URL)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    u: int = Field(ge=1, description="the account")
    v: Via = Field(description="session or token")
    c: int = Field(ge=1, description="the session's or token's id")
    d: int = Field(ge=1, description="the device")
    k: RelayKind
    x: str = Field(pattern="^[0-9a-f]{32}$", description="makes every ticket unique")


@dataclass(frozen=True, slots=True)
class TicketHolder:
    """The credential a redeemed ticket acts for: what it may do is read from the database as it stands now
    (``access.current_principal``), not from the ticket."""

    user_id: int
    via: Via
    credential_id: int


class TicketBook:
    """Issues and redeems tickets for one console (any of its processes)."""

    def __init__(self, box: SecretBox, db: Database, *, seconds: int = TICKET_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.box = box
        self.db = db
        self.seconds = seconds
        self._clock = clock

    def issue(self, principal: Principal, device_id: int, kind: RelayKind) -> tuple[str, float]:
        """A new ticket and how many seconds it stays valid."""
        sealed = _Sealed(u=principal.user_id, v=principal.via, c=principal.credential_id, d=device_id, k=kind,
                         x=secrets.token_hex(16))
        return self.box.seal(sealed, now=int(self._clock())), float(self.seconds)

    async def redeem(self, token: str, device_id: int, kind: RelayKind) -> TicketHolder | None:
        """The credential a valid ticket for this device and kind acts for; the ticket is spent either way."""
        if not token or len(token) > MAX_TICKET_LENGTH:
            return None
        now = self._clock()
        try:
            sealed = self.box.unseal(token, _Sealed, ttl=self.seconds, now=int(now))
        except SecretKeyError:
            return None
        if not await self._spend(token, now):
            return None
        if sealed.d != device_id or sealed.k != kind:
            return None
        return TicketHolder(sealed.u, sealed.v, sealed.c)

    async def _spend(self, token: str, now: float) -> bool:
        """Record the ticket as used; False when it was already."""
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        try:
            async with self.db.write() as session:
                await session.execute(delete(SpentTicket).where(SpentTicket.expires_at < moment))
                session.add(SpentTicket(digest=hashlib.sha256(token.encode()).hexdigest(),
                                        expires_at=moment + dt.timedelta(seconds=self.seconds + 1)))
        except IntegrityError:
            return False
        return True



def ticket_book(runtime: Runtime) -> TicketBook:
    return TicketBook(runtime.box, runtime.db)
