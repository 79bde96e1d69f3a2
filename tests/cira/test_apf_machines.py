"""Both APF state machines joined by a fake wire (h11's ConnectionPair idea), on a clock the test moves: login,
ports, channels and flow control, keepalives and timeouts, refusals, and what either side does with input that
is out of place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from outband.proto.apf import (
    AmtConnection,
    AmtState,
    AuthenticationRequested,
    ChannelClosed,
    ChannelOpened,
    ChannelOpenFailed,
    ChannelRequested,
    DataReceived,
    Established,
    Event,
    ForwardCancelled,
    ForwardRefused,
    KeepaliveOptionsChanged,
    KeepaliveReceived,
    LocalProtocolError,
    MpsConnection,
    MpsState,
    OpenFailureReason,
    PeerHello,
    PortForwarded,
    Terminated,
    WindowAdjusted,
)
from outband.proto.apf import errors as E
from outband.proto.apf.codec import (
    ChannelClose,
    ChannelData,
    ChannelOpen,
    ChannelWindowAdjust,
    DecodeOptions,
    Disconnect,
    KeepaliveOptionsRequest,
    OtherGlobalRequest,
    ProtocolVersion,
    ServiceRequest,
    TcpipForward,
    UdpSendTo,
    UserAuthRequest,
    decode_message,
)
from outband.proto.apf.constants import AMT_PORTS, DisconnectReason

DEVICE = uuid.UUID("55e29e6b-6aec-11ea-b61d-00000000a0e7")


@dataclass
class Pair:
    """An AMT side and an MPS side; :meth:`pump` carries bytes both ways until both are quiet."""

    amt: AmtConnection
    mps: MpsConnection
    now: float = 0.0
    amt_events: list[Event] = field(default_factory=list)
    mps_events: list[Event] = field(default_factory=list)

    @classmethod
    def make(cls, *, amt: dict[str, Any] | None = None, mps: dict[str, Any] | None = None) -> Pair:
        amt_args: dict[str, Any] = {"system_uuid": DEVICE, "username": "0123456789abcdef", "password": "Secret1!",
                                    "hostname": "sim"}
        return cls(AmtConnection(**(amt_args | (amt or {}))), MpsConnection(**(mps or {})))

    def pump(self) -> None:
        for _ in range(1000):
            to_mps, to_amt = self.amt.data_to_send(), self.mps.data_to_send()
            if not to_mps and not to_amt:
                return
            if to_mps:
                self.mps_events += self.mps.receive_data(to_mps, self.now)
            if to_amt:
                self.amt_events += self.amt.receive_data(to_amt, self.now)
        raise AssertionError("the two sides keep talking")

    def start(self) -> None:
        self.mps.start(self.now)
        self.amt.start(self.now)
        self.pump()

    def login(self) -> None:
        self.start()
        assert isinstance(self.mps_events[-1], AuthenticationRequested)
        self.mps.accept_authentication()
        self.pump()
        assert any(isinstance(e, Established) for e in self.amt_events)
        self.take()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.amt_events += self.amt.handle_timer(self.now)
        self.mps_events += self.mps.handle_timer(self.now)
        self.pump()

    def take(self) -> tuple[list[Event], list[Event]]:
        taken = self.amt_events, self.mps_events
        self.amt_events, self.mps_events = [], []
        return taken

    def open(self, port: int = 16992) -> tuple[int, int]:
        """An open channel: (MPS id, AMT id)."""
        mps_id = self.mps.open_channel(port)
        self.pump()
        [request] = [e for e in self.amt_events if isinstance(e, ChannelRequested)]
        self.amt.accept_channel(request.channel_id)
        self.pump()
        assert ChannelOpened(mps_id) in self.mps_events
        self.take()
        return mps_id, request.channel_id


def ended(events: list[Event]) -> Terminated:
    [end] = [e for e in events if isinstance(e, Terminated)]
    return end


def sent(raw: bytes, **options: Any) -> list[object]:
    """The messages in a byte string a side produced."""
    out, pos = [], 0
    while pos < len(raw):
        decoded = decode_message(raw[pos:], DecodeOptions(**options))
        assert decoded is not None
        out.append(decoded[0])
        pos += decoded[1]
    return out


# ---------------------------------------------------------------------------------------------- login


def test_login_registers_the_ports_in_amts_order() -> None:
    pair = Pair.make()
    pair.start()
    hello, auth = pair.mps_events
    assert hello == PeerHello(DEVICE, 1, 0, 4)
    assert auth == AuthenticationRequested("0123456789abcdef", "Secret1!")
    assert pair.mps.state is MpsState.AUTH_PENDING
    assert pair.amt.state is AmtState.AWAIT_AUTH
    pair.mps.accept_authentication()
    pair.pump()
    amt_events, mps_events = pair.take()
    assert [e.port for e in mps_events if isinstance(e, PortForwarded)] == list(AMT_PORTS)
    assert amt_events[-1] == Established(AMT_PORTS)
    assert KeepaliveOptionsChanged(30, 0) in amt_events  # asked for after the first port, and echoed
    assert pair.mps.keepalive_agreed == (30, 0)
    assert pair.mps.forwarded == dict.fromkeys(AMT_PORTS, "sim")
    assert (pair.amt.state, pair.mps.state) == (AmtState.ESTABLISHED, MpsState.ESTABLISHED)


def test_first_flight_is_hello_and_the_auth_service_request() -> None:
    amt = Pair.make().amt
    amt.start(0.0)
    assert sent(amt.data_to_send()) == [ProtocolVersion(DEVICE), ServiceRequest("auth@amt.intel.com")]
    with pytest.raises(LocalProtocolError):
        amt.start(0.0)


def test_a_refused_login_ends_both_sides_without_a_disconnect_from_the_mps() -> None:
    pair = Pair.make()
    pair.start()
    pair.take()
    mps_events = pair.mps.reject_authentication()
    assert isinstance(ended(mps_events).error, E.InvalidCredentials)
    out = pair.mps.data_to_send()
    assert out == bytes.fromhex("33" "00000008") + b"password" + b"\x00"  # USERAUTH_FAILURE and nothing else
    amt_events = pair.amt.receive_data(out, 0.0)
    end = ended(amt_events)
    assert isinstance(end.error, E.InvalidCredentials)
    assert end.by_peer
    assert pair.amt.closed
    assert pair.mps.closed


def test_logins_without_a_password_get_three_tries() -> None:
    mps = MpsConnection()
    mps.start(0.0)
    mps.receive_data(ProtocolVersion(DEVICE).encode() + ServiceRequest("auth@amt.intel.com").encode(), 0.0)
    mps.data_to_send()
    probe = UserAuthRequest("u", None, method="none").encode()
    assert mps.receive_data(probe, 0.0) == []
    assert mps.receive_data(probe, 0.0) == []
    assert isinstance(ended(mps.receive_data(probe, 0.0)).error, E.NoMoreAuthMethods)
    assert sent(mps.data_to_send())[-1] == Disconnect(DisconnectReason.NO_MORE_AUTH_METHODS_AVAILABLE)


@pytest.mark.parametrize(("first", "error", "code"), [
    (ServiceRequest("ssh-userauth").encode(), E.ServiceNotAvailable, DisconnectReason.SERVICE_NOT_AVAILABLE),
    (ServiceRequest("pfwd@amt.intel.com").encode(), E.ServiceNotAvailable, DisconnectReason.SERVICE_NOT_AVAILABLE),
    (TcpipForward("sim", 16992).encode()[:1], E.ProtocolError, DisconnectReason.PROTOCOL_ERROR),
    (ChannelData(1, b"x").encode()[:1], E.ProtocolError, DisconnectReason.PROTOCOL_ERROR),
    (bytes([96]), E.ProtocolError, DisconnectReason.PROTOCOL_ERROR),
])
def test_the_mps_refuses_anything_but_a_login_first(first: bytes, error: type, code: DisconnectReason) -> None:
    """Port requests and channels before a login are refused at their first byte (MPS and MeshCentral accept
    them); so are unknown services and message types."""
    mps = MpsConnection()
    mps.start(0.0)
    mps.receive_data(ProtocolVersion(DEVICE).encode(), 0.0)
    mps.data_to_send()
    end = ended(mps.receive_data(first, 0.0))
    assert isinstance(end.error, error)
    assert not end.by_peer
    assert sent(mps.data_to_send()) == [Disconnect(code)]
    assert mps.receive_data(b"more", 1.0) == []  # a closed connection ignores the rest


def test_apf_2_is_not_spoken() -> None:
    mps = MpsConnection()
    end = ended(mps.receive_data(ProtocolVersion(DEVICE, major=2).encode(), 0.0))
    assert isinstance(end.error, E.ProtocolVersionNotSupported)


def test_a_peer_disconnect_becomes_its_error() -> None:
    pair = Pair.make()
    pair.login()
    end = ended(pair.amt.receive_data(Disconnect(DisconnectReason.BY_POLICY).encode(), 0.0))
    assert isinstance(end.error, E.ByPolicy)
    assert end.by_peer
    assert ended(pair.mps.connection_lost(0.0)).error.code == DisconnectReason.CONNECTION_LOST


# ---------------------------------------------------------------------------------------------- global requests


def test_cancelling_a_forward_is_answered_without_a_port() -> None:
    pair = Pair.make()
    pair.login()
    pair.amt.cancel_forward(16995)
    pair.pump()
    amt_events, mps_events = pair.take()
    assert amt_events == [ForwardCancelled("sim", 16995)]
    assert mps_events == [ForwardCancelled("sim", 16995)]
    assert 16995 not in pair.mps.forwarded
    assert 16995 not in pair.amt.forwarded_ports
    pair.amt.forward_port(16995)
    pair.pump()
    assert pair.take() == ([PortForwarded("sim", 16995)], [PortForwarded("sim", 16995)])


def test_ports_beyond_the_mps_limit_are_refused() -> None:
    pair = Pair.make(mps={"max_forwards": 2})
    pair.login()
    assert pair.amt.forwarded_ports == [16993, 16992]
    pair.amt.forward_port(5900)
    pair.pump()
    assert pair.take()[0] == [ForwardRefused(5900)]


def test_unknown_global_requests_get_a_failure_when_they_want_one() -> None:
    pair = Pair.make()
    pair.login()
    raw = (OtherGlobalRequest("x-ping", True).encode() + OtherGlobalRequest("x-quiet", False).encode()
           + UdpSendTo("10.0.0.9", 162, "10.0.0.2", 1, b"trap", want_reply=True).encode())
    assert pair.mps.receive_data(raw, 0.0) == []
    assert sent(pair.mps.data_to_send()) == [sent(bytes([82]))[0], sent(bytes([82]))[0]]  # two REQUEST_FAILUREs


def test_an_answer_nobody_asked_for_is_a_protocol_error() -> None:
    pair = Pair.make()
    pair.login()
    assert isinstance(ended(pair.amt.receive_data(bytes([81]), 0.0)).error, E.ProtocolError)


# ---------------------------------------------------------------------------------------------- channels


def test_data_both_ways_and_flow_control() -> None:
    pair = Pair.make()
    pair.login()
    mps_id, amt_id = pair.open()
    assert pair.amt.send(amt_id, b"x" * 100_000) == 100_000 - 32768  # the MPS granted 32768
    pair.pump()
    _, mps_events = pair.take()
    assert [len(e.data) for e in mps_events if isinstance(e, DataReceived)] == [32768]
    pair.mps.acknowledge(mps_id, 16384)
    assert pair.mps.data_to_send() == b""  # half the window is not "more than half"
    pair.mps.acknowledge(mps_id, 1)
    adjust = pair.mps.data_to_send()
    assert sent(adjust) == [ChannelWindowAdjust(amt_id, 16385)]
    assert pair.amt.receive_data(adjust, 0.0) == [WindowAdjusted(amt_id, 100_000 - 32768 - 16385)]
    pair.pump()
    _, mps_events = pair.take()
    assert sum(len(e.data) for e in mps_events if isinstance(e, DataReceived)) == 16385
    assert pair.amt.backlog(amt_id) == 100_000 - 32768 - 16385


def test_data_queued_while_opening_goes_out_on_confirmation() -> None:
    pair = Pair.make()
    pair.login()
    mps_id = pair.mps.open_channel(16993)
    pair.mps.send(mps_id, b"GET / HTTP/1.1\r\n\r\n")
    pair.pump()
    [request] = [e for e in pair.take()[0] if isinstance(e, ChannelRequested)]
    assert (request.port, request.address, request.originator_address) == (16993, "sim", "127.0.0.1")
    pair.amt.accept_channel(request.channel_id)
    pair.pump()
    assert DataReceived(request.channel_id, b"GET / HTTP/1.1\r\n\r\n") in pair.take()[0]


def test_close_waits_for_queued_data_and_is_answered() -> None:
    pair = Pair.make()
    pair.login()
    mps_id, amt_id = pair.open()
    pair.amt.send(amt_id, b"y" * 40_000)
    pair.amt.close_channel(amt_id)
    pair.pump()
    _, mps_events = pair.take()
    assert not any(isinstance(e, ChannelClosed) for e in mps_events)  # 7232 bytes still wait for credit
    pair.mps.acknowledge(mps_id, 32768)
    pair.pump()
    amt_events, mps_events = pair.take()
    assert mps_events[-1] == ChannelClosed(mps_id)
    assert sum(len(e.data) for e in mps_events if isinstance(e, DataReceived)) == 40_000 - 32768
    assert amt_events == [WindowAdjusted(amt_id, 0), ChannelClosed(amt_id)]
    assert pair.amt.channels == {}
    assert pair.mps.channels == {}
    with pytest.raises(LocalProtocolError):
        pair.amt.send(amt_id, b"late")


def test_closing_with_discard_drops_the_backlog() -> None:
    pair = Pair.make()
    pair.login()
    mps_id, amt_id = pair.open()
    pair.amt.send(amt_id, b"z" * 40_000)
    pair.amt.close_channel(amt_id, discard=True)
    pair.pump()
    _, mps_events = pair.take()
    assert mps_events[-1] == ChannelClosed(mps_id)


def test_data_beyond_the_window_is_a_protocol_error() -> None:
    pair = Pair.make()
    pair.login()
    _, amt_id = pair.open()
    remote = pair.amt.channels[amt_id].local_id
    pair.amt.receive_data(ChannelData(remote, bytes(32768)).encode(), 0.0)
    assert isinstance(ended(pair.amt.receive_data(ChannelData(remote, b"!").encode(), 0.0)).error, E.ProtocolError)


def test_messages_for_unknown_channels_are_dropped() -> None:
    pair = Pair.make()
    pair.login()
    raw = ChannelData(999, b"x").encode() + ChannelWindowAdjust(999, 5).encode() + ChannelClose(999).encode()
    assert pair.amt.receive_data(raw, 0.0) == []
    assert pair.mps.receive_data(raw, 0.0) == []
    assert not pair.amt.closed
    assert not pair.mps.closed


def test_channel_refusals() -> None:
    pair = Pair.make(amt={"ports": (16992,), "max_channels": 1})
    pair.login()
    for open_, reason in [
        (ChannelOpen("direct-tcpip", 7, 100, "sim", 16992, "a", 1), OpenFailureReason.UNKNOWN_CHANNEL_TYPE),
        (ChannelOpen("forwarded-tcpip", 8, 100, "sim", 22, "a", 1), OpenFailureReason.ADMINISTRATIVELY_PROHIBITED),
    ]:
        assert pair.amt.receive_data(open_.encode(), 0.0) == []
        [failure] = sent(pair.amt.data_to_send())
        assert (failure.recipient_channel, failure.reason) == (open_.sender_channel, reason)  # type: ignore[attr-defined]
    pair.open()
    pair.mps.max_channels = 1
    with pytest.raises(E.ChannelOpenError):
        pair.mps.open_channel(16992)
    pair.mps.max_channels = 32
    pair.mps.open_channel(16992)
    pair.pump()
    [failed] = [e for e in pair.take()[1] if isinstance(e, ChannelOpenFailed)]
    assert failed.error.code is OpenFailureReason.RESOURCE_SHORTAGE


def test_the_mps_refuses_channels_amt_opens() -> None:
    pair = Pair.make()
    pair.login()
    assert pair.mps.receive_data(ChannelOpen("direct-tcpip", 3, 4096, "mps", 16992, "::1", 123).encode(), 0.0) == []
    [failure] = sent(pair.mps.data_to_send())
    assert failure.reason == OpenFailureReason.UNKNOWN_CHANNEL_TYPE  # type: ignore[attr-defined]


def test_api_misuse_is_a_local_error() -> None:
    pair = Pair.make()
    with pytest.raises(LocalProtocolError):
        pair.mps.open_channel(16992)  # not established
    pair.login()
    with pytest.raises(LocalProtocolError):
        pair.mps.open_channel(22)  # never registered
    with pytest.raises(LocalProtocolError):
        pair.amt.accept_channel(5)
    with pytest.raises(LocalProtocolError):
        pair.mps.accept_authentication()


def test_the_end_closes_every_channel() -> None:
    pair = Pair.make()
    pair.login()
    _, amt_id = pair.open()
    events = pair.amt.connection_lost(0.0)
    assert events[0] == ChannelClosed(amt_id)
    assert isinstance(events[-1], Terminated)


# ---------------------------------------------------------------------------------------------- time


def test_keepalives_every_interval_and_a_missing_reply_ends_the_tunnel() -> None:
    pair = Pair.make(mps={"keepalive_interval": 10})
    pair.login()
    assert pair.amt.next_deadline() == 10.0
    pair.advance(10)
    assert pair.take()[1] == [KeepaliveReceived(1)]
    pair.advance(10)
    assert pair.take()[1] == [KeepaliveReceived(2)]
    pair.now += 10
    pair.amt.handle_timer(pair.now)  # sent, but the MPS is gone: nothing carries the reply
    assert pair.amt.data_to_send() == keepalive_bytes(3)
    events = pair.amt.handle_timer(pair.now + 10)
    assert isinstance(ended(events).error, E.ConnectionTimedOut)
    assert sent(pair.amt.data_to_send())[-1] == Disconnect(DisconnectReason.CONNECTION_TIMED_OUT)


def keepalive_bytes(cookie: int) -> bytes:
    return bytes([208]) + cookie.to_bytes(4, "big")


def test_an_options_interval_of_zero_keeps_ours() -> None:
    pair = Pair.make(amt={"keepalive_interval": 7.0})
    pair.login()
    assert pair.amt.keepalive_interval == 30.0
    pair.amt.receive_data(KeepaliveOptionsRequest(0, 5).encode(), pair.now)
    assert (pair.amt.keepalive_interval, pair.amt.keepalive_timeout) == (30.0, 5.0)


def test_the_mps_drops_an_idle_device() -> None:
    pair = Pair.make(mps={"idle_timeout": 90.0})
    pair.login()
    pair.now = 80.0
    pair.mps.receive_data(keepalive_bytes(9), pair.now)  # input pushes the idle deadline
    assert pair.mps.handle_timer(169.0) == []
    assert isinstance(ended(pair.mps.handle_timer(170.0)).error, E.ConnectionTimedOut)


@pytest.mark.parametrize("side", ["amt", "mps"])
def test_a_login_that_stalls_times_out(side: str) -> None:
    pair = Pair.make(amt={"handshake_timeout": 5.0}, mps={"handshake_timeout": 5.0})
    pair.start()  # the MPS never decides
    machine = pair.amt if side == "amt" else pair.mps
    assert machine.handle_timer(4.9) == []
    end = ended(machine.handle_timer(5.0))
    assert isinstance(end.error, E.ConnectionTimedOut)
    assert "login not finished" in str(end.error)
