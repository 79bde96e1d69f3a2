"""The SOL and KVM WebSockets: tickets, who may open them, what they carry, what a refusal says, and the
audit trail of every session."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from sqlalchemy import select
from tests.console._kit import create_token
from tests.web._kit import Served, Socket, eventually, register, sim_engine

from outband.client.amt import AmtClient
from outband.client.redirection import SolSession
from outband.console.auth import Principal
from outband.console.db.models import AuditEntry, User
from outband.console.permissions import Role
from outband.console.relay.tickets import TicketBook, TicketHolder
from outband.console.secrets import SecretBox, generate_key
from outband.proto.rfb.client import RfbClient
from outband.proto.rfb.pixels import RGB888

IDER_ONLY = 32768 + 1
"""AMT_RedirectionService.EnabledState: IDE-R on, SOL off."""


async def ticket(http: aiohttp.ClientSession, console: Served, device_id: int, kind: str) -> str:
    async with http.post(f"{console.url}/api/devices/{device_id}/redirect-tickets", json={"kind": kind}) as reply:
        assert reply.status == 201, await reply.text()
        body = await reply.json()
    assert body["url"] == f"/api/devices/{device_id}/{kind}"
    return str(body["ticket"])


async def open_socket(console: Served, device_id: int, kind: str, *, ticket: str | None = None,
                      http: aiohttp.ClientSession | None = None, **kwargs: object) -> Socket:
    query = f"?ticket={ticket}" if ticket is not None else ""
    client = http or aiohttp.ClientSession()
    ws = await client.ws_connect(f"{console.ws_url}/api/devices/{device_id}/{kind}{query}", **kwargs)  # type: ignore[arg-type]
    if http is None:
        ws._outband_owner = client  # type: ignore[attr-defined]
    return Socket(ws)


async def close_socket(socket: Socket) -> None:
    await socket.ws.close()
    owner = getattr(socket.ws, "_outband_owner", None)
    if owner is not None:
        await owner.close()


async def audit_actions(console: Served) -> list[tuple[str, str, dict]]:
    async with console.runtime.db.read() as session:
        rows = (await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        return [(e.action, e.outcome, e.detail) for e in rows]


async def test_sol_carries_the_serial_console_both_ways_and_is_audited(console, admin) -> None:
    async with sim_engine() as env:
        # a pin stored for TLS plays no part while the device is reached without it (outband up stores one)
        device_id = await register(console.runtime, env, "pc-1", fingerprint="ab" * 32)
        socket = await open_socket(console, device_id, "sol", ticket=await ticket(admin, console, device_id, "sol"))
        try:
            assert await socket.control() == {"type": "status", "state": "connecting", "device": "pc-1"}
            assert await socket.control() == {"type": "open", "device": "pc-1"}
            await socket.ws.send_bytes(b"echo relayed-through-the-console\r")
            await socket.payload_until(b"relayed-through-the-console\r\n")
            await socket.ws.send_bytes(b"half a line")
            await socket.payload_until(b"half a line")
            await socket.ws.send_json({"type": "break"})  # the shell drops the line, as on Ctrl-C
            await socket.ws.send_bytes(b"echo after-break\r")
            output = await socket.payload_until(b"after-break\r\n")
            assert b"half a lineecho" not in output
            await socket.ws.send_json({"type": "close"})
            closed = await socket.control()
            assert closed == {"type": "closed", "reason": "closed by the user"}
            assert await socket.closed() == 1000
        finally:
            await close_socket(socket)
        actions = await audit_actions(console)
        opened = [a for a in actions if a[0] == "sol.open"]
        ended = [a for a in actions if a[0] == "sol.close"]
        assert [o[1] for o in opened] == ["ok"]
        assert ended[0][2]["bytes_to_device"] == len(b"echo relayed-through-the-console\rhalf a lineecho after-break\r")
        assert ended[0][2]["bytes_to_browser"] > 0
        assert ("issue_redirect_ticket", "ok") in [(a[0], a[1]) for a in actions]


async def test_a_ticket_opens_one_socket_once_for_its_device_and_kind(console, admin) -> None:
    async with sim_engine() as env:
        device_id = await register(console.runtime, env, "pc-1")
        other_id = await register(console.runtime, env, "pc-2", host="127.0.0.9")
        kvm_ticket = await ticket(admin, console, device_id, "kvm")
        for wrong in (await open_socket(console, device_id, "sol", ticket=kvm_ticket),
                      await open_socket(console, device_id, "kvm", ticket=kvm_ticket)):  # spent by the first try
            try:
                error = await wrong.control()
                assert error["type"] == "error"
                assert error["code"] == "unauthorized"
                assert await wrong.closed() == 4401
            finally:
                await close_socket(wrong)
        sol_ticket = await ticket(admin, console, device_id, "sol")
        elsewhere = await open_socket(console, other_id, "sol", ticket=sol_ticket)
        try:
            assert (await elsewhere.control())["code"] == "unauthorized"
        finally:
            await close_socket(elsewhere)


async def test_a_ticket_is_good_on_any_console_process_once_and_not_after_it_expires(console) -> None:
    """Tickets are sealed with the console's key, not kept in a process: a second book on the same database
    and key (another console process behind a load balancer) redeems what the first issued -- once."""
    runtime = console.runtime
    now = [1_000_000.0]
    issuer = TicketBook(runtime.box, runtime.db, clock=lambda: now[0])
    elsewhere = TicketBook(runtime.box, runtime.db, clock=lambda: now[0])
    someone = Principal(1, "admin", Role.ADMIN, "session", 7)
    token, seconds = issuer.issue(someone, 5, "sol")
    assert seconds == 30
    assert await elsewhere.redeem(token, 5, "sol") == TicketHolder(1, "session", 7)
    assert await issuer.redeem(token, 5, "sol") is None  # spent, whichever process saw it first
    stale, _ = issuer.issue(someone, 5, "sol")
    now[0] += 31
    assert await elsewhere.redeem(stale, 5, "sol") is None
    mismatched, _ = issuer.issue(someone, 5, "sol")
    assert await elsewhere.redeem(mismatched, 5, "kvm") is None
    assert await elsewhere.redeem(mismatched, 5, "sol") is None  # spent by the wrong try
    forged = TicketBook(SecretBox([generate_key()]), runtime.db, clock=lambda: now[0]).issue(someone, 5, "sol")[0]
    assert await elsewhere.redeem(forged, 5, "sol") is None
    assert await elsewhere.redeem("x" * 5000, 5, "sol") is None


async def test_a_viewer_gets_neither_a_ticket_nor_a_socket(console, viewer) -> None:
    async with sim_engine() as env:
        device_id = await register(console.runtime, env, "pc-1")
        async with viewer.post(f"{console.url}/api/devices/{device_id}/redirect-tickets", json={"kind": "sol"}) as r:
            assert r.status == 403
        socket = await open_socket(console, device_id, "sol", http=viewer)  # with its session cookie
        try:
            error = await socket.control()
            assert error["code"] == "forbidden"
            assert "device.redirect" in error["message"]
            assert await socket.closed() == 4403
        finally:
            await socket.ws.close()
        async with console.runtime.db.read() as session:
            viewer_id = (await session.execute(select(User.id).where(User.username == "viewer"))).scalar_one()
        token = await create_token(console.runtime, viewer_id)
        socket = await open_socket(console, device_id, "kvm", headers={"Authorization": f"Bearer {token}"})
        try:
            assert (await socket.control())["code"] == "forbidden"
        finally:
            await close_socket(socket)
        denied = [a for a in await audit_actions(console) if a[1] == "denied"]
        assert [a[0] for a in denied] == ["issue_redirect_ticket", "sol.open", "kvm.open"]


async def test_the_session_cookie_only_opens_sockets_from_the_consoles_own_pages(console, admin) -> None:
    async with sim_engine() as env:
        device_id = await register(console.runtime, env, "pc-1")
        foreign = await open_socket(console, device_id, "sol", http=admin, origin="http://evil.example")
        try:
            assert (await foreign.control())["code"] == "forbidden"
            assert await foreign.closed() == 4403
        finally:
            await foreign.ws.close()
        own = await open_socket(console, device_id, "sol", http=admin, origin=console.url)
        try:
            assert (await own.control())["type"] == "status"
            assert await own.control() == {"type": "open", "device": "pc-1"}
        finally:
            await own.ws.close()
        anonymous = await open_socket(console, device_id, "sol")
        try:
            assert (await anonymous.control())["code"] == "unauthorized"
        finally:
            await close_socket(anonymous)
        denied = [a for a in await audit_actions(console) if a[1] == "denied"]
        assert [(a[0], a[2]["reason"]) for a in denied] == [("sol.open", "origin")]


async def test_kvm_relays_rfb_to_a_viewer_once_consent_allows(console, admin) -> None:
    async with sim_engine(kvm_consent=True) as env:
        device_id = await register(console.runtime, env, "pc-1")
        refused = await open_socket(console, device_id, "kvm", ticket=await ticket(admin, console, device_id, "kvm"))
        try:
            await refused.control()
            error = await refused.control()
            assert error["type"] == "error"
            assert error["code"] == "consent"
            assert "code shown on the device's screen" in error["message"]
            assert await refused.closed() == 4503
        finally:
            await close_socket(refused)
        optin_free = await _no_consent(env)
        assert optin_free
        socket = await open_socket(console, device_id, "kvm", ticket=await ticket(admin, console, device_id, "kvm"))
        try:
            await socket.control()
            assert await socket.control() == {"type": "open", "device": "pc-1"}
            viewer = RfbClient(pixel_format=RGB888)
            async with asyncio.timeout(15):
                while viewer.updates < 1:
                    message = await socket.ws.receive()
                    assert message.type is aiohttp.WSMsgType.BINARY
                    viewer.receive_data(message.data)
                    viewer.events()
                    outgoing = viewer.data_to_send()
                    if outgoing:
                        await socket.ws.send_bytes(outgoing)
            assert (viewer.framebuffer.width, viewer.framebuffer.height) == (720, 400)
            assert any(viewer.rgb())  # the shell's prompt is on the screen
        finally:
            await close_socket(socket)

        async def kvm_audit() -> list[tuple[str, str, object]]:
            return [(a[0], a[1], a[2].get("reason")) for a in await audit_actions(console) if a[0].startswith("kvm.")]

        await eventually(lambda: _has(kvm_audit(), 3))
        entries = await kvm_audit()
        assert entries[0] == ("kvm.open", "failed", "consent")
        assert entries[1][:2] == ("kvm.open", "ok")
        assert entries[2][:2] == ("kvm.close", "ok")


async def _has(entries, count: int) -> bool:
    return len(await entries) >= count


async def _no_consent(env) -> bool:
    amt = AmtClient(env.host, transport=env.transport())
    optin = await amt.get("IPS_OptInService")
    optin["OptInRequired"] = 0
    await amt.put(optin)
    return (await amt.get("IPS_OptInService"))["OptInRequired"] == 0


@pytest.mark.parametrize("case", ["busy", "disabled", "unreachable"])
async def test_a_session_that_cannot_start_says_why(console, admin, case) -> None:
    async with sim_engine() as env:
        device_id = await register(console.runtime, env, "pc-1",
                                   **({"host": "127.0.0.1"} if case == "unreachable" else {}))
        holder = SolSession(env.host, "admin", env.password, port=16994)
        if case == "busy":
            await holder.open()
        if case == "disabled":
            amt = AmtClient(env.host, transport=env.transport())
            assert (await amt.invoke("AMT_RedirectionService", "RequestStateChange",
                                     {"RequestedState": IDER_ONLY}))["ReturnValue"] == 0
        try:
            socket = await open_socket(console, device_id, "sol",
                                       ticket=await ticket(admin, console, device_id, "sol"))
            try:
                await socket.control()
                error = await socket.control()
                assert error["code"] == case, error
                assert await socket.closed() == 4503
            finally:
                await close_socket(socket)
        finally:
            await holder.close()


async def test_an_unknown_device_has_no_ticket_and_no_socket(console, admin) -> None:
    async with admin.post(f"{console.url}/api/devices/999/redirect-tickets", json={"kind": "sol"}) as reply:
        assert reply.status == 404
    socket = await open_socket(console, 999, "sol", http=admin)
    try:
        assert (await socket.control())["code"] == "not_found"
        assert await socket.closed() == 4404
    finally:
        await socket.ws.close()
