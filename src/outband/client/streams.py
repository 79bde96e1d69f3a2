"""How a redirection session reaches a device: any :data:`StreamFactory`; by default a direct TCP (16994) or
TLS (16995) connection, a CIRA channel being another one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..aio.redirection import REDIRECTION_PORT, REDIRECTION_TLS_PORT, RedirectionStream, open_tcp_stream

StreamFactory = Callable[[], Awaitable[RedirectionStream]]


def direct_stream(host: str, port: int | None = None, *, tls: bool = False, fingerprint: str | None = None,
                  verify: bool = True, timeout: float = 30.0) -> StreamFactory:
    """A factory opening the device's redirection port directly (16995 with TLS, else 16994)."""
    chosen = port or (REDIRECTION_TLS_PORT if tls else REDIRECTION_PORT)

    async def connect() -> RedirectionStream:
        return await open_tcp_stream(host, chosen, tls=tls, fingerprint=fingerprint, verify=verify,
                                     connect_timeout=timeout)

    return connect


__all__ = ["StreamFactory", "direct_stream"]
