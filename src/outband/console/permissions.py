"""Who may do what: the console's one permission table.

Every API route names exactly one :class:`Permission` (``api.deps.require``), and a request passes only when
the caller's role holds it (a test walks every route to keep it so).  The roles form a chain, each holding
everything the one below it holds: viewer < power_only < operator < admin.  An API token may be limited to a
lower role than its owner's.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    POWER_ONLY = "power_only"
    VIEWER = "viewer"


class Permission(StrEnum):
    # every signed-in account, about itself
    SELF = "self"
    """Own session, password and API tokens."""
    # reading
    DEVICE_READ = "device.read"
    JOB_READ = "job.read"
    SCHEDULE_READ = "schedule.read"
    METRICS_READ = "metrics.read"
    AUDIT_READ = "audit.read"
    # device operations, one permission per kind of effect on the fleet
    POWER = "device.power"
    """Power on/off/reset/cycle and reading the power state."""
    BOOT = "device.boot"
    """Next boot device (PXE, disk, CD, IDE-R, BIOS setup)."""
    INVENTORY = "device.inventory"
    """Refresh hardware inventory."""
    LOGS = "device.logs"
    """Pull event and audit logs from devices."""
    ALARMS = "device.alarms"
    CONSENT = "device.consent"
    """User consent start/submit/cancel."""
    FEATURES = "device.features"
    """AMT feature switches: SOL, IDE-R, KVM, redirection listener."""
    REDIRECT = "device.redirect"
    """Interactive SOL/KVM/IDE-R sessions through the console."""
    JOB_CANCEL = "job.cancel"
    # changing what the console manages
    DEVICE_WRITE = "device.write"
    """Add, edit, import, delete devices; tags and groups."""
    SCHEDULE_WRITE = "schedule.write"
    DEVICE_DISCOVER = "device.discover"
    """Scan address ranges: admin only, because it sends traffic to whatever range is named."""
    USER_ADMIN = "user.admin"
    SECRETS_ROTATE = "secrets.rotate"


_VIEWER: Final = frozenset({
    Permission.SELF, Permission.DEVICE_READ, Permission.JOB_READ, Permission.SCHEDULE_READ,
    Permission.METRICS_READ,
})
_POWER_ONLY: Final = _VIEWER | {Permission.POWER, Permission.JOB_CANCEL}
_OPERATOR: Final = _POWER_ONLY | {
    Permission.BOOT, Permission.INVENTORY, Permission.LOGS, Permission.ALARMS, Permission.CONSENT,
    Permission.FEATURES, Permission.REDIRECT, Permission.DEVICE_WRITE, Permission.SCHEDULE_WRITE,
    Permission.AUDIT_READ,
}
_ADMIN: Final = frozenset(Permission)

PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = {
    Role.ADMIN: _ADMIN,
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.POWER_ONLY: frozenset(_POWER_ONLY),
    Role.VIEWER: _VIEWER,
}

ROLE_ORDER: Final = (Role.VIEWER, Role.POWER_ONLY, Role.OPERATOR, Role.ADMIN)
"""Weakest first; each role holds every permission of the ones before it."""


def allows(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS[role]


def at_most(role: Role, limit: Role | None) -> Role:
    """The weaker of two roles (an API token limited to ``limit`` acting for a ``role`` account)."""
    if limit is None:
        return role
    return min(role, limit, key=ROLE_ORDER.index)
