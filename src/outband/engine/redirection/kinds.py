"""How a session kind (SOL, IDE-R, KVM) plugs into the engine's redirection listener.

A kind is a :class:`KindHandler`: it says whether AMT's switches allow it, which user consent it needs and
which audit events record it, and it opens a :class:`~outband.aio.redirection.HostedSession` for an admitted,
authenticated console.  The listener (``host.py``) does everything the kinds share -- the session manager,
the login, the realm check, one session per kind, consent, audit records, the sessions registry that WS-MAN
reads, termination from WS-MAN -- so a kind only speaks its own messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ...aio.redirection import HostedSession, ServerLimits
from ...proto.redir.frames import SessionKind
from ...proto.redir.sol import SolTiming
from ..platforms.base import PlatformEvent

if TYPE_CHECKING:
    from ..acl import Account
    from ..core import Engine
    from ..services.optin import Purpose
    from ..services.redirection import RedirectionState


@dataclass(frozen=True, slots=True)
class RedirectionConfig:
    """Timings of the redirection listener; tests shrink them (``SolTiming.time_scale``)."""

    limits: ServerLimits = field(default_factory=ServerLimits)
    sol: SolTiming = field(default_factory=SolTiming)
    max_connections: int = 32
    """Connections served at once per engine (logged in or not); more are closed on arrival, so a flood of
    idle sockets costs file descriptors only up to this bound.  AMT itself serves a handful."""


@dataclass(slots=True)
class SessionContext:
    """What an opened session may use.  ``wake`` asks the connection to collect the session's output now
    (call it after queueing output from a host-side callback); ``switch_to_raw`` makes the connection hand
    over the console's bytes unframed from the next byte on (KVM's RFB); ``clock`` is the connection's."""

    engine: Engine
    account: Account
    peer: str
    wake: Callable[[], None]
    switch_to_raw: Callable[[], None]
    clock: Callable[[], float]
    config: RedirectionConfig
    subscribe: Callable[[Callable[[PlatformEvent], None]], Callable[[], None]]
    """Receive the platform's events (power changes, boots) until the returned function is called."""


class KindHandler(Protocol):
    """One session kind on the engine side."""

    @property
    def kind(self) -> SessionKind: ...

    @property
    def audit_events(self) -> tuple[int, int]:
        """(opened, closed) event numbers of the Redirection Manager audit application (18): SOL 4/5,
        IDE-R 0/1, KVM 8/9 -- audit ids 1804/1805, 1800/1801, 1808/1809."""
        ...

    @property
    def consent(self) -> Purpose | None:
        """The user-consent purpose that must be granted first (None: no consent needed, as for SOL)."""
        ...

    def enabled(self, state: RedirectionState) -> bool:
        """Whether AMT's switches allow this kind now (the listener switch is checked before)."""
        ...

    def open(self, ctx: SessionContext) -> HostedSession | str:
        """Open the session for an admitted console, or say why it cannot run (the login is then denied)."""
        ...
