"""KVM on the engine side: the machine's text console as an RFB desktop over the redirection protocol.

The session opens with the 8-byte KVM start (0x40) and its reply (0x41); from then on the connection carries
RFB unframed (AMT-PROTOCOLS.md §4.5), so the bridge asks the connection to stop parsing redirection frames as
soon as the session is admitted and reads the 0x40 from the raw stream itself.  The desktop is a
:class:`~outband.engine.platforms.framebuffer.TextFramebuffer` of the console's VGA text screen: what SOL shows
is what KVM shows.  Key events become the bytes a terminal would type (:class:`TerminalKeyboard`) and go to the
same console input SOL writes to; the pointer has nothing to point at on a text screen and is ignored, as are
clipboard text and the Intel data channel (no host agent runs in the simulated OS).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...proto.redir.frames import Frame, MessageType, Outgoing, ProtocolError, RawData, SessionKind
from ...proto.redir.kvm import KVM_START_REPLY, ChannelOpening
from ...proto.rfb.errors import RfbProtocolError
from ...proto.rfb.keys import TerminalKeyboard
from ...proto.rfb.messages import KeyEvent
from ...proto.rfb.server import RfbServer
from ..platforms.framebuffer import TextFramebuffer, TextGrid
from ..services.optin import Purpose
from ..services.redirection import RedirectionState
from .kinds import SessionContext


@runtime_checkable
class Display(Protocol):
    """What KVM needs of a platform's console (the sim's ``SimConsole``): its text screen and its keyboard."""

    @property
    def screen(self) -> TextGrid: ...

    def input(self, data: bytes) -> None: ...


def display_of(platform: object) -> Display | None:
    console = getattr(platform, "console", None)
    return console if isinstance(console, Display) else None


class KvmBridge:
    """One KVM session: the RFB server over the console's screen and keyboard."""

    def __init__(self, ctx: SessionContext, display: Display, *, size: tuple[int, int] | None = None) -> None:
        self.ctx = ctx
        self.display = display
        self.framebuffer = TextFramebuffer(display.screen, size=size)
        hostname = getattr(display, "hostname", "outband")
        self.rfb = RfbServer(self.framebuffer, name=str(hostname))
        self.keyboard = TerminalKeyboard()
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
                self.rfb.receive_data(data)
        except (ProtocolError, RfbProtocolError) as exc:
            self._finished = f"protocol error: {exc}"
            return
        for event in self.rfb.events():
            if isinstance(event, KeyEvent):
                typed = self.keyboard.event(event.keysym, event.down)
                if typed:
                    self.display.input(typed)

    def _open(self) -> None:
        self._opened = True
        self._out.append(Outgoing(KVM_START_REPLY))
        self.rfb.start()
        self.framebuffer.attach(self.ctx.wake)

    def poll(self, now: float) -> float | None:
        return None

    def outgoing(self) -> list[Outgoing]:
        self.rfb.refresh()
        out, self._out = self._out, []
        data = self.rfb.data_to_send()
        if data:
            out.append(Outgoing(data))
        return out

    @property
    def finished(self) -> str | None:
        return self._finished

    def close(self, reason: str) -> None:
        self.framebuffer.detach()
        self._finished = self._finished or reason


class KvmHandler:
    """The KVM kind over 16994/16995: enabled by CIM_KVMRedirectionSAP; needs the KVM user consent."""

    kind = SessionKind.KVM
    audit_events = (8, 9)
    consent: Purpose | None = Purpose.KVM

    def __init__(self, *, size: tuple[int, int] | None = None) -> None:
        self.size = size
        """The desktop size (None: the text screen's, 720x400); a larger one shows the text centred."""

    def enabled(self, state: RedirectionState) -> bool:
        return state.kvm

    def open(self, ctx: SessionContext) -> KvmBridge | str:
        display = display_of(ctx.engine.platform)
        if display is None:
            return "the platform has no display"
        bridge = KvmBridge(ctx, display, size=self.size)
        ctx.switch_to_raw()  # the 0x40 and the RFB after it reach the bridge unframed
        return bridge


__all__ = ["Display", "KvmBridge", "KvmHandler", "display_of"]
