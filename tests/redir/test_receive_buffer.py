"""The receive buffer every stream parser reads from: a message is handed out only once all of it is there,
and nothing is consumed while it waits."""

from __future__ import annotations

from outband.proto.buffer import ReceiveBuffer


def test_peek_leaves_the_bytes_and_take_removes_exactly_the_message() -> None:
    buf = ReceiveBuffer(b"\x05hello world")
    assert buf.peek(1) == b"\x05"
    assert buf.take(1 + buf[0]) == b"\x05hello"
    assert bytes(buf) == b" world"
    assert buf.take(6) == b" world"
    assert not buf


def test_a_short_buffer_or_an_unknown_length_waits_without_consuming() -> None:
    buf = ReceiveBuffer(b"abc")
    assert buf.peek(4) is None
    assert buf.take(4) is None
    assert buf.take(None) is None  # the header does not say the length yet
    assert bytes(buf) == b"abc"
    buf += b"d"
    assert isinstance(buf, ReceiveBuffer)  # appending keeps the reads
    assert buf.take(4) == b"abcd"
