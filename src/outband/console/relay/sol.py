"""Serial-over-LAN for xterm.js: serial bytes both ways in binary frames, a break as ``{"type": "break"}``.

The console keeps no copy of the session's bytes (the page keeps its own log for download); the audit trail
records who opened it, for how long, and how many bytes went each way.
"""

from __future__ import annotations

from ...client.redirection import SolSession
from ..devices.connect import DeviceTarget
from ..runtime import Runtime
from .device import redirection_streams
from .session import Browser, RelayStats, first_to_end


class SolRelay:
    def __init__(self, sol: SolSession) -> None:
        self.sol = sol

    @classmethod
    async def open(cls, runtime: Runtime, target: DeviceTarget) -> SolRelay:
        timeout = runtime.settings.device_timeout
        sol = SolSession(target.host, target.username, target.password, timeout=timeout,
                         stream_factory=redirection_streams(runtime, target, timeout))
        await sol.open()
        return cls(sol)

    async def relay(self, browser: Browser, stats: RelayStats) -> str:
        return await first_to_end(self._to_browser(browser, stats), self._to_device(browser, stats))

    async def _to_browser(self, browser: Browser, stats: RelayStats) -> str:
        while chunk := await self.sol.read():
            await browser.send_bytes(chunk)
            stats.to_browser += len(chunk)
        return f"the device ended the session ({self.sol.end_reason})"

    async def _to_device(self, browser: Browser, stats: RelayStats) -> str:
        while True:
            message = await browser.receive()
            if isinstance(message, bytes):
                await self.sol.write(message)
                stats.to_device += len(message)
            elif message["type"] == "break":
                await self.sol.send_break()
            elif message["type"] == "close":
                return "closed by the user"
            else:
                raise ValueError(f"unknown control message {message['type'][:32]!r}")

    async def close(self) -> None:
        await self.sol.close()
