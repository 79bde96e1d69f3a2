"""Single-use, short-lived tickets that open one redirection WebSocket.

A browser cannot put an ``X-CSRF-Token`` (or any other) header on a WebSocket handshake, so the page first
asks for a ticket with an ordinary POST -- which the CSRF check and the permission check cover, and the audit
records -- and then opens the WebSocket with ``?ticket=...``.  A ticket names the account it acts for, the
device and the kind of session; it is good for :data:`TICKET_SECONDS` and only once, and only its digest is
kept (a leaked memory dump opens nothing).

Tickets live in the memory of the console process that issued them, one book per runtime: a console scaled
out behind a load balancer must route a ticket's WebSocket to the process that issued it (sticky sessions),
or the page falls back to the session cookie, which every process accepts.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from ..auth import Principal
from ..runtime import Runtime

TICKET_SECONDS: Final = 30.0
MAX_TICKETS: Final = 10_000
"""Outstanding tickets kept at most; the oldest are dropped first (a flood of requests cannot grow memory)."""
MAX_TICKET_LENGTH: Final = 128

RelayKind = Literal["sol", "kvm"]


@dataclass(frozen=True, slots=True)
class Ticket:
    principal: Principal
    device_id: int
    kind: RelayKind
    expires: float


class TicketBook:
    def __init__(self, *, seconds: float = TICKET_SECONDS, capacity: int = MAX_TICKETS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.capacity = capacity
        self._clock = clock
        self._tickets: dict[str, Ticket] = {}  # insertion order is issue order

    def issue(self, principal: Principal, device_id: int, kind: RelayKind) -> tuple[str, float]:
        """A new ticket and how many seconds it stays valid."""
        self._expire()
        while len(self._tickets) >= self.capacity:
            del self._tickets[next(iter(self._tickets))]
        token = secrets.token_urlsafe(32)
        self._tickets[_digest(token)] = Ticket(principal, device_id, kind, self._clock() + self.seconds)
        return token, self.seconds

    def redeem(self, token: str, device_id: int, kind: RelayKind) -> Principal | None:
        """The principal a valid ticket for this device and kind acts for; the ticket is spent either way."""
        if not token or len(token) > MAX_TICKET_LENGTH:
            return None
        ticket = self._tickets.pop(_digest(token), None)
        if ticket is None or ticket.expires <= self._clock():
            return None
        if ticket.device_id != device_id or ticket.kind != kind:
            return None
        return ticket.principal

    def __len__(self) -> int:
        return len(self._tickets)

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, t in self._tickets.items() if t.expires <= now]:
            del self._tickets[key]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_books: weakref.WeakKeyDictionary[Runtime, TicketBook] = weakref.WeakKeyDictionary()


def ticket_book(runtime: Runtime) -> TicketBook:
    """The runtime's ticket book (made on first use; it goes when the runtime goes)."""
    book = _books.get(runtime)
    if book is None:
        book = _books[runtime] = TicketBook()
    return book
