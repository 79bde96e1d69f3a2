"""Binding a listening TCP socket before the server that will serve it exists.

The engine and the console bind first and hand the socket to their server (aiohttp, asyncio, uvicorn), so a
caller that asked for port 0 learns the real port at once, and a port that is taken fails with a message that
names the address instead of a bare errno.
"""

from __future__ import annotations

import socket


def listening_socket(host: str, port: int, *, backlog: int) -> socket.socket:
    """A non-blocking socket listening on ``host:port`` (IPv6 when the host has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


__all__ = ["listening_socket"]
