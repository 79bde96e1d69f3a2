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
from collections.abc import Callable, Mapping

from ...aio.redirection import HostedSession, SessionLink, TcpStream, serve_redirection
from ...proto.amt import Realm
from ...proto.amtlog import AuditApp
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


class _TrackedSession:
    """A kind's session plus what every session needs: registry entry, audit records, termination."""

    def __init__(self, inner: HostedSession, listener: RedirectionListener, handler: KindHandler,
                 account: Account, peer: str, wake: Callable[[], None]) -> None:
        self.inner = inner
        self.listener = listener
        self.handler = handler
        self.account = account
        self.peer = peer
        self._wake = wake
        self._terminated: str | None = None
        engine = listener.engine
        self.token = sessions.session_opened(engine, _registry_kind(handler.kind), self.terminate)
        engine.audit(AuditApp.REDIRECTION_MANAGER, handler.audit_events[0], account=account, address=peer)

    def terminate(self) -> None:
        """Called from the WS-MAN side (TerminateSession, a feature switched off)."""
        self._terminated = "terminated by the device's management"
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
        engine = self.listener.engine
        sessions.session_closed(engine, self.token)
        engine.audit(AuditApp.REDIRECTION_MANAGER, self.handler.audit_events[1], account=self.account,
                     address=self.peer)


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
        self._connections: set[asyncio.Task[object]] = set()
        engine.add_event_listener(self._on_platform_event)

    @property
    def verifier(self) -> DigestVerifier:
        return self.engine.verifier

    # ------------------------------------------------------------------------------------------ connections

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The callback of the 16994/16995 servers."""
        stream = TcpStream(reader, writer)
        if not redirection_state(self.engine).listener or len(self._connections) >= self.config.max_connections:
            await stream.aclose()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            reason = await serve_redirection(stream, self, limits=self.config.limits, clock=self.clock)
            log.debug("redirection connection from %s ended: %s", stream.peer, reason)
        except asyncio.CancelledError:
            # aclose(): the engine stops.  serve_redirection has closed the session and the socket; ending
            # normally keeps asyncio's stream callback from reporting the cancellation as an error.
            log.debug("redirection connection from %s cancelled", stream.peer)
        except Exception:
            log.exception("redirection connection from %s failed", stream.peer)
            await stream.aclose()
        finally:
            self._connections.discard(task)

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return len(self._connections)

    async def aclose(self) -> None:
        """End every open connection (the engine is stopping)."""
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------------------------------ decisions

    def _busy(self, kind: SessionKind) -> bool:
        return _registry_kind(kind) in sessions.open_sessions(self.engine)

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
        return _TrackedSession(opened, self, handler, account, peer, link.wake)

    # ------------------------------------------------------------------------------------------ platform

    def _subscribe(self, listener: Callable[[PlatformEvent], None]) -> Callable[[], None]:
        self._platform_listeners.append(listener)
        return lambda: self._platform_listeners.remove(listener) if listener in self._platform_listeners else None

    def _on_platform_event(self, event: PlatformEvent) -> None:
        for listener in list(self._platform_listeners):
            listener(event)
