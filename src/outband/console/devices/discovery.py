"""Finding AMT endpoints in an address range: ``wsmid:Identify`` (answered without credentials) on 16992 and
16993 of every address, a bounded number at a time.

Theory of operation: a scan is a :class:`~outband.console.db.models.Discovery` row.  ``concurrency`` workers
pull (address, port) probes from one shared iterator, so memory stays flat whatever the range; every found
endpoint and the probe count are written in short batches (about once a second), so a client polling the
scan sees it progress.  A scan ends ``succeeded`` (even with nothing found), ``cancelled``, or ``failed``
with the error; a console restart fails the scans it interrupted (:func:`fail_interrupted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import select, update

from ...aio.errors import TransportError
from ...proto.wsman import WsmanError
from ..db.base import utcnow
from ..db.database import Database
from ..db.models import ERROR_LENGTH, Device, DiscoveredEndpoint, Discovery, Status
from .connect import DeviceCheckError, DeviceConnector
from .repository import chunks

log = logging.getLogger("outband.console.discovery")

FLUSH_SECONDS: Final = 1.0
FLUSH_FOUND: Final = 200

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str, max_addresses: int) -> Network:
    """A scannable range: CIDR or one address, at most ``max_addresses``, not multicast or unspecified."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an address range (e.g. 192.168.1.0/24)") from None
    if network.num_addresses > max_addresses:
        raise ValueError(f"{network} has {network.num_addresses} addresses; at most {max_addresses} per scan "
                         f"(a /{network.max_prefixlen - (max_addresses.bit_length() - 1)})")
    if network.is_multicast or network.network_address.is_unspecified:
        raise ValueError(f"{network} is not a range of hosts")
    return network


def probes(network: Network, http_port: int | None, tls_port: int | None) -> Iterator[tuple[str, int, bool]]:
    ports = [(p, tls) for p, tls in ((http_port, False), (tls_port, True)) if p is not None]
    for address in network.hosts():
        for port, tls in ports:
            yield str(address), port, tls


def probe_count(network: Network, http_port: int | None, tls_port: int | None) -> int:
    hosts = network.num_addresses
    if network.version == 4 and network.prefixlen < 31:
        hosts -= 2  # network and broadcast addresses
    elif network.version == 6 and network.prefixlen < 127:
        hosts -= 1  # the subnet-router anycast address
    return hosts * ((http_port is not None) + (tls_port is not None))


@dataclass
class _Progress:
    probed: int = 0
    found: list[DiscoveredEndpoint] = field(default_factory=list)


async def run_discovery(db: Database, connector: DeviceConnector, discovery_id: int, *, concurrency: int,
                        probe_seconds: float) -> None:
    progress = _Progress()

    async def worker(pending: Iterator[tuple[str, int, bool]]) -> None:
        for address, port, tls in pending:
            found = await _probe(connector, address, port, tls, probe_seconds)
            progress.probed += 1
            if found is not None:
                found.discovery_id = discovery_id
                progress.found.append(found)

    async def flusher() -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await _flush(db, discovery_id, progress)

    status, error = Status.SUCCEEDED, None
    flushing: asyncio.Task[None] | None = None
    try:
        async with db.write() as session:
            scan = await session.get(Discovery, discovery_id)
            if scan is None:
                return
            scan.status = Status.RUNNING
            pending = probes(ipaddress.ip_network(scan.network), scan.http_port, scan.tls_port)
        flushing = asyncio.create_task(flusher())
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker(pending))
    except asyncio.CancelledError:
        status = Status.CANCELLED
        raise
    except Exception as exc:
        log.exception("discovery %s failed", discovery_id)
        status, error = Status.FAILED, f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH]
    finally:
        if flushing is not None:
            flushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flushing
        await asyncio.shield(_finish(db, discovery_id, progress, status, error))


async def _probe(connector: DeviceConnector, address: str, port: int, tls: bool, seconds: float
                 ) -> DiscoveredEndpoint | None:
    try:
        identity, fingerprint = await connector.identify(address, port, tls=tls, seconds=seconds)
    except (TransportError, WsmanError, DeviceCheckError, OSError, TimeoutError):
        return None
    return DiscoveredEndpoint(
        address=address, port=port, tls=tls, fingerprint=fingerprint,
        product_vendor=identity.product_vendor[:128], product_version=identity.product_version[:64],
        protocol_version=identity.protocol_version[:255],
    )


async def _flush(db: Database, discovery_id: int, progress: _Progress) -> None:
    found, progress.found = progress.found, []
    async with db.write() as session:
        addresses = sorted({f.address for f in found})
        known: dict[str, int] = {}
        for part in chunks(addresses):
            rows = await session.execute(select(Device.host, Device.id).where(Device.host.in_(part)))
            known.update((host, device_id) for host, device_id in rows)
        for endpoint in found:
            endpoint.device_id = known.get(endpoint.address)
            session.add(endpoint)
        await session.execute(update(Discovery).where(Discovery.id == discovery_id).values(probed=progress.probed))


async def _finish(db: Database, discovery_id: int, progress: _Progress, status: Status, error: str | None) -> None:
    await _flush(db, discovery_id, progress)
    async with db.write() as session:
        await session.execute(update(Discovery).where(Discovery.id == discovery_id)
                              .values(status=status, error=error, finished_at=utcnow()))


async def end_unfinished(db: Database, discovery_id: int, status: Status, error: str | None = None) -> None:
    """Close a scan whose task never ran to its own end (cancelled before it started)."""
    async with db.write() as session:
        await session.execute(
            update(Discovery).where(Discovery.id == discovery_id,
                                    Discovery.status.in_([Status.PENDING, Status.RUNNING]))
            .values(status=status, error=error, finished_at=utcnow())
        )


async def fail_interrupted(db: Database) -> int:
    """Scans a previous console process left running cannot resume; say so."""
    async with db.write() as session:
        result = await session.execute(
            update(Discovery).where(Discovery.status.in_([Status.PENDING, Status.RUNNING]))
            .values(status=Status.FAILED, error="interrupted by a console restart", finished_at=utcnow())
        )
    return int(result.rowcount)  # type: ignore[attr-defined]
