"""The console's request and response shapes (pydantic), shared by the API, the repository and clients.

Naming after the FastAPI template: ``XCreate`` / ``XUpdate`` come in, ``XPublic`` goes out.  Every text field
is length-capped to its column and refuses control characters, so bad input is a 422 and never reaches the
database (PostgreSQL would reject NULs and over-long values with a server error).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from typing import Annotated, Any, ClassVar, Final, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.config import JsonDict

from ..aio.tls import normalize_fingerprint
from .db.models import DEVICE_USER_LENGTH, HOST_LENGTH, LABEL_LENGTH, NAME_LENGTH, USERNAME_LENGTH, Status, Transport
from .permissions import Permission, Role

MAX_SELECTION: Final = 100_000
MAX_TAGS_PER_DEVICE: Final = 32


def _printable(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise ValueError("control characters are not allowed")
    return value


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _host(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    name = value.rstrip(".")
    if not name or not all(_HOST_LABEL.match(label) for label in name.split(".")):
        raise ValueError("not an IP address or host name")
    return name.lower()


def _fingerprint(value: str) -> str:
    return normalize_fingerprint(value).hex()


Printable = AfterValidator(_printable)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_LENGTH), Printable]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LABEL_LENGTH,
                                         pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]*$")]
"""Tag and group names: letters, digits and ``_.:@+-`` (safe in CSV lists, URLs and shells)."""
Host = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=HOST_LENGTH),
                 AfterValidator(_host)]
Port = Annotated[int, Field(ge=1, le=65535)]
Fingerprint = Annotated[str, StringConstraints(max_length=128), AfterValidator(_fingerprint)]
DeviceUser = Annotated[str, StringConstraints(min_length=1, max_length=DEVICE_USER_LENGTH), Printable]
DevicePassword = Annotated[str, StringConstraints(min_length=1, max_length=128), Printable]
CiraUser = Annotated[str, StringConstraints(min_length=1, max_length=USERNAME_LENGTH), Printable]
AccountName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                               pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")]
AccountPassword = Annotated[str, StringConstraints(min_length=10, max_length=256), Printable]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]

_SECRET: Final[JsonDict] = {"format": "password", "writeOnly": True}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ------------------------------------------------------------------------------------------ devices

_TRANSPORT_HELP: Final = ("direct: the console connects to host; cira: the device dials the console's MPS (port "
                          "4433) and is recognised by its uuid")
_UUID_HELP: Final = "The device's system UUID (SMBIOS): a CIRA device presents it when it dials in."
_CIRA_USER_HELP: Final = "The device's own MPS login (cira only; without one it must present the MPS's shared login)."


def _cira_login_pair(username: str | None, password: str | None) -> None:
    if (username is None) != (password is None):
        raise ValueError("give cira_username and cira_password together")


class DeviceCreate(_In):
    """A device to manage.  A LAN device needs ``host``; a CIRA device needs ``uuid`` (its ``host``, the name its
    TLS certificate carries, defaults to the UUID)."""

    name: Name
    transport: Transport = Field(default=Transport.DIRECT, description=_TRANSPORT_HELP)
    host: Host | None = Field(default=None, description="Address or DNS name (required for direct).")
    uuid: UUID | None = Field(default=None, description=_UUID_HELP)
    username: DeviceUser = "admin"
    password: DevicePassword = Field(repr=False, json_schema_extra=_SECRET)
    use_tls: bool = False
    http_port: Port = 16992
    tls_port: Port = 16993
    fingerprint: Fingerprint | None = Field(None, description="SHA-256 of the device's TLS certificate, to pin.")
    cira_username: CiraUser | None = Field(default=None, description=_CIRA_USER_HELP)
    cira_password: DevicePassword | None = Field(default=None, repr=False, json_schema_extra=_SECRET)
    tags: list[Label] = Field(default_factory=list, max_length=MAX_TAGS_PER_DEVICE)
    group: Label | None = None

    @model_validator(mode="after")
    def _reachable_somehow(self) -> DeviceCreate:
        _cira_login_pair(self.cira_username, self.cira_password)
        if self.transport is Transport.CIRA:
            if self.uuid is None:
                raise ValueError("a CIRA device needs its uuid: the MPS recognises a device by the UUID it presents")
        else:
            if self.host is None:
                raise ValueError("host is required (the device's address), unless transport is cira")
            if self.cira_username is not None:
                raise ValueError("cira_username and cira_password are for transport cira")
        return self

    @property
    def address(self) -> str:
        """``host``, or the UUID for a CIRA device given none (what auto-registration uses too)."""
        return self.host or str(self.uuid)


class DeviceUpdate(_In):
    """Fields left out stay as they are; ``fingerprint``/``group`` set to null are cleared."""

    name: Name | None = None
    host: Host | None = None
    username: DeviceUser | None = None
    password: DevicePassword | None = Field(None, repr=False, json_schema_extra=_SECRET)
    use_tls: bool | None = None
    http_port: Port | None = None
    tls_port: Port | None = None
    fingerprint: Fingerprint | None = None
    transport: Transport | None = Field(default=None, description=_TRANSPORT_HELP)
    uuid: UUID | None = Field(default=None, description=_UUID_HELP)
    cira_username: CiraUser | None = Field(
        default=None, description=_CIRA_USER_HELP + " Null (with cira_password null) goes back to the shared login.")
    cira_password: DevicePassword | None = Field(default=None, repr=False, json_schema_extra=_SECRET)
    tags: list[Label] | None = Field(None, max_length=MAX_TAGS_PER_DEVICE)
    group: Label | None = None

    CONNECTION_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"host", "username", "password", "use_tls", "http_port", "tls_port", "fingerprint", "transport"}
    )

    @model_validator(mode="after")
    def _login_pair(self) -> DeviceUpdate:
        given = self.model_fields_set & {"cira_username", "cira_password"}
        if given and given != {"cira_username", "cira_password"}:
            raise ValueError("give cira_username and cira_password together")
        _cira_login_pair(self.cira_username, self.cira_password)
        return self

    @property
    def changes_connection(self) -> bool:
        return bool(self.model_fields_set & self.CONNECTION_FIELDS)


class DeviceState(_Out):
    reachable: bool | None
    power_state: int | None
    power: str = Field(description="power_state by name (on, off_soft, sleep_light, ...; unknown)")
    amt_version: str | None
    provisioning_mode: str | None
    uuid: str | None
    last_seen_at: dt.datetime | None
    last_checked_at: dt.datetime | None
    last_error: str | None


class CiraPublic(_Out):
    """A CIRA device's tunnel as the MPS sees it (its MPS password is never shown)."""

    login: Literal["own", "shared"] = Field(description="Whether the device must present its own MPS login.")
    cira_username: str | None
    online: bool = Field(description="Connected to an MPS node now.")
    mps_node: str | None = Field(description="The node holding (or that last held) its tunnel.")
    peer: str | None = Field(description="The address the tunnel came from.")
    connected_since: dt.datetime | None
    last_keepalive: dt.datetime | None
    disconnected_at: dt.datetime | None
    last_error: str | None = Field(description="Why its last tunnel ended.")


class DevicePublic(_Out):
    id: int
    name: str
    host: str
    username: str
    use_tls: bool
    http_port: int
    tls_port: int
    fingerprint: str | None
    transport: Transport
    cira: CiraPublic | None = Field(description="Presence and login of a CIRA device (null for direct).")
    group: str | None
    tags: list[str]
    state: DeviceState
    created_at: dt.datetime
    updated_at: dt.datetime


class DevicePage(BaseModel):
    items: list[DevicePublic]
    total: int
    limit: int
    offset: int


class Selection(_In):
    """Which devices an operation addresses: the union of everything named here."""

    devices: list[Id] = Field(default_factory=list, max_length=MAX_SELECTION, description="Device ids.")
    names: list[Name] = Field(default_factory=list, max_length=MAX_SELECTION, description="Device names.")
    tags: list[Label] = Field(default_factory=list, max_length=100, description="Devices with any of these tags.")
    groups: list[Label] = Field(default_factory=list, max_length=100, description="Devices in any of these groups.")
    all: bool = Field(False, description="Every device.")

    @model_validator(mode="after")
    def _names_something(self) -> Selection:
        if not (self.all or self.devices or self.names or self.tags or self.groups):
            raise ValueError("select devices by id, name, tag or group (or all)")
        return self


class TagChange(_In):
    target: Selection
    add: list[Label] = Field(default_factory=list, max_length=MAX_TAGS_PER_DEVICE)
    remove: list[Label] = Field(default_factory=list, max_length=MAX_TAGS_PER_DEVICE)


class TagChangeResult(BaseModel):
    devices: int


class TagPublic(BaseModel):
    name: str
    devices: int


class GroupCreate(_In):
    name: Label
    description: Annotated[str, StringConstraints(max_length=255), Printable] = ""


class GroupUpdate(_In):
    name: Label | None = None
    description: Annotated[str, StringConstraints(max_length=255), Printable] | None = None


class GroupPublic(_Out):
    id: int
    name: str
    description: str
    devices: int = 0


class ImportRowResult(BaseModel):
    row: int = Field(description="Line number in the file (the header is line 1).")
    name: str | None
    status: Literal["added", "failed"]
    device_id: int | None = None
    error: str | None = None


class ImportReport(BaseModel):
    added: int
    failed: int
    rows: list[ImportRowResult]


class DeviceCheckFailure(BaseModel):
    """Why a device could not be added or changed (HTTP 422)."""

    reason: str = Field(description="unreachable, timeout, tls_pin_mismatch, tls_untrusted, not_amt, auth_refused, "
                        "fault")
    message: str
    presented_fingerprint: str | None = None


# ------------------------------------------------------------------------------------------ discovery

class DiscoveryCreate(_In):
    network: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LABEL_LENGTH)] = Field(
        description="CIDR range (10.0.0.0/24) or a single address."
    )
    http_port: Port | None = 16992
    tls_port: Port | None = 16993

    @model_validator(mode="after")
    def _some_port(self) -> DiscoveryCreate:
        if self.http_port is None and self.tls_port is None:
            raise ValueError("probe at least one of http_port and tls_port")
        return self


class EndpointPublic(_Out):
    address: str
    port: int
    tls: bool
    product_vendor: str
    product_version: str
    protocol_version: str
    fingerprint: str | None
    device_id: int | None


class DiscoveryPublic(_Out):
    id: int
    network: str
    http_port: int | None
    tls_port: int | None
    status: Status
    requested_by: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    total: int
    probed: int
    error: str | None
    found: list[EndpointPublic] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------ accounts

class LoginRequest(_In):
    username: Annotated[str, StringConstraints(max_length=64), Printable]
    password: Annotated[str, StringConstraints(max_length=256)] = Field(repr=False, json_schema_extra=_SECRET)


class UserCreate(_In):
    username: AccountName
    password: AccountPassword = Field(repr=False, json_schema_extra=_SECRET)
    role: Role


class UserUpdate(_In):
    role: Role | None = None
    password: AccountPassword | None = Field(None, repr=False, json_schema_extra=_SECRET)
    disabled: bool | None = None


class UserPublic(_Out):
    id: int
    username: str
    role: Role
    disabled: bool
    created_at: dt.datetime
    locked_until: dt.datetime | None


class LoginResponse(BaseModel):
    user: UserPublic
    csrf_token: str = Field(description="Send as X-CSRF-Token on every unsafe request of this session.")
    expires_at: dt.datetime


class Me(BaseModel):
    user: UserPublic
    via: Literal["session", "token"]
    role: Role = Field(description="The role this request acts with (a token may be limited below the account's).")
    permissions: list[Permission]


class PasswordChange(_In):
    current_password: Annotated[str, StringConstraints(max_length=256)] = Field(repr=False, json_schema_extra=_SECRET)
    new_password: AccountPassword = Field(repr=False, json_schema_extra=_SECRET)


class TokenCreate(_In):
    name: Label
    role: Role | None = Field(None, description="Act with at most this role (default: the account's).")
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class TokenPublic(_Out):
    id: int
    name: str
    prefix: str
    role: Role | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="Shown once: send as Authorization: Bearer <token>.")


# ------------------------------------------------------------------------------------------ audit, admin

class AuditPublic(_Out):
    id: int
    at: dt.datetime
    actor: str | None
    via: str
    client: str | None
    action: str
    outcome: str
    status_code: int | None
    detail: dict[str, Any]
    device_count: int
    devices: list[int] = Field(default_factory=list)


class AuditPage(BaseModel):
    items: list[AuditPublic]
    next_before: int | None = Field(description="Pass as before= for the next (older) page.")


class RotationResult(BaseModel):
    rotated: int
    failed: list[int] = Field(description="Devices whose credential no configured key decrypts.")
    key_id: str = Field(description="Names the key now encrypting (a digest, not the key).")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    database: str
