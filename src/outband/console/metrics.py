"""Prometheus metrics, one registry per console (so tests and several apps in one process stay apart).

Labels are bounded sets (states, operation names, outcomes), never device names: a fleet of 100,000 must not
become 100,000 series.  Device gauges are recomputed from the database when /metrics is scraped.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from .db.database import Database
from .db.models import Device

POWER_STATE_NAMES: Final = {
    2: "on", 3: "sleep_light", 4: "sleep_deep", 5: "power_cycle", 6: "off_hard", 7: "hibernate", 8: "off_soft",
    9: "power_cycle", 10: "master_bus_reset", 11: "nmi", 12: "off_soft_graceful", 13: "off_hard_graceful",
    14: "master_bus_reset_graceful", 15: "power_cycle_graceful", 16: "power_cycle_graceful",
}
"""CIM PowerState values by name (those a host reports and those a request can name)."""

LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


def power_state_name(value: int | None) -> str:
    if value is None:
        return "unknown"
    return POWER_STATE_NAMES.get(value, "other")


def reachability_name(value: bool | None) -> str:
    return "unknown" if value is None else ("reachable" if value else "unreachable")


class ConsoleMetrics:
    """The console's instruments.  Jobs count into ``jobs_submitted``/``job_device_results`` and keep
    ``jobs_running``; every WS-MAN exchange with a device observes ``wsman_latency`` (the device connector
    does that for each client it hands out)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.devices_by_reachability = Gauge(
            "outband_devices_by_reachability", "Managed devices by last known reachability.", ["state"],
            registry=self.registry,
        )
        self.devices_by_power_state = Gauge(
            "outband_devices_by_power_state", "Managed devices by last known power state.", ["state"],
            registry=self.registry,
        )
        self.jobs_submitted = Counter(
            "outband_jobs_submitted", "Jobs submitted, by operation.", ["operation"], registry=self.registry
        )
        self.job_device_results = Counter(
            "outband_job_device_results", "Per-device results of jobs, by operation and outcome.",
            ["operation", "status"], registry=self.registry,
        )
        self.jobs_running = Gauge("outband_jobs_running", "Jobs currently running.", registry=self.registry)
        self.wsman_latency = Histogram(
            "outband_wsman_request_seconds", "WS-MAN request/response time to devices, by operation.",
            ["operation"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.wsman_errors = Counter(
            "outband_wsman_errors", "WS-MAN exchanges that failed at the transport, by operation and error kind.",
            ["operation", "kind"], registry=self.registry,
        )

    async def refresh_devices(self, db: Database) -> None:
        async with db.read() as session:
            by_reach = (await session.execute(
                select(Device.reachable, func.count()).group_by(Device.reachable))).all()
            by_power = (await session.execute(
                select(Device.power_state, func.count()).group_by(Device.power_state))).all()
        self._set_all(self.devices_by_reachability, ("reachable", "unreachable", "unknown"),
                      [(reachability_name(value), count) for value, count in by_reach])
        self._set_all(self.devices_by_power_state, (*sorted(set(POWER_STATE_NAMES.values())), "other", "unknown"),
                      [(power_state_name(value), count) for value, count in by_power])

    @staticmethod
    def _set_all(gauge: Gauge, names: tuple[str, ...], counts: list[tuple[str, int]]) -> None:
        """Every label gets a value, zero included, so a state that empties shows 0 rather than vanishing."""
        totals = dict.fromkeys(names, 0)
        for name, count in counts:
            totals[name] += count
        for name, total in totals.items():
            gauge.labels(state=name).set(total)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
