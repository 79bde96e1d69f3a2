"""Scanning address ranges for AMT endpoints (admin only: it sends traffic to whatever range is named)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from ...db.models import DiscoveredEndpoint, Discovery, Status
from ...devices.discovery import end_unfinished, parse_network, probe_count, run_discovery
from ...runtime import Runtime
from ...schemas import DiscoveryCreate, DiscoveryPublic, EndpointPublic
from ..common import CONFLICT, NOT_FOUND, IdPath, conflict, not_found, unprocessable
from ..deps import RequiresDeviceDiscover, RuntimeDep

router = APIRouter(prefix="/discovery", tags=["discovery"])


def _task_name(discovery_id: int) -> str:
    return f"discovery-{discovery_id}"


async def _public(runtime: Runtime, discovery_id: int, *, found: bool) -> DiscoveryPublic:
    async with runtime.db.read() as session:
        scan = await session.get(Discovery, discovery_id)
        if scan is None:
            raise not_found("discovery")
        result = DiscoveryPublic.model_validate(scan)
        if found:
            endpoints = await session.execute(select(DiscoveredEndpoint).where(
                DiscoveredEndpoint.discovery_id == discovery_id).order_by(DiscoveredEndpoint.id))
            result.found = [EndpointPublic.model_validate(e) for e in endpoints.scalars()]
    return result


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def start_discovery(body: DiscoveryCreate, runtime: RuntimeDep, audit: RequiresDeviceDiscover
                          ) -> DiscoveryPublic:
    """Start scanning a range: Identify (no credentials) on the HTTP and TLS ports of every address, a bounded
    number at a time.  Poll GET /api/discovery/{id} for progress and what was found."""
    try:
        network = parse_network(body.network, runtime.settings.discovery_max_addresses)
    except ValueError as exc:
        raise unprocessable(str(exc)) from None
    async with runtime.db.write() as session:
        scan = Discovery(network=str(network), http_port=body.http_port, tls_port=body.tls_port,
                         requested_by=audit.actor, total=probe_count(network, body.http_port, body.tls_port))
        session.add(scan)
        await session.flush()
        discovery_id = scan.id
    audit.detail = {"discovery_id": discovery_id, "network": str(network), "http_port": body.http_port,
                    "tls_port": body.tls_port}
    runtime.spawn(run_discovery(runtime.db, runtime.connector, discovery_id,
                                concurrency=runtime.settings.discovery_concurrency,
                                probe_seconds=runtime.settings.discovery_timeout),
                  name=_task_name(discovery_id))
    return await _public(runtime, discovery_id, found=False)


@router.get("")
async def list_discoveries(runtime: RuntimeDep, audit: RequiresDeviceDiscover,
                           limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[DiscoveryPublic]:
    async with runtime.db.read() as session:
        scans = await session.execute(select(Discovery).order_by(Discovery.id.desc()).limit(limit))
        return [DiscoveryPublic.model_validate(s) for s in scans.scalars()]


@router.get("/{discovery_id}", responses=NOT_FOUND)
async def get_discovery(discovery_id: IdPath, runtime: RuntimeDep, audit: RequiresDeviceDiscover) -> DiscoveryPublic:
    return await _public(runtime, discovery_id, found=True)


@router.post("/{discovery_id}/cancel", responses={**NOT_FOUND, **CONFLICT})
async def cancel_discovery(discovery_id: IdPath, runtime: RuntimeDep, audit: RequiresDeviceDiscover
                           ) -> DiscoveryPublic:
    audit.detail = {"discovery_id": discovery_id}
    current = await _public(runtime, discovery_id, found=False)
    task = runtime.task(_task_name(discovery_id))
    if current.status.finished or task is None:
        raise conflict(f"the discovery is {current.status.value}")
    task.cancel()
    await asyncio.wait([task])
    await end_unfinished(runtime.db, discovery_id, Status.CANCELLED)  # cancelled before it even started
    return await _public(runtime, discovery_id, found=True)


