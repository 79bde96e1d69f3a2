"""KVM on the engine side: the platform's display as an RFB desktop over the redirection protocol.

The session opens with the 8-byte KVM start (0x40) and its reply (0x41); from then on the connection carries
RFB unframed (AMT-PROTOCOLS.md §4.5), so the bridge asks the connection to stop parsing redirection frames as
soon as the session is admitted and reads the 0x40 from the raw stream itself.  Once it has been answered, our
RFB server shows a view of the platform's :class:`~outband.engine.platforms.base.Display`
(``platform.display``) and follows its changes until the session closes; key and pointer events go to that view
as the console sent them.  What the display is stays the platform's business: the sim's text console drawn as
VGA text, whose keys become typed bytes (``platforms/framebuffer.py``), or a QEMU VM's own screen read over VNC,
which takes keysyms and the pointer unchanged (``platforms/qemu/vnc.py``).  Clipboard text and the Intel data
channel have no host agent to reach and are dropped; the server answers the Intel extensions itself.

:class:`KvmDesktop` is that RFB server over a view of the display; port 5900 (``vnc.py``) serves the same
desktop, behind VNC Authentication instead of the redirection login.
"""

from __future__ import annotations

from collections.abc import Callable

from ...proto.redir.frames import Frame, MessageType, Outgoing, ProtocolError, RawData, SessionKind
from ...proto.redir.kvm import KVM_START_REPLY, ChannelOpening
from ...proto.rfb.errors import RfbProtocolError
from ...proto.rfb.messages import KeyEvent, PointerEvent
from ...proto.rfb.server import RfbServer, RfbServerEvent
from ..platforms.base import Display
from ..services.optin import Purpose
from ..services.redirection import RedirectionState
from .kinds import SessionContext


def display_of(platform: object) -> Display | None:
    """The machine's screen, keyboard and mouse (None: it has none, as a VM without VGA)."""
    display = getattr(platform, "display", None)
    return display if isinstance(display, Display) else None


class KvmDesktop:
    """The platform's display as an RFB desktop: our RFB server over one view of it, the console's keys and
    pointer passed to that view.  Both KVM doors (the redirection channel, port 5900) serve one of these."""

    def __init__(self, display: Display, *, vnc_auth: bool = False) -> None:
        self.view = display.view()
        self.rfb = RfbServer(self.view, name=display.hostname, vnc_auth=vnc_auth)
        self._following = False

    def receive(self, data: bytes) -> list[RfbServerEvent]:
        """The console's RFB bytes; input goes to the display, the other events are returned.  Raises
        :class:`RfbProtocolError` on a protocol violation."""
        self.rfb.receive_data(data)
        return self.events()

    def events(self) -> list[RfbServerEvent]:
        """The server's events so far (those not returned by :meth:`receive`: a granted login parses on)."""
        rest: list[RfbServerEvent] = []
        for event in self.rfb.events():
            if isinstance(event, KeyEvent):
                self.view.key(event.keysym, event.down)
            elif isinstance(event, PointerEvent):
                self.view.pointer(event.buttons, event.x, event.y)
            else:
                rest.append(event)
        return rest

    def follow(self, wake: Callable[[], None]) -> None:
        """Follow the display from now on; ``wake`` is called after each change (come back for the output)."""
        self._following = True
        self.view.attach(wake)

    def output(self) -> bytes:
        self.rfb.refresh()
        return self.rfb.data_to_send()

    def close(self) -> None:
        if self._following:
            self._following = False
            self.view.detach()


class KvmBridge:
    """One KVM session over the redirection protocol: the channel opening, then a :class:`KvmDesktop`."""

    def __init__(self, ctx: SessionContext, display: Display) -> None:
        self.ctx = ctx
        self.desktop = KvmDesktop(display)
        self._opening = ChannelOpening(MessageType.IDER_START)
        self._opened = False
        self._out: list[Outgoing] = []
        self._finished: str | None = None

    # ------------------------------------------------------------------------------------------ HostedSession

    def receive(self, item: Frame | RawData, now: float) -> None:
        if self._finished is not None:
            return
        try:
            if isinstance(item, Frame):
                raise ProtocolError(f"{item.type.name} where the KVM channel carries RFB")
            data = self._opening.feed(item.data)
            if data is None:
                return
            if not self._opened:
                self._open()
            if data:
                self.desktop.receive(data)
        except (ProtocolError, RfbProtocolError) as exc:
            self._finished = f"protocol error: {exc}"

    def _open(self) -> None:
        self._opened = True
        self._out.append(Outgoing(KVM_START_REPLY))
        self.desktop.rfb.start()
        self.desktop.follow(self.ctx.wake)

    def poll(self, now: float) -> float | None:
        return None

    def outgoing(self) -> list[Outgoing]:
        out, self._out = self._out, []
        data = self.desktop.output()
        if data:
            out.append(Outgoing(data))
        return out

    @property
    def finished(self) -> str | None:
        return self._finished

    def close(self, reason: str) -> None:
        self.desktop.close()
        self._finished = self._finished or reason


class KvmHandler:
    """The KVM kind over 16994/16995: enabled by CIM_KVMRedirectionSAP; needs the KVM user consent."""

    kind = SessionKind.KVM
    audit_events = (8, 9)
    consent: Purpose | None = Purpose.KVM

    def enabled(self, state: RedirectionState) -> bool:
        return state.kvm

    def open(self, ctx: SessionContext) -> KvmBridge | str:
        display = display_of(ctx.engine.platform)
        if display is None:
            return "the platform has no display"
        bridge = KvmBridge(ctx, display)
        ctx.switch_to_raw()  # the 0x40 and the RFB after it reach the bridge unframed
        return bridge


__all__ = ["KvmBridge", "KvmDesktop", "KvmHandler", "display_of"]
