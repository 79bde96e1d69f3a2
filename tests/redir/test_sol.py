"""SOL: the codec of every message, the host and console state tables, the timers on a fake clock."""

from __future__ import annotations

import itertools

import pytest

from outband.proto.redir.frames import Frame, FrameDecoder, MessageType, Outgoing, Role
from outband.proto.redir.session import StartStatus
from outband.proto.redir.sol import (
    AMTTERM_SETTINGS,
    MESHCOMMANDER_SETTINGS,
    Control,
    ControlsToHost,
    HostControls,
    HostOutput,
    HostStatus,
    KeysToHost,
    SolConsole,
    SolEnded,
    SolHost,
    SolRefused,
    SolSettings,
    SolState,
    SolTiming,
    Started,
    StartRequested,
    decode_controls_from_host,
    decode_controls_to_host,
    decode_data,
    decode_start,
    encode_controls_from_host,
    encode_controls_to_host,
    encode_data_from_host,
    encode_data_to_host,
    encode_end,
    encode_end_reply,
    encode_heartbeat,
    encode_keepalive_ping,
    encode_keepalive_pong,
    encode_start,
    encode_start_reply,
)

from .test_frames import AMT_SENDS, CONSOLE_SENDS

T = MessageType


def frame(data: bytes, sender: Role = Role.CONSOLE) -> Frame:
    decoder = FrameDecoder(sender)
    decoder.feed(data)
    result = decoder.next_frame()
    assert isinstance(result, Frame)
    assert decoder.buffered == 0
    return result


# ---------------------------------------------------------------------------------------------- codec

CODEC = [
    # (encoded by us, exact bytes, sender)
    (encode_start(1, AMTTERM_SETTINGS), "20000000 01000000 e803 6400 0000 1027 0000 8813 00000000", Role.CONSOLE),
    (encode_start(7, MESHCOMMANDER_SETTINGS), "20000000 07000000 1027 6400 0000 1027 6400 0000 00000000",
     Role.CONSOLE),
    (encode_start_reply(StartStatus.SUCCESS, 1, AMTTERM_SETTINGS),
     "21000000 01000000 e803 6400 0000 1027 0000 8813 000000", Role.AMT),
    (encode_start_reply(StartStatus.BUSY, 0, AMTTERM_SETTINGS),
     "21020000 00000000 e803 6400 0000 1027 0000 8813 000000", Role.AMT),
    (encode_end(3), "22000000 03000000", Role.CONSOLE),
    (encode_end_reply(3), "23000000 03000000", Role.AMT),
    (encode_keepalive_ping(9), "24000000 09000000", Role.CONSOLE),
    (encode_keepalive_pong(9), "25000000 09000000", Role.AMT),
    (encode_controls_to_host(2, Control.NONE), "27000000 02000000 00 00 1b 000000", Role.CONSOLE),
    (encode_controls_to_host(2, Control.BREAK), "27000000 02000000 04 00 1b 000000", Role.CONSOLE),
    (encode_data_to_host(0, b"ls\r"), "28000000 00000000 0300 6c730d", Role.CONSOLE),
    (encode_controls_from_host(5, Control.RTS | Control.DTR, HostStatus.POWERED_ON), "29000000 05000000 03 04",
     Role.AMT),
    (encode_data_from_host(0x01020304, b"ok"), "2a000000 04030201 0200 6f6b", Role.AMT),
    (encode_heartbeat(0xFFFFFFFF), "2b000000 ffffffff", Role.AMT),
]


@pytest.mark.parametrize(("encoded", "expected", "sender"), CODEC, ids=[e[1][:2] + "-" + str(i)
                                                                        for i, e in enumerate(CODEC)])
def test_codec_table(encoded: bytes, expected: str, sender: Role) -> None:
    assert encoded == bytes.fromhex(expected.replace(" ", ""))
    assert frame(encoded, sender).data == encoded  # and the decoder sizes it exactly


def test_the_start_reply_is_exactly_23_bytes() -> None:
    assert len(encode_start_reply(StartStatus.SUCCESS, 0, SolSettings())) == 23


def test_decoders_read_back_what_encoders_wrote() -> None:
    assert decode_start(frame(encode_start(1, MESHCOMMANDER_SETTINGS))) == MESHCOMMANDER_SETTINGS
    assert decode_data(frame(encode_data_to_host(4, b"\x1b[A"))) == b"\x1b[A"
    assert decode_controls_to_host(frame(encode_controls_to_host(4, Control.BREAK))) is Control.BREAK
    control, status = decode_controls_from_host(frame(encode_controls_from_host(1, Control.DTR, HostStatus.LOOPBACK),
                                                      Role.AMT))
    assert (control, status) == (Control.DTR, HostStatus.LOOPBACK)


def test_meshcommanders_0x27_reads_as_no_control_lines() -> None:
    meshcommander = bytes.fromhex("27000000 02000000 00001b000000".replace(" ", ""))
    assert decode_controls_to_host(frame(meshcommander)) is Control.NONE


def test_settings_are_u16() -> None:
    with pytest.raises(ValueError, match="u16"):
        SolSettings(heartbeat_interval=70000)
    with pytest.raises(ValueError, match="at most"):
        encode_data_to_host(0, bytes(0x10000))


# ---------------------------------------------------------------------------------------------- host side

TIMING = SolTiming()


def host_in(state: SolState, settings: SolSettings = AMTTERM_SETTINGS, now: float = 0.0) -> SolHost:
    host = SolHost(now, TIMING)
    if state is SolState.AWAIT_START:
        return host
    host.receive(frame(encode_start(0, settings)), now)
    assert host.events() == [StartRequested(settings)]
    if state is SolState.ACTIVE or state is SolState.ENDED:
        host.accept(now, powered=True)
    if state is SolState.ENDED:
        host.receive(frame(encode_end(1)), now)
        host.events()
    host.outgoing()
    assert host.state is state
    return host


def test_accepting_sends_the_start_reply_then_the_controls_each_alone() -> None:
    host = host_in(SolState.DECIDING)
    host.accept(0.0, powered=True)
    assert host.outgoing() == [
        Outgoing(encode_start_reply(StartStatus.SUCCESS, 0, AMTTERM_SETTINGS), alone=True),
        Outgoing(encode_controls_from_host(0, Control.RTS | Control.DTR, HostStatus.POWERED_ON), alone=True),
    ]


def test_refusing_sends_the_status_and_closes() -> None:
    host = host_in(SolState.DECIDING)
    host.refuse(StartStatus.UNSUPPORTED, 0.0, "SOL is disabled")
    [reply] = host.outgoing()
    assert reply.alone
    assert reply.data[:2] == bytes([0x21, 3])
    assert host.close_reason == "SOL is disabled"


def test_keystrokes_controls_pings_and_the_end() -> None:
    host = host_in(SolState.ACTIVE)
    host.receive(frame(encode_data_to_host(0, b"ls\r")), 1.0)
    host.receive(frame(encode_controls_to_host(0, Control.BREAK)), 1.0)
    host.receive(frame(encode_keepalive_ping(7)), 1.0)
    assert host.events() == [KeysToHost(b"ls\r"), ControlsToHost(Control.BREAK)]
    assert host.outgoing() == [Outgoing(encode_keepalive_pong(7))]
    host.receive(frame(encode_end(8)), 1.0)
    assert host.events() == [SolEnded("ended by the console")]
    assert host.outgoing() == [Outgoing(encode_end_reply(8), alone=True)]
    host.receive(frame(encode_data_to_host(0, b"\x1d")), 1.0)  # amtterm sends its escape key after 0x22
    assert host.events() == []
    assert not host.closed


def test_host_output_is_chunked_by_the_consoles_buffer_and_coalesced() -> None:
    host = host_in(SolState.ACTIVE, SolSettings(max_tx_buffer=4))
    host.host_output(b"a", 1.0)
    host.host_output(b"bcdefghij", 1.0)
    sent = host.outgoing()
    assert [decode_data(frame(o.data, Role.AMT)) for o in sent] == [b"abcd", b"efgh", b"ij"]
    assert [frame(o.data, Role.AMT).seq for o in sent] == [1, 2, 3]  # 0 was the controls message


def test_host_output_is_dropped_unless_sol_runs() -> None:
    host = host_in(SolState.AWAIT_START)
    host.host_output(b"lost", 0.0)
    assert host.outgoing() == []


def test_an_unread_backlog_is_capped_and_reported_as_overflow() -> None:
    host = SolHost(0.0, TIMING, max_pending=10)
    host.receive(frame(encode_start(0, SolSettings())), 0.0)
    host.accept(0.0, powered=True)
    host.outgoing()
    host.host_output(b"0123456789abcdef", 0.0)
    sent = host.outgoing()
    controls = [o for o in sent if o.data[0] == 0x29]
    data = b"".join(decode_data(frame(o.data, Role.AMT)) for o in sent if o.data[0] == 0x2A)
    assert data == b"0123456789"
    assert decode_controls_from_host(frame(controls[0].data, Role.AMT))[1] & HostStatus.TX_OVERFLOW


def test_power_changes_are_reported() -> None:
    host = host_in(SolState.ACTIVE)
    host.set_powered(True, 1.0)
    assert host.outgoing() == []
    host.set_powered(False, 1.0)
    [controls] = host.outgoing()
    assert controls.alone
    assert decode_controls_from_host(frame(controls.data, Role.AMT))[1] == HostStatus.NONE


HOST_ALLOWED = {
    SolState.AWAIT_START: {T.SOL_START, T.SOL_HEARTBEAT},
    SolState.DECIDING: {T.SOL_HEARTBEAT},
    SolState.ACTIVE: {T.SOL_DATA_TO_HOST, T.SOL_CONTROLS_TO_HOST, T.SOL_KEEPALIVE_PING, T.SOL_HEARTBEAT, T.SOL_END},
    SolState.ENDED: {T.SOL_DATA_TO_HOST, T.SOL_CONTROLS_TO_HOST, T.SOL_KEEPALIVE_PING, T.SOL_HEARTBEAT},
}
FROM_CONSOLE = [t for t in CONSOLE_SENDS if t >= 0x20]


@pytest.mark.parametrize(("state", "mtype"), list(itertools.product(HOST_ALLOWED, FROM_CONSOLE)),
                         ids=[f"{s.value}-{t.name}" for s, t in itertools.product(HOST_ALLOWED, FROM_CONSOLE)])
def test_host_state_table(state: SolState, mtype: MessageType) -> None:
    host = host_in(state)
    host.receive(frame(CONSOLE_SENDS[mtype]), 0.0)
    if mtype in HOST_ALLOWED[state]:
        assert not host.closed
    else:
        assert host.closed
        assert host.close_reason is not None
        assert host.close_reason.startswith("protocol error")


# ---------------------------------------------------------------------------------------------- timers


def heartbeats(out: list[Outgoing]) -> int:
    return sum(o.data[0] == 0x2B for o in out)


def test_heartbeats_go_out_at_the_requested_interval_when_nothing_else_does() -> None:
    host = host_in(SolState.ACTIVE, AMTTERM_SETTINGS)  # 5 s heartbeats
    assert host.poll(0.0) == 5.0
    assert host.poll(4.9) == 5.0
    assert host.outgoing() == []
    host.poll(5.0)
    assert heartbeats(host.outgoing()) == 1
    host.receive(frame(encode_heartbeat(0)), 7.0)  # the console is alive (its idle deadline moves to 17 s)
    host.host_output(b"x", 7.0)  # and our traffic postpones the next heartbeat
    assert host.poll(7.0) == 12.0


def test_the_heartbeat_never_exceeds_the_hosts_cap() -> None:
    lazy = SolSettings(heartbeat_interval=60000, host_session_rx_timeout=0)
    host = host_in(SolState.ACTIVE, lazy)
    host.poll(TIMING.max_heartbeat)
    assert heartbeats(host.outgoing()) == 1
    quiet = SolSettings(heartbeat_interval=0)  # MeshCommander: no wish, we pick the default
    host = host_in(SolState.ACTIVE, quiet)
    host.poll(TIMING.default_heartbeat)
    assert heartbeats(host.outgoing()) == 1


def test_a_silent_console_is_dropped_after_its_rx_timeout() -> None:
    host = host_in(SolState.ACTIVE, AMTTERM_SETTINGS)  # HostSessionRxTimeout 10 s
    assert host.poll(9.99) is not None
    host.poll(10.0)
    assert host.closed
    assert host.close_reason == "no traffic from the peer for 10 s"


def test_an_idle_minute_with_echoed_heartbeats_keeps_the_session() -> None:
    """amtterm's only traffic in an idle session is the echo of our heartbeats."""
    host = host_in(SolState.ACTIVE, AMTTERM_SETTINGS)
    now = 0.0
    while now < 60.0:
        now = host.poll(now) or 0.0
        for out in host.outgoing():
            if out.data[0] == 0x2B:
                host.receive(frame(out.data), now + 0.001)  # amtterm echoes it unchanged
    assert not host.closed
    assert host.poll(now) is not None


def test_time_scale_shrinks_every_duration() -> None:
    host = SolHost(0.0, SolTiming(time_scale=0.01))
    host.receive(frame(encode_start(0, AMTTERM_SETTINGS)), 0.0)
    host.accept(0.0, powered=True)
    assert host.poll(0.0) == pytest.approx(0.05)
    host.poll(0.1)
    assert host.closed  # 10 s idle timeout, scaled to 0.1 s


# ---------------------------------------------------------------------------------------------- console side


def console_in(state: SolState) -> SolConsole:
    console = SolConsole(0.0, AMTTERM_SETTINGS)
    if state is SolState.IDLE:
        return console
    console.start(0.0)
    if state in (SolState.ACTIVE, SolState.AWAIT_END_REPLY):
        console.receive(frame(AMT_SENDS[T.SOL_START_REPLY], Role.AMT), 0.0)
    if state is SolState.AWAIT_END_REPLY:
        console.end(0.0)
    console.outgoing()
    console.events()
    assert console.state is state
    return console


def test_console_start_write_break_and_end() -> None:
    console = SolConsole(0.0, AMTTERM_SETTINGS)
    console.start(0.0)
    assert console.outgoing() == [Outgoing(encode_start(1, AMTTERM_SETTINGS))]
    console.receive(frame(encode_start_reply(StartStatus.SUCCESS, 1, AMTTERM_SETTINGS), Role.AMT), 0.1)
    console.receive(frame(encode_controls_from_host(0, Control.DTR, HostStatus.POWERED_ON), Role.AMT), 0.1)
    console.receive(frame(encode_data_from_host(1, b"login: "), Role.AMT), 0.1)
    assert console.events() == [Started(), HostControls(Control.DTR, HostStatus.POWERED_ON), HostOutput(b"login: ")]
    console.write(b"x" * 1500, 0.2)  # amtterm's MaxTxBuffer is 1000: two messages
    console.send_break(0.2)
    console.end(0.3)
    sent = console.outgoing()
    assert [o.data[0] for o in sent] == [0x28, 0x28, 0x27, 0x22]
    assert [frame(o.data).seq for o in sent] == [2, 3, 4, 5]
    console.receive(frame(encode_end_reply(5), Role.AMT), 0.4)
    assert console.events() == [SolEnded("ended by the console")]
    assert console.state is SolState.ENDED


def test_console_sees_a_refusal() -> None:
    console = console_in(SolState.AWAIT_START_REPLY)
    console.receive(frame(encode_start_reply(StartStatus.BUSY, 1, AMTTERM_SETTINGS), Role.AMT), 0.0)
    assert console.events() == [SolRefused(StartStatus.BUSY)]
    assert console.closed


def test_console_heartbeats_and_gives_up_on_a_silent_device() -> None:
    console = console_in(SolState.ACTIVE)
    console.poll(5.0)
    assert heartbeats(console.outgoing()) == 1
    console.poll(20.0)  # amtterm's limit: four heartbeat intervals
    assert console.closed


CONSOLE_ALLOWED = {
    SolState.AWAIT_START_REPLY: {T.SOL_START_REPLY, T.SOL_HEARTBEAT},
    SolState.ACTIVE: {T.SOL_DATA_FROM_HOST, T.SOL_CONTROLS_FROM_HOST, T.SOL_HEARTBEAT, T.SOL_KEEPALIVE_PONG},
    SolState.AWAIT_END_REPLY: {T.SOL_END_REPLY, T.SOL_DATA_FROM_HOST, T.SOL_CONTROLS_FROM_HOST, T.SOL_HEARTBEAT,
                               T.SOL_KEEPALIVE_PONG},
}
FROM_AMT = [t for t in AMT_SENDS if t >= 0x20]


@pytest.mark.parametrize(("state", "mtype"), list(itertools.product(CONSOLE_ALLOWED, FROM_AMT)),
                         ids=[f"{s.value}-{t.name}" for s, t in itertools.product(CONSOLE_ALLOWED, FROM_AMT)])
def test_console_state_table(state: SolState, mtype: MessageType) -> None:
    console = console_in(state)
    console.receive(frame(AMT_SENDS[mtype], Role.AMT), 0.0)
    assert console.closed is (mtype not in CONSOLE_ALLOWED[state])
