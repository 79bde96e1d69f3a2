"""KVM on port 5900: plain RFB behind VNC Authentication, as AMT serves standard VNC viewers.

AMT answers on the IANA VNC port when a console has set an RFB password and switched the port on
(``IPS_KVMRedirectionSettingData.Is5900PortEnabled``, ``RFBPassword``) and KVM is enabled
(``CIM_KVMRedirectionSAP``).  There is no TLS and no redirection framing: the socket is RFB from the first byte,
and the RFB password is the only credential (AMT-PROTOCOLS.md §1 and §4.5; DESIGN.md: off by default).

Theory of operation, one :class:`VncListener` per engine address:

* accepting a TCP connection: unless KVM, the port switch and a password are all set, the platform has a
  display and fewer than ``max_connections`` are being served, the connection is closed at once, as if
  nothing listened (AMT only opens the port when asked);
* the RFB handshake (:class:`~outband.proto.rfb.server.RfbServer` with ``vnc_auth``): version, security type 2,
  a fresh 16-byte challenge;
* the response (:meth:`VncListener.decide`), in AMT's order: the anti-hammering shared with every digest login
  of the engine (while it locks logins out, even the right password is refused; a wrong one counts towards it,
  and every third wrong one in a row is audited as 1812 "VNC Password Failed 3 Times"), then the switches
  again, the KVM user consent (IPS_OptInService) and the one KVM session at a time, whichever port it came
  through.  A refusal is RFB's SecurityResult "failed" with the reason, then the connection closes;
* an admitted session is the same :class:`~outband.engine.redirection.kvm.KvmDesktop` the redirection KVM
  channel serves, recorded the same way (sessions registry, audit 1808/1809), and it ends when the viewer
  leaves, on a protocol error, or when WS-MAN terminates it (TerminateSession, KVM switched off).

A connection that has not logged in within the redirection login timeout is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Final

from ...aio.redirection import TcpStream
from ...proto.amtlog import AuditApp, InitiatorType
from ...proto.digest import Reason
from ...proto.redir.frames import SessionKind
from ...proto.rfb.errors import RfbProtocolError
from ...proto.rfb.server import RfbServer, VncLoginAttempt
from ..core import Engine
from ..platforms.base import Display
from ..services.optin import Purpose, consent_granted
from ..services.redirection import redirection_state, rfb_password
from .host import TERMINATED, ConnectionSet, SessionRecord, busy
from .kinds import RedirectionConfig
from .kvm import KvmDesktop, KvmHandler, display_of

VNC_PORT: Final = 5900
PASSWORD_FAILED_3_TIMES: Final = 12
"""Redirection Manager audit event 12 (1812): three wrong VNC passwords in a row."""


class VncListener:
    """Port 5900 of one engine (see the module docstring)."""

    def __init__(self, engine: Engine, config: RedirectionConfig | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.config = config or RedirectionConfig()
        self.clock = clock
        self._connections = ConnectionSet(self.config.max_connections)
        self._wrong_in_a_row = 0

    def serving(self) -> bool:
        """Whether AMT's switches open the port now: KVM, the port itself, and an RFB password."""
        state = redirection_state(self.engine)
        return state.kvm and state.port_5900 and rfb_password(self.engine) is not None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The callback of the 5900 server."""
        stream = TcpStream(reader, writer)
        display = display_of(self.engine.platform)
        if display is None or not self.serving() or self._connections.full:
            await stream.aclose()
            return
        await self._connections.run(stream, _VncConnection(self, stream, display).run(), "port 5900")

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def aclose(self) -> None:
        """End every open connection (the engine is stopping)."""
        await self._connections.aclose()

    def decide(self, rfb: RfbServer, peer: str) -> str | None:
        """Judge a VNC login whose response ``rfb`` holds: None admits it, else the reason it is refused."""
        engine = self.engine
        password = rfb_password(engine)
        matched = password is not None and rfb.verify(password)
        result = engine.verifier.judge_other_login(matched, peer=peer)
        if result.reason is Reason.LOCKED_OUT:
            return "too many failed logins: try again later"
        if not result.ok:
            self._wrong_in_a_row += 1
            if self._wrong_in_a_row % 3 == 0:
                engine.audit(AuditApp.REDIRECTION_MANAGER, PASSWORD_FAILED_3_TIMES, address=peer,
                             initiator=InitiatorType.KVM_DEFAULT_PORT)
            return "authentication failed"
        self._wrong_in_a_row = 0
        if not self.serving():
            return "KVM on port 5900 is disabled"
        if not consent_granted(engine, Purpose.KVM):
            return "user consent is required: enter the code shown on the screen first (IPS_OptInService)"
        if busy(engine, SessionKind.KVM):
            return "a KVM session is already open"
        return None


class _VncConnection:
    """One viewer on port 5900: the RFB login, then the desktop until either side ends it."""

    def __init__(self, listener: VncListener, stream: TcpStream, display: Display) -> None:
        self.listener = listener
        self.stream = stream
        self.desktop = KvmDesktop(display, vnc_auth=True)
        self.record: SessionRecord | None = None
        self.reason: str | None = None
        self._wake = asyncio.Event()

    def terminate(self) -> None:
        """Called from the WS-MAN side (TerminateSession, KVM switched off)."""
        self.reason = self.reason or TERMINATED
        self._wake.set()

    async def run(self) -> str:
        clock = self.listener.clock
        login_deadline = clock() + self.listener.config.limits.login_timeout
        self.desktop.rfb.start()
        reader: asyncio.Task[bytes] = asyncio.ensure_future(self.stream.read())
        try:
            while True:
                await self._flush()
                if self.reason is not None:
                    break
                within = None if self.record is not None else max(0.0, login_deadline - clock())
                await self._wait(reader, within)
                if reader.done():
                    data = reader.result()
                    if not data:
                        self.reason = "connection closed by the viewer"
                        break
                    self._feed(data)
                    reader = asyncio.ensure_future(self.stream.read())
                elif self.record is None and clock() >= login_deadline:
                    self.reason = "login timed out"
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self.desktop.close()
            if self.record is not None:
                self.record.close()
            await self.stream.aclose()
        return self.reason or "ended"

    def _feed(self, data: bytes) -> None:
        try:
            events = self.desktop.receive(data)
            while events:
                for event in events:
                    if isinstance(event, VncLoginAttempt):
                        self._login()
                events = self.desktop.events()  # what the client sent along with its response
        except RfbProtocolError as exc:
            self.reason = f"protocol error: {exc}"

    def _login(self) -> None:
        rfb = self.desktop.rfb
        refusal = self.listener.decide(rfb, self.stream.peer)
        if refusal is not None:
            rfb.deny(refusal)
            self.reason = f"login refused: {refusal}"
            return
        self.record = SessionRecord(self.listener.engine, SessionKind.KVM, KvmHandler.audit_events, account=None,
                                    peer=self.stream.peer, terminate=self.terminate)
        rfb.grant()
        self.desktop.follow(self._wake.set)

    async def _wait(self, reader: asyncio.Task[bytes], within: float | None) -> None:
        """Until the viewer sent something, the display changed, WS-MAN ended the session, or ``within`` s."""
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({reader, waker}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()
        self._wake.clear()

    async def _flush(self) -> None:
        data = self.desktop.output()
        if data:
            self.stream.write(data)
            await self.stream.drain()


__all__ = ["VNC_PORT", "VncListener"]
