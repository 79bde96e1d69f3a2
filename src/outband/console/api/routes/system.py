"""The console itself: health, secret key rotation, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text

from .... import __version__ as _package_version
from ...schemas import Health, RotationResult
from ...secrets import rotate_credentials
from ..deps import PUBLIC, RequiresMetricsRead, RequiresSecretsRotate, RuntimeDep

router = APIRouter(tags=["system"])
metrics_router = APIRouter(tags=["system"])

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/health", dependencies=[PUBLIC])
async def health(runtime: RuntimeDep) -> Health:
    """Liveness and database reachability (no account needed)."""
    async with runtime.db.read() as session:
        await session.execute(text("SELECT 1"))
    return Health(status="ok", version=_package_version, database=runtime.db.engine.dialect.name)


@router.post("/admin/rotate-secrets")
async def rotate_secrets(runtime: RuntimeDep, audit: RequiresSecretsRotate) -> RotationResult:
    """Re-encrypt every stored device credential under the current (first) secret key.  Afterwards the older
    keys can be removed from OUTBAND_SECRET_KEY or the key file."""
    report = await rotate_credentials(runtime.db, runtime.box)
    audit.detail = {"rotated": report.rotated, "failed": len(report.failed), "key_id": runtime.box.key_id}
    audit.devices = report.failed
    return RotationResult(rotated=report.rotated, failed=report.failed, key_id=runtime.box.key_id)


async def _exposition(runtime: RuntimeDep) -> Response:
    await runtime.metrics.refresh_devices(runtime.db)
    return Response(runtime.metrics.exposition(), media_type=PROMETHEUS_CONTENT_TYPE)


@metrics_router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(runtime: RuntimeDep, audit: RequiresMetricsRead) -> Response:
    """Prometheus metrics (needs an account unless OUTBAND_METRICS_PUBLIC is set)."""
    return await _exposition(runtime)


public_metrics_router = APIRouter(tags=["system"])


@public_metrics_router.get("/metrics", dependencies=[PUBLIC], response_class=Response,
                           responses={200: {"content": {"text/plain": {}}}})
async def public_metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics (public: OUTBAND_METRICS_PUBLIC is set)."""
    return await _exposition(runtime)
