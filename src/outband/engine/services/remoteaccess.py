"""CIRA configuration: which MPS AMT dials, when, and as whom (AMT-PROTOCOLS.md §3.3, §5.4).

Classes: AMT_RemoteAccessService (AddMpServer, AddRemoteAccessPolicyRule), AMT_ManagementPresenceRemoteSAP (the
MPS servers), AMT_RemoteAccessPolicyRule (one rule per trigger), AMT_RemoteAccessPolicyAppliesToMPS (rule ->
server links with MpsType and OrderOfAccess), AMT_MPSUsernamePassword and AMT_RemoteAccessCredentialContext
(each server's credential), AMT_UserInitiatedConnectionService and AMT_EnvironmentDetectionSettingData.

Theory of operation: the configuration is data in the state store -- ``cira/mps/<slot>`` per server (slot 0 is
the first free one, which is why RPS can hard-code ``Intel(r) AMT:Management Presence Server 0``) and
``cira/rule/<trigger>`` per policy with its server links -- and every instance is derived from it.  The
engine's CIRA client (a later piece) reads it through :func:`cira_config`, which resolves servers, credentials,
trusted roots and the periodic schedule in one place.

The sequence RPS runs (``ciraConfiguration.ts``): AddTrustedRootCertificate (MPS root) -> AddMpServer ->
Enumerate/Pull the servers -> AddRemoteAccessPolicyRule (periodic, 25 s; then user-initiated, 300 s) ->
Enumerate/Pull/Put AMT_RemoteAccessPolicyAppliesToMPS (MpsType 2, OrderOfAccess 0) ->
AMT_UserInitiatedConnectionService.RequestStateChange(32771) -> Get/Put AMT_EnvironmentDetectionSettingData
with a random ``<uuid>.com`` so the device always believes it is outside the intranet.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ...proto.amt import PTStatus, Realm
from ...proto.cim.model import CimObject
from ...proto.wsman import EndpointReference
from ...proto.wsman import faults as F
from ...proto.wsman.namespaces import resource_uri
from ..core import Engine
from ..registry import Context, Service
from ..settings import SettingsClass
from .certificates import certificate, certificate_epr, certificate_handle, key_for, trusted_roots
from .servicekit import (
    INVALID_PARAMETER,
    MethodError,
    int_param,
    optional_bytes,
    optional_ref,
    optional_str,
    ref_params,
    selector_text,
    service_epr,
    status_method,
    str_param,
)
from .support import ME_SYSTEM_NAME, me_service, method_output

service = Service("remoteaccess")

MPS_PREFIX: Final = "cira/mps/"
RULE_PREFIX: Final = "cira/rule/"
UIC_KEY: Final = "cira/user-initiated"

MPS_CLASS: Final = "AMT_ManagementPresenceRemoteSAP"
RULE_CLASS: Final = "AMT_RemoteAccessPolicyRule"
MPS_ELEMENT_NAME: Final = "Intel(r) AMT:Management Presence Server"
RULE_ELEMENT_NAME: Final = "Inte(r) AMT:Remote Access Policy"
"""Misspelled exactly so by firmware (FX amt/remoteaccess/policyrule/get.xml)."""
CREDENTIAL_ID: Final = "Intel(r) AMT:MPS Username Password {}"
UIC_CLASS: Final = "AMT_UserInitiatedConnectionService"
UIC_NAME: Final = "Intel(r) AMT User Initiated Connection Service"

MAX_SERVERS: Final = 4
MAX_SERVERS_PER_RULE: Final = 2
MAX_USERNAME: Final = 16
"""AddMpServer's Username: "limited to 16 characters" (GWM remoteaccess/types.go)."""
MAX_PASSWORD: Final = 32
MAX_HOST: Final = 255
MAX_DETECTION_STRINGS: Final = 5
MAX_DETECTION_LENGTH: Final = 192

TRIGGER_NAMES: Final = {0: "User Initiated", 1: "Alert", 2: "Periodic"}
"""PolicyRuleName per Trigger; MeshCommander reads the trigger back from the name's first word."""
INFO_FORMATS: Final = frozenset({3, 4, 201})
AUTH_MUTUAL: Final = 1
AUTH_PASSWORD: Final = 2
UIC_STATES: Final = frozenset({32768, 32769, 32770, 32771})
UIC_DEFAULT: Final = 32771

MAX_LIMIT_REACHED: Final = 23
DUPLICATE: Final = int(PTStatus.DUPLICATE)
REQUEST_STATE_INVALID_PARAMETER: Final = 5
"""CIM RequestStateChange's "Invalid Parameter" (DMTF return values, not PT_STATUS)."""


# ---------------------------------------------------------------------------------------------- stored data


@dataclass(frozen=True, slots=True)
class MpsServer:
    """One configured MPS, as the CIRA client needs it."""

    slot: int
    host: str
    port: int
    info_format: int
    common_name: str
    auth_method: int
    username: str | None
    password: str | None
    client_certificate: int | None
    """Handle of the certificate AMT presents for mutual authentication (AuthMethod 1)."""

    @property
    def name(self) -> str:
        return f"{MPS_ELEMENT_NAME} {self.slot}"

    @property
    def epr(self) -> EndpointReference:
        return service_epr(MPS_CLASS, self.name)

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "info_format": self.info_format, "cn": self.common_name,
                "auth": self.auth_method, "username": self.username, "password": self.password,
                "cert": self.client_certificate}

    @classmethod
    def from_json(cls, slot: int, data: Mapping[str, Any]) -> MpsServer:
        return cls(slot, str(data["host"]), int(data["port"]), int(data["info_format"]), str(data["cn"]),
                   int(data["auth"]), data.get("username"), data.get("password"), data.get("cert"))


@dataclass(frozen=True, slots=True)
class _Link:
    slot: int
    mps_type: int
    """0 external (CIRA), 1 internal (CILA), 2 both."""
    order: int


@dataclass(frozen=True, slots=True)
class _Rule:
    trigger: int
    lifetime: int
    extended: bytes
    links: tuple[_Link, ...]

    @property
    def name(self) -> str:
        return TRIGGER_NAMES[self.trigger]

    @property
    def epr(self) -> EndpointReference:
        return _rule_epr(self.name)

    def to_json(self) -> dict[str, Any]:
        return {"lifetime": self.lifetime, "extended": base64.b64encode(self.extended).decode("ascii"),
                "links": [{"mps": lk.slot, "type": lk.mps_type, "order": lk.order} for lk in self.links]}

    @classmethod
    def from_json(cls, trigger: int, data: Mapping[str, Any]) -> _Rule:
        links = tuple(_Link(int(lk["mps"]), int(lk["type"]), int(lk["order"])) for lk in data["links"])
        return cls(trigger, int(data["lifetime"]), base64.b64decode(data["extended"]), links)


def _rule_epr(name: str) -> EndpointReference:
    return EndpointReference.to(resource_uri(RULE_CLASS), {
        "CreationClassName": RULE_CLASS,
        "PolicyRuleName": name,
        "SystemCreationClassName": "CIM_ComputerSystem",
        "SystemName": ME_SYSTEM_NAME,
    })


def servers(engine: Engine) -> list[MpsServer]:
    found = [MpsServer.from_json(int(k.removeprefix(MPS_PREFIX)), engine.store.get(k))
             for k in engine.store.keys(MPS_PREFIX)]
    return sorted(found, key=lambda s: s.slot)


def _rules(engine: Engine) -> list[_Rule]:
    found = [_Rule.from_json(int(k.removeprefix(RULE_PREFIX)), engine.store.get(k))
             for k in engine.store.keys(RULE_PREFIX)]
    return sorted(found, key=lambda r: r.trigger)


def _save_server(engine: Engine, server: MpsServer) -> None:
    engine.store.set(f"{MPS_PREFIX}{server.slot}", server.to_json())


def _save_rule(engine: Engine, rule: _Rule) -> None:
    engine.store.set(f"{RULE_PREFIX}{rule.trigger}", rule.to_json())


def certificates_in_use(engine: Engine) -> set[int]:
    """Certificate handles an MPS uses as AMT's client certificate (they cannot be deleted)."""
    return {s.client_certificate for s in servers(engine) if s.client_certificate is not None}


def _server_named(engine: Engine, epr: EndpointReference) -> MpsServer | None:
    """The server an MpServer/ManagedElement EPR names (MeshCommander sends only the Name selector)."""
    if epr.class_name != MPS_CLASS:
        return None
    name = selector_text(epr, "Name")
    return next((s for s in servers(engine) if s.name == name), None)


# ---------------------------------------------------------------------------------------------- instances


@service.instances("AMT_RemoteAccessService", realm=Realm.PT_ADMINISTRATION)
def remote_access_service(engine: Engine) -> Iterable[CimObject]:
    return [me_service("AMT_RemoteAccessService", "Intel(r) AMT Remote Access Service")]


@service.instances(MPS_CLASS, realm=Realm.PT_ADMINISTRATION)
def mps_instances(engine: Engine) -> Iterable[CimObject]:
    return [
        me_service(MPS_CLASS, s.name, ElementName=MPS_ELEMENT_NAME, AccessInfo=s.host, CN=s.common_name,
                   InfoFormat=s.info_format, Port=s.port)
        for s in servers(engine)
    ]


@service.instances(RULE_CLASS, realm=Realm.PT_ADMINISTRATION)
def rule_instances(engine: Engine) -> Iterable[CimObject]:
    return [
        CimObject.new(
            RULE_CLASS,
            CreationClassName=RULE_CLASS,
            ElementName=RULE_ELEMENT_NAME,
            ExtendedData=r.extended,
            PolicyRuleName=r.name,
            SystemCreationClassName="CIM_ComputerSystem",
            SystemName=ME_SYSTEM_NAME,
            Trigger=r.trigger,
            TunnelLifeTime=r.lifetime,
        )
        for r in _rules(engine)
    ]


@service.instances("AMT_RemoteAccessPolicyAppliesToMPS", realm=Realm.PT_ADMINISTRATION)
def applies_to_mps_instances(engine: Engine) -> Iterable[CimObject]:
    names = {s.slot: s.name for s in servers(engine)}
    return [
        CimObject.new("AMT_RemoteAccessPolicyAppliesToMPS", ManagedElement=service_epr(MPS_CLASS, names[lk.slot]),
                      MpsType=lk.mps_type, OrderOfAccess=lk.order, PolicySet=r.epr)
        for r in _rules(engine) for lk in r.links if lk.slot in names
    ]


def _credential_epr(slot: int) -> EndpointReference:
    return EndpointReference.to(resource_uri("AMT_MPSUsernamePassword"), {"InstanceID": CREDENTIAL_ID.format(slot)})


@service.instances("AMT_MPSUsernamePassword", realm=Realm.PT_ADMINISTRATION)
def credential_instances(engine: Engine) -> Iterable[CimObject]:
    # The password is write-only: AMT never shows Secret.
    return [CimObject.new("AMT_MPSUsernamePassword", InstanceID=CREDENTIAL_ID.format(s.slot), RemoteID=s.username)
            for s in servers(engine) if s.auth_method == AUTH_PASSWORD]


@service.instances("AMT_RemoteAccessCredentialContext", realm=Realm.PT_ADMINISTRATION)
def credential_context_instances(engine: Engine) -> Iterable[CimObject]:
    """Which credential each server uses: its username/password, or the client certificate for mutual auth."""
    out = []
    for s in servers(engine):
        credential = (certificate_epr(s.client_certificate) if s.client_certificate is not None
                      else _credential_epr(s.slot))
        out.append(CimObject.new("AMT_RemoteAccessCredentialContext", ElementInContext=credential,
                                 ElementProvidingContext=s.epr))
    return out


# ---------------------------------------------------------------------------------------------- AddMpServer

_LABEL: Final = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
_FQDN: Final = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


def _check_host(host: str, info_format: int) -> None:
    try:
        if info_format == 3:
            ipaddress.IPv4Address(host)
        elif info_format == 4:
            ipaddress.IPv6Address(host)
        elif _FQDN.fullmatch(host) is None:
            raise ValueError(host)
    except ValueError:
        raise MethodError(INVALID_PARAMETER, f"AccessInfo {host!r} does not match InfoFormat {info_format}") from None


@status_method(service, "AMT_RemoteAccessService", "AddMpServer", realm=Realm.PT_ADMINISTRATION)
async def add_mp_server(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    host = str_param(message, "AccessInfo", max_length=MAX_HOST).strip()
    info_format = int_param(message, "InfoFormat", allowed=INFO_FORMATS)
    _check_host(host, info_format)
    port = int_param(message, "Port", low=1, high=65535)
    auth = int_param(message, "AuthMethod", allowed={AUTH_MUTUAL, AUTH_PASSWORD})
    common_name = (optional_str(message, "CN", max_length=MAX_HOST) or "").strip() or host
    username = password = None
    cert_handle = None
    if auth == AUTH_PASSWORD:
        username = str_param(message, "Username", max_length=MAX_USERNAME)
        password = str_param(message, "Password", max_length=MAX_PASSWORD)
        if not username or not password:
            raise MethodError(INVALID_PARAMETER, "username/password authentication needs both")
    else:
        cert_handle = certificate_handle(optional_ref(message, "Certificate"))
        stored = certificate(engine, cert_handle) if cert_handle is not None else None
        if stored is None or key_for(engine, stored.certificate) is None:
            raise MethodError(INVALID_PARAMETER, "mutual authentication needs a stored certificate with its key")
    existing = servers(engine)
    if any(s.host.lower() == host.lower() and s.port == port for s in existing):
        raise MethodError(DUPLICATE, f"{host}:{port} is already configured")
    free = [slot for slot in range(MAX_SERVERS) if slot not in {s.slot for s in existing}]
    if not free:
        raise MethodError(MAX_LIMIT_REACHED, f"at most {MAX_SERVERS} servers")
    server = MpsServer(free[0], host, port, info_format, common_name, auth, username, password, cert_handle)
    _save_server(engine, server)
    return {"MpServer": server.epr}


# ---------------------------------------------------------------------------------------------- policy rules


def periodic_schedule(extended: bytes) -> tuple[int, int, int]:
    """Decode a periodic rule's ExtendedData (big-endian u32s): ``(0, seconds, 0)`` for an interval,
    ``(1, hour, minute)`` for once a day (MeshCommander ``editMpsPolicyOk2``; RPS sends interval 25)."""
    if len(extended) == 8 and extended[:4] == bytes(4):
        seconds = int.from_bytes(extended[4:], "big")
        if seconds > 0:
            return 0, seconds, 0
    if len(extended) == 12 and extended[:4] == b"\x00\x00\x00\x01":
        hour, minute = int.from_bytes(extended[4:8], "big"), int.from_bytes(extended[8:], "big")
        if hour < 24 and minute < 60:
            return 1, hour, minute
    raise ValueError("ExtendedData of a periodic rule is an interval (0, seconds) or a time of day (1, h, m)")


@status_method(service, "AMT_RemoteAccessService", "AddRemoteAccessPolicyRule", realm=Realm.PT_ADMINISTRATION)
async def add_remote_access_policy_rule(ctx: Context, target: CimObject | None, message: CimObject
                                        ) -> Mapping[str, Any]:
    engine = ctx.engine
    trigger = int_param(message, "Trigger", allowed=set(TRIGGER_NAMES))
    lifetime = int_param(message, "TunnelLifeTime")
    extended = optional_bytes(message, "ExtendedData", max_length=64) or b""
    if trigger == 2:
        try:
            periodic_schedule(extended)
        except ValueError as exc:
            raise MethodError(INVALID_PARAMETER, str(exc)) from None
    links: list[_Link] = []
    for name, mps_type in (("MpServer", 0), ("InternalMpServer", 1)):
        for order, epr in enumerate(ref_params(message, name)):
            server = _server_named(engine, epr)
            if server is None:
                raise MethodError(INVALID_PARAMETER, f"{name} names no configured server")
            links.append(_Link(server.slot, mps_type, order))
    if not links or len(links) > MAX_SERVERS_PER_RULE or len({lk.slot for lk in links}) != len(links):
        raise MethodError(INVALID_PARAMETER, f"a rule applies to 1..{MAX_SERVERS_PER_RULE} distinct servers")
    if engine.store.get(f"{RULE_PREFIX}{trigger}") is not None:
        raise MethodError(DUPLICATE, f"a {TRIGGER_NAMES[trigger]} rule exists already")
    rule = _Rule(trigger, lifetime, extended, tuple(links))
    _save_rule(engine, rule)
    return {"PolicyRule": rule.epr}


def _rule_of(engine: Engine, current: CimObject) -> _Rule:
    rule = next((r for r in _rules(engine) if r.name == current.get("PolicyRuleName")), None)
    if rule is None:
        raise F.DestinationUnreachable()
    return rule


@service.delete(RULE_CLASS)
async def delete_rule(ctx: Context, current: CimObject) -> None:
    ctx.engine.store.delete(f"{RULE_PREFIX}{_rule_of(ctx.engine, current).trigger}")


@service.delete(MPS_CLASS)
async def delete_server(ctx: Context, current: CimObject) -> None:
    """Removing a server also removes its links; a rule left without servers goes too."""
    engine = ctx.engine
    server = next((s for s in servers(engine) if s.name == current.get("Name")), None)
    if server is None:
        raise F.DestinationUnreachable()
    with engine.store.transaction():
        for rule in _rules(engine):
            links = tuple(lk for lk in rule.links if lk.slot != server.slot)
            if not links:
                engine.store.delete(f"{RULE_PREFIX}{rule.trigger}")
            elif links != rule.links:
                _save_rule(engine, _Rule(rule.trigger, rule.lifetime, rule.extended, links))
        engine.store.delete(f"{MPS_PREFIX}{server.slot}")


def _invalid(why: str) -> F.InvalidRepresentation:
    return F.InvalidRepresentation(why, detail=F.detail_uri("InvalidValues"))


@service.put("AMT_RemoteAccessPolicyAppliesToMPS")
async def put_applies_to_mps(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    """Change a link's MpsType and OrderOfAccess (RPS sets MpsType 2 "both" and OrderOfAccess 0)."""
    engine = ctx.engine
    element, policy = current["ManagedElement"], current["PolicySet"]
    assert isinstance(element, EndpointReference)
    assert isinstance(policy, EndpointReference)
    server = _server_named(engine, element)
    rule = next((r for r in _rules(engine) if r.name == selector_text(policy, "PolicyRuleName")), None)
    if server is None or rule is None:
        raise F.DestinationUnreachable()
    mps_type, order = new.get("MpsType", current["MpsType"]), new.get("OrderOfAccess", current["OrderOfAccess"])
    if not isinstance(mps_type, int) or isinstance(mps_type, bool) or mps_type not in (0, 1, 2):
        raise _invalid("MpsType is 0 (external), 1 (internal) or 2 (both)")
    if not isinstance(order, int) or isinstance(order, bool) or not 0 <= order < MAX_SERVERS_PER_RULE:
        raise _invalid(f"OrderOfAccess is 0..{MAX_SERVERS_PER_RULE - 1}")
    links = tuple(_Link(lk.slot, mps_type, order) if lk.slot == server.slot else lk for lk in rule.links)
    _save_rule(engine, _Rule(rule.trigger, rule.lifetime, rule.extended, links))
    return CimObject.new("AMT_RemoteAccessPolicyAppliesToMPS", ManagedElement=server.epr, MpsType=mps_type,
                         OrderOfAccess=order, PolicySet=rule.epr)


@service.put("AMT_MPSUsernamePassword")
async def put_credential(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    """Change a server's CIRA user name and (write-only) password."""
    engine = ctx.engine
    server = next((s for s in servers(engine) if CREDENTIAL_ID.format(s.slot) == current.get("InstanceID")), None)
    if server is None:
        raise F.DestinationUnreachable()
    username, secret = new.get("RemoteID", server.username), new.get("Secret", server.password)
    if not isinstance(username, str) or not 1 <= len(username) <= MAX_USERNAME:
        raise _invalid(f"RemoteID is 1..{MAX_USERNAME} characters")
    if not isinstance(secret, str) or not 1 <= len(secret) <= MAX_PASSWORD:
        raise _invalid(f"Secret is 1..{MAX_PASSWORD} characters")
    _save_server(engine, MpsServer(server.slot, server.host, server.port, server.info_format, server.common_name,
                                   server.auth_method, username, secret, server.client_certificate))
    return CimObject.new("AMT_MPSUsernamePassword", InstanceID=current["InstanceID"], RemoteID=username)


# ---------------------------------------------------------------------------------------------- environment


def user_initiated_state(engine: Engine) -> int:
    """32768 none, 32769 BIOS, 32770 OS, 32771 BIOS and OS may ask for a CIRA tunnel."""
    return int(engine.store.get(UIC_KEY) or UIC_DEFAULT)


@service.instances(UIC_CLASS, realm=Realm.PT_ADMINISTRATION)
def user_initiated_service(engine: Engine) -> Iterable[CimObject]:
    return [me_service(UIC_CLASS, UIC_NAME, EnabledState=user_initiated_state(engine))]


@service.method(UIC_CLASS, "RequestStateChange", realm=Realm.PT_ADMINISTRATION)
async def request_user_initiated_state(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    state = message.get("RequestedState")
    if isinstance(state, int) and not isinstance(state, bool) and state in UIC_STATES:
        ctx.engine.store.set(UIC_KEY, state)
        return method_output(UIC_CLASS, "RequestStateChange", 0)
    return method_output(UIC_CLASS, "RequestStateChange", REQUEST_STATE_INVALID_PARAMETER)


ENVIRONMENT = SettingsClass(
    "AMT_EnvironmentDetectionSettingData",
    "Intel(r) AMT Environment Detection Settings",
    lambda _: {
        "DetectionAlgorithm": 0,
        "DetectionStrings": [],
        "ElementName": "Intel(r) AMT Environment Detection Settings",
        "InstanceID": "Intel(r) AMT Environment Detection Settings",
    },
    frozenset({"DetectionAlgorithm", "DetectionStrings", "DetectionIPv6LocalPrefixes"}),
)


@service.instances("AMT_EnvironmentDetectionSettingData", realm=Realm.PT_ADMINISTRATION)
def environment_detection(engine: Engine) -> Iterable[CimObject]:
    return [ENVIRONMENT.instance(engine)]


@service.put("AMT_EnvironmentDetectionSettingData")
async def put_environment_detection(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    changes = ENVIRONMENT.changes_from_put(current, new)
    for name in ("DetectionStrings", "DetectionIPv6LocalPrefixes"):
        if name in changes:
            values = changes[name] if isinstance(changes[name], list) else [changes[name]]
            if len(values) > MAX_DETECTION_STRINGS or any(len(str(v)) > MAX_DETECTION_LENGTH for v in values):
                raise _invalid(f"{name}: at most {MAX_DETECTION_STRINGS} entries of {MAX_DETECTION_LENGTH} characters")
            changes[name] = values
    if changes.get("DetectionAlgorithm", 0) not in (0, 1):
        raise _invalid("DetectionAlgorithm is 0 (local domains) or 1 (remote URLs)")
    ENVIRONMENT.update(ctx.engine, changes)
    return ENVIRONMENT.instance(ctx.engine)


# ---------------------------------------------------------------------------------------------- for the CIRA client


@dataclass(frozen=True, slots=True)
class CiraPolicy:
    trigger: int
    """0 user initiated, 1 alert, 2 periodic."""
    tunnel_lifetime: int
    """Seconds the tunnel stays up; 0 keeps it open."""
    interval: int | None
    """Periodic rules: seconds between connections (None for a time-of-day rule)."""
    daily_at: tuple[int, int] | None
    """Periodic rules: (hour, minute) of the daily connection."""
    servers: tuple[MpsServer, ...]
    """External (CIRA) servers in OrderOfAccess."""


@dataclass(frozen=True, slots=True)
class CiraConfig:
    servers: tuple[MpsServer, ...]
    policies: tuple[CiraPolicy, ...]
    trusted_roots_der: tuple[bytes, ...]
    """Roots added with AddTrustedRootCertificate: the MPS certificate must chain to one of them."""
    user_initiated: int
    detection_strings: tuple[str, ...]

    def policy(self, trigger: int) -> CiraPolicy | None:
        return next((p for p in self.policies if p.trigger == trigger), None)

    def outside_intranet(self, domain: str) -> bool:
        """AMT tunnels only when it believes it is outside: there are intranet suffixes and ``domain`` (the
        host's DNS domain) matches none of them.  With no suffixes environment detection is off."""
        domain = domain.strip(".").lower()
        suffixes = [s.strip(".").lower() for s in self.detection_strings if s.strip(".")]
        return bool(suffixes) and not any(domain == s or domain.endswith("." + s) for s in suffixes)


def cira_config(engine: Engine) -> CiraConfig | None:
    """Everything the CIRA client needs, or None when no MPS is configured."""
    configured = servers(engine)
    if not configured:
        return None
    by_slot = {s.slot: s for s in configured}
    policies = []
    for rule in _rules(engine):
        external = sorted((lk for lk in rule.links if lk.mps_type in (0, 2) and lk.slot in by_slot),
                          key=lambda lk: lk.order)
        interval = daily = None
        if rule.trigger == 2:
            kind, first, second = periodic_schedule(rule.extended)
            interval, daily = (first, None) if kind == 0 else (None, (first, second))
        policies.append(CiraPolicy(rule.trigger, rule.lifetime, interval, daily,
                                   tuple(by_slot[lk.slot] for lk in external)))
    strings = ENVIRONMENT.values(engine).get("DetectionStrings") or []
    return CiraConfig(
        tuple(configured), tuple(policies), tuple(c.der for c in trusted_roots(engine)),
        user_initiated_state(engine),
        tuple(str(s) for s in (strings if isinstance(strings, list) else [strings])),
    )
