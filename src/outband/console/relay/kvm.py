"""KVM for noVNC: the device's RFB stream in binary frames, unchanged; the viewer's, with its encoding list
rewritten to what AMT speaks (:class:`~outband.proto.rfb.relay.ViewerFilter`), as the SDK's VncBridge does for
a local viewer.

The console completes AMT's part of the channel (login, the 0x40/0x41 opening) before it tells the page
``{"type": "open"}``; from then on only RFB travels, so the page can hand the WebSocket to noVNC as it is.
"""

from __future__ import annotations

from ...client.kvm import KvmChannel, open_kvm_channel
from ...proto.redir.frames import Frame
from ...proto.rfb.errors import RfbProtocolError
from ...proto.rfb.relay import ViewerFilter
from ..devices.connect import DeviceTarget
from ..runtime import Runtime
from .device import redirection_streams
from .session import Browser, RelayStats, first_to_end


class KvmRelay:
    def __init__(self, channel: KvmChannel) -> None:
        self.channel = channel

    @classmethod
    async def open(cls, runtime: Runtime, target: DeviceTarget) -> KvmRelay:
        timeout = runtime.settings.device_timeout
        channel = await open_kvm_channel(redirection_streams(runtime, target, timeout), target.username,
                                         target.password, host=target.host, login_timeout=timeout)
        return cls(channel)

    async def relay(self, browser: Browser, stats: RelayStats) -> str:
        if self.channel.early:
            await browser.send_bytes(self.channel.early)
            stats.to_browser += len(self.channel.early)
        return await first_to_end(self._to_browser(browser, stats), self._to_device(browser, stats))

    async def _to_browser(self, browser: Browser, stats: RelayStats) -> str:
        device = self.channel.client
        while (item := await device.receive()) is not None:
            if isinstance(item, Frame):
                return f"the device sent {item.type.name} inside the KVM channel"
            await browser.send_bytes(item.data)
            stats.to_browser += len(item.data)
        return f"the device ended the session ({device.end_reason})"

    async def _to_device(self, browser: Browser, stats: RelayStats) -> str:
        rewrite = ViewerFilter()
        while True:
            message = await browser.receive()
            if not isinstance(message, bytes):
                if message["type"] == "close":
                    return "closed by the user"
                raise ValueError(f"unknown control message {message['type'][:32]!r}")
            try:
                forward = rewrite.feed(message)
            except RfbProtocolError as exc:
                raise ValueError(f"RFB from the viewer: {exc}") from None
            if forward:
                await self.channel.client.send(forward)
                stats.to_device += len(forward)

    async def close(self) -> None:
        await self.channel.client.aclose()
