"""Network settings beside AMT_EthernetPortSettings: IPv6 per port, HTTP proxies for CIRA, and the wired 802.1x profile
-- classes consoles read on every refresh (MeshCommander ``PullSystemStatus`` and ``PullRemoteAccess``,
MeshCentral's CIRA sync, RPS's 802.1x configuration).

IPv6 (IPS_IPv6PortSettings, ``Intel(r) IPS IPv6 Settings <port>``; port 0 wired, 1 wireless when there is a wireless
NIC).  Whether IPv6 runs on a port is not a property of the settings: it is ``IsCurrent`` of the
CIM_ElementSettingData tying the port's CIM_EthernetPort to them (1 on, 2 off), and MeshCommander switches it by a
Put of that association (``showIPv6StateDlgOk``); the association is contributed to boot.py's shared
CIM_ElementSettingData handler, and names the port ``CIM_EthernetPort``/``Ethernet Port <n>`` (the naming
MeshCommander reads back from it; no capture shows AMT's DeviceID).  The manual fields (``IPv6Address``,
``DefaultRouter``, ``PrimaryDNS``, ``SecondaryDNS``) apply to the wired port only and ``::`` means none, as
MeshCommander writes and reads them. The ``Current*`` fields are what the port uses: with IPv6 on and the link up, a
link-local address whose interface ID follows ``InterfaceIDType`` (0 a stable pseudo-random ID, 1 the modified
EUI-64 of the MAC, 2 ``ManualInterfaceID``), plus the manual address; router and DNS servers are the manual ones
(this engine models no router advertisements).  ``CurrentAddressInfo`` entries are ``address,type,state``
(MeshCommander ``showIPv6AddrDlg``: type 0 link local, 3 user configured; state 1 valid).  Off by default, as
shipped. Changes are audited 2205 "IPv6 Parameters Set".

HTTP proxies (IPS_HTTPProxyService, IPS_HTTPProxyAccessPoint; AMT 12+).  ``AddProxyAccessPoint`` adds a proxy for
one network (its DNS suffix); Transfer Delete removes it (MeshCommander sends only the ``Name`` selector). Names are
``Intel(r) AMT HTTP Proxy Access Point <slot>`` in the first free slot, so a removed proxy's name is reused like the
MPS slots of remoteaccess.py.  ``Priority`` starts at an ever-growing counter, as the class reference describes;
``Type`` is 0 (added by IT).  The CIRA client reads :func:`http_proxies`.

Wired 802.1x.  AMT_8021XProfile (the older interface, ``Intel(r) AMT 802.1x Profile 0``) and IPS_IEEE8021xSettings
(``Intel(r) AMT: 8021X Settings``, used by RPS) are two views of one stored profile: ``Enabled`` is a boolean in the
first and 2/3 in the second, ``ActiveInS0`` is ``AvailableInS0``.  The credential fields (EAP method, identity,
server name check) are shared with the wireless profiles through :class:`Credentials`.  A Put replaces the profile,
so a field or certificate reference left out is cleared (MeshCommander deletes a field to clear it); passwords and
PAC data are write-only, and one left out or empty keeps its stored value.  The certificates (client identity and
the issuer of the server's certificate) are set by a Put of AMT_8021XProfile's references or by
``IPS_IEEE8021xSettings.SetCertificates``, must be in the certificate store (the client one with its key, the issuer
a trusted root), and show up as AMT_8021xCredentialContext and IPS_8021xCredentialContext links.  A certificate
deleted later simply stops being linked.  Nothing here is audited: AMT's audit tables have no 802.1x event.

Realms: IPv6 reads with General Info, writes with PT Administration (as AMT_EthernetPortSettings); proxies and
802.1x with PT Administration.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

from ...proto.amt import PTStatus, Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimObject
from ...proto.wsman import EndpointReference
from ...proto.wsman import faults as F
from ...proto.wsman.namespaces import resource_uri
from ..core import Engine
from ..platforms.profile import Nic
from ..registry import Context, Service
from .boot import ElementSettings, add_element_settings
from .certificates import certificate, certificate_epr, certificate_handle, key_for
from .network import wired_nic, wireless_nic
from .servicekit import (
    INVALID_PARAMETER,
    MethodError,
    int_param,
    optional_ref,
    selector_text,
    service_epr,
    status_method,
    str_param,
)
from .support import ME_SYSTEM_NAME, me_service

service = Service("network_extra")


def _invalid(reason: str) -> F.InvalidRepresentation:
    return F.InvalidRepresentation(reason, detail=F.detail_uri("InvalidValues"))


# ============================================================================================== IPv6

IPV6_CLASS: Final = "IPS_IPv6PortSettings"
IPV6_ID: Final = "Intel(r) IPS IPv6 Settings {}"
IPV6_ELEMENT_NAME: Final = "Intel(r) IPS IPv6 Settings"
IPV6_KEY: Final = "ipv6/port/{}"
NONE_ADDRESS: Final = "::"
MANUAL_FIELDS: Final = ("IPv6Address", "DefaultRouter", "PrimaryDNS", "SecondaryDNS")
INTERFACE_ID_TYPES: Final = frozenset({0, 1, 2})
RANDOM_ID, INTEL_ID, MANUAL_ID = 0, 1, 2
IS_CURRENT, IS_NOT_CURRENT = 1, 2
LINK_LOCAL, USER_CONFIGURED = 0, 3
ADDRESS_VALID: Final = 1
IPV6_EVENT: Final = 5
"""Network Admin audit event 2205, IPv6 Parameters Set."""

_INTERFACE_ID: Final = re.compile(r"[0-9A-Fa-f]{1,4}(:[0-9A-Fa-f]{1,4}){3}")


@dataclass(frozen=True, slots=True)
class Ipv6Port:
    """The stored IPv6 configuration of one port (absent fields are ``None``: no manual value)."""

    enabled: bool = False
    interface_id_type: int = INTEL_ID
    manual_interface_id: str | None = None
    address: str | None = None
    router: str | None = None
    primary_dns: str | None = None
    secondary_dns: str | None = None

    def manual(self) -> dict[str, str | None]:
        return {"IPv6Address": self.address, "DefaultRouter": self.router, "PrimaryDNS": self.primary_dns,
                "SecondaryDNS": self.secondary_dns}


def _ports(engine: Engine) -> list[tuple[int, Nic | None]]:
    """The ports AMT has: the wired one always (perhaps without a NIC), the wireless one with a wireless NIC."""
    wireless = wireless_nic(engine)
    return [(0, wired_nic(engine)), *([(1, wireless)] if wireless is not None else [])]


def ipv6_port(engine: Engine, port: int) -> Ipv6Port:
    stored = engine.store.get(IPV6_KEY.format(port))
    return Ipv6Port(**stored) if stored else Ipv6Port()


def _save_ipv6(engine: Engine, port: int, config: Ipv6Port) -> None:
    engine.store.set(IPV6_KEY.format(port), asdict(config))


def _interface_id(engine: Engine, config: Ipv6Port, nic: Nic) -> int:
    """The 64-bit interface ID of the port's addresses, by InterfaceIDType."""
    if config.interface_id_type == MANUAL_ID and config.manual_interface_id:
        return int("".join(g.zfill(4) for g in config.manual_interface_id.split(":")), 16)
    mac = bytes.fromhex(nic.mac.replace("-", "").replace(":", ""))
    if config.interface_id_type == INTEL_ID:
        eui = bytes([mac[0] ^ 0x02, *mac[1:3], 0xFF, 0xFE, *mac[3:6]])
        return int.from_bytes(eui, "big")
    digest = hashlib.sha256(f"{engine.config.engine_id}/{nic.mac}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ~(1 << 57)  # "locally administered", as a random ID is


def _current_addresses(engine: Engine, config: Ipv6Port, nic: Nic | None) -> list[str]:
    if not config.enabled or nic is None or not nic.link_up:
        return []
    link_local = ipaddress.IPv6Address((0xFE80 << 112) | _interface_id(engine, config, nic))
    infos = [f"{link_local},{LINK_LOCAL},{ADDRESS_VALID}"]
    if config.address:
        infos.append(f"{config.address},{USER_CONFIGURED},{ADDRESS_VALID}")
    return infos


def _ipv6_instance(engine: Engine, port: int, nic: Nic | None) -> CimObject:
    config = ipv6_port(engine, port)
    manual = {k: v or NONE_ADDRESS for k, v in config.manual().items()}
    active = config.enabled and nic is not None and nic.link_up
    obj = CimObject.new(
        IPV6_CLASS,
        manual,
        CurrentDefaultRouter=(config.router if active else None) or NONE_ADDRESS,
        CurrentPrimaryDNS=(config.primary_dns if active else None) or NONE_ADDRESS,
        CurrentSecondaryDNS=(config.secondary_dns if active else None) or NONE_ADDRESS,
        ElementName=IPV6_ELEMENT_NAME,
        InstanceID=IPV6_ID.format(port),
        InterfaceIDType=config.interface_id_type,
    )
    addresses = _current_addresses(engine, config, nic)
    if addresses:
        obj["CurrentAddressInfo"] = addresses
    if config.interface_id_type == MANUAL_ID and config.manual_interface_id:
        obj["ManualInterfaceID"] = config.manual_interface_id
    return obj


@service.instances(IPV6_CLASS, realm=Realm.GENERAL_INFO, write_realm=Realm.PT_ADMINISTRATION)
def ipv6_settings(engine: Engine) -> Iterable[CimObject]:
    return [_ipv6_instance(engine, port, nic) for port, nic in _ports(engine)]


def _port_of(current: CimObject) -> int:
    instance_id = current.get("InstanceID")
    return int(str(instance_id).rsplit(" ", 1)[-1])


def _ipv6_text(name: str, value: object) -> str | None:
    """A manual address: IPv6 text, ``::`` or empty for none; stored in compressed form."""
    if value is None or value == "" or value == NONE_ADDRESS:
        return None
    if not isinstance(value, str) or len(value) > 45:
        raise _invalid(f"{name} is an IPv6 address")
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        raise _invalid(f"{name} {value!r} is not an IPv6 address") from None
    if address.is_unspecified:
        return None
    if address.is_multicast or address.is_loopback:
        raise _invalid(f"{name} {value} is not a usable unicast address")
    return str(address)


@service.put(IPV6_CLASS)
async def put_ipv6_settings(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    """Change the interface ID and (wired port) the manual addresses; enabling is the association's job."""
    if new.get("InstanceID", current["InstanceID"]) != current["InstanceID"]:
        raise _invalid("InstanceID cannot change")
    engine = ctx.engine
    port = _port_of(current)
    old = ipv6_port(engine, port)
    id_type = new.get("InterfaceIDType", old.interface_id_type)
    if isinstance(id_type, bool) or id_type not in INTERFACE_ID_TYPES:
        raise _invalid("InterfaceIDType is 0 (random), 1 (Intel ID) or 2 (manual)")
    manual_id = new.get("ManualInterfaceID", old.manual_interface_id) if id_type == MANUAL_ID else None
    if id_type == MANUAL_ID and (not isinstance(manual_id, str) or not _INTERFACE_ID.fullmatch(manual_id)):
        raise _invalid("a manual interface ID is four groups of hex digits, as in 0:0:0:1")
    addresses = {name: _ipv6_text(name, new.get(name)) for name in MANUAL_FIELDS}
    if port != 0 and any(addresses.values()):
        raise _invalid("manual IPv6 addresses are for the wired port only")
    updated = replace(old, interface_id_type=int(id_type), manual_interface_id=manual_id,
                      address=addresses["IPv6Address"], router=addresses["DefaultRouter"],
                      primary_dns=addresses["PrimaryDNS"], secondary_dns=addresses["SecondaryDNS"])
    if updated != old:
        with engine.store.transaction():
            _save_ipv6(engine, port, updated)
            engine.audit(AuditApp.NETWORK_ADMIN, IPV6_EVENT, account=ctx.account, address=ctx.peer)
    return _ipv6_instance(engine, port, dict(_ports(engine)).get(port))


def ethernet_port_epr(port: int) -> EndpointReference:
    """The CIM_EthernetPort AMT's IPv6 settings belong to (what MeshCommander reads from the association)."""
    return EndpointReference.to(resource_uri("CIM_EthernetPort"), {
        "CreationClassName": "CIM_EthernetPort",
        "DeviceID": f"Ethernet Port {port}",
        "SystemCreationClassName": "CIM_ComputerSystem",
        "SystemName": ME_SYSTEM_NAME,
    })


def _ipv6_epr(port: int) -> EndpointReference:
    return EndpointReference.to(resource_uri(IPV6_CLASS), {"InstanceID": IPV6_ID.format(port)})


def _ipv6_associations(engine: Engine) -> Iterable[CimObject]:
    return [
        CimObject.new("CIM_ElementSettingData",
                      IsCurrent=IS_CURRENT if ipv6_port(engine, port).enabled else IS_NOT_CURRENT,
                      ManagedElement=ethernet_port_epr(port), SettingData=_ipv6_epr(port))
        for port, _ in _ports(engine)
    ]


async def _put_ipv6_association(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    """Switch IPv6 on (IsCurrent 1) or off (2) on a port; the other fields are the association's keys."""
    if not ctx.account.may(Realm.PT_ADMINISTRATION):
        raise F.AccessDenied()
    wanted = new.get("IsCurrent")
    if isinstance(wanted, bool) or wanted not in (IS_CURRENT, IS_NOT_CURRENT):
        raise _invalid("IsCurrent is 1 (IPv6 on) or 2 (off)")
    setting = current["SettingData"]
    assert isinstance(setting, EndpointReference)
    port = int(str(selector_text(setting, "InstanceID")).rsplit(" ", 1)[-1])
    engine = ctx.engine
    old = ipv6_port(engine, port)
    if old.enabled != (wanted == IS_CURRENT):
        with engine.store.transaction():
            _save_ipv6(engine, port, replace(old, enabled=wanted == IS_CURRENT))
            engine.audit(AuditApp.NETWORK_ADMIN, IPV6_EVENT, account=ctx.account, address=ctx.peer)
    return next(a for a in _ipv6_associations(engine) if a["SettingData"] == setting)


add_element_settings(ElementSettings(IPV6_CLASS, _ipv6_associations, _put_ipv6_association))


# ============================================================================================== HTTP proxies

PROXY_SERVICE_CLASS: Final = "IPS_HTTPProxyService"
PROXY_SERVICE_NAME: Final = "Intel(r) AMT HTTP Proxy Service"
PROXY_CLASS: Final = "IPS_HTTPProxyAccessPoint"
PROXY_NAME: Final = "Intel(r) AMT HTTP Proxy Access Point {}"
PROXY_PREFIX: Final = "httpproxy/ap/"
PROXY_SYNC_KEY: Final = "httpproxy/sync"
PROXY_PRIORITY_KEY: Final = "httpproxy/priority-counter"
MAX_PROXIES: Final = 8
"""This engine's limit: no source states AMT's."""
MAX_HOST: Final = 255
MAX_SUFFIX: Final = 192
PROXY_INFO_FORMATS: Final = frozenset({2, 3, 4, 201})
"""Host name, IPv4, IPv6, FQDN (MeshCommander offers 2, 3 and 4)."""
TYPE_IT: Final = 0

_LABEL: Final = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME: Final = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?")


@dataclass(frozen=True, slots=True)
class HttpProxy:
    slot: int
    host: str
    info_format: int
    port: int
    dns_suffix: str
    priority: int

    @property
    def name(self) -> str:
        return PROXY_NAME.format(self.slot)


def http_proxies(engine: Engine) -> list[HttpProxy]:
    """The configured proxies in slot order (for the CIRA client: use the one whose suffix is the network's)."""
    found = [HttpProxy(slot=int(k.removeprefix(PROXY_PREFIX)), **engine.store.get(k))
             for k in engine.store.keys(PROXY_PREFIX)]
    return sorted(found, key=lambda p: p.slot)


@service.instances(PROXY_SERVICE_CLASS, realm=Realm.PT_ADMINISTRATION)
def http_proxy_service(engine: Engine) -> Iterable[CimObject]:
    return [me_service(PROXY_SERVICE_CLASS, PROXY_SERVICE_NAME, EnabledState=5, RequestedState=12,
                       SyncEnabled=bool(engine.store.get(PROXY_SYNC_KEY)))]


@service.put(PROXY_SERVICE_CLASS)
async def put_http_proxy_service(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    """``SyncEnabled`` (may the host OS push its proxies) is the one writable property."""
    sync = new.get("SyncEnabled", current["SyncEnabled"])
    if not isinstance(sync, bool):
        raise _invalid("SyncEnabled is boolean")
    with ctx.engine.store.transaction():
        ctx.engine.store.set(PROXY_SYNC_KEY, sync)
    return next(iter(http_proxy_service(ctx.engine)))


@service.instances(PROXY_CLASS, realm=Realm.PT_ADMINISTRATION)
def http_proxy_access_points(engine: Engine) -> Iterable[CimObject]:
    return [
        me_service(PROXY_CLASS, p.name, AccessInfo=p.host, EnabledState=5, InfoFormat=p.info_format,
                   NetworkDnsSuffix=p.dns_suffix, Port=p.port, Priority=p.priority, RequestedState=12, Type=TYPE_IT)
        for p in http_proxies(engine)
    ]


def _check_proxy_host(host: str, info_format: int) -> None:
    try:
        if info_format == 3:
            ipaddress.IPv4Address(host)
        elif info_format == 4:
            ipaddress.IPv6Address(host)
        elif _HOST_NAME.fullmatch(host) is None:
            raise ValueError(host)
    except ValueError:
        raise MethodError(INVALID_PARAMETER, f"AccessInfo {host!r} does not match InfoFormat {info_format}") from None


@status_method(service, PROXY_SERVICE_CLASS, "AddProxyAccessPoint", realm=Realm.PT_ADMINISTRATION)
async def add_proxy_access_point(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    host = str_param(message, "AccessInfo", max_length=MAX_HOST).strip()
    info_format = int_param(message, "InfoFormat", allowed=PROXY_INFO_FORMATS)
    _check_proxy_host(host, info_format)
    port = int_param(message, "Port", low=1, high=65535)
    suffix = str_param(message, "NetworkDnsSuffix", max_length=MAX_SUFFIX).strip().strip(".")
    if _HOST_NAME.fullmatch(suffix) is None:
        raise MethodError(INVALID_PARAMETER, f"NetworkDnsSuffix {suffix!r} is not a domain name")
    existing = http_proxies(engine)
    if any(p.host.lower() == host.lower() and p.port == port and p.dns_suffix.lower() == suffix.lower()
           for p in existing):
        raise MethodError(PTStatus.DUPLICATE, f"{host}:{port} is already the proxy for {suffix}")
    free = [slot for slot in range(MAX_PROXIES) if slot not in {p.slot for p in existing}]
    if not free:
        raise MethodError(PTStatus.MAX_LIMIT_REACHED, f"at most {MAX_PROXIES} proxies")
    with engine.store.transaction():
        priority = int(engine.store.get(PROXY_PRIORITY_KEY) or 0) + 1
        engine.store.set(PROXY_PRIORITY_KEY, priority)
        proxy = HttpProxy(free[0], host, info_format, port, suffix, priority)
        engine.store.set(f"{PROXY_PREFIX}{proxy.slot}", {k: v for k, v in asdict(proxy).items() if k != "slot"})
    return {"ProxyAccessPoint": service_epr(PROXY_CLASS, proxy.name)}


@service.delete(PROXY_CLASS)
async def delete_proxy_access_point(ctx: Context, current: CimObject) -> None:
    proxy = next((p for p in http_proxies(ctx.engine) if p.name == current.get("Name")), None)
    if proxy is None:
        raise F.DestinationUnreachable()
    ctx.engine.store.delete(f"{PROXY_PREFIX}{proxy.slot}")


# ============================================================================================== 802.1x credentials

AUTH_PROTOCOLS: Final = frozenset({0, 1, 2, 3, 4, 5, 10})
"""EAP-TLS, EAP-TTLS/MSCHAPv2, PEAPv0/EAP-MSCHAPv2, PEAPv1/EAP-GTC, EAP-FAST/MSCHAPv2, EAP-FAST/GTC, EAP-FAST/TLS
(the CIM_IEEE8021xSettings values AMT implements; MeshCommander's ``netAuthProtocols``)."""
NAME_COMPARISONS: Final = frozenset({1, 2, 3})
"""ServerCertificateNameComparison: 1 other, 2 full name, 3 domain suffix."""
MAX_TEXT: Final = 255
MAX_PAC: Final = 2048
_PUBLIC_TEXT: Final = ("RoamingIdentity", "ServerCertificateName", "Username", "Domain")
_SECRET_TEXT: Final = ("Password", "PACPassword")


@dataclass(frozen=True, slots=True)
class Credentials:
    """The 802.1x identity of a profile (wired or wireless); ``secrets`` are write-only."""

    protocol: int | None = None
    public: dict[str, Any] = field(default_factory=dict)
    """RoamingIdentity, ServerCertificateName, ServerCertificateNameComparison, Username, Domain (as set)."""
    secrets: dict[str, str] = field(default_factory=dict)
    """Password, PACPassword and ProtectedAccessCredential (base64): never read back."""

    def fields(self) -> dict[str, Any]:
        out = dict(self.public)
        if self.protocol is not None:
            out["AuthenticationProtocol"] = self.protocol
        return out

    def to_json(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "public": self.public, "secrets": self.secrets}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Credentials:
        if not data:
            return cls()
        return cls(data.get("protocol"), dict(data.get("public") or {}), dict(data.get("secrets") or {}))


def credentials_from(obj: CimObject, stored_secrets: Mapping[str, str],
                     refuse: Callable[[str], Exception] = _invalid) -> Credentials:
    """The credentials ``obj`` (a Put body or an embedded settings input) states, checked.

    A Put replaces the profile, so the public fields are what ``obj`` carries (MeshCommander deletes a field to
    clear it); a secret sent empty or absent keeps the stored one, since consoles echo a Get and a Get never
    shows secrets.  A bad value raises ``refuse(reason)``.
    """
    protocol = obj.get("AuthenticationProtocol")
    if protocol is not None and (isinstance(protocol, bool) or protocol not in AUTH_PROTOCOLS):
        raise refuse(f"AuthenticationProtocol is one of {sorted(AUTH_PROTOCOLS)}")
    public: dict[str, Any] = {}
    for name in _PUBLIC_TEXT:
        value = obj.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise refuse(f"{name} is text of at most {MAX_TEXT} characters")
        public[name] = value
    comparison = obj.get("ServerCertificateNameComparison")
    if comparison is not None:
        if isinstance(comparison, bool) or comparison not in NAME_COMPARISONS:
            raise refuse("ServerCertificateNameComparison is 1 (other), 2 (full name) or 3 (domain suffix)")
        public["ServerCertificateNameComparison"] = comparison
    secrets = dict(stored_secrets)
    for name in _SECRET_TEXT:
        value = obj.get(name)
        if value not in (None, ""):
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                raise refuse(f"{name} is text of at most {MAX_TEXT} characters")
            secrets[name] = value
    pac = obj.get("ProtectedAccessCredential")
    if pac not in (None, "", b""):
        if not isinstance(pac, bytes) or len(pac) > MAX_PAC:
            raise refuse(f"ProtectedAccessCredential is base64 of at most {MAX_PAC} bytes")
        secrets["ProtectedAccessCredential"] = pac.hex()
    return Credentials(None if protocol is None else int(protocol), public, secrets)


def client_certificate_ok(engine: Engine, handle: int) -> bool:
    stored = certificate(engine, handle)
    return stored is not None and not stored.trusted_root and key_for(engine, stored.certificate) is not None


def issuer_certificate_ok(engine: Engine, handle: int) -> bool:
    stored = certificate(engine, handle)
    return stored is not None and stored.trusted_root


def certificate_links(engine: Engine, handles: Iterable[int | None]) -> list[EndpointReference]:
    """The EPRs of the handles still in the store (a deleted certificate stops being linked)."""
    return [certificate_epr(h) for h in handles if h is not None and certificate(engine, h) is not None]


# ============================================================================================== wired 802.1x

PROFILE_CLASS: Final = "AMT_8021XProfile"
PROFILE_ID: Final = "Intel(r) AMT 802.1x Profile 0"
PROFILE_NAME: Final = "Intel(r) AMT 802.1x Profile"
IPS_CLASS: Final = "IPS_IEEE8021xSettings"
IPS_ID: Final = "Intel(r) AMT: 8021X Settings"
WIRED_KEY: Final = "ieee8021x/wired"
IPS_ENABLED, IPS_DISABLED = 2, 3
MAX_PXE_TIMEOUT: Final = 86400


@dataclass(frozen=True, slots=True)
class WiredProfile:
    enabled: bool = False
    active_in_s0: bool = True
    pxe_timeout: int = 0
    credentials: Credentials = field(default_factory=Credentials)
    client_certificate: int | None = None
    server_issuer: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "active_in_s0": self.active_in_s0, "pxe_timeout": self.pxe_timeout,
                "credentials": self.credentials.to_json(), "client": self.client_certificate,
                "issuer": self.server_issuer}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> WiredProfile:
        if not data:
            return cls()
        return cls(bool(data["enabled"]), bool(data["active_in_s0"]), int(data["pxe_timeout"]),
                   Credentials.from_json(data.get("credentials")), data.get("client"), data.get("issuer"))


def wired_profile(engine: Engine) -> WiredProfile:
    return WiredProfile.from_json(engine.store.get(WIRED_KEY))


def _save_wired(engine: Engine, profile: WiredProfile) -> None:
    with engine.store.transaction():
        engine.store.set(WIRED_KEY, profile.to_json())


def _profile_instance(engine: Engine) -> CimObject:
    profile = wired_profile(engine)
    obj = CimObject.new(PROFILE_CLASS, profile.credentials.fields(),
                        ActiveInS0=profile.active_in_s0, ElementName=PROFILE_NAME, Enabled=profile.enabled,
                        InstanceID=PROFILE_ID, PxeTimeout=profile.pxe_timeout)
    client = certificate_links(engine, [profile.client_certificate])
    issuer = certificate_links(engine, [profile.server_issuer])
    if client:
        obj["ClientCertificate"] = client[0]
    if issuer:
        obj["ServerCertificateIssuer"] = issuer[0]
    return obj


def _ips_instance(engine: Engine) -> CimObject:
    profile = wired_profile(engine)
    return CimObject.new(IPS_CLASS, profile.credentials.fields(),
                         AvailableInS0=profile.active_in_s0, ElementName=IPS_ID,
                         Enabled=IPS_ENABLED if profile.enabled else IPS_DISABLED, InstanceID=IPS_ID,
                         PxeTimeout=profile.pxe_timeout)


@service.instances(PROFILE_CLASS, realm=Realm.PT_ADMINISTRATION)
def profile_instances(engine: Engine) -> Iterable[CimObject]:
    return [_profile_instance(engine)]


@service.instances(IPS_CLASS, realm=Realm.PT_ADMINISTRATION)
def ips_settings_instances(engine: Engine) -> Iterable[CimObject]:
    return [_ips_instance(engine)]


def _flag(new: CimObject, name: str, default: bool) -> bool:
    value = new.get(name, default)
    if not isinstance(value, bool):
        raise _invalid(f"{name} is boolean")
    return value


def _pxe_timeout(new: CimObject, default: int) -> int:
    value = new.get("PxeTimeout", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PXE_TIMEOUT:
        raise _invalid(f"PxeTimeout is 0..{MAX_PXE_TIMEOUT} seconds")
    return value


def _updated(old: WiredProfile, new: CimObject, enabled: bool, active_key: str) -> WiredProfile:
    credentials = credentials_from(new, old.credentials.secrets)
    if enabled and credentials.protocol is None:
        raise _invalid("an enabled 802.1x profile needs an AuthenticationProtocol")
    return replace(old, enabled=enabled, active_in_s0=_flag(new, active_key, old.active_in_s0),
                   pxe_timeout=_pxe_timeout(new, old.pxe_timeout), credentials=credentials)


def _certificate_ref(engine: Engine, new: CimObject, name: str, *, client: bool) -> int | None:
    """The certificate a Put's reference names (None when the Put carries none: the reference is cleared)."""
    if name not in new:
        return None
    value = new.get(name)
    handle = certificate_handle(value if isinstance(value, EndpointReference) else None)
    usable = client_certificate_ok if client else issuer_certificate_ok
    if handle is None or not usable(engine, handle):
        what = "a stored certificate with its key" if client else "a trusted root certificate"
        raise _invalid(f"{name} must name {what}")
    return handle


@service.put(PROFILE_CLASS)
async def put_profile(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    engine = ctx.engine
    old = wired_profile(engine)
    updated = _updated(old, new, _flag(new, "Enabled", old.enabled), "ActiveInS0")
    updated = replace(
        updated,
        client_certificate=_certificate_ref(engine, new, "ClientCertificate", client=True),
        server_issuer=_certificate_ref(engine, new, "ServerCertificateIssuer", client=False),
    )
    _save_wired(engine, updated)
    return _profile_instance(engine)


@service.put(IPS_CLASS)
async def put_ips_settings(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    engine = ctx.engine
    old = wired_profile(engine)
    state = new.get("Enabled", IPS_ENABLED if old.enabled else IPS_DISABLED)
    if isinstance(state, bool) or state not in (IPS_ENABLED, IPS_DISABLED):
        raise _invalid("Enabled is 2 (enabled) or 3 (disabled)")
    _save_wired(engine, _updated(old, new, state == IPS_ENABLED, "AvailableInS0"))
    return _ips_instance(engine)


@status_method(service, IPS_CLASS, "SetCertificates", realm=Realm.PT_ADMINISTRATION)
async def set_certificates(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    """RPS's step after the Put: the issuer of the RADIUS server's certificate, and AMT's client certificate."""
    engine = ctx.engine
    issuer = certificate_handle(optional_ref(message, "ServerCertificateIssuer"))
    client = certificate_handle(optional_ref(message, "ClientCertificate"))
    if issuer is not None and not issuer_certificate_ok(engine, issuer):
        raise MethodError(INVALID_PARAMETER, "ServerCertificateIssuer must be a trusted root certificate")
    if client is not None and not client_certificate_ok(engine, client):
        raise MethodError(INVALID_PARAMETER, "ClientCertificate must be a stored certificate with its key")
    if issuer is None and client is None:
        raise MethodError(INVALID_PARAMETER, "no certificate given")
    old = wired_profile(engine)
    _save_wired(engine, replace(old, server_issuer=issuer if issuer is not None else old.server_issuer,
                                client_certificate=client if client is not None else old.client_certificate))
    return {}


def _wired_contexts(engine: Engine, class_name: str, provider: EndpointReference) -> list[CimObject]:
    profile = wired_profile(engine)
    return [CimObject.new(class_name, ElementInContext=epr, ElementProvidingContext=provider)
            for epr in certificate_links(engine, [profile.client_certificate, profile.server_issuer])]


@service.instances("AMT_8021xCredentialContext", realm=Realm.PT_ADMINISTRATION)
def profile_credential_contexts(engine: Engine) -> Iterable[CimObject]:
    provider = EndpointReference.to(resource_uri(PROFILE_CLASS), {"InstanceID": PROFILE_ID})
    return _wired_contexts(engine, "AMT_8021xCredentialContext", provider)


@service.instances("IPS_8021xCredentialContext", realm=Realm.PT_ADMINISTRATION)
def ips_credential_contexts(engine: Engine) -> Iterable[CimObject]:
    provider = EndpointReference.to(resource_uri(IPS_CLASS), {"InstanceID": IPS_ID})
    return _wired_contexts(engine, "IPS_8021xCredentialContext", provider)
