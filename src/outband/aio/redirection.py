"""asyncio adapters for the redirection protocol (16994/16995): byte streams, the AMT-side connection
driver, and the console-side login.

Layers::

    RedirectionStream   bytes in and out: TCP or TLS here; a CIRA APF channel implements the same protocol
    serve_redirection   AMT side: AmtSession (start, login) then the session kind's HostedSession, with one
                        timer, control replies written alone, and the host's admission rules asked through a
                        RedirectionHost (the engine implements it)
    RedirectionClient   console side: ConsoleSession's start and login, then frames of the kind in and out

Theory of operation (:func:`serve_redirection`): the connection is a loop over three inputs -- bytes from the
console, a wake-up from the host side (the machine wrote to its serial port), and the one deadline the state
machines ask for (login timeout, heartbeat, idle timeout).  Each turn feeds what arrived to the sans-I/O
machines and writes what they queued.  A message marked ``alone`` (0x11, 0x14, 0x21, 0x23, 0x29) is written
by itself, and nothing follows it for ``control_settle`` seconds: amtterm consumes its whole receive buffer on
those replies, so anything in the same read would be lost (AMT-PROTOCOLS.md §11).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from ..proto.digest import DigestVerifier
from ..proto.redir.console import (
    DEFAULT_PREFERENCE,
    Authenticated,
    AuthenticationFailed,
    ConsoleSession,
    Refused,
)
from ..proto.redir.frames import MAX_FEED, Frame, Outgoing, RawData, SessionKind
from ..proto.redir.session import (
    AmtSession,
    AuthType,
    LoginAttempt,
    SessionData,
    SessionEnded,
    SessionRequested,
    StartStatus,
)
from .errors import AuthenticationError, BadResponse, ConnectError, RequestTimeout, TransportError
from .tls import client_context, normalize_fingerprint

REDIRECTION_PORT: Final = 16994
REDIRECTION_TLS_PORT: Final = 16995


# ---------------------------------------------------------------------------------------------- streams


class RedirectionStream(Protocol):
    """A reliable byte stream to the peer.  ``write`` keeps the boundaries of one call in one send."""

    @property
    def peer(self) -> str: ...

    async def read(self) -> bytes:
        """Up to :data:`MAX_FEED` bytes; ``b""`` once the peer has closed."""
        ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    async def aclose(self) -> None: ...


class TcpStream:
    """A :class:`RedirectionStream` over an asyncio TCP (or TLS) connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        peername = writer.get_extra_info("peername")
        self._peer = str(peername[0]) if peername else ""

    @property
    def peer(self) -> str:
        return self._peer

    @property
    def writer(self) -> asyncio.StreamWriter:
        return self._writer

    async def read(self) -> bytes:
        try:
            return await self._reader.read(MAX_FEED)
        except (ConnectionError, ssl.SSLError):
            return b""

    def write(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self._writer.drain()

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), 2.0)


async def open_tcp_stream(host: str, port: int, *, tls: bool = False, fingerprint: str | None = None,
                          verify: bool = True, legacy_tls: bool = False, connect_timeout: float = 10.0
                          ) -> TcpStream:
    """Connect to a device's redirection port.  With TLS, ``fingerprint`` pins the device certificate's
    SHA-256 (AMT certificates are self-signed); ``verify=False`` skips verification (explicitly insecure)."""
    context: ssl.SSLContext | None = None
    pinned = normalize_fingerprint(fingerprint) if fingerprint else None
    if tls:
        context = client_context(verify=verify and pinned is None, legacy=legacy_tls)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host if context else None),
            connect_timeout)
    except TimeoutError:
        raise ConnectError(f"no connection to port {port} within {connect_timeout:g} s", host=host) from None
    except (OSError, ssl.SSLError) as exc:
        raise ConnectError(f"cannot connect to port {port}: {exc}", host=host) from None
    if pinned is not None:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der is None or hashlib.sha256(der).digest() != pinned:
            writer.close()
            raise ConnectError("TLS certificate does not match the pinned fingerprint", host=host)
    return TcpStream(reader, writer)


# ---------------------------------------------------------------------------------------------- AMT side


class HostedSession(Protocol):
    """One authenticated session of a kind (SOL, IDE-R, KVM), AMT side, as the connection driver sees it.

    Sans-I/O like the proto machines: the driver passes every frame of the kind and the time, asks for the
    next deadline, and writes what :meth:`outgoing` returns.  A host-side event (serial output, a new screen)
    calls the ``wake`` callback the session was opened with, and the driver comes back for the output.
    """

    def receive(self, item: Frame | RawData, now: float) -> None: ...

    def poll(self, now: float) -> float | None:
        """Run due timers; the next deadline, or None for none."""
        ...

    def outgoing(self) -> list[Outgoing]: ...

    @property
    def finished(self) -> str | None:
        """Why the session is over (the connection then closes), None while it runs."""
        ...

    def close(self, reason: str) -> None:
        """The connection is going away: release what the session holds (called exactly once)."""
        ...


@dataclass(frozen=True, slots=True)
class SessionLink:
    """What an opened session may ask of its connection."""

    wake: Callable[[], None]
    """Come back for the session's output now (call it after queueing output from a host-side callback)."""
    switch_to_raw: Callable[[], None]
    """From the next byte on, hand the console's bytes over unframed, as RawData (the KVM channel's RFB)."""


class RedirectionHost(Protocol):
    """What the connection driver asks the managed side (the engine) at each decision point."""

    @property
    def verifier(self) -> DigestVerifier: ...

    def session_requested(self, kind: SessionKind, peer: str) -> StartStatus:
        """Answer a StartRedirectionSession: SUCCESS to go on to the login, else the refusal status."""
        ...

    def authorize(self, kind: SessionKind, attempt: LoginAttempt, peer: str, link: SessionLink
                  ) -> HostedSession | str:
        """Decide on a checked login: the opened session, or why it is denied (the socket then closes)."""
        ...


@dataclass(frozen=True, slots=True)
class ServerLimits:
    login_timeout: float = 30.0
    """A connection must be authenticated this long after it was accepted."""
    control_settle: float = 0.05
    """Pause after a control reply before anything else is written (see the module docstring)."""


class _Connection:
    """State of one AMT-side connection; :func:`serve_redirection` runs it."""

    def __init__(self, stream: RedirectionStream, host: RedirectionHost, limits: ServerLimits,
                 clock: Callable[[], float]) -> None:
        self.stream = stream
        self.host = host
        self.limits = limits
        self.clock = clock
        self.manager = AmtSession(host.verifier, peer=stream.peer)
        self.hosted: HostedSession | None = None
        self.reason: str | None = None
        self._wake = asyncio.Event()
        self._login_deadline = clock() + limits.login_timeout
        self._quiet_until = 0.0

    def wake(self) -> None:
        self._wake.set()

    def feed(self, data: bytes) -> None:
        self.manager.receive_data(data)
        self._dispatch()

    def _dispatch(self) -> None:
        # A decision (accept, grant) resumes parsing, which may queue further events: drain until none.
        while events := self.manager.events():
            for event in events:
                self._on_event(event)

    def _on_event(self, event: SessionRequested | LoginAttempt | SessionData | SessionEnded) -> None:
        if isinstance(event, SessionRequested):
            status = self.host.session_requested(event.kind, self.stream.peer)
            if status is StartStatus.SUCCESS:
                self.manager.accept()
            else:
                self.manager.refuse(status)
        elif isinstance(event, LoginAttempt):
            assert self.manager.kind is not None
            link = SessionLink(self.wake, self.manager.decoder.switch_to_raw)
            outcome = self.host.authorize(self.manager.kind, event, self.stream.peer, link)
            if isinstance(outcome, str):
                self.manager.deny(outcome)
            else:
                self.hosted = outcome
                self.manager.grant()
        elif isinstance(event, SessionData):
            if self.hosted is not None:
                self.hosted.receive(event.frame, self.clock())
        else:
            self.reason = self.reason or event.reason

    def tick(self) -> float | None:
        """Run timers; the next deadline."""
        now = self.clock()
        if self.hosted is None:
            if now >= self._login_deadline and self.reason is None:
                self.reason = "login timed out"
            return self._login_deadline
        return self.hosted.poll(now)

    @property
    def done(self) -> bool:
        if self.reason is not None or self.manager.closed:
            return True
        return self.hosted is not None and self.hosted.finished is not None

    async def flush(self) -> None:
        batch = [Outgoing(data, alone=True) for data in self.manager.data_to_send()]
        if self.hosted is not None:
            batch += self.hosted.outgoing()
        pending = bytearray()
        for item in batch:
            if item.alone:
                await self._write(bytes(pending))
                pending.clear()
                await self._write(item.data)
                self._quiet_until = self.clock() + self.limits.control_settle
            else:
                pending += item.data
        await self._write(bytes(pending))

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        quiet = self._quiet_until - self.clock()
        if quiet > 0:
            await asyncio.sleep(quiet)
        self.stream.write(data)
        await self.stream.drain()

    async def wait(self, reader: asyncio.Task[bytes], deadline: float | None) -> None:
        """Until the console sent something, the host woke us, or the deadline passed."""
        waker = asyncio.ensure_future(self._wake.wait())
        timeout = None if deadline is None else max(0.0, deadline - self.clock())
        try:
            await asyncio.wait({reader, waker}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()
        self._wake.clear()


async def serve_redirection(stream: RedirectionStream, host: RedirectionHost, *,
                            limits: ServerLimits = ServerLimits(),
                            clock: Callable[[], float] = time.monotonic) -> str:
    """Run one AMT-side redirection connection to its end; returns why it ended.  Never raises for anything
    the peer does: protocol errors, timeouts and resets all end in a closed connection."""
    conn = _Connection(stream, host, limits, clock)
    reader: asyncio.Task[bytes] = asyncio.ensure_future(stream.read())
    try:
        while True:
            deadline = conn.tick()
            await conn.flush()
            if conn.done:
                break
            await conn.wait(reader, deadline)
            if reader.done():
                data = reader.result()
                if not data:
                    conn.reason = conn.reason or "connection closed by the console"
                    break
                conn.feed(data)
                reader = asyncio.ensure_future(stream.read())
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        reason = conn.reason or conn.manager.state.value
        if conn.hosted is not None:
            reason = conn.hosted.finished or reason
            conn.hosted.close(reason)
        await stream.aclose()
    return reason


# ---------------------------------------------------------------------------------------------- console side


class RedirectionClient:
    """The console side of one connection after login: frames of the session kind in and out.

    Open it with :meth:`login`; IDE-R/KVM/SOL layers then call :meth:`send` and :meth:`receive`.
    """

    def __init__(self, stream: RedirectionStream, session: ConsoleSession, host: str) -> None:
        self.stream = stream
        self.session = session
        self.host = host
        self._frames: deque[Frame | RawData] = deque()
        self.end_reason: str | None = None

    @classmethod
    async def login(cls, stream: RedirectionStream, kind: SessionKind, username: str, password: str, *,
                    host: str = "", preference: tuple[AuthType, ...] = DEFAULT_PREFERENCE,
                    login_timeout: float = 30.0) -> RedirectionClient:
        """Start a session of ``kind`` and authenticate; raises a :class:`TransportError` subclass on failure
        (and closes the stream)."""
        session = ConsoleSession(kind, username, password, preference=preference)
        client = cls(stream, session, host)
        try:
            await asyncio.wait_for(client._login(), login_timeout)
        except TimeoutError:
            await stream.aclose()
            raise RequestTimeout(f"redirection login did not finish within {login_timeout:g} s",
                                 host=host) from None
        except BaseException:
            await stream.aclose()
            raise
        return client

    async def _login(self) -> None:
        self.session.start()
        while True:
            await self._flush()
            data = await self.stream.read()
            if not data:
                raise BadResponse("the device closed the connection during the login", host=self.host)
            self.session.receive_data(data)
            for event in self.session.events():
                if isinstance(event, Authenticated):
                    await self._flush()
                    return
                if isinstance(event, Refused):
                    raise _refusal(event.status, self.host)
                if isinstance(event, AuthenticationFailed):
                    raise AuthenticationError(f"redirection login refused: {event.reason}", host=self.host)
                if isinstance(event, SessionEnded):
                    raise BadResponse(f"redirection session ended during the login: {event.reason}",
                                      host=self.host)
                if isinstance(event, SessionData):  # the device spoke early: keep it for receive()
                    self._frames.append(event.frame)

    async def _flush(self) -> None:
        for data in self.session.data_to_send():
            self.stream.write(data)
        await self.stream.drain()

    async def send(self, data: bytes) -> None:
        """Send one message of the session kind."""
        if self.session.closed:
            raise TransportError("the redirection session is closed", host=self.host)
        self.session.send(data)
        await self._flush()

    async def receive(self) -> Frame | RawData | None:
        """The next frame of the session kind; None once the connection is over (see :attr:`end_reason`)."""
        while not self._frames:
            if self.session.closed:
                return None
            data = await self.stream.read()
            if not data:
                self.end_reason = self.end_reason or "connection closed by the device"
                self.session.end()
                self.session.data_to_send()
                return None
            self.session.receive_data(data)
            for event in self.session.events():
                if isinstance(event, SessionData):
                    self._frames.append(event.frame)
                elif isinstance(event, SessionEnded):
                    self.end_reason = self.end_reason or event.reason
        return self._frames.popleft()

    async def aclose(self) -> None:
        """End the session (0x12) and close the connection."""
        if not self.session.closed:
            self.session.end()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await self._flush()
        await self.stream.aclose()


_REFUSALS: Final[dict[int, str]] = {
    StartStatus.BUSY: "busy (another session of this kind is open)",
    StartStatus.UNSUPPORTED: "not enabled on the device",
    StartStatus.TYPE_UNKNOWN: "of a type the device does not know",
}


def _refusal(status: int, host: str) -> TransportError:
    what = _REFUSALS.get(status, f"refused (status {status})")
    return SessionRefused(f"redirection session {what}", host=host, status=status)


class SessionRefused(TransportError):
    """The device would not start the session (busy, feature disabled...)."""

    def __init__(self, message: str, *, host: str | None = None, status: int = 0) -> None:
        super().__init__(message, host=host)
        self.status = status
