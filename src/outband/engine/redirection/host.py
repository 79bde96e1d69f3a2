"""The engine's redirection service (16994/16995): who may open which session, and the bookkeeping.

Theory of operation: one :class:`RedirectionListener` per engine answers the connection driver's questions
(:class:`~outband.aio.redirection.RedirectionHost`) at the two decision points, in AMT's order:

* accepting a TCP connection: the listener switch (``AMT_RedirectionService.ListenerEnabled``) -- off means
  the connection is closed at once, as if nothing listened -- and the bound on connections served at once;
* StartRedirectionSession: a kind we serve (else "unsupported"), enabled by its switch (else
  "unsupported"), not already open (one session per kind, else "busy");
* the checked login: a failure counts towards the lockout shared with WS-MAN and is audited (1605); then
  the account must hold the Redirection realm, the kind must still be enabled and free, and the user
  consent the kind needs must be granted (IPS_OptInService).  Any "no" denies the login and closes.

An admitted session is recorded in the sessions registry WS-MAN reads (``services/sessions.py``: it can
terminate it, and consent stays alive while it runs), and audited as opened and, when the connection ends
for whatever reason, closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from ...aio.redirection import HostedSession, SessionLink, TcpStream, serve_redirection
from ...proto.amt import Realm
from ...proto.amtlog import AuditApp, InitiatorType
from ...proto.digest import DigestVerifier
from ...proto.redir.frames import Frame, Outgoing, RawData, SessionKind
from ...proto.redir.session import LoginAttempt, StartStatus
from ..acl import Account
from ..core import Engine
from ..platforms.base import PlatformEvent
from ..services import sessions
from ..services.optin import consent_granted
from ..services.redirection import redirection_state
from .kinds import KindHandler, RedirectionConfig, SessionContext

log = logging.getLogger(__name__)


TERMINATED: Final = "terminated by the device's management"


class SessionRecord:
    """An open session as the engine accounts for it, whichever port it came through: listed in the sessions
    registry WS-MAN reads (which may end it through ``terminate``), audited as opened now and as closed by
    :meth:`close`.  ``account`` None: no digest user logged in (port 5900's RFB password)."""

    def __init__(self, engine: Engine, kind: SessionKind, audit_events: tuple[int, int], *,
                 account: Account | None, peer: str, terminate: Callable[[], None]) -> None:
        self.engine = engine
        self.audit_events = audit_events
        self.account = account
        self.peer = peer
        self.token = sessions.session_opened(engine, _registry_kind(kind), terminate, vnc_port=account is None)
        self._audit(audit_events[0])

    def close(self) -> None:
        sessions.session_closed(self.engine, self.token)
        self._audit(self.audit_events[1])

    def _audit(self, event: int) -> None:
        self.engine.audit(AuditApp.REDIRECTION_MANAGER, event, account=self.account, address=self.peer,
                          initiator=None if self.account is not None else InitiatorType.KVM_DEFAULT_PORT)


def busy(engine: Engine, kind: SessionKind) -> bool:
    """A session of ``kind`` is open (through any port: AMT runs one KVM session at a time)."""
    return _registry_kind(kind) in sessions.open_sessions(engine)


class ConnectionSet:
    """The connections a listener is serving, bounded, and ended together when the engine stops."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._tasks: set[asyncio.Task[object]] = set()

    @property
    def full(self) -> bool:
        return len(self._tasks) >= self.limit

    def __len__(self) -> int:
        return len(self._tasks)

    async def run(self, stream: TcpStream, connection: Awaitable[str], what: str) -> None:
        """Serve one connection to its end (``connection`` says why it ended), counted while it runs."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            reason = await connection
            log.debug("%s connection from %s ended: %s", what, stream.peer, reason)
        except asyncio.CancelledError:
            # aclose(): the engine stops.  The connection has closed its session and socket; ending normally
            # keeps asyncio's stream callback from reporting the cancellation as an error.
            log.debug("%s connection from %s cancelled", what, stream.peer)
        except Exception:
            log.exception("%s connection from %s failed", what, stream.peer)
            await stream.aclose()
        finally:
            self._tasks.discard(task)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _TrackedSession:
    """A kind's session plus what every session needs: registry entry, audit records, termination."""

    def __init__(self, inner: HostedSession, engine: Engine, handler: KindHandler, account: Account, peer: str,
                 wake: Callable[[], None]) -> None:
        self.inner = inner
        self._wake = wake
        self._terminated: str | None = None
        self.record = SessionRecord(engine, handler.kind, handler.audit_events, account=account, peer=peer,
                                    terminate=self.terminate)

    def terminate(self) -> None:
        """Called from the WS-MAN side (TerminateSession, a feature switched off)."""
        self._terminated = TERMINATED
        self._wake()

    def receive(self, item: Frame | RawData, now: float) -> None:
        self.inner.receive(item, now)

    def poll(self, now: float) -> float | None:
        return self.inner.poll(now)

    def outgoing(self) -> list[Outgoing]:
        return self.inner.outgoing()

    @property
    def finished(self) -> str | None:
        return self._terminated or self.inner.finished

    def close(self, reason: str) -> None:
        self.inner.close(reason)
        self.record.close()


def _registry_kind(kind: SessionKind) -> sessions.SessionKind:
    return sessions.SessionKind[kind.name]


class RedirectionListener:
    """The redirection service of one engine (see the module docstring)."""

    def __init__(self, engine: Engine, handlers: Mapping[SessionKind, KindHandler],
                 config: RedirectionConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.handlers = dict(handlers)
        self.config = config or RedirectionConfig()
        self.clock = clock
        self._platform_listeners: list[Callable[[PlatformEvent], None]] = []
        self._connections = ConnectionSet(self.config.max_connections)
        engine.add_event_listener(self._on_platform_event)

    @property
    def verifier(self) -> DigestVerifier:
        return self.engine.verifier

    # ------------------------------------------------------------------------------------------ connections

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The callback of the 16994/16995 servers."""
        stream = TcpStream(reader, writer)
        if not redirection_state(self.engine).listener or self._connections.full:
            await stream.aclose()
            return
        await self._connections.run(
            stream, serve_redirection(stream, self, limits=self.config.limits, clock=self.clock), "redirection")

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return len(self._connections)

    async def aclose(self) -> None:
        """End every open connection (the engine is stopping)."""
        await self._connections.aclose()

    # ------------------------------------------------------------------------------------------ decisions

    def _busy(self, kind: SessionKind) -> bool:
        return busy(self.engine, kind)

    def session_requested(self, kind: SessionKind, peer: str) -> StartStatus:
        handler = self.handlers.get(kind)
        if handler is None or not handler.enabled(redirection_state(self.engine)):
            return StartStatus.UNSUPPORTED
        if self._busy(kind):
            return StartStatus.BUSY
        return StartStatus.SUCCESS

    def authorize(self, kind: SessionKind, attempt: LoginAttempt, peer: str, link: SessionLink
                  ) -> HostedSession | str:
        result = attempt.result
        if not result.ok:
            if result.counted:
                self.engine.login_failed(result, peer)
            return f"login failed ({result.reason.value})"
        account = self.engine.accounts.by_name(result.username or "")
        if account is None or not account.may(Realm.REDIRECTION):
            return "the account may not use redirection"
        handler = self.handlers[kind]
        if not handler.enabled(redirection_state(self.engine)):
            return f"{kind.name} is disabled"
        if handler.consent is not None and not consent_granted(self.engine, handler.consent):
            return "user consent is required"
        if self._busy(kind):
            return f"a {kind.name} session is already open"
        ctx = SessionContext(self.engine, account, peer, link.wake, link.switch_to_raw, self.clock, self.config,
                             self._subscribe)
        opened = handler.open(ctx)
        if isinstance(opened, str):
            return opened
        return _TrackedSession(opened, self.engine, handler, account, peer, link.wake)

    # ------------------------------------------------------------------------------------------ platform

    def _subscribe(self, listener: Callable[[PlatformEvent], None]) -> Callable[[], None]:
        self._platform_listeners.append(listener)
        return lambda: self._platform_listeners.remove(listener) if listener in self._platform_listeners else None

    def _on_platform_event(self, event: PlatformEvent) -> None:
        for listener in list(self._platform_listeners):
            listener(event)
