"""AMT's binary log records: audit log (AMT_AuditLog.ReadRecords) and event log (AMT_MessageLog.GetRecords).

Both travel base64-encoded inside WS-MAN replies.  The engine encodes them, the console decodes them; the
layouts are AMT-PROTOCOLS.md §3.5.  Decoders treat input as hostile: every length is checked against what is
left, and a record that does not add up raises :class:`LogRecordError`.
"""

from __future__ import annotations

import datetime as dt
import enum
import struct
from dataclasses import dataclass
from typing import ClassVar, Final


class LogRecordError(ValueError):
    pass


class InitiatorType(enum.IntEnum):
    HTTP_DIGEST = 0
    KERBEROS = 1
    LOCAL = 2
    KVM_DEFAULT_PORT = 3


class AuditApp(enum.IntEnum):
    SECURITY_ADMIN = 16
    REMOTE_CONTROL = 17
    REDIRECTION_MANAGER = 18
    FIRMWARE_UPDATE = 19
    SECURITY_AUDIT_LOG = 20
    NETWORK_TIME = 21
    NETWORK_ADMIN = 22
    STORAGE_ADMIN = 23
    EVENT_MANAGER = 24
    CIRCUIT_BREAKER = 25
    AGENT_PRESENCE = 26
    WIRELESS = 27
    EAC = 28
    KVM = 29
    USER_OPT_IN = 30
    SCREEN_BLANKING = 32
    WATCHDOG = 33


# Full event id (app*100 + event) -> description, for the events the engine writes and consoles show.
AUDIT_EVENTS: Final = {
    1600: "Provisioning Started",
    1601: "Provisioning Completed",
    1602: "ACL Entry Added",
    1603: "ACL Entry Modified",
    1604: "ACL Entry Removed",
    1605: "ACL Access with Invalid Credentials",
    1606: "ACL Entry State",
    1607: "TLS State Changed",
    1608: "TLS Server Certificate Set",
    1609: "TLS Server Certificate Remove",
    1610: "TLS Trusted Root Certificate Added",
    1611: "TLS Trusted Root Certificate Removed",
    1612: "TLS Preshared Key Set",
    1613: "Kerberos Settings Modified",
    1614: "Kerberos Main Key Modified",
    1615: "Flash Wear out Counters Reset",
    1616: "Power Package Modified",
    1617: "Set Realm Authentication Mode",
    1618: "Upgrade Client to Admin Control Mode",
    1619: "Unprovisioning Started",
    1700: "Performed Power Up",
    1701: "Performed Power Down",
    1702: "Performed Power Cycle",
    1703: "Performed Reset",
    1704: "Set Boot Options",
    1800: "IDER Session Opened",
    1801: "IDER Session Closed",
    1802: "IDER Enabled",
    1803: "IDER Disabled",
    1804: "SoL Session Opened",
    1805: "SoL Session Closed",
    1806: "SoL Enabled",
    1807: "SoL Disabled",
    1808: "KVM Session Started",
    1809: "KVM Session Ended",
    1810: "KVM Enabled",
    1811: "KVM Disabled",
    1812: "VNC Password Failed 3 Times",
    1900: "Firmware Updated",
    1901: "Firmware Update Failed",
    2000: "Security Audit Log Cleared",
    2001: "Security Audit Policy Modified",
    2002: "Security Audit Log Disabled",
    2003: "Security Audit Log Enabled",
    2004: "Audit Log Exported",
    2005: "Audit Log Recovered",
    2100: "Intel ME Time Set",
    2200: "TCPIP Parameters Set",
    2201: "Host Name Set",
    2202: "Domain Name Set",
    2203: "VLAN Parameters Set",
    2204: "Link Policy Set",
    2205: "IPv6 Parameters Set",
    2400: "Alert Subscribed",
    2401: "Alert Unsubscribed",
    2402: "Event Log Cleared",
    2403: "Event Log Frozen",
    2600: "Agent Watchdog Added",
    2601: "Agent Watchdog Removed",
    2602: "Agent Watchdog Action Set",
    2700: "Wireless Profile Added",
    2701: "Wireless Profile Removed",
    2702: "Wireless Profile Updated",
    2703: "Wireless Local Profile Sync Enablement Changed",
    2704: "Wireless Link Preference Changed",
    2705: "Wireless Profile Share With UEFI Enabled Setting Changed",
    3000: "User Opt-In Policy Change",
    3001: "Send User Opt-In Code Event",
    3002: "Start Opt-In Blocked Event",
    3003: "Cancel User Opt-In Code Event",
    3301: "Watchdog Reset Triggering Options Changed",
    3302: "Watchdog Action Pairing Changed",
}


@dataclass(frozen=True, slots=True)
class AuditRecord:
    app_id: int
    event_id: int
    initiator_type: InitiatorType
    initiator: str
    """User name for digest, SID hex for Kerberos, empty for local."""
    timestamp: int
    location_type: int = 0
    """MC location type: 0 IPv4, 1 IPv6, 2 none (local)."""
    address: str = ""
    extended: bytes = b""
    kerberos_domain_user: int = 0

    @property
    def full_id(self) -> int:
        return self.app_id * 100 + self.event_id

    @property
    def description(self) -> str:
        return AUDIT_EVENTS.get(self.full_id, f"Event {self.full_id}")

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp, dt.UTC)

    def encode(self) -> bytes:
        out = bytearray(struct.pack(">HHB", self.app_id, self.event_id, int(self.initiator_type)))
        if self.initiator_type is InitiatorType.HTTP_DIGEST:
            out += _short_string(self.initiator.encode("utf-8"))
        elif self.initiator_type is InitiatorType.KERBEROS:
            out += struct.pack(">I", self.kerberos_domain_user) + _short_string(bytes.fromhex(self.initiator))
        out += struct.pack(">IB", self.timestamp & 0xFFFFFFFF, self.location_type)
        out += _short_string(self.address.encode("ascii"))
        out += _short_string(self.extended)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> AuditRecord:
        r = _Reader(data)
        app, event, itype = r.unpack(">HHB")
        try:
            initiator_type = InitiatorType(itype)
        except ValueError:
            raise LogRecordError(f"unknown audit initiator type {itype}") from None
        initiator, domain_user = "", 0
        if initiator_type is InitiatorType.HTTP_DIGEST:
            initiator = r.short_string().decode("utf-8", "replace")
        elif initiator_type is InitiatorType.KERBEROS:
            (domain_user,) = r.unpack(">I")
            initiator = r.short_string().hex()
        timestamp, location = r.unpack(">IB")
        address = r.short_string().decode("ascii", "replace")
        extended = r.short_string() if r.remaining else b""
        r.check_end()
        return cls(app, event, initiator_type, initiator, timestamp, location, address, extended, domain_user)


def _short_string(raw: bytes) -> bytes:
    if len(raw) > 255:
        raise ValueError("audit record strings are at most 255 bytes")
    return bytes([len(raw)]) + raw


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            raise LogRecordError(f"record truncated: needs {n} bytes at offset {self.pos}, has {self.remaining}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def short_string(self) -> bytes:
        (n,) = self.unpack(">B")
        return self.take(n)

    def check_end(self) -> None:
        if self.remaining:
            raise LogRecordError(f"{self.remaining} unexpected bytes after the record")


class EventSeverity(enum.IntEnum):
    UNSPECIFIED = 0x00
    MONITOR = 0x01
    INFORMATION = 0x02
    OK = 0x04
    NON_CRITICAL = 0x08
    CRITICAL = 0x10
    NON_RECOVERABLE = 0x20


# Sensor types (IPMI/PET) the engine writes and MCMD decodes (§3.5).
SENSOR_CHASSIS_INTRUSION: Final = 5
SENSOR_AUTHENTICATION: Final = 6
SENSOR_FIRMWARE_PROGRESS: Final = 15
SENSOR_WATCHDOG: Final = 18
SENSOR_NO_BOOTABLE_MEDIA: Final = 30
SENSOR_OS_LOCKUP: Final = 32
SENSOR_BOOT_FAILURE: Final = 35
SENSOR_FIRMWARE_STARTED: Final = 37
SENSOR_INTEL_SESSION: Final = 192

ENTITY_NAMES: Final = {
    0: "Unspecified", 3: "Processor", 7: "System board", 23: "System chassis", 34: "BIOS", 35: "Operating system",
    36: "System bus", 37: "Remote (OOB) management", 38: "Intel ME",
}


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One 21-byte event log record (PET/IPMI style, timestamp little-endian)."""

    timestamp: int
    sensor_type: int
    event_type: int = 0x6F
    event_offset: int = 0
    source_type: int = 0x68
    severity: int = EventSeverity.INFORMATION
    sensor_number: int = 0xFF
    entity: int = 38
    entity_instance: int = 0
    data: bytes = b"\x00" * 8
    device_address: int = 0xFF

    SIZE: ClassVar[int] = 21

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp, dt.UTC)

    def encode(self) -> bytes:
        data = self.data[:8].ljust(8, b"\x00")
        return struct.pack(
            "<IBBBBBBBBB", self.timestamp & 0xFFFFFFFF, self.device_address, self.sensor_type, self.event_type,
            self.event_offset, self.source_type, self.severity, self.sensor_number, self.entity,
            self.entity_instance,
        ) + data

    @classmethod
    def decode(cls, data: bytes) -> EventRecord:
        if len(data) != 21:
            raise LogRecordError(f"an event record is 21 bytes, got {len(data)}")
        fields = struct.unpack("<IBBBBBBBBB", data[:13])
        ts, addr, sensor, etype, offset, source, severity, number, entity, instance = fields
        return cls(ts, sensor, etype, offset, source, severity, number, entity, instance, bytes(data[13:]), addr)
