"""How the IDE-R and KVM sessions reach a device by default: a direct TCP (16994) or TLS (16995) connection.

A session takes any :data:`~outband.client.redirection.StreamFactory`; a CIRA channel will be another one.
"""

from __future__ import annotations

from ..aio.redirection import REDIRECTION_PORT, REDIRECTION_TLS_PORT, RedirectionStream, open_tcp_stream
from .redirection import StreamFactory


def direct_stream(host: str, port: int | None = None, *, tls: bool = False, fingerprint: str | None = None,
                  verify: bool = True, timeout: float = 30.0) -> StreamFactory:
    """A factory opening the device's redirection port directly (16995 with TLS, else 16994)."""
    chosen = port or (REDIRECTION_TLS_PORT if tls else REDIRECTION_PORT)

    async def connect() -> RedirectionStream:
        return await open_tcp_stream(host, chosen, tls=tls, fingerprint=fingerprint, verify=verify,
                                     connect_timeout=timeout)

    return connect


__all__ = ["direct_stream"]
