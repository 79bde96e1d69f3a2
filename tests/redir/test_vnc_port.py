"""KVM on port 5900 end to end: a console switches it on over WS-MAN (RFB password and Is5900PortEnabled in
IPS_KVMRedirectionSettingData, then CIM_KVMRedirectionSAP.RequestStateChange), and our RFB client logs in with VNC
Authentication and sees the machine's screen.  Off, it is closed like an unused port; wrong passwords, missing
consent, a KVM session already open (on either port) and the shared login lockout are refused with an RFB reason;
WS-MAN can end the session; every session is audited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from tests.redir._kit import eventually, instant_machine, set_redirection
from tests.redir._mediakit import enable_kvm
from typer.testing import CliRunner

from outband.aio.errors import AuthenticationError
from outband.aio.redirection import ServerLimits, SessionRefused
from outband.cli.main import app
from outband.client.amt import AmtClient
from outband.client.kvm import KvmSession
from outband.engine.launcher import LaunchOptions, launch
from outband.engine.platforms.framebuffer import VGA_PALETTE, TextFramebuffer
from outband.engine.redirection import RedirectionConfig
from outband.engine.redirection.vnc import VncListener
from outband.engine.server import Ports
from outband.engine.services import sessions
from outband.proto.amtlog import AuditRecord, InitiatorType
from outband.proto.redir.session import StartStatus
from outband.proto.rfb import RGB565, RfbClient, RfbProtocolError
from outband.proto.rfb.keys import keysyms_for_text
from outband.proto.rfb.pixels import PaletteEncoder, to_rgb
from outband.proto.wsman.faults import WsmanFault
from outband.testing.engine import RunningEngine, running_engine

RFB_PASSWORD = "Vnc#5900"
KVM_SETTINGS = "IPS_KVMRedirectionSettingData"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def vnc_engine(*, monotonic: Callable[[], float] | None = None) -> AsyncIterator[RunningEngine]:
    """An engine listening on an ephemeral 5900 (and 16994), nothing switched on yet."""
    async with running_engine(machine=instant_machine(), monotonic=monotonic,
                              ports=Ports(0, None, redirection=0, vnc=0)) as env:
        yield env


def vnc_port(env: RunningEngine) -> int:
    return env.server.bound_port(env.host, vnc=True)


async def set_port_5900(env: RunningEngine, *, enabled: bool = True, password: str | None = RFB_PASSWORD) -> None:
    """Put IPS_KVMRedirectionSettingData as consoles do (SDAG ``enable_remote_kvm``)."""
    amt = AmtClient(env.host, transport=env.transport())
    settings = await amt.get(KVM_SETTINGS)
    settings["Is5900PortEnabled"] = enabled
    if password is not None:
        settings["RFBPassword"] = password
    await amt.put(settings)


async def enable_vnc(env: RunningEngine, *, consent: bool = False) -> None:
    await set_port_5900(env)
    await enable_kvm(env, consent=consent)


def audit_ids(env: RunningEngine) -> list[int]:
    return [AuditRecord.decode(raw).full_id for raw in env.engine.store.read_log("audit")]


def initiators(env: RunningEngine) -> list[InitiatorType]:
    return [InitiatorType(AuditRecord.decode(raw).initiator_type) for raw in env.engine.store.read_log("audit")]


class Viewer:
    """Our RFB client on a TCP connection to port 5900."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rfb: RfbClient) -> None:
        self.reader, self.writer, self.rfb = reader, writer, rfb

    async def exchange(self, until: Callable[[RfbClient], bool], within: float = 10.0) -> None:
        async def run() -> None:
            while not until(self.rfb):
                self.writer.write(self.rfb.data_to_send())
                await self.writer.drain()
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionResetError("the engine closed the connection")
                self.rfb.receive_data(data)

        await asyncio.wait_for(run(), within)

    async def closed_by_engine(self, within: float = 10.0) -> bool:
        return await asyncio.wait_for(self.reader.read(65536), within) == b""

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@asynccontextmanager
async def viewer(env: RunningEngine, password: str = RFB_PASSWORD, port: int | None = None
                 ) -> AsyncIterator[Viewer]:
    """A viewer logged in and holding the first full picture (raises the engine's refusal otherwise)."""
    reader, writer = await asyncio.open_connection(env.host, port or vnc_port(env))
    view = Viewer(reader, writer, RfbClient(password=password))
    try:
        await view.exchange(lambda rfb: rfb.updates > 0)
        yield view
    finally:
        await view.close()


async def refusal(env: RunningEngine, password: str = RFB_PASSWORD) -> str:
    with pytest.raises(RfbProtocolError, match="refused the connection") as refused:
        async with viewer(env, password):
            pass
    return str(refused.value)


async def closed_at_once(env: RunningEngine, port: int | None = None) -> bool:
    reader, writer = await asyncio.open_connection(env.host, port or vnc_port(env))
    try:
        return await asyncio.wait_for(reader.read(100), 10.0) == b""  # not even the RFB version
    finally:
        writer.close()
        await writer.wait_closed()


def expected_rgb(env: RunningEngine) -> bytes:
    """The engine's text screen drawn afresh, in the pixel format the viewer asked for."""
    picture = TextFramebuffer(env.machine.console.screen)
    indices = picture.region(0, 0, picture.width, picture.height)
    return to_rgb(PaletteEncoder(RGB565, VGA_PALETTE).pixels_of(indices), RGB565)


# ---------------------------------------------------------------------------------------------- switching on


async def test_the_port_serves_the_screen_only_once_port_password_and_kvm_are_all_on() -> None:
    async with vnc_engine() as env:
        assert await closed_at_once(env)  # nothing switched on: like a port nobody listens on
        await set_port_5900(env)
        assert await closed_at_once(env)  # port and password, but KVM is off
        await enable_kvm(env)
        async with viewer(env) as view:
            assert view.rfb.version == (3, 8)
            assert view.rfb.name == env.machine.display.hostname
            assert (view.rfb.framebuffer.width, view.rfb.framebuffer.height) == (720, 400)
            assert view.rfb.rgb() == expected_rgb(env)
            assert sessions.open_sessions(env.engine) == [sessions.SessionKind.KVM]
            kvm_sap = await AmtClient(env.host, transport=env.transport()).get("CIM_KVMRedirectionSAP")
            assert kvm_sap["EnabledState"] == 2  # a KVM session is running
        await eventually(lambda: sessions.open_sessions(env.engine) == [])
        await eventually(lambda: 1809 in audit_ids(env))
        assert audit_ids(env)[-2:] == [1808, 1809]
        assert initiators(env)[-2:] == [InitiatorType.KVM_DEFAULT_PORT] * 2  # who: the viewer on the KVM port
        await set_port_5900(env, enabled=False, password=None)
        assert await closed_at_once(env)


async def test_keys_typed_over_port_5900_reach_the_machine_and_the_picture_follows() -> None:
    async with vnc_engine() as env:
        await enable_vnc(env)
        async with viewer(env) as view:
            for keysym in keysyms_for_text("echo typed-on-5900\n"):
                view.rfb.key(keysym, True)
                view.rfb.key(keysym, False)
            await view.exchange(lambda rfb: rfb.rgb() == expected_rgb(env)
                                and sum("typed-on-5900" in line for line in env.machine.console.screen.text()) == 2)


@pytest.mark.parametrize("password", ["short1!", "nodigits!A", "NOLOWER1!", "Has,comma1a", "noSpecial12"])
async def test_password_policy_violations_are_refused_and_the_port_stays_shut(password: str) -> None:
    async with vnc_engine() as env:
        await enable_kvm(env)
        with pytest.raises(WsmanFault) as fault:
            await set_port_5900(env, password=password)
        assert fault.value.subcode is not None
        assert fault.value.subcode.local == "InvalidParameter"
        with pytest.raises(WsmanFault):
            await set_port_5900(env, password=None)  # no password stored: the port cannot be switched on
        assert await closed_at_once(env)


# ---------------------------------------------------------------------------------------------- refusals


async def test_a_wrong_password_is_refused_and_every_third_in_a_row_is_audited() -> None:
    async with vnc_engine() as env:
        await enable_vnc(env)
        for _ in range(3):
            assert "authentication failed" in await refusal(env, "Wrong#99")
        assert audit_ids(env).count(1812) == 1  # VNC Password Failed 3 Times
        assert initiators(env)[audit_ids(env).index(1812)] is InitiatorType.KVM_DEFAULT_PORT
        assert sessions.open_sessions(env.engine) == []
        async with viewer(env) as view:
            assert view.rfb.ready


async def test_wrong_passwords_share_the_lockout_of_digest_logins() -> None:
    clock = FakeClock()
    async with vnc_engine(monotonic=clock) as env:
        await enable_vnc(env)
        for _ in range(10):
            assert "authentication failed" in await refusal(env, "Wrong#99")
        assert "too many failed logins" in await refusal(env)  # the right password, during the lockout
        with pytest.raises(AuthenticationError):  # WS-MAN is locked out too: one count for every door
            await AmtClient(env.host, transport=env.transport()).get("AMT_GeneralSettings")
        clock.now += 5.0
        async with viewer(env) as view:
            assert view.rfb.ready


async def test_kvm_consent_is_required_on_port_5900_too() -> None:
    async with vnc_engine() as env:
        await enable_vnc(env, consent=True)
        assert "user consent is required" in await refusal(env)
        assert sessions.open_sessions(env.engine) == []


async def test_one_kvm_session_at_a_time_across_both_ports() -> None:
    async with vnc_engine() as env:
        await enable_vnc(env)
        await set_redirection(env)
        async with viewer(env):
            assert "already open" in await refusal(env)  # a second viewer
            with pytest.raises(SessionRefused) as refused:
                async with KvmSession(env.host, "admin", env.password, port=env.redirection_port, timeout=10.0):
                    pass  # the redirection KVM session is refused while 5900 holds it
            assert refused.value.status == StartStatus.BUSY
        await eventually(lambda: sessions.open_sessions(env.engine) == [])
        async with KvmSession(env.host, "admin", env.password, port=env.redirection_port, timeout=10.0):
            assert "already open" in await refusal(env)


async def test_disabling_kvm_over_ws_man_ends_the_5900_session() -> None:
    async with vnc_engine() as env:
        await enable_vnc(env)
        async with viewer(env) as view:
            amt = AmtClient(env.host, transport=env.transport())
            output = await amt.invoke("CIM_KVMRedirectionSAP", "RequestStateChange", {"RequestedState": 3})
            assert output["ReturnValue"] == 0
            assert await view.closed_by_engine()
        await eventually(lambda: 1809 in audit_ids(env))
        assert sessions.open_sessions(env.engine) == []
        assert await closed_at_once(env)


async def test_closing_port_5900_ends_its_viewer_but_not_a_kvm_session_on_the_redirection_port() -> None:
    async with vnc_engine() as env:
        await enable_vnc(env)
        async with viewer(env) as view:
            await set_port_5900(env, enabled=False, password=None)
            assert await view.closed_by_engine()
        await eventually(lambda: sessions.open_sessions(env.engine) == [])
        await set_port_5900(env)
        await set_redirection(env)
        async with KvmSession(env.host, "admin", env.password, port=env.redirection_port, timeout=10.0):
            await set_port_5900(env, enabled=False, password=None)
            assert sessions.open_sessions(env.engine) == [sessions.SessionKind.KVM]  # not a viewer on 5900


async def test_a_viewer_that_does_not_log_in_is_closed_after_the_login_timeout() -> None:
    async with vnc_engine() as env:
        await enable_vnc(env)
        listener = VncListener(env.engine, RedirectionConfig(limits=ServerLimits(login_timeout=0.2)))
        server = await asyncio.start_server(listener.serve, "127.0.0.1", 0)
        port = int(server.sockets[0].getsockname()[1])
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.readexactly(12), 10.0) == b"RFB 003.008\n"
            writer.write(b"RFB 003.008\n")
            assert await asyncio.wait_for(reader.readexactly(2), 10.0) == b"\x01\x02"  # VNC Authentication only
            assert await asyncio.wait_for(reader.read(100), 10.0) == b""  # no answer: closed, nothing opened
            writer.close()
            await writer.wait_closed()
            assert listener.connections == 0
            assert 1808 not in audit_ids(env)
        finally:
            server.close()
            await listener.aclose()
            await server.wait_closed()


# ---------------------------------------------------------------------------------------------- launching


async def test_engines_listen_on_the_vnc_port_only_when_asked(tmp_path: Path) -> None:
    options = LaunchOptions(host="127.0.0.1", http_port=0, tls_port=None, redirection_port=None,
                            redirection_tls_port=None, state_dir=tmp_path, admin_password="Launch#5900a")
    assert options.vnc_port is None  # fleets (outband up) and embedders do not get one unless they ask
    for vnc_port_wanted in (None, 0):
        launched = await launch(replace(options, vnc_port=vnc_port_wanted))
        try:
            server = launched.server
            if vnc_port_wanted is None:
                assert server.vnc == {}
                with pytest.raises(KeyError):
                    server.bound_port("127.0.0.1", vnc=True)
            else:
                port = server.bound_port("127.0.0.1", vnc=True)
                assert port > 0
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert await asyncio.wait_for(reader.read(100), 10.0) == b""  # listening, but off by default
                writer.close()
                await writer.wait_closed()
        finally:
            await launched.server.stop()
            launched.database.close()


def test_the_engine_command_offers_the_vnc_port_5900_by_default() -> None:
    engine = typer.main.get_command(app).commands["engine"]  # type: ignore[attr-defined]
    option = next(p for p in engine.params if p.name == "vnc_port")
    assert option.opts == ["--vnc-port"]
    assert option.default == 5900
    assert "0 disables it" in option.help
    assert CliRunner().invoke(app, ["engine", "--help"]).exit_code == 0
