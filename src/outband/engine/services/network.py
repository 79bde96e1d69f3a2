"""AMT's network interfaces: AMT_EthernetPortSettings for the wired port (``… Settings 0``) and, on machines
with a wireless NIC, the wireless port (``… Settings 1``).

AMT sees only its own NICs: the profile's first wired NIC and first wireless NIC (further NICs belong to the
host alone).  Without a wired NIC the wired instance still exists, with MAC ``00-00-00-00-00-00`` and the link
down, as on LAN-less laptops (MeshCommander then hides it).

Theory of operation.  The wired port's IPv4 configuration is in one of three modes, chosen by a Put:

* DHCP (``DHCPEnabled=true``): AMT shares the host's DHCP lease; the address fields a Get shows are the lease
  (the platform NIC's ``ipv4``/``subnet_mask``/``gateway``/``dns``) and cannot be set.
* IP sync (``DHCPEnabled=false, IpSyncEnabled=true``): AMT takes the host OS's static settings (the same NIC
  fields); again nothing to set.
* Static (``DHCPEnabled=false, IpSyncEnabled=false``): AMT uses what the Put gave; ``IPAddress`` and
  ``SubnetMask`` are required, ``DefaultGateway``/``PrimaryDNS``/``SecondaryDNS`` optional (an empty string, as
  MeshCommander sends for a blank field, means none).

A Put replaces the configuration as a whole (WS-Transfer semantics) and must carry ``DHCPEnabled`` (GWM
``ethernetport/types.go``: "DHCPEnabled is a required field for the Put command").  Consoles do Get-modify-Put,
and MeshCommander and RPS delete the address fields before a Put in DHCP mode (MCMD ``index.html``
``showIPSetupDlgOk``; RPS network profiles), so address fields in a DHCP or IP-sync Put are accepted only when
they repeat what a Get shows; different values are refused instead of silently dropped.  Bad input is a
``wsman:InvalidRepresentation`` fault — ``MissingValues`` when a required field is absent, ``InvalidValues``
when a value is malformed (AMT's fault for bad Put content, AMT-PROTOCOLS.md §2.8) — and nothing is changed.
Validation beyond syntax (a usable unicast host address, a contiguous mask leaving host addresses, the gateway
on the address's subnet) is this emulator's policy: AMT firmware is known to refuse such settings but no
capture shows its exact reply.  The wireless port is DHCP-only (IRG ``setgetlinkpreferenceandcontrol.htm``,
wireless configuration concepts) and its link preference is changed with ``SetLinkPreference`` only.

Changes are persisted (``SettingsClass``) and audited in one transaction: 2200 "TCPIP Parameters Set" for the
IPv4 configuration, 2204 "Link Policy Set" for ``LinkPolicy``.  The audit records carry no extended data: the
layout of their parameters is not confirmed by any source at hand.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ...proto.amt import PTStatus, Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimObject
from ...proto.wsman import faults as F
from ..core import Engine
from ..platforms.base import PowerState
from ..platforms.profile import Nic
from ..registry import Context, Service
from ..settings import SettingsClass
from .logs import method_output

service = Service("network")

CLASS: Final = "AMT_EthernetPortSettings"
WIRED_ID: Final = "Intel(r) AMT Ethernet Port Settings 0"
WIRELESS_ID: Final = "Intel(r) AMT Ethernet Port Settings 1"
ELEMENT_NAME: Final = "Intel(r) AMT Ethernet Port Settings"
NO_MAC: Final = "00-00-00-00-00-00"
"""What AMT reports for a port it has no NIC for (MeshCommander skips a wired port with this MAC)."""

ADDRESS_FIELDS: Final = ("IPAddress", "SubnetMask", "DefaultGateway", "PrimaryDNS", "SecondaryDNS")
LINK_POLICIES: Final = frozenset({1, 14, 16, 224})
"""S0/AC, Sx/AC, S0/DC, Sx/DC (bit masks of power states, hence the odd numbers)."""
LINK_ME: Final = 1
LINK_HOST: Final = 2
TCP_RETRANSMISSIONS: Final = range(5, 8)
"""ConsoleTcpMaxRetransmissions bounds (MinValue 5, MaxValue 7 in the class definition)."""

IPV4_EVENT: Final = 0
"""Network Admin audit event 2200, TCPIP Parameters Set."""
LINK_POLICY_EVENT: Final = 4
"""Network Admin audit event 2204, Link Policy Set."""

LINK_PREFERENCE_KEY: Final = "network/wireless_link_preference"


def _wired_defaults(engine: Engine) -> Mapping[str, Any]:
    return {"DHCPEnabled": True, "IpSyncEnabled": True, "SharedStaticIp": False, "LinkPolicy": [1, 14]}


def _wireless_defaults(engine: Engine) -> Mapping[str, Any]:
    return {"DHCPEnabled": True, "ConsoleTcpMaxRetransmissions": 5}


WIRED = SettingsClass(
    CLASS, WIRED_ID, _wired_defaults,
    frozenset({"DHCPEnabled", "IpSyncEnabled", "SharedStaticIp", "LinkPolicy", *ADDRESS_FIELDS}),
)
WIRELESS = SettingsClass(
    CLASS, WIRELESS_ID, _wireless_defaults, frozenset({"DHCPEnabled", "ConsoleTcpMaxRetransmissions"}),
)


def _invalid(reason: str) -> F.InvalidRepresentation:
    return F.InvalidRepresentation(reason, detail=F.detail_uri("InvalidValues"))


def _missing(reason: str) -> F.InvalidRepresentation:
    return F.InvalidRepresentation(reason, detail=F.detail_uri("MissingValues"))


# ---------------------------------------------------------------------------------------------- ports


def wired_nic(engine: Engine) -> Nic | None:
    return next((n for n in engine.platform.profile.nics if not n.wireless), None)


def wireless_nic(engine: Engine) -> Nic | None:
    return next((n for n in engine.platform.profile.nics if n.wireless), None)


def lease(nic: Nic | None) -> dict[str, str]:
    """The host's IPv4 settings on ``nic``'s link, as AMT reports them when it shares them."""
    if nic is None or not nic.link_up or not nic.ipv4:
        return {}
    dns = [*nic.dns, "", ""]
    values = {"IPAddress": nic.ipv4, "SubnetMask": nic.subnet_mask, "DefaultGateway": nic.gateway,
              "PrimaryDNS": dns[0], "SecondaryDNS": dns[1]}
    return {k: v for k, v in values.items() if v}


def wired_port(engine: Engine) -> CimObject:
    nic = wired_nic(engine)
    stored = WIRED.values(engine)
    if stored["DHCPEnabled"] or stored["IpSyncEnabled"]:
        addresses = lease(nic)
    else:
        addresses = {k: stored[k] for k in ADDRESS_FIELDS if stored.get(k)}
    return CimObject.new(
        CLASS,
        addresses,
        DHCPEnabled=stored["DHCPEnabled"],
        ElementName=ELEMENT_NAME,
        InstanceID=WIRED_ID,
        IpSyncEnabled=stored["IpSyncEnabled"],
        LinkIsUp=nic is not None and nic.link_up,
        LinkPolicy=stored["LinkPolicy"],
        MACAddress=nic.mac if nic is not None else NO_MAC,
        PhysicalConnectionType=0,
        SharedDynamicIP=True,
        SharedMAC=True,
        SharedStaticIp=stored["SharedStaticIp"],
    )


@dataclass(frozen=True, slots=True)
class LinkPreference:
    """Who the wireless link is preferred to belong to; an ME preference lapses after its timeout."""

    preference: int = LINK_HOST
    until: float = 0.0

    def current(self, now: float) -> int:
        return self.preference if self.preference != LINK_ME or now < self.until else LINK_HOST


def link_preference(engine: Engine) -> LinkPreference:
    stored = engine.store.get(LINK_PREFERENCE_KEY) or {}
    return LinkPreference(int(stored.get("preference", LINK_HOST)), float(stored.get("until", 0.0)))


def wireless_port(engine: Engine, nic: Nic) -> CimObject:
    preference = link_preference(engine).current(engine.clock())
    host_up = engine.platform.power_state is PowerState.ON
    return CimObject.new(
        CLASS,
        lease(nic),
        ConsoleTcpMaxRetransmissions=WIRELESS.values(engine)["ConsoleTcpMaxRetransmissions"],
        DHCPEnabled=True,
        ElementName=ELEMENT_NAME,
        InstanceID=WIRELESS_ID,
        LinkControl=LINK_HOST if host_up and preference == LINK_HOST else LINK_ME,
        LinkIsUp=nic.link_up,
        LinkPreference=preference,
        MACAddress=nic.mac,
        PhysicalConnectionType=3,
        SharedMAC=True,
        WLANLinkProtectionLevel=1,
    )


@service.instances(CLASS, realm=Realm.GENERAL_INFO, write_realm=Realm.PT_ADMINISTRATION)
def ethernet_ports(engine: Engine) -> Iterable[CimObject]:
    wireless = wireless_nic(engine)
    return [wired_port(engine), *([wireless_port(engine, wireless)] if wireless is not None else [])]


# ---------------------------------------------------------------------------------------------- validation


def _address(name: str, text: str) -> ipaddress.IPv4Address:
    """A unicast host address in dotted-quad form (no leading zeros, no names)."""
    try:
        addr = ipaddress.IPv4Address(text)
    except ValueError:
        raise _invalid(f"{name} {text!r} is not an IPv4 address") from None
    if addr.is_unspecified or addr.is_multicast or addr.is_loopback or addr.is_reserved:
        raise _invalid(f"{name} {text} is not a usable unicast address")
    return addr


def _subnet(address: ipaddress.IPv4Address, mask_text: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.IPv4Network(f"{address}/{mask_text}", strict=False)
    except ValueError:
        raise _invalid(f"SubnetMask {mask_text!r} is not a contiguous IPv4 netmask") from None
    if not 1 <= network.prefixlen <= 30 or str(network.netmask) != mask_text:
        raise _invalid(f"SubnetMask {mask_text} leaves no host addresses")
    if address in (network.network_address, network.broadcast_address):
        raise _invalid(f"IPAddress {address} is the network or broadcast address of {network}")
    return network


def static_addresses(given: Mapping[str, str]) -> dict[str, str | None]:
    """The static configuration a Put asks for, validated; absent optional fields become None (cleared)."""
    for required in ("IPAddress", "SubnetMask"):
        if not given.get(required):
            raise _missing(f"a static configuration needs {required}")
    address = _address("IPAddress", given["IPAddress"])
    network = _subnet(address, given["SubnetMask"])
    gateway = given.get("DefaultGateway")
    if gateway:
        gw = _address("DefaultGateway", gateway)
        if gw not in network or gw == address or gw == network.broadcast_address:
            raise _invalid(f"DefaultGateway {gateway} is not another host of {network}")
    for dns in ("PrimaryDNS", "SecondaryDNS"):
        if given.get(dns):
            _address(dns, given[dns])
    return {k: given.get(k) or None for k in ADDRESS_FIELDS}


def _given_addresses(new: CimObject) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ADDRESS_FIELDS:
        value = new.get(name)
        if isinstance(value, list):
            raise _invalid(f"{name} is a single address")
        if value:
            out[name] = str(value)
    return out


def _check_echo(current: CimObject, given: Mapping[str, str], why: str) -> None:
    """In a mode where AMT takes its addresses elsewhere, only a repeat of what it shows is acceptable."""
    for name, value in given.items():
        if current.get(name) != value:
            raise _invalid(f"{name} cannot be set {why}")


def _link_policy(new: CimObject) -> list[int] | None:
    if "LinkPolicy" not in new:
        return None
    values = new.getlist("LinkPolicy")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v in LINK_POLICIES for v in values):
        raise _invalid(f"LinkPolicy values are {sorted(LINK_POLICIES)}")
    return sorted({int(v) for v in values if isinstance(v, int)})


def _bool(new: CimObject, name: str, default: bool) -> bool:
    value = new.get(name, default)
    if not isinstance(value, bool):
        raise _invalid(f"{name} is a boolean")
    return value


# ---------------------------------------------------------------------------------------------- Put


@service.put(CLASS)
async def put_ethernet_port(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    if current.get("InstanceID") == WIRELESS_ID:
        return await _put_wireless(ctx, current, new)
    WIRED.changes_from_put(current, new)  # key changes and mistyped values are faults
    if "DHCPEnabled" not in new:
        raise _missing("DHCPEnabled is required in a Put of AMT_EthernetPortSettings")
    stored = WIRED.values(ctx.engine)
    dhcp = _bool(new, "DHCPEnabled", True)
    ip_sync = _bool(new, "IpSyncEnabled", stored["IpSyncEnabled"])
    config: dict[str, Any] = {
        "DHCPEnabled": dhcp,
        "IpSyncEnabled": ip_sync,
        "SharedStaticIp": _bool(new, "SharedStaticIp", stored["SharedStaticIp"]),
    }
    given = _given_addresses(new)
    if dhcp or ip_sync:
        _check_echo(current, given, "while AMT takes its address from DHCP" if dhcp else
                    "while IpSyncEnabled takes the host's static address")
    else:
        config.update(static_addresses(given))
    changes = {k: v for k, v in config.items() if stored.get(k) != v}
    ipv4_changed = bool(changes)
    policy = _link_policy(new)
    if policy is not None and policy != stored["LinkPolicy"]:
        changes["LinkPolicy"] = policy
    engine = ctx.engine
    with engine.store.transaction():
        WIRED.update(engine, changes)
        if ipv4_changed:
            engine.audit(AuditApp.NETWORK_ADMIN, IPV4_EVENT, account=ctx.account, address=ctx.peer)
        if "LinkPolicy" in changes:
            engine.audit(AuditApp.NETWORK_ADMIN, LINK_POLICY_EVENT, account=ctx.account, address=ctx.peer)
    return wired_port(engine)


async def _put_wireless(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    WIRELESS.changes_from_put(current, new)
    if not _bool(new, "DHCPEnabled", True):
        raise _invalid("the wireless interface is configured by DHCP only")
    _check_echo(current, _given_addresses(new), "on the wireless interface (DHCP only)")
    changes: dict[str, Any] = {}
    retransmissions = new.get("ConsoleTcpMaxRetransmissions")
    if retransmissions is not None:
        if not isinstance(retransmissions, int) or retransmissions not in TCP_RETRANSMISSIONS:
            low, high = TCP_RETRANSMISSIONS.start, TCP_RETRANSMISSIONS.stop - 1
            raise _invalid(f"ConsoleTcpMaxRetransmissions is {low}..{high}")
        if retransmissions != current.get("ConsoleTcpMaxRetransmissions"):
            changes["ConsoleTcpMaxRetransmissions"] = retransmissions
    engine = ctx.engine
    nic = wireless_nic(engine)
    assert nic is not None  # the instance exists only with a wireless NIC
    with engine.store.transaction():
        WIRELESS.update(engine, changes)
    return wireless_port(engine, nic)


# ---------------------------------------------------------------------------------------------- methods


@service.method(CLASS, "SetLinkPreference", realm=Realm.PT_ADMINISTRATION)
async def set_link_preference(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    """Give the wireless link to the ME (for ``Timeout`` seconds) or back to the host.

    Only the wireless port has a link preference; a call without selectors means it, since no other port could.
    """
    def result(status: PTStatus) -> CimObject:
        return method_output(CLASS, "SetLinkPreference", ReturnValue=int(status))

    engine = ctx.engine
    explicit_wired = bool(ctx.selectors) and target is not None and target.get("InstanceID") == WIRED_ID
    if explicit_wired or wireless_nic(engine) is None:
        return result(PTStatus.UNSUPPORTED)
    preference, timeout = message.get("LinkPreference"), message.get("Timeout")
    if preference not in (LINK_ME, LINK_HOST) or isinstance(preference, bool):
        return result(PTStatus.INVALID_PARAMETER)
    if preference == LINK_ME and (not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0):
        return result(PTStatus.INVALID_PARAMETER)
    until = engine.clock() + timeout if preference == LINK_ME and isinstance(timeout, int) else 0.0
    with engine.store.transaction():
        engine.store.set(LINK_PREFERENCE_KEY, {"preference": preference, "until": until})
    return result(PTStatus.SUCCESS)
