"""Redirection sessions for the device SDK: :class:`DeviceSession`, what every kind shares, and
:class:`SolSession` (Serial-over-LAN); IDE-R and KVM live in :mod:`.ider` and :mod:`.kvm`.

A session rides on any :class:`~outband.aio.redirection.RedirectionStream`: by default a direct TCP (16994)
or TLS (16995) connection, or whatever ``stream_factory`` opens -- a CIRA channel -- so the same code
serves both paths.

Theory of operation (:class:`SolSession`): opening logs in (digest type 4 unless the device only offers
something else), sends StartSOL and waits for the reply.  From then on a pump task reads the device's
messages, runs the SOL machine's timers (our heartbeats, the dead-device timeout) and queues the host's
serial output for :meth:`SolSession.read`; :meth:`~SolSession.write` and :meth:`~SolSession.send_break` go
straight out.  Closing sends EndSOL, waits briefly for its reply, then ends the redirection session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import ClassVar, Final, Self

from ..aio.closing import AsyncClosing
from ..aio.errors import BadResponse, TransportError
from ..aio.redirection import RedirectionClient, SessionRefused
from ..proto.redir.console import DEFAULT_PREFERENCE
from ..proto.redir.frames import Frame, RawData, SessionKind
from ..proto.redir.session import AuthType
from ..proto.redir.sol import (
    DEFAULT_SETTINGS,
    HostControls,
    HostOutput,
    HostStatus,
    SolConsole,
    SolEnded,
    SolSettings,
    SolState,
)
from .streams import StreamFactory, direct_stream

END_TIMEOUT: Final = 2.0
"""How long :meth:`SolSession.close` waits for the device to confirm the end of SOL."""


class OpenCloseSession(AsyncClosing):
    """``async with`` for redirection sessions: open() on entry, close() on exit, whatever happened."""

    async def open(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self


class DeviceSession(OpenCloseSession):
    """A redirection session with one device, whatever its kind: who logs in, how the device is reached (its
    redirection port directly, or ``stream_factory``), and the pump task that serves the session once open."""

    KIND: ClassVar[SessionKind]

    def __init__(self, host: str, username: str, password: str, *, port: int | None, tls: bool,
                 fingerprint: str | None, verify: bool, preference: tuple[AuthType, ...],
                 stream_factory: StreamFactory | None, timeout: float, clock: Callable[[], float]) -> None:
        self.host = host
        self.username = username
        self._password = password
        self.preference = preference
        self.timeout = timeout
        self._clock = clock
        self._open_stream = stream_factory or direct_stream(host, port, tls=tls, fingerprint=fingerprint,
                                                            verify=verify, timeout=timeout)
        self._client: RedirectionClient | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self.end_reason: str | None = None

    async def _login(self) -> RedirectionClient:
        """Connect and log in to a session of this kind; raises a TransportError subclass on failure."""
        stream = await self._open_stream()
        return await RedirectionClient.login(stream, self.KIND, self.username, self._password, host=self.host,
                                             preference=self.preference, login_timeout=self.timeout)

    async def _stop_pump(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            self._pump_task = None


class SolSession(DeviceSession):
    """Serial-over-LAN to one device.

    >>> async with SolSession("10.0.0.5", password=secret) as sol:          # doctest: +SKIP
    ...     await sol.write(b"uname -a\\r")
    ...     print(await sol.read())

    :meth:`read` returns the next chunk of what the machine wrote to its serial port, and ``b""`` once the
    session is over (:attr:`end_reason` says why).
    """

    KIND = SessionKind.SOL

    def __init__(
        self,
        host: str,
        username: str = "admin",
        password: str = "",
        *,
        port: int | None = None,
        tls: bool = False,
        fingerprint: str | None = None,
        verify: bool = True,
        settings: SolSettings = DEFAULT_SETTINGS,
        preference: tuple[AuthType, ...] = DEFAULT_PREFERENCE,
        stream_factory: StreamFactory | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(host, username, password, port=port, tls=tls, fingerprint=fingerprint, verify=verify,
                         preference=preference, stream_factory=stream_factory, timeout=timeout, clock=clock)
        self.settings = settings
        self._sol = SolConsole(clock(), settings)
        self._output: asyncio.Queue[bytes] = asyncio.Queue()
        self._send_lock = asyncio.Lock()
        self._ended = asyncio.Event()
        self.host_status: HostStatus | None = None
        """The status bits of the device's last 0x29 (POWERED_ON...), None until one arrived."""

    # ------------------------------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Connect, log in and start SOL; raises a :class:`~outband.aio.errors.TransportError` subclass
        (AuthenticationError, SessionRefused, ConnectError...) when any step fails."""
        self._client = client = await self._login()
        try:
            await asyncio.wait_for(self._start(), self.timeout)
        except TimeoutError:
            await client.aclose()
            raise BadResponse(f"no answer to StartSOL within {self.timeout:g} s", host=self.host) from None
        except BaseException:
            await client.aclose()
            raise
        self._pump_task = asyncio.get_running_loop().create_task(self._pump(client), name=f"sol-{self.host}")

    async def _start(self) -> None:
        assert self._client is not None
        self._sol.start(self._clock())
        await self._flush()
        while True:
            item = await self._client.receive()
            if item is None:
                raise BadResponse(f"the device closed the connection before SOL started "
                                  f"({self._client.end_reason})", host=self.host)
            self._feed(item)
            if self._sol.state is SolState.ACTIVE:
                return
            if self._sol.closed:
                raise SessionRefused(f"SOL refused: {self._sol.close_reason}", host=self.host)

    async def close(self) -> None:
        """End SOL and the session (idempotent)."""
        client, self._client = self._client, None
        if client is None:
            return
        if not self._sol.closed:
            self._sol.end(self._clock())
            with contextlib.suppress(TransportError, ConnectionError):
                await self._flush(client)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), END_TIMEOUT)
        await self._stop_pump()
        await client.aclose()
        self._finish("closed by us")

    # ------------------------------------------------------------------------------------------ data

    async def read(self) -> bytes:
        """The next chunk of serial output from the machine; ``b""`` when the session is over."""
        if self._output.empty() and self.end_reason is not None:
            return b""
        return await self._output.get()

    async def write(self, data: bytes) -> None:
        """Type ``data`` on the machine's serial port."""
        self._check_open()
        self._sol.write(data, self._clock())
        await self._flush()

    async def send_break(self) -> None:
        """Send a serial break (our reading of message 0x27, see AMT-PROTOCOLS.md §10)."""
        self._check_open()
        self._sol.send_break(self._clock())
        await self._flush()

    def _check_open(self) -> None:
        if self._client is None or self._sol.closed or self.end_reason is not None:
            raise TransportError(f"the SOL session is over ({self.end_reason or 'not open'})", host=self.host)

    # ------------------------------------------------------------------------------------------ pump

    async def _flush(self, client: RedirectionClient | None = None) -> None:
        client = client or self._client
        if client is None:
            return
        async with self._send_lock:
            for item in self._sol.outgoing():
                await client.send(item.data)

    def _feed(self, item: Frame | RawData) -> None:
        if isinstance(item, RawData):
            self._sol.close("raw data in a SOL session")
            return
        self._sol.receive(item, self._clock())
        for event in self._sol.events():
            if isinstance(event, HostOutput):
                self._output.put_nowait(event.data)
            elif isinstance(event, HostControls):
                self.host_status = event.status
            elif isinstance(event, SolEnded):
                self._ended.set()

    async def _pump(self, client: RedirectionClient) -> None:
        receiving = asyncio.ensure_future(client.receive())
        try:
            while True:
                deadline = self._sol.poll(self._clock())
                await self._flush(client)
                if self._sol.closed:
                    self._finish(self._sol.close_reason or "closed")
                    return
                timeout = None if deadline is None else max(0.0, deadline - self._clock())
                await asyncio.wait({receiving}, timeout=timeout)
                if receiving.done():
                    item = receiving.result()
                    if item is None:
                        self._finish(client.end_reason or "connection closed by the device")
                        return
                    self._feed(item)
                    receiving = asyncio.ensure_future(client.receive())
        finally:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError, TransportError, ConnectionError):
                await receiving

    def _finish(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self._ended.set()
            self._output.put_nowait(b"")


__all__ = ["DeviceSession", "SessionRefused", "SolSession", "SolSettings", "StreamFactory"]
