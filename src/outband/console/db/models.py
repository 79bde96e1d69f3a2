"""The console's tables: what it manages (devices, tags, groups, their last known state and what was pulled
from them), what it did (jobs with one result row per device, schedules, discovery scans, the audit trail)
and who may use it (users, sessions, API tokens).

Text columns have the lengths the API schemas enforce, so PostgreSQL never sees an over-long value.  Secrets
are never stored in the clear: device passwords as Fernet tokens (``console.secrets``), session and API
tokens as SHA-256 digests, account passwords as scrypt hashes.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Column, Enum, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..permissions import Role
from .base import Base, utcnow

NAME_LENGTH = 128
HOST_LENGTH = 255
USERNAME_LENGTH = 64
LABEL_LENGTH = 64
"""Tag and group names."""
DEVICE_USER_LENGTH = 32
"""AMT user names are at most 16 characters; room for domain-qualified ones."""
ERROR_LENGTH = 1000


class Status(enum.StrEnum):
    """Life of a job and of each device's part in it."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


class Transport(enum.StrEnum):
    DIRECT = "direct"
    """The console connects to the device's address (16992/16993)."""
    CIRA = "cira"
    """The device dials the console's MPS; calls travel inside its tunnel."""


class LogKind(enum.StrEnum):
    AUDIT = "audit"
    EVENT = "event"


def _enum(cls: type[enum.StrEnum]) -> Enum:
    """Stored as the value (``"power_only"``), as a plain string column on every database."""
    return Enum(cls, native_enum=False, length=16, values_callable=lambda members: [m.value for m in members],
                validate_strings=True)


device_tags = Table(
    "device_tags",
    Base.metadata,
    Column("device_id", ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(LABEL_LENGTH), unique=True)


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(LABEL_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    host: Mapped[str] = mapped_column(String(HOST_LENGTH), index=True)
    http_port: Mapped[int] = mapped_column(default=16992)
    tls_port: Mapped[int] = mapped_column(default=16993)
    use_tls: Mapped[bool] = mapped_column(default=False)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the device's TLS certificate (64 lower-case hex digits), pinned."""
    transport: Mapped[Transport] = mapped_column(_enum(Transport), default=Transport.DIRECT)
    username: Mapped[str] = mapped_column(String(DEVICE_USER_LENGTH), default="admin")
    password_enc: Mapped[str] = mapped_column(Text)
    """The device password as a Fernet token under the console's secret key."""
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # last known state
    uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    reachable: Mapped[bool | None] = mapped_column(index=True)
    """None until the console first tried."""
    power_state: Mapped[int | None] = mapped_column(index=True)
    """CIM PowerState: 2 on, 3/4 sleep, 6/8 off, 7 hibernate ..."""
    amt_version: Mapped[str | None] = mapped_column(String(32))
    provisioning_mode: Mapped[str | None] = mapped_column(String(16))
    """``acm``, ``ccm``, ``pre`` (not provisioned) or ``in`` (provisioning)."""
    last_seen_at: Mapped[dt.datetime | None]
    """Last successful exchange."""
    last_checked_at: Mapped[dt.datetime | None]
    """Last attempt, successful or not."""
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    # CIRA login (transport "cira"): a device with its own MPS credentials must present them; one without uses
    # the MPS's shared ones
    cira_username: Mapped[str | None] = mapped_column(String(USERNAME_LENGTH))
    cira_password_enc: Mapped[str | None] = mapped_column(Text)
    """The device's own MPS password as a Fernet token, like ``password_enc``."""

    group: Mapped[Group | None] = relationship(lazy="raise")
    tags: Mapped[list[Tag]] = relationship(secondary=device_tags, lazy="raise", order_by=Tag.name)
    presence: Mapped[CiraPresence | None] = relationship(lazy="raise", viewonly=True)
    """Its CIRA tunnel as the MPS nodes last saw it (written by the MPS, never through this attribute)."""

    @property
    def port(self) -> int:
        return self.tls_port if self.use_tls else self.http_port


class CiraPresence(Base):
    """A CIRA device's tunnel as the MPS nodes see it (one row per device that ever dialled in).  Kept apart
    from ``devices`` so keepalives, which arrive every half minute from every device, touch a narrow row."""

    __tablename__ = "cira_presence"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    online: Mapped[bool] = mapped_column(default=False, index=True)
    mps_node: Mapped[str | None] = mapped_column(String(LABEL_LENGTH), index=True)
    """The MPS node holding (or that last held) the tunnel: where to route the device's sessions."""
    peer: Mapped[str | None] = mapped_column(String(LABEL_LENGTH))
    """The address the tunnel came from."""
    connected_since: Mapped[dt.datetime | None]
    last_keepalive: Mapped[dt.datetime | None]
    disconnected_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    """Why the last tunnel ended."""


class CiraTunnel(Base):
    """One CIRA tunnel of a device, from its start to its end (the device's tunnel history)."""

    __tablename__ = "cira_tunnels"
    __table_args__ = (Index("ix_cira_tunnels_device_connected", "device_id", "connected_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    mps_node: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    peer: Mapped[str | None] = mapped_column(String(LABEL_LENGTH))
    connected_at: Mapped[dt.datetime]
    disconnected_at: Mapped[dt.datetime | None]
    """None while it lasts."""
    reason: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    """Why it ended."""


class MpsNode(Base):
    """An MPS node that relays for the others (a console process of several sharing one database): where they
    connect to reach the devices whose tunnels it holds."""

    __tablename__ = "mps_nodes"

    name: Mapped[str] = mapped_column(String(LABEL_LENGTH), primary_key=True)
    relay_address: Mapped[str] = mapped_column(String(HOST_LENGTH))
    """HOST:PORT of its relay listener."""
    fingerprint: Mapped[str] = mapped_column(String(64))
    """SHA-256 of its relay certificate: the others pin it."""
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)
    """Renewed while it runs; a node silent for long is taken for dead and its devices for offline (None: a
    row from before heartbeats, taken as silent)."""


class InventorySnapshot(Base):
    __tablename__ = "inventory_snapshots"
    __table_args__ = (Index("ix_inventory_snapshots_device_taken", "device_id", "taken_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    taken_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]]


class DeviceLogRecord(Base):
    """One record of a device's audit or event log; (device, kind, seq) is unique so pulling again only
    adds what is new."""

    __tablename__ = "device_log_records"
    __table_args__ = (UniqueConstraint("device_id", "kind", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    kind: Mapped[LogKind] = mapped_column(_enum(LogKind))
    seq: Mapped[int]
    """The record's position in the device's log (stable across pulls while the log is not cleared)."""
    recorded_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    """When the device says it happened."""
    pulled_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]]
    """The decoded record."""


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    failed_logins: Mapped[int] = mapped_column(default=0)
    """Consecutive failed logins; reset by a successful one."""
    locked_until: Mapped[dt.datetime | None]


class SpentTicket(Base):
    """A redirect ticket already used: whichever console process a ticket's WebSocket reaches, it opens once."""

    __tablename__ = "spent_tickets"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    """After this the ticket is refused by its age anyway, and the row may go."""


class WebSession(Base):
    """A browser session: the cookie holds a random token, the table its digest (a leaked table opens no
    session) and the digest of the session's CSRF token."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    client: Mapped[str | None] = mapped_column(String(64))


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    """The token's first characters, to recognise it in lists."""
    role: Mapped[Role | None] = mapped_column(_enum(Role))
    """Acts with at most this role (None: the owner's)."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]


class Job(Base):
    """One operation over a set of devices; its per-device outcome is in :class:`JobDevice`."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    operation: Mapped[str] = mapped_column(String(LABEL_LENGTH), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.PENDING, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by: Mapped[str | None] = mapped_column(String(USERNAME_LENGTH))
    """The account name at submission (kept when the account is deleted)."""
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    total: Mapped[int] = mapped_column(default=0)


class JobDevice(Base):
    """One device's part in a job: written as it progresses, so a restarted console knows what is left."""

    __tablename__ = "job_devices"
    __table_args__ = (
        UniqueConstraint("job_id", "device_id"),
        Index("ix_job_devices_job_status", "job_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"), index=True)
    device_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))


class Schedule(Base):
    """A recurring operation: ``cron`` (five fields, in ``timezone``) starts ``operation`` on ``target``."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    operation: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    target: Mapped[dict[str, Any]]
    """A device selection (``api.schemas.Selection``)."""
    cron: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    timezone: Mapped[str] = mapped_column(String(LABEL_LENGTH), default="UTC")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_run_at: Mapped[dt.datetime | None]
    next_run_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class Discovery(Base):
    """A scan of an address range for AMT endpoints (Identify on 16992/16993)."""

    __tablename__ = "discoveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    network: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    http_port: Mapped[int | None]
    tls_port: Mapped[int | None]
    status: Mapped[Status] = mapped_column(_enum(Status), default=Status.PENDING)
    requested_by: Mapped[str | None] = mapped_column(String(USERNAME_LENGTH))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    total: Mapped[int] = mapped_column(default=0)
    """Probes to make (addresses x ports)."""
    probed: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))


class DiscoveredEndpoint(Base):
    __tablename__ = "discovered_endpoints"
    __table_args__ = (UniqueConstraint("discovery_id", "address", "port"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    discovery_id: Mapped[int] = mapped_column(ForeignKey("discoveries.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    port: Mapped[int]
    tls: Mapped[bool]
    product_vendor: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    product_version: Mapped[str] = mapped_column(String(LABEL_LENGTH), default="")
    protocol_version: Mapped[str] = mapped_column(String(HOST_LENGTH), default="")
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the certificate a TLS endpoint presented: what to pin when adding it."""
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    """A registered device at this address, if any."""


audit_devices = Table(
    "audit_devices",
    Base.metadata,
    Column("audit_id", ForeignKey("audit_entries.id", ondelete="CASCADE"), primary_key=True),
    Column("device_id", Integer, primary_key=True, index=True),
    # no foreign key to devices: the trail outlives the devices it names
)


class AuditEntry(Base):
    """One action on the console: who, what, on which devices, and how it ended."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(USERNAME_LENGTH), index=True)
    """Account name (or the name tried, for a failed login); None for the console itself."""
    actor_id: Mapped[int | None]
    via: Mapped[str] = mapped_column(String(16))
    """``session``, ``token``, ``login`` or ``system``."""
    client: Mapped[str | None] = mapped_column(String(LABEL_LENGTH))
    action: Mapped[str] = mapped_column(String(LABEL_LENGTH), index=True)
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    """``ok``, ``denied``, ``failed`` (refused or went wrong) or ``error`` (a console fault)."""
    status_code: Mapped[int | None]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    device_count: Mapped[int] = mapped_column(default=0)
