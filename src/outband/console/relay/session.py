"""One redirection WebSocket from handshake to close, whatever it carries.

Theory of operation (:func:`serve`)::

    accept -> who is it (access.websocket_principal) --refused--> {"type": "error"}, close 4401/4403
           -> which device (load_target)            --missing--> {"type": "error"}, close 4404
           -> {"type": "status", "state": "connecting"}
           -> open the device session (Opener)      --fails----> audit <kind>.open failed,
                                                                 {"type": "error", "code": busy|consent|...}, 4503
           -> audit <kind>.open ok, {"type": "open"}
           -> relay until either side ends           ----------> audit <kind>.close (seconds, bytes, reason),
                                                                 {"type": "closed", "reason"}, close 1000

Frames: binary frames carry the session's payload both ways (serial bytes, or RFB); text frames are small
JSON objects with a ``type`` (control from the browser, status from the console).  Both sides' messages are
capped: a browser message larger than :data:`MAX_BROWSER_MESSAGE` ends the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, Protocol

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ...aio.errors import TransportError
from ..audit import FAILED, OK, record_entry
from ..auth import Principal
from ..devices.connect import DeviceTarget
from ..runtime import Runtime
from .access import CLOSE_NOT_FOUND, Refusal, websocket_principal
from .device import explain, load_target
from .tickets import RelayKind

MAX_BROWSER_MESSAGE: Final = 256 * 1024
MAX_CONTROL_MESSAGE: Final = 1024
CLOSE_NORMAL: Final = 1000
CLOSE_TOO_BIG: Final = 1009
MAX_REASON: Final = 120
"""A close frame's reason is at most 123 bytes."""


class BrowserGone(Exception):
    """The WebSocket closed (or broke) under us."""


@dataclass(slots=True)
class RelayStats:
    to_device: int = 0
    to_browser: int = 0


class Browser:
    """The WebSocket as a relay sees it: payload bytes and JSON control messages."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws

    async def send_json(self, **message: Any) -> None:
        await self._send(self.ws.send_text(json.dumps(message)))

    async def send_bytes(self, data: bytes) -> None:
        await self._send(self.ws.send_bytes(data))

    async def _send(self, sending: Coroutine[Any, Any, None]) -> None:
        try:
            await sending
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise BrowserGone(str(exc)) from None

    async def receive(self) -> bytes | dict[str, Any]:
        """The next payload (bytes) or control message (a dict with a string ``type``); raises
        :class:`BrowserGone` when the browser left, :class:`ValueError` for a message that breaks the rules."""
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise BrowserGone("closed by the browser")
        data, text = message.get("bytes"), message.get("text")
        if data is not None:
            if len(data) > MAX_BROWSER_MESSAGE:
                raise ValueError(f"a message of {len(data)} bytes is more than {MAX_BROWSER_MESSAGE}")
            return bytes(data)
        if text is None or len(text) > MAX_CONTROL_MESSAGE:
            raise ValueError("a control message is a JSON object of at most 1 KiB")
        try:
            control = json.loads(text)
        except ValueError:
            raise ValueError("a control message is a JSON object of at most 1 KiB") from None
        if not isinstance(control, dict) or not isinstance(control.get("type"), str):
            raise ValueError("a control message is a JSON object with a string \"type\"")
        return control

    async def refuse(self, refusal: Refusal) -> None:
        with contextlib.suppress(BrowserGone):
            await self.send_json(type="error", code=refusal.code, message=refusal.message)
        await self.close(refusal.close_code, refusal.message)

    async def close(self, code: int, reason: str = "") -> None:
        if self.ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await self.ws.close(code, reason.encode()[:MAX_REASON].decode(errors="ignore"))


class Opened(Protocol):
    """A device session, open, ready to be relayed."""

    async def relay(self, browser: Browser, stats: RelayStats) -> str:
        """Carry the session until one side ends it; return why it ended."""
        ...

    async def close(self) -> None: ...


Opener = Callable[[Runtime, DeviceTarget], Awaitable[Opened]]
"""Opens the device side of a session; raises a :class:`TransportError` when it cannot."""


async def serve(ws: WebSocket, device_id: int, kind: RelayKind, opener: Opener) -> None:
    runtime: Runtime = ws.app.state.runtime
    await ws.accept()
    browser = Browser(ws)
    principal = await websocket_principal(ws, runtime, device_id, kind)
    if isinstance(principal, Refusal):
        await browser.refuse(principal)
        return
    target = await load_target(runtime, device_id)
    if target is None:
        await browser.refuse(Refusal("not_found", "no such device", CLOSE_NOT_FOUND))
        return
    audit = _Audit(runtime, principal, ws, device_id, kind)
    try:
        await browser.send_json(type="status", state="connecting", device=target.name)
        try:
            opened = await opener(runtime, target)
        except TransportError as exc:
            refusal = await explain(runtime, target, kind, exc)
            await audit.record("open", FAILED, {"reason": refusal.code, "error": str(exc)[:200]})
            await browser.refuse(refusal)
            return
    except BrowserGone:
        return
    started = time.monotonic()
    stats = RelayStats()
    await audit.record("open", OK, {"host": target.host})
    try:
        await browser.send_json(type="open", device=target.name)
        reason = await opened.relay(browser, stats)
    except BrowserGone as exc:
        reason = str(exc)
    except ValueError as exc:
        reason = f"the browser broke the protocol: {exc}"
    except (TransportError, ConnectionError) as exc:
        reason = f"the device connection failed: {exc}"
    finally:
        await opened.close()
    await audit.record("close", OK, {"seconds": round(time.monotonic() - started, 1), "reason": reason[:200],
                                     "bytes_to_device": stats.to_device, "bytes_to_browser": stats.to_browser})
    with contextlib.suppress(BrowserGone):
        await browser.send_json(type="closed", reason=reason)
    await browser.close(CLOSE_NORMAL, reason)


async def first_to_end(*sides: Coroutine[Any, Any, str]) -> str:
    """Run the directions of a relay together; the first to finish ends the others and says why."""
    tasks = [asyncio.ensure_future(side) for side in sides]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, BrowserGone, TransportError, ConnectionError):
                await task


@dataclass(frozen=True, slots=True)
class _Audit:
    runtime: Runtime
    principal: Principal
    ws: WebSocket
    device_id: int
    kind: RelayKind

    async def record(self, event: str, outcome: str, detail: dict[str, Any]) -> None:
        await record_entry(self.runtime.db, action=f"{self.kind}.{event}", outcome=outcome,
                           actor=self.principal.username, actor_id=self.principal.user_id, via=self.principal.via,
                           client=self.ws.client.host if self.ws.client else None, devices=[self.device_id],
                           detail=detail)
