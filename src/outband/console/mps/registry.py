"""The live tunnels of this MPS node by device id, and the console's routes through them.

A device is published once its tunnel has registered a WS-MAN port (AMT registers 16993 first, then 16992, then
the redirection ports, one after the other); from then on the device connector's CIRA traffic goes through it.
A device has at most one tunnel here: a newer one replaces the older (AMT that lost its connection without a
word dials again before the MPS notices the old one is dead), and only the tunnel that is current may withdraw
the device.  Routes read the registry when a client first connects and keep that tunnel for the client's life
(a job attempt, a session): the next attempt finds the device's tunnel of that moment.  A device with no tunnel
here may have one on another node of the same console (``remote``, :mod:`.nodes`): routes fall back to it.
Whoever waits for an absent device (a job) asks to be told when it is published
(:meth:`TunnelRegistry.when_online`): one callback per waiter, called for that device only, so 10,000 devices
dialling back in wake 10,000 waiters once each.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Callable
from typing import Final

import aiohttp

from ...aio.apf import ApfConnector, MpsTunnel
from ...aio.errors import CertificateMismatch, ConnectError
from ...aio.redirection import RedirectionStream, TcpStream
from ...aio.tls import client_context, normalize_fingerprint
from ...proto.apf import ApfError
from ..devices.connect import CiraRoutes, DeviceOffline, DeviceTarget, OfflineConnector

NO_TUNNEL: Final = "no tunnel to this console now"


class TunnelRegistry:
    """Device id -> its live tunnel on this node (implements the device connector's ``CiraRoutes``)."""

    def __init__(self) -> None:
        self._tunnels: dict[int, MpsTunnel] = {}
        self._changed = asyncio.Event()
        self._waiters: dict[int, dict[object, Callable[[], None]]] = {}
        self.remote: CiraRoutes | None = None
        """Where a device with no tunnel here is looked for (the other MPS nodes' relays), if anywhere."""

    def __len__(self) -> int:
        return len(self._tunnels)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._tunnels

    def get(self, device_id: int | None) -> MpsTunnel | None:
        return self._tunnels.get(device_id) if device_id is not None else None

    def tunnels(self) -> list[MpsTunnel]:
        return list(self._tunnels.values())

    def publish(self, device_id: int, tunnel: MpsTunnel) -> MpsTunnel | None:
        """Route the device through ``tunnel``; returns the tunnel it replaces, if any."""
        replaced = self._tunnels.get(device_id)
        self._tunnels[device_id] = tunnel
        self._notify()
        for callback in self._waiters.pop(device_id, {}).values():
            callback()
        return replaced if replaced is not tunnel else None

    def withdraw(self, device_id: int, tunnel: MpsTunnel) -> bool:
        """Forget the device if ``tunnel`` is its current one; whether it was."""
        if self._tunnels.get(device_id) is not tunnel:
            return False
        del self._tunnels[device_id]
        self._notify()
        return True

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def when_online(self, device_id: int, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (once) when the device is next published here; returns what withdraws the wish."""
        token = object()
        self._waiters.setdefault(device_id, {})[token] = callback

        def forget() -> None:
            waiters = self._waiters.get(device_id)
            if waiters is not None:
                waiters.pop(token, None)
                if not waiters:
                    del self._waiters[device_id]

        return forget

    async def wait_until(self, condition: Callable[[TunnelRegistry], bool]) -> None:
        """Wait without polling until ``condition(self)`` holds (bound it with ``asyncio.timeout``)."""
        while not condition(self):
            await self._changed.wait()

    # ------------------------------------------------------------------------------------------ routes

    def connector(self, target: DeviceTarget) -> aiohttp.BaseConnector:
        tunnel = self.get(target.device_id)
        if tunnel is None and self.remote is not None:
            return self.remote.connector(target)
        if tunnel is None:
            return OfflineConnector(target.host, NO_TUNNEL)
        return ApfConnector(tunnel, limit_per_host=1)

    async def open_redirection(self, target: DeviceTarget, seconds: float) -> RedirectionStream:
        """A channel to 16994, or 16995 with TLS inside the channel checked as a direct connection is (the pinned
        fingerprint, else the certificate chain and name)."""
        if self.get(target.device_id) is None and self.remote is not None:
            return await self.remote.open_redirection(target, seconds)
        return TcpStream(*await self.open_device_stream(
            target.device_id, target.redirection_port, tls=target.use_tls,
            pin=target.fingerprint if target.use_tls else None, verify=True, hostname=target.host, seconds=seconds,
            host=target.host))

    async def open_device_stream(self, device_id: int | None, port: int, *, tls: bool, pin: str | None,
                                 verify: bool, hostname: str | None, seconds: float, host: str
                                 ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A channel of the device's tunnel here to ``port``, with TLS inside it when asked: the certificate
        pinned (``pin``), else checked against the CA store and ``hostname`` unless ``verify`` is false."""
        tunnel = self.get(device_id)
        if tunnel is None:
            raise DeviceOffline(NO_TUNNEL, host=host)
        pinned = normalize_fingerprint(pin) if tls and pin else None
        context = client_context(verify=pinned is None and verify) if tls else None
        try:
            reader, writer = await tunnel.open_stream(port, ssl_context=context, open_timeout=seconds,
                                                      server_hostname=hostname if context else None)
        except (ApfError, OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            raise ConnectError(f"cannot open a CIRA channel to port {port}: {exc}", host=host) from None
        if pinned is not None:
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if isinstance(ssl_object, ssl.SSLObject) else None
            if der is None or hashlib.sha256(der).digest() != pinned:
                writer.close()
                raise CertificateMismatch("TLS certificate does not match the pinned fingerprint", host=host)
        return reader, writer
