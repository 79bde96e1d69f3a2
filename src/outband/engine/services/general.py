"""Identity and general settings: what every console reads first (AMT-PROTOCOLS.md §3.2).

AMT_GeneralSettings (read with the General Info realm, changed with PT Administration),
CIM_SoftwareIdentity (firmware versions; MeshCommander takes the major version from the instance
``AMT``) and the two CIM_ComputerSystem instances (the host ``ManagedSystem`` and the ME ``Intel(r) AMT``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...proto.amt import Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimObject
from ..core import Engine
from ..registry import Context, Service
from ..settings import SettingsClass

service = Service("general")

GENERAL = SettingsClass(
    "AMT_GeneralSettings",
    "Intel(r) AMT: General Settings",
    lambda engine: _general_defaults(engine),
    frozenset({
        "AMTNetworkEnabled", "DDNSPeriodicUpdateInterval", "DDNSTTL", "DDNSUpdateByDHCPServerEnabled",
        "DDNSUpdateEnabled", "DHCPSyncRequiresHostname", "DHCPv6ConfigurationTimeout", "DomainName", "HostName",
        "IdleWakeTimeout", "PingResponseEnabled", "PreferredAddressFamily", "PresenceNotificationInterval",
        "PrivacyLevel", "RmcpPingResponseEnabled", "SharedFQDN", "ThunderboltDockEnabled", "WsmanOnlyMode",
    }),
)


def _general_defaults(engine: Engine) -> Mapping[str, Any]:
    return {
        "AMTNetworkEnabled": 1,
        "DDNSPeriodicUpdateInterval": 1440,
        "DDNSTTL": 900,
        "DDNSUpdateByDHCPServerEnabled": True,
        "DDNSUpdateEnabled": False,
        "DHCPSyncRequiresHostname": 1,
        "DHCPv6ConfigurationTimeout": 0,
        "DigestRealm": engine.realm,
        "DomainName": engine.config.domain,
        "ElementName": "Intel(r) AMT: General Settings",
        "HostName": engine.config.hostname,
        "HostOSFQDN": "",
        "IdleWakeTimeout": 1,
        "InstanceID": "Intel(r) AMT: General Settings",
        "NetworkInterfaceEnabled": True,
        "PingResponseEnabled": True,
        "PowerSource": 0,
        "PreferredAddressFamily": 0,
        "PresenceNotificationInterval": 0,
        "PrivacyLevel": 0,
        "RmcpPingResponseEnabled": True,
        "SharedFQDN": True,
        "ThunderboltDockEnabled": 0,
        "WsmanOnlyMode": False,
    }


@service.instances("AMT_GeneralSettings", realm=Realm.GENERAL_INFO, write_realm=Realm.PT_ADMINISTRATION)
def general_settings(engine: Engine) -> Iterable[CimObject]:
    return [GENERAL.instance(engine)]


@service.put("AMT_GeneralSettings")
async def put_general_settings(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    changes = GENERAL.changes_from_put(current, new)
    engine = ctx.engine
    with engine.store.transaction():
        GENERAL.update(engine, changes)
        if "HostName" in changes:
            engine.audit(AuditApp.NETWORK_ADMIN, 1, account=ctx.account, address=ctx.peer)
        if "DomainName" in changes:
            engine.audit(AuditApp.NETWORK_ADMIN, 2, account=ctx.account, address=ctx.peer)
    return GENERAL.instance(engine)


def _versions(engine: Engine) -> list[tuple[str, str]]:
    parts = [*engine.amt_version.split("."), "0", "0", "0", "0"][:4]
    version, build = ".".join(parts[:3]), parts[3]
    return [
        ("Flash", version),
        ("Netstack", version),
        ("AMTApps", version),
        ("AMT", version),
        ("Sku", "16392"),
        ("VendorID", "8086"),
        ("Build Number", build),
        ("Recovery Version", version),
        ("Recovery Build Num", build),
        ("Legacy Mode", "False"),
        ("AMT FW Core Version", version),
    ]


@service.instances("CIM_SoftwareIdentity", realm=Realm.GENERAL_INFO)
def software_identity(engine: Engine) -> Iterable[CimObject]:
    return [
        CimObject.new("CIM_SoftwareIdentity", InstanceID=name, IsEntity=True, VersionString=version)
        for name, version in _versions(engine)
    ]


@service.instances("CIM_ComputerSystem", realm=Realm.GENERAL_INFO)
def computer_systems(engine: Engine) -> Iterable[CimObject]:
    profile = engine.platform.profile
    return [
        CimObject.new(
            "CIM_ComputerSystem",
            CreationClassName="CIM_ComputerSystem",
            ElementName="Managed System",
            EnabledState=2,
            Name="ManagedSystem",
            OperationalStatus=[0],
            RequestedState=12,
        ),
        CimObject.new(
            "CIM_ComputerSystem",
            CreationClassName="CIM_ComputerSystem",
            Dedicated=[14],
            ElementName="Intel(r) AMT Subsystem",
            EnabledState=5,
            Name="Intel(r) AMT",
            OperationalStatus=[0],
            RequestedState=12,
        ),
    ] if profile is not None else []
