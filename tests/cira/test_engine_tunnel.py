"""The engine's CIRA client against our MPS over real TLS: dial, login, ports, WS-MAN (HTTP and TLS inside the
channel), SOL through the tunnel, keepalives, refusals, a cut tunnel and the reconnect, WS-MAN-configured CIRA."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from tests.redir._kit import eventually

from outband.aio.redirection import TcpStream
from outband.client.ider import IderSession
from outband.client.kvm import KvmSession
from outband.client.redirection import SolSession
from outband.engine import cira
from outband.engine.platforms.base import BootDevice
from outband.proto.apf import AMT_PORTS, ConnectionLost, ConnectionTimedOut, MpsConnection
from outband.proto.apf.constants import VNC_PORT
from outband.proto.redir.scsi import BytesMedium
from outband.proto.rfb.vncauth import vnc_response
from outband.testing.images import iso_image
from outband.testing.mps import ConnectedDevice, LoopbackMps

from ._kit import MPS_PASSWORD, MPS_USER, CiraEnv, cira_engine, configure_cira, enable_redirection, mps_options

WITHIN = 10.0
RFB_PASSWORD = "Vnc#5900"


@pytest.fixture
async def mps(tmp_path: Path):
    async with LoopbackMps({MPS_USER: MPS_PASSWORD}, tls_dir=tmp_path) as server:
        yield server


async def connected(mps: LoopbackMps, *, after: int = 0) -> ConnectedDevice:
    async with asyncio.timeout(WITHIN):
        return await mps.wait_device(ports=AMT_PORTS, after=after)


async def test_engine_dials_logs_in_and_registers_its_ports(tmp_path: Path, mps: LoopbackMps) -> None:
    async with cira_engine(tmp_path, mps_options(mps)) as env:
        device = await connected(mps)
        assert str(device.system_uuid) == env.system_uuid  # PROTOCOL_VERSION carried the UUID in AMT's order
        assert device.username == MPS_USER
        assert sorted(device.ports) == sorted(AMT_PORTS)
        assert set(device.ports.values()) == {"cira-sim"}  # registered under the engine's host name
        async with asyncio.timeout(WITHIN):
            await env.client.wait_until(lambda s: s.connected)
        assert device.tunnel.machine.keepalive_agreed == (30, 0)  # the options request was echoed


async def test_wsman_through_the_tunnel_over_http_and_tls(tmp_path: Path, mps: LoopbackMps) -> None:
    async with cira_engine(tmp_path, mps_options(mps)) as env:
        device = await connected(mps)
        async with device.amt_client("admin", env.password) as amt:
            settings = await amt.get("AMT_GeneralSettings")
            assert settings["HostName"] == "cira-sim"
            assert amt.transport.server_header == env.engine.server_header
            settings["HostName"] = "renamed-over-cira"
            await amt.put(settings)
        async with device.amt_client("admin", env.password, tls=True, verify=False) as amt:  # TLS in the channel
            assert (await amt.get("AMT_GeneralSettings"))["HostName"] == "renamed-over-cira"
            power = await amt.get("CIM_AssociatedPowerManagementService")
            assert power["PowerState"] == 2
        assert device.online


async def test_wrong_admin_password_through_the_tunnel_is_a_digest_refusal(tmp_path: Path, mps: LoopbackMps) -> None:
    from outband.aio.errors import AuthenticationError

    async with cira_engine(tmp_path, mps_options(mps)):
        device = await connected(mps)
        async with device.amt_client("admin", "Wrong!Passw0rd") as amt:
            with pytest.raises(AuthenticationError):
                await amt.get("AMT_GeneralSettings")
        assert device.online  # a refused login ends the HTTP exchange, not the tunnel


async def enable_redirection_through(device: ConnectedDevice, password: str) -> None:
    async with device.amt_client("admin", password) as amt:
        await enable_redirection(amt)


def channel_to(device: ConnectedDevice, port: int = 16994) -> Callable[[], Awaitable[TcpStream]]:
    """A StreamFactory for the redirection clients: a fresh APF channel per session."""

    async def open_channel() -> TcpStream:
        return TcpStream(*await device.tunnel.open_stream(port))

    return open_channel


async def test_sol_through_the_tunnel(tmp_path: Path, mps: LoopbackMps) -> None:
    async with cira_engine(tmp_path, mps_options(mps)) as env:
        device = await connected(mps)
        await enable_redirection_through(device, env.password)
        async with SolSession(str(device.system_uuid), password=env.password, stream_factory=channel_to(device),
                              timeout=5.0) as sol:
            await sol.write(b"echo over cira\r")
            seen = b""
            async with asyncio.timeout(WITHIN):
                while re.search(rb"\r\nover cira\r\n", seen) is None:
                    chunk = await sol.read()
                    assert chunk, sol.end_reason
                    seen += chunk


async def test_kvm_through_the_tunnel(tmp_path: Path, mps: LoopbackMps) -> None:
    async with cira_engine(tmp_path, mps_options(mps)) as env:
        device = await connected(mps)
        await enable_redirection_through(device, env.password)
        async with KvmSession(str(device.system_uuid), password=env.password, stream_factory=channel_to(device),
                              timeout=10.0) as kvm:
            assert (kvm.framebuffer.width, kvm.framebuffer.height) == (720, 400)  # a whole picture came back
            updates = kvm.updates
            await kvm.type_text("echo keys-over-cira\n")
            await eventually(lambda: "keys-over-cira" in "\n".join(env.machine.console.screen.text()))
            await kvm.wait_for(lambda k: k.updates > updates)  # the changed picture came back out


async def test_ide_r_through_the_tunnel_over_tls(tmp_path: Path, mps: LoopbackMps) -> None:
    async with cira_engine(tmp_path, mps_options(mps)) as env:
        device = await connected(mps)
        await enable_redirection_through(device, env.password)
        storage = env.machine.console.storage
        medium = BytesMedium(iso_image("booted through the tunnel", label="CIRA_CD"))

        async def tls_channel() -> TcpStream:  # 16995: TLS inside the APF channel
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            return TcpStream(*await device.tunnel.open_stream(16995, ssl_context=context))

        async with IderSession(str(device.system_uuid), password=env.password, stream_factory=tls_channel,
                               timeout=10.0, cd=medium) as ider:
            await eventually(lambda: storage.port is not None)
            lines: list[str] = []
            assert await storage.boot(BootDevice.IDER_CD, lines.append) is not None
            assert lines == ["Booted from IDE-R CD-ROM: CIRA_CD", "booted through the tunnel"]
            assert ider.progress.bytes_sent > 0


async def test_keepalives_follow_the_interval_the_mps_sets(tmp_path: Path) -> None:
    def machine() -> MpsConnection:
        return MpsConnection(keepalive_interval=1)

    async with LoopbackMps({MPS_USER: MPS_PASSWORD}, tls_dir=tmp_path, machine_factory=machine) as mps, \
            cira_engine(tmp_path, mps_options(mps)) as env:
        device = await connected(mps)
        async with asyncio.timeout(WITHIN):
            await mps.wait_until(lambda _: device.keepalives >= 2)
        assert device.last_keepalive is not None
        assert env.client.tunnel is not None
        assert env.client.tunnel.machine.keepalive_interval == 1.0  # not FAST's 0.2: the MPS decides


async def test_cut_tunnel_is_redialled_with_backoff(tmp_path: Path, mps: LoopbackMps) -> None:
    async with cira_engine(tmp_path, mps_options(mps)) as env:
        first = await connected(mps)
        first.tunnel.abort()  # the TCP connection dies under both ends
        async with asyncio.timeout(WITHIN):
            await mps.wait_until(lambda _: not first.online)
        assert isinstance(first.ended, ConnectionLost)
        second = await connected(mps, after=1)
        assert second.tunnel is not first.tunnel
        async with asyncio.timeout(WITHIN):
            await env.client.wait_until(lambda s: s.connects == 2)
        assert env.client.status.delays  # it waited before redialling
        async with second.amt_client("admin", env.password) as amt:
            assert (await amt.get("AMT_GeneralSettings"))["HostName"] == "cira-sim"


async def test_a_silent_device_is_dropped_by_the_mps_within_its_idle_window(tmp_path: Path) -> None:
    """No FIN, no data: the MPS's idle clock, not the TCP stack, takes the device offline; it then comes back."""
    def machine() -> MpsConnection:
        return MpsConnection(idle_timeout=1.0, keepalive_interval=3600)  # the device will not speak for an hour

    async with LoopbackMps({MPS_USER: MPS_PASSWORD}, tls_dir=tmp_path, machine_factory=machine) as mps, \
            cira_engine(tmp_path, mps_options(mps)) as env:
        first = await connected(mps)
        async with asyncio.timeout(WITHIN):
            await mps.wait_until(lambda _: not first.online)
        assert isinstance(first.ended, ConnectionTimedOut)
        await connected(mps, after=1)
        assert env.client.status.dials >= 2


async def test_a_silent_mps_is_left_when_keepalives_go_unanswered(tmp_path: Path) -> None:
    def machine() -> MpsConnection:
        return MpsConnection(keepalive_interval=1)

    async with LoopbackMps({MPS_USER: MPS_PASSWORD}, tls_dir=tmp_path, machine_factory=machine) as mps, \
            cira_engine(tmp_path, mps_options(mps)) as env:
        first = await connected(mps)
        assert first.tunnel.transport is not None
        first.tunnel.transport.pause_reading()  # the MPS hangs: it neither reads nor answers
        async with asyncio.timeout(WITHIN):
            status = await env.client.wait_until(lambda s: s.connects >= 2)
        assert "no keepalive reply" in status.last_error
        await connected(mps, after=1)


async def test_refused_login_backs_off_exponentially(tmp_path: Path, mps: LoopbackMps) -> None:
    tuning = cira.CiraTuning(backoff=cira.Backoff(base=0.01, cap=10.0), config_poll=0.05, dial_timeout=5.0)
    async with cira_engine(tmp_path, mps_options(mps, password="Not!TheSecret1"), tuning=tuning) as env:
        async with asyncio.timeout(WITHIN):
            status = await env.client.wait_until(lambda s: s.failures >= 4)
        assert "InvalidCredentials" in status.last_error
        assert mps.refused[:4] == [MPS_USER] * 4
        assert not mps.connected()
        delays = status.delays[:4]
        ceilings = [0.01 * 2 ** (n - 1) for n in range(1, 5)]
        assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))  # exponential, jittered


async def test_untrusted_mps_certificate_is_not_dialled_through(tmp_path: Path, mps: LoopbackMps) -> None:
    other = tmp_path / "other"
    other.mkdir()
    async with LoopbackMps({}, tls_dir=other) as stranger:  # its own certificate, not the one we trust
        options = cira.CiraOptions.parse(f"127.0.0.1:{mps.port}", MPS_USER, MPS_PASSWORD, ca_file=stranger.cert_file)
        async with cira_engine(tmp_path, options) as env:
            async with asyncio.timeout(WITHIN):
                status = await env.client.wait_until(lambda s: s.failures >= 1)
            assert "CERTIFICATE_VERIFY_FAILED" in status.last_error
            assert mps.devices == []  # no login was ever attempted


async def test_engine_stop_ends_the_tunnel(tmp_path: Path, mps: LoopbackMps) -> None:
    async with cira_engine(tmp_path, mps_options(mps)) as env:
        device = await connected(mps)
        await env.server.stop()  # the engine's stop hook stops its CIRA client
        async with asyncio.timeout(WITHIN):
            await mps.wait_until(lambda _: not device.online)
        assert env.client.status.dials == 1


# ---------------------------------------------------------------------------------------------- WS-MAN configured


async def configure_like_rps(env: CiraEnv, mps: LoopbackMps, *, common_name: str = "localhost") -> None:
    await configure_cira(env, root_der=mps.cert_der, host="127.0.0.1", port=mps.port, username=MPS_USER,
                         password=MPS_PASSWORD, common_name=common_name)


async def test_cira_configured_over_wsman_like_rps(tmp_path: Path, mps: LoopbackMps) -> None:
    async with cira_engine(tmp_path, None, domain="lab.example") as env:
        assert env.client.status.dials == 0  # nothing configured: no dial, only the config timer
        await configure_like_rps(env, mps)
        device = await connected(mps)
        assert env.client.status.target is not None
        assert env.client.status.target.source == "WS-MAN Intel(r) AMT:Management Presence Server 0"
        async with device.amt_client("admin", env.password) as amt:
            assert (await amt.get("AMT_GeneralSettings"))["HostName"] == "cira-sim"


async def test_wsman_configuration_checks_the_mps_name(tmp_path: Path, mps: LoopbackMps) -> None:
    async with cira_engine(tmp_path, None) as env:
        await configure_like_rps(env, mps, common_name="mps.elsewhere.example")
        async with asyncio.timeout(WITHIN):
            status = await env.client.wait_until(lambda s: s.failures >= 1)
        assert "mps.elsewhere.example" in status.last_error
        assert mps.devices == []


async def test_inside_the_intranet_no_tunnel_is_kept(tmp_path: Path, mps: LoopbackMps) -> None:
    async with cira_engine(tmp_path, None, domain="f81d4fae-7dec-11d0-a765-00a0c91e6bf6.com") as env:
        await configure_like_rps(env, mps)  # the detection string is our own domain: we are "inside"
        assert cira.configured_targets(env.engine) == []
        assert env.client.status.dials == 0


def test_command_line_options_are_checked(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    options = cira.CiraOptions.parse("mps.example.com", "u", "p", ca_file=ca)
    assert (options.host, options.port) == ("mps.example.com", cira.DEFAULT_MPS_PORT)
    assert cira.CiraOptions.parse("[::1]:4434", "u", "p").port == 4434
    assert cira.CiraOptions.parse("::1", "u", "p").host == "::1"
    for address, user, password, kwargs, why in [
        ("mps:notaport", "u", "p", {}, "not a number"),
        ("mps:70000", "u", "p", {}, "out of range"),
        ("mps", None, "p", {}, "--cira-user"),
        ("mps", "u", "p", {"ca_file": ca, "insecure": True}, "exclude"),
        ("mps", "u", "p", {"ca_file": tmp_path / "missing.pem"}, "not a file"),
    ]:
        with pytest.raises(ValueError, match=why):
            cira.CiraOptions.parse(address, user, password, **kwargs)  # type: ignore[arg-type]
    insecure = cira.CiraOptions.parse("mps", "u", "p", insecure=True).target()
    assert insecure.tls.verify_mode == ssl.CERT_NONE


async def test_a_browser_on_the_mps_port_gets_a_page(mps: LoopbackMps) -> None:
    context = ssl.create_default_context(cafile=str(mps.cert_file))
    reader, writer = await asyncio.open_connection("127.0.0.1", mps.port, ssl=context, server_hostname="localhost")
    writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    async with asyncio.timeout(WITHIN):
        reply = await reader.read()
    writer.close()
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Intel AMT connects here" in reply
    assert mps.devices == []


async def test_kvm_on_port_5900_is_registered_by_the_next_tunnel_and_served_through_it(
        tmp_path: Path, mps: LoopbackMps) -> None:
    """AMT registers 5900 with the MPS only while KVM on the standard port is on (MPS comment in
    ``globalRequest``): switched on through the tunnel, it comes with the next tunnel, and a viewer's channel to it
    reaches the engine's VNC listener, password and all."""
    fast = cira.CiraTuning(backoff=cira.Backoff(base=0.05, cap=0.1))
    async with cira_engine(tmp_path, mps_options(mps), tuning=fast) as env:
        first = await connected(mps)
        assert VNC_PORT not in first.ports
        async with first.amt_client("admin", env.password) as amt:
            await enable_redirection(amt)
            settings = await amt.get("IPS_KVMRedirectionSettingData")
            settings["Is5900PortEnabled"] = True
            settings["RFBPassword"] = RFB_PASSWORD
            await amt.put(settings)
        first.tunnel.abort()
        async with asyncio.timeout(WITHIN):
            second = await mps.wait_device(ports=(*AMT_PORTS, VNC_PORT), after=1)
        reader, writer = await second.tunnel.open_stream(VNC_PORT)
        try:
            async with asyncio.timeout(WITHIN):
                assert await reader.readexactly(12) == b"RFB 003.008\n"
                writer.write(b"RFB 003.008\n")
                count = (await reader.readexactly(1))[0]
                assert list(await reader.readexactly(count)) == [2]  # VNC Authentication, nothing weaker
                writer.write(bytes([2]))
                challenge = await reader.readexactly(16)
                writer.write(vnc_response(RFB_PASSWORD, challenge))
                assert await reader.readexactly(4) == b"\x00\x00\x00\x00"  # SecurityResult OK
        finally:
            writer.close()
