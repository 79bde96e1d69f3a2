"""The console's job services, built from the ``OUTBAND_JOB_*`` / ``OUTBAND_HEALTH_*`` settings: the runner
(named ``jobs``), the schedule clock (``schedules``) and the health poller (``health``).

Start them on a running console with ``for service in job_services(): await runtime.start_service(service)``
(``outband console`` and ``outband up`` do; tests pick the ones they need).

Settings (environment variables, like the console's own)::

    OUTBAND_JOB_RUNNER         local (default: in this process) or procrastinate (PostgreSQL queue, workers)
    OUTBAND_JOB_CONCURRENCY    devices in flight at once (default: OUTBAND_DEVICE_CONCURRENCY)
    OUTBAND_JOB_ATTEMPTS       attempts per device for transient failures (3)
    OUTBAND_JOB_RETRY_SECONDS  first retry delay, doubling per attempt with jitter (1.0)
    OUTBAND_JOB_OFFLINE_WAIT   seconds a job waits for a CIRA device that has not dialled in (900; 0: fail at once)
    OUTBAND_HEALTH_INTERVAL    seconds between health polls of a device (60; 0 turns the poller off)
    OUTBAND_HEALTH_CONCURRENCY polls at once (32)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..runtime import Service
from .execute import RetryPolicy
from .health import HealthPoller
from .runner import LocalRunner
from .scheduler import Scheduler


class JobSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OUTBAND_", env_ignore_empty=True, extra="ignore")

    job_runner: Literal["local", "procrastinate"] = "local"
    job_concurrency: int | None = Field(default=None, ge=1, le=10_000)
    job_attempts: int = Field(default=3, ge=1, le=20)
    job_retry_seconds: float = Field(default=1.0, gt=0, le=600)
    job_offline_wait: float = Field(default=900.0, ge=0, le=7 * 86_400)
    health_interval: float = Field(default=60.0, ge=0, le=86_400)
    health_concurrency: int = Field(default=32, ge=1, le=4096)


def job_services(settings: JobSettings | None = None) -> list[Service]:
    """The runner, the scheduler and (unless its interval is 0) the health poller, in start order."""
    settings = settings or JobSettings()
    retry = RetryPolicy(max_attempts=settings.job_attempts, base=settings.job_retry_seconds,
                        offline_wait=settings.job_offline_wait)
    runner: Service
    if settings.job_runner == "procrastinate":
        from .procrastinate import ProcrastinateRunner  # optional: needs the procrastinate package

        runner = ProcrastinateRunner(concurrency=settings.job_concurrency, retry=retry)
    else:
        runner = LocalRunner(concurrency=settings.job_concurrency, retry=retry)
    services: list[Service] = [runner, Scheduler()]
    if settings.health_interval > 0:
        services.append(HealthPoller(interval=settings.health_interval, concurrency=settings.health_concurrency))
    return services
