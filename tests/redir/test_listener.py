"""The engine's redirection listener with our own client: SOL both ways, every admission rule, audits, the
lockout shared with WS-MAN, termination from WS-MAN, timeouts, and what garbage does (nothing lasting)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from outband.aio.errors import AuthenticationError
from outband.aio.redirection import HostedSession, RedirectionClient, ServerLimits, SessionRefused, open_tcp_stream
from outband.aio.tls import fingerprint_of
from outband.client import services
from outband.client.amt import AmtClient
from outband.client.redirection import SolSession
from outband.engine.acl import Account
from outband.engine.platforms.base import PowerAction
from outband.engine.redirection import RedirectionConfig, SessionContext, default_handlers
from outband.engine.redirection.host import RedirectionListener
from outband.engine.server import EngineServer, Ports
from outband.engine.services.optin import Purpose
from outband.engine.services.redirection import RedirectionState
from outband.engine.services.sessions import open_sessions
from outband.proto.amt import Realm
from outband.proto.amtlog import AuditRecord
from outband.proto.digest import ha1
from outband.proto.redir.frames import Frame, FrameDecoder, MessageType, Outgoing, RawData, Role, SessionKind
from outband.proto.redir.session import AuthType, StartStatus, encode_auth, encode_start
from outband.proto.redir.sol import AMTTERM_SETTINGS, HostStatus, SolSettings, SolTiming
from outband.proto.redir.sol import encode_start as encode_sol_start
from outband.testing.engine import running_engine

from ._kit import RedirEnv, audit_ids, eventually, instant_machine, redirection_engine, set_redirection

PROMPT = rb"root@outband-sim:~# "


async def read_until(sol: SolSession, pattern: bytes, within: float = 5.0) -> bytes:
    seen = b""
    async with asyncio.timeout(within):
        while re.search(pattern, seen, re.DOTALL) is None:
            chunk = await sol.read()
            assert chunk, f"SOL ended ({sol.end_reason}) before {pattern!r}; saw {seen!r}"
            seen += chunk
    return seen


def sol(r: RedirEnv, **kwargs: object) -> SolSession:
    kwargs.setdefault("password", r.password)
    return SolSession(r.host, port=r.port, timeout=5.0, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- SOL


@pytest.mark.parametrize("auth", [AuthType.DIGEST, AuthType.DIGEST_NO_QOP, AuthType.CLEAR])
async def test_sol_both_ways_with_each_login_type(auth: AuthType) -> None:
    async with redirection_engine() as r, sol(r, preference=(auth,)) as session:
        await session.write(b"echo hello from the console\r")
        await read_until(session, rb"\r\nhello from the console\r\n" + PROMPT)
        assert await r.machine.request_power(PowerAction.RESET)  # the machine speaks first
        await read_until(session, rb"Memory test: .*Booting from hard disk.*" + PROMPT)


async def test_sol_over_tls_with_a_pinned_certificate(tmp_path: Path) -> None:
    async with redirection_engine(tls_dir=tmp_path) as r:
        session = SolSession(r.host, password=r.password, port=r.tls_port, tls=True,
                             fingerprint=fingerprint_of(tmp_path / "cert.pem"))
        async with session:
            await session.write(b"hostname\r")
            await read_until(session, rb"\r\noutband-sim\r\n")


async def test_power_changes_reach_the_console() -> None:
    async with redirection_engine(machine=instant_machine(powered=False)) as r, sol(r) as session:
        await eventually(lambda: session.host_status is not None)
        assert not session.host_status & HostStatus.POWERED_ON
        amt = AmtClient(r.env.host, transport=r.env.transport())
        assert await services.request_power(amt, 2) == 0
        await read_until(session, rb"BIOS .*" + PROMPT)
        assert session.host_status is not None
        assert session.host_status & HostStatus.POWERED_ON


async def test_a_break_abandons_the_line_being_typed() -> None:
    async with redirection_engine() as r, sol(r) as session:
        await session.write(b"rm -rf")
        await read_until(session, rb"rm -rf")
        await session.send_break()
        await read_until(session, rb"\^C\r\n" + PROMPT)
        await session.write(b"pwd\r")
        await read_until(session, rb"\r\n/root\r\n")


async def test_sessions_are_audited_with_user_and_address() -> None:
    async with redirection_engine() as r:
        async with sol(r):
            await eventually(lambda: 1804 in audit_ids(r))
        await eventually(lambda: 1805 in audit_ids(r))
        records = [AuditRecord.decode(raw) for raw in r.env.engine.store.read_log("audit")]
        opened, closed = (next(a for a in records if a.full_id == event) for event in (1804, 1805))
        assert (opened.initiator, opened.address) == ("admin", "127.0.0.1")
        assert (closed.initiator, closed.address) == ("admin", "127.0.0.1")


# ---------------------------------------------------------------------------------------------- admission


async def ends_without_an_answer(reader: asyncio.StreamReader) -> bool:
    """The peer closed (or reset: it closed with our bytes unread) without sending anything."""
    async with asyncio.timeout(2):
        try:
            return await reader.read() == b""
        except ConnectionResetError:
            return True


async def test_listener_switched_off_closes_connections_at_once() -> None:
    async with redirection_engine(enable=False) as r:
        reader, writer = await asyncio.open_connection(r.host, r.port)
        writer.write(encode_start(SessionKind.SOL))
        assert await ends_without_an_answer(reader)
        writer.close()


async def test_sol_switched_off_refuses_the_session() -> None:
    async with redirection_engine() as r:
        await set_redirection(r.env, state=32768 + 1)  # IDE-R only
        with pytest.raises(SessionRefused) as refused:
            await sol(r).open()
        assert refused.value.status == StartStatus.UNSUPPORTED


async def test_only_accounts_with_the_redirection_realm_get_in() -> None:
    async with redirection_engine() as r:
        accounts = r.env.engine.accounts
        for name, realms in (("viewer", {Realm.HARDWARE_ASSET}), ("operator", {Realm.REDIRECTION})):
            accounts.save(Account(accounts.next_handle(), name, ha1(name, r.env.engine.realm, "Op3rator!pw"),
                                  frozenset(realms)))
        with pytest.raises(AuthenticationError):
            await sol(r, username="viewer", password="Op3rator!pw").open()
        async with sol(r, username="operator", password="Op3rator!pw") as session:
            await session.write(b"whoami\r")
            await read_until(session, rb"\r\nroot\r\n")
        assert 1605 not in audit_ids(r)  # a right password without the realm is not a failed login


async def test_one_sol_session_at_a_time() -> None:
    async with redirection_engine() as r:
        first = sol(r)
        await first.open()
        with pytest.raises(SessionRefused) as refused:
            await sol(r).open()
        assert refused.value.status == StartStatus.BUSY
        await first.close()
        await eventually(lambda: not open_sessions(r.env.engine))
        async with sol(r) as again:
            await again.write(b"uname\r")
            await read_until(again, rb"\r\nLinux\r\n")


async def test_ten_failed_redirection_logins_lock_out_ws_man_too() -> None:
    async with redirection_engine() as r:
        for _ in range(10):
            with pytest.raises(AuthenticationError):
                await sol(r, password="Wrong.Passw0rd").open()
        assert audit_ids(r).count(1605) == 10
        with pytest.raises(AuthenticationError):
            await AmtClient(r.env.host, transport=r.env.transport()).get("AMT_GeneralSettings")
        with pytest.raises(AuthenticationError):  # and the right password does not open SOL either
            await sol(r).open()


class Idle:
    """A session kind that only exists to be admitted (IDE-R's slot, with storage-redirection consent)."""

    kind = SessionKind.IDER
    audit_events = (0, 1)
    consent: Purpose | None = Purpose.REDIRECTION

    def enabled(self, state: RedirectionState) -> bool:
        return state.ider

    def open(self, ctx: SessionContext) -> HostedSession | str:
        return IdleSession()


class IdleSession:
    finished: str | None = None

    def receive(self, item: Frame | RawData, now: float) -> None: ...

    def poll(self, now: float) -> float | None:
        return None

    def outgoing(self) -> list[Outgoing]:
        return []

    def close(self, reason: str) -> None:
        self.finished = reason


async def test_a_kind_that_needs_consent_waits_for_the_code() -> None:
    async with redirection_engine() as r:
        engine = r.env.engine
        listener = RedirectionListener(engine, {**default_handlers(), SessionKind.IDER: Idle()})
        server = await asyncio.start_server(listener.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        amt = AmtClient(r.env.host, transport=r.env.transport())
        optin = await amt.get("IPS_OptInService")
        optin["OptInRequired"] = 0xFFFFFFFF  # consent for everything, as in client control mode
        await amt.put(optin)

        async def login() -> RedirectionClient:
            stream = await open_tcp_stream("127.0.0.1", port)
            return await RedirectionClient.login(stream, SessionKind.IDER, "admin", r.password)

        with pytest.raises(AuthenticationError):
            await login()
        async with sol(r):  # SOL itself needs no consent (IRG userconsent1.htm)
            pass
        assert (await amt.invoke("IPS_OptInService", "StartOptIn"))["ReturnValue"] == 0
        code = int(r.machine.screen_messages[-1].rsplit(" ", 1)[1])
        assert (await amt.invoke("IPS_OptInService", "SendOptInCode", {"OptInCode": code}))["ReturnValue"] == 0
        client = await login()
        assert audit_ids(r)[-1] == 1800  # IDE-R session opened
        await client.aclose()
        server.close()
        await listener.aclose()
        await server.wait_closed()


# ---------------------------------------------------------------------------------------------- WS-MAN side


@pytest.mark.parametrize("how", ["terminate", "disable"])
async def test_ws_man_can_end_a_running_session(how: str) -> None:
    async with redirection_engine() as r, sol(r) as session:
        await eventually(lambda: bool(open_sessions(r.env.engine)))
        amt = AmtClient(r.env.host, transport=r.env.transport())
        if how == "terminate":
            out = await amt.invoke("AMT_RedirectionService", "TerminateSession", {"SessionType": 1})
            assert out["ReturnValue"] == 0
        else:
            await set_redirection(r.env, state=32768)
        async with asyncio.timeout(5):
            while await session.read():
                pass
        assert session.end_reason is not None
        await eventually(lambda: 1805 in audit_ids(r))


# ---------------------------------------------------------------------------------------------- hostile peers


async def test_garbage_closes_the_connection_and_nothing_else() -> None:
    async with redirection_engine() as r:
        for junk in (b"\xff" * 64, bytes.fromhex("1300000004ffffff7f"), encode_start(SessionKind.SOL) + b"\x2c"):
            reader, writer = await asyncio.open_connection(r.host, r.port)
            writer.write(junk)
            async with asyncio.timeout(2):
                await reader.read()  # whatever was answered, the connection ends
            assert reader.at_eof()
            writer.close()
        async with sol(r) as session:
            await session.write(b"echo alive\r")
            await read_until(session, rb"\r\nalive\r\n")


async def test_connections_beyond_the_bound_are_closed_on_arrival() -> None:
    async with redirection_engine(config=RedirectionConfig(max_connections=2)) as r:
        held = [await asyncio.open_connection(r.host, r.port) for _ in range(2)]
        await eventually(lambda: r.listener.connections == 2)
        reader, writer = await asyncio.open_connection(r.host, r.port)
        assert await ends_without_an_answer(reader)
        writer.close()
        for _, held_writer in held:
            held_writer.close()
        await eventually(lambda: r.listener.connections == 0)
        async with sol(r) as session:  # room again
            await session.write(b"echo room\r")
            await read_until(session, rb"\r\nroom\r\n")


async def test_a_silent_connection_is_dropped_after_the_login_timeout() -> None:
    config = RedirectionConfig(limits=ServerLimits(login_timeout=0.2))
    async with redirection_engine(config=config) as r:
        reader, writer = await asyncio.open_connection(r.host, r.port)
        assert await ends_without_an_answer(reader)
        writer.close()


async def raw_sol(r: RedirEnv, settings: SolSettings) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Log in (clear text, like amtterm) and start SOL by hand."""
    reader, writer = await asyncio.open_connection(r.host, r.port)
    writer.write(encode_start(SessionKind.SOL))
    assert (await reader.readexactly(13))[1] == 0
    writer.write(encode_auth(AuthType.CLEAR, b"\x05admin" + bytes([len(r.password)]) + r.password.encode()))
    assert (await reader.readexactly(9))[1] == 0
    writer.write(encode_sol_start(0, settings))
    assert (await reader.readexactly(23))[1] == 0
    return reader, writer


async def test_a_console_that_stops_talking_is_dropped_after_its_idle_timeout() -> None:
    config = RedirectionConfig(sol=SolTiming(time_scale=0.1))  # amtterm's 10 s idle timeout becomes 1 s
    async with redirection_engine(config=config) as r:
        reader, writer = await raw_sol(r, AMTTERM_SETTINGS)
        decoder = FrameDecoder(Role.AMT)
        async with asyncio.timeout(3):
            decoder.feed(await reader.read())  # everything until the engine hangs up
        writer.close()
        types = []
        while (frame := decoder.next_frame()) is not None:
            assert isinstance(frame, Frame)
            types.append(frame.type)
        assert MessageType.SOL_HEARTBEAT in types  # we kept talking; the console did not answer
        await eventually(lambda: 1805 in audit_ids(r))


async def test_a_long_idle_period_does_not_drop_a_console_that_heartbeats() -> None:
    config = RedirectionConfig(sol=SolTiming(max_heartbeat=0.05, min_idle_timeout=0.2))
    settings = SolSettings(heartbeat_interval=50, host_session_rx_timeout=200)
    async with redirection_engine(config=config) as r, sol(r, settings=settings) as session:
        await asyncio.sleep(1.2)  # six idle timeouts
        await session.write(b"echo awake\r")
        await read_until(session, rb"\r\nawake\r\n")


# ---------------------------------------------------------------------------------------------- the server


async def test_engine_server_listens_on_the_redirection_ports() -> None:
    async with running_engine(machine=instant_machine()) as env:
        await set_redirection(env)
        server = EngineServer({"127.0.0.1": env.engine}, Ports(0, None, redirection=0))
        await server.start()
        try:
            port = server.bound_port(redirection=True)
            async with SolSession("127.0.0.1", password=env.password, port=port) as session:
                await session.write(b"echo served\r")
                await read_until(session, rb"\r\nserved\r\n")
        finally:
            await server.stop()
