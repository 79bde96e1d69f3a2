"""Redirection in the browser: tickets, and the SOL and KVM WebSockets (``console.relay``).

The WebSocket routes are not REST operations (no OpenAPI entry, no ``require`` dependency): they check the
same permission, ``device.redirect``, themselves (``relay.access``) and audit every opening and end.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, WebSocket, status
from pydantic import BaseModel, ConfigDict, Field

from ...db.models import Device
from ...relay.kvm import KvmRelay
from ...relay.session import serve
from ...relay.sol import SolRelay
from ...relay.tickets import ticket_book
from ..common import NOT_FOUND, IdPath, not_found
from ..deps import PrincipalDep, RequiresRedirect, RuntimeDep

router = APIRouter(tags=["redirection"])


class TicketRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["sol", "kvm"]


class TicketIssued(BaseModel):
    ticket: str = Field(description="Open the WebSocket at `url` with ?ticket=<ticket>; good once.")
    expires_in: float = Field(description="Seconds the ticket stays valid.")
    url: str


@router.post("/devices/{device_id}/redirect-tickets", status_code=status.HTTP_201_CREATED, responses=NOT_FOUND)
async def issue_redirect_ticket(device_id: IdPath, body: TicketRequest, principal: PrincipalDep,
                                runtime: RuntimeDep, audit: RequiresRedirect) -> TicketIssued:
    """A single-use ticket that opens the device's SOL or KVM WebSocket within seconds (a browser cannot send
    the CSRF header with a WebSocket handshake; this POST carries it)."""
    audit.devices = [device_id]
    audit.detail = {"kind": body.kind}
    async with runtime.db.read() as session:
        if await session.get(Device, device_id) is None:
            raise not_found("device")
    ticket, seconds = ticket_book(runtime).issue(principal, device_id, body.kind)
    return TicketIssued(ticket=ticket, expires_in=seconds, url=f"/api/devices/{device_id}/{body.kind}")


WsDeviceId = Path(ge=1, le=2**31 - 1)


@router.websocket("/devices/{device_id}/sol")
async def sol_socket(ws: WebSocket, device_id: int = WsDeviceId) -> None:
    """Serial-over-LAN: binary frames carry the serial bytes; ``{"type": "break"}`` sends a break."""
    await serve(ws, device_id, "sol", SolRelay.open)


@router.websocket("/devices/{device_id}/kvm")
async def kvm_socket(ws: WebSocket, device_id: int = WsDeviceId) -> None:
    """KVM: after ``{"type": "open"}`` the binary frames are the RFB stream (hand the socket to noVNC)."""
    await serve(ws, device_id, "kvm", KvmRelay.open)
