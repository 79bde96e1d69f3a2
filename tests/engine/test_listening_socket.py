"""The listening socket the engine (and the console) bind before serving: port 0 yields the real port, and a
port that is taken fails with its address in the message rather than a bare errno."""

from __future__ import annotations

import errno

import pytest

from outband.aio.listen import listening_socket


def test_port_zero_binds_a_real_port_ready_for_an_event_loop() -> None:
    sock = listening_socket("127.0.0.1", 0, backlog=8)
    try:
        assert sock.getsockname()[1] != 0
        assert sock.getblocking() is False
    finally:
        sock.close()


def test_a_taken_port_names_the_address() -> None:
    first = listening_socket("127.0.0.1", 0, backlog=8)
    port = first.getsockname()[1]
    try:
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}") as caught:
            listening_socket("127.0.0.1", port, backlog=8)
        assert caught.value.errno == errno.EADDRINUSE
    finally:
        first.close()
