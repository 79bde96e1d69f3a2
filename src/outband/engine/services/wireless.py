"""Wireless: AMT's Wi-Fi port, its profiles and their 802.1x settings -- present only on a machine whose hardware
profile has a wireless NIC (``Nic.wireless``); without one every class here has no instance.

Classes (MeshCommander ``PullWireless`` reads them all in one batch; RPS adds profiles with AddWiFiSettings):

* CIM_WiFiPort (``WiFi Port 0``): the radio's state, changed with ``RequestStateChange`` -- 3 disabled, 32768
  enabled in S0, 32769 enabled in S0 and Sx/AC (FX ``cim/wifi/port``; MeshCommander ``xxWifiState``).  It starts
  disabled, as the capture shows.
* CIM_WiFiEndpoint (``WiFi Endpoint 0``): what profiles attach to; AddWiFiSettings names it.
* CIM_WiFiPortCapabilities: the states the port accepts.
* AMT_WiFiPortConfigurationService: ``AddWiFiSettings``, ``DeleteAllITProfiles``, and by Put the local profile
  synchronization policy (0 off, 1 user profiles, 3 unrestricted; 2 is reserved), the no-host-software policy
  (0 relaxed, 1 aggressive) and, from AMT 16 (CSME 16), ``UEFIWiFiProfileShareEnabled`` -- older firmware does
  not have the property (FX ``amt/wifiportconfiguration/get.xml`` has none).  Its ``Name`` and ``ElementName``
  differ (``WiFi Port`` vs ``WiFiPort``) exactly as in the capture.
* CIM_WiFiEndpointSettings: one per profile, ``Intel(r) AMT:WiFi Endpoint Settings <name>`` (the InstanceID
  MeshCommander and RPS send), removed with Transfer Delete.
* CIM_IEEE8021xSettings: the 802.1x part of a profile that has one, ``Intel(r) AMT:IEEE 802.1x Settings
  <name>`` (FX ``cim/ieee8021x/settings/pull.xml``), and CIM_CredentialContext linking its certificates
  (FX ``cim/credential/context/pull.xml``).

Profile rules checked by AddWiFiSettings (its ReturnValue table is 0 done, 1 not supported, 2 failed, 3 invalid
parameter, 4 invalid reference): a unique name of 1..32 characters and a unique priority 1..255 (MeshCommander
offers only free priorities), an SSID of 1..32 bytes, an authentication/encryption pair MeshCommander allows
(open or shared key with WEP or none; WPA/WPA2 with TKIP or CCMP; WPA3 with CCMP), a passphrase of 8..63
characters or a 32-byte PSK for the PSK methods and WPA3-SAE, 802.1x settings for the 802.1x methods, and any
certificates present in the store (the client one with its key, the CA a trusted root).  At most 16 profiles
(this engine's limit).  Secrets are write-only.  Audit (MeshCommander's table): 2700 profile added, 2701
removed, 2703 synchronization policy changed, 2705 UEFI sharing changed.  Reads of the port, endpoint and
capabilities need General Info; everything else PT Administration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ...proto.amt import Realm
from ...proto.amtlog import AuditApp
from ...proto.cim.model import CimObject
from ...proto.wsman import EndpointReference
from ...proto.wsman import faults as F
from ...proto.wsman.namespaces import resource_uri
from ..core import Engine
from ..platforms.profile import Nic
from ..registry import Context, Service
from .certificates import certificate_handle
from .network import wireless_nic
from .network_extra import (
    Credentials,
    certificate_links,
    client_certificate_ok,
    credentials_from,
    issuer_certificate_ok,
)
from .servicekit import MethodError, int_param, optional_ref, selector_text, service_instance, status_method
from .support import ME_SYSTEM_NAME, method_output

service = Service("wireless")

PORT_CLASS: Final = "CIM_WiFiPort"
PORT_ID: Final = "WiFi Port 0"
ENDPOINT_CLASS: Final = "CIM_WiFiEndpoint"
ENDPOINT_NAME: Final = "WiFi Endpoint 0"
CAPABILITIES_CLASS: Final = "CIM_WiFiPortCapabilities"
CAPABILITIES_ID: Final = "Intel(r) AMT WiFiPort Capabilities 0"
CONFIG_CLASS: Final = "AMT_WiFiPortConfigurationService"
CONFIG_NAME: Final = "Intel(r) AMT WiFi Port Configuration Service"
CONFIG_ELEMENT_NAME: Final = "Intel(r) AMT WiFiPort Configuration Service"
SETTINGS_CLASS: Final = "CIM_WiFiEndpointSettings"
SETTINGS_ID: Final = "Intel(r) AMT:WiFi Endpoint Settings {}"
IEEE_CLASS: Final = "CIM_IEEE8021xSettings"
IEEE_ID: Final = "Intel(r) AMT:IEEE 802.1x Settings {}"

PORT_KEY: Final = "wifi/port-state"
CONFIG_KEY: Final = "wifi/config"
PROFILE_PREFIX: Final = "wifi/profile/"

PORT_DISABLED: Final = 3
PORT_STATES: Final = (PORT_DISABLED, 32768, 32769)
SYNC_POLICIES: Final = frozenset({0, 1, 3})
NO_HOST_POLICIES: Final = frozenset({0, 1})
UEFI_SHARE_FROM: Final = 16
"""AMT (CSME) major version that has UEFIWiFiProfileShareEnabled."""
MAX_PROFILES: Final = 16
MAX_NAME: Final = 32
MAX_SSID: Final = 32
INFRASTRUCTURE: Final = 3

OPEN, SHARED_KEY, WPA_PSK, WPA_8021X, WPA2_PSK, WPA2_8021X, WPA3_SAE, WPA3_OWE = 2, 3, 4, 5, 6, 7, 32768, 32769
WEP, TKIP, CCMP, NO_ENCRYPTION = 2, 3, 4, 5
ENCRYPTIONS: Final[Mapping[int, frozenset[int]]] = {
    OPEN: frozenset({WEP, NO_ENCRYPTION}), SHARED_KEY: frozenset({WEP, NO_ENCRYPTION}),
    WPA_PSK: frozenset({TKIP, CCMP}), WPA_8021X: frozenset({TKIP, CCMP}),
    WPA2_PSK: frozenset({TKIP, CCMP}), WPA2_8021X: frozenset({TKIP, CCMP}),
    WPA3_SAE: frozenset({CCMP}), WPA3_OWE: frozenset({CCMP}),
}
"""Encryption methods allowed with each authentication method (MeshCommander ``updateWifiDialog``)."""
PASSPHRASE_METHODS: Final = frozenset({WPA_PSK, WPA2_PSK, WPA3_SAE})
IEEE8021X_METHODS: Final = frozenset({WPA_8021X, WPA2_8021X})

COMPLETED, FAILED, INVALID_PARAMETER, INVALID_REFERENCE = 0, 2, 3, 4
DMTF_INVALID_PARAMETER: Final = 5
PROFILE_ADDED, PROFILE_REMOVED, SYNC_CHANGED, UEFI_SHARE_CHANGED = 0, 1, 3, 5


def _invalid(reason: str) -> F.InvalidRepresentation:
    return F.InvalidRepresentation(reason, detail=F.detail_uri("InvalidValues"))


def _audit(ctx: Context, event: int) -> None:
    ctx.engine.audit(AuditApp.WIRELESS, event, account=ctx.account, address=ctx.peer)


def _has_uefi_share(engine: Engine) -> bool:
    major = engine.amt_version.split(".", 1)[0]
    return major.isdigit() and int(major) >= UEFI_SHARE_FROM


# ---------------------------------------------------------------------------------------------- profiles


@dataclass(frozen=True, slots=True)
class WifiProfile:
    """One IT wireless profile as stored under ``wifi/profile/<name>``; ``secrets`` are write-only."""

    name: str
    ssid: str
    priority: int
    authentication: int
    encryption: int
    secrets: dict[str, str] = field(default_factory=dict)
    ieee8021x: Credentials | None = None
    client_certificate: int | None = None
    ca_certificate: int | None = None

    @property
    def settings_epr(self) -> EndpointReference:
        return EndpointReference.to(resource_uri(SETTINGS_CLASS), {"InstanceID": SETTINGS_ID.format(self.name)})

    @property
    def ieee_epr(self) -> EndpointReference:
        return EndpointReference.to(resource_uri(IEEE_CLASS), {"InstanceID": IEEE_ID.format(self.name)})

    def to_json(self) -> dict[str, Any]:
        return {"ssid": self.ssid, "priority": self.priority, "auth": self.authentication, "enc": self.encryption,
                "secrets": self.secrets, "ieee8021x": self.ieee8021x.to_json() if self.ieee8021x else None,
                "client": self.client_certificate, "ca": self.ca_certificate}

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> WifiProfile:
        ieee = data.get("ieee8021x")
        return cls(name, str(data["ssid"]), int(data["priority"]), int(data["auth"]), int(data["enc"]),
                   dict(data.get("secrets") or {}), Credentials.from_json(ieee) if ieee else None,
                   data.get("client"), data.get("ca"))


def profiles(engine: Engine) -> list[WifiProfile]:
    """The wireless profiles by priority (what the Wi-Fi client tries first)."""
    found = [WifiProfile.from_json(key.removeprefix(PROFILE_PREFIX), engine.store.get(key))
             for key in engine.store.keys(PROFILE_PREFIX)]
    return sorted(found, key=lambda p: (p.priority, p.name))


def _nic(engine: Engine) -> Nic | None:
    return wireless_nic(engine)


# ---------------------------------------------------------------------------------------------- port, endpoint


def port_state(engine: Engine) -> int:
    return int(engine.store.get(PORT_KEY) or PORT_DISABLED)


def _mac(nic: Nic) -> str:
    return nic.mac.replace("-", "").replace(":", "")


@service.instances(PORT_CLASS, realm=Realm.GENERAL_INFO, write_realm=Realm.PT_ADMINISTRATION)
def wifi_ports(engine: Engine) -> Iterable[CimObject]:
    nic = _nic(engine)
    if nic is None:
        return []
    state = port_state(engine)
    return [CimObject.new(PORT_CLASS, CreationClassName=PORT_CLASS, DeviceID=PORT_ID, ElementName=PORT_ID,
                          EnabledState=state, HealthState=5, LinkTechnology=11, PermanentAddress=_mac(nic),
                          PortType=0, RequestedState=state, SystemCreationClassName="CIM_ComputerSystem",
                          SystemName=ME_SYSTEM_NAME)]


@service.method(PORT_CLASS, "RequestStateChange", realm=Realm.PT_ADMINISTRATION)
async def request_port_state(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    state = message.get("RequestedState")
    if isinstance(state, bool) or state not in PORT_STATES:
        return method_output(PORT_CLASS, "RequestStateChange", DMTF_INVALID_PARAMETER)
    with ctx.engine.store.transaction():
        ctx.engine.store.set(PORT_KEY, int(state))
    return method_output(PORT_CLASS, "RequestStateChange", 0)


@service.instances(ENDPOINT_CLASS, realm=Realm.GENERAL_INFO)
def wifi_endpoints(engine: Engine) -> Iterable[CimObject]:
    nic = _nic(engine)
    if nic is None:
        return []
    up = nic.link_up and port_state(engine) != PORT_DISABLED
    return [CimObject.new(ENDPOINT_CLASS, CreationClassName=ENDPOINT_CLASS, ElementName=ENDPOINT_NAME,
                          EnabledState=2 if up else 3, HealthState=5, MACAddress=_mac(nic), Name=ENDPOINT_NAME,
                          SystemCreationClassName="CIM_ComputerSystem", SystemName=ME_SYSTEM_NAME)]


@service.instances(CAPABILITIES_CLASS, realm=Realm.GENERAL_INFO)
def wifi_capabilities(engine: Engine) -> Iterable[CimObject]:
    if _nic(engine) is None:
        return []
    return [CimObject.new(CAPABILITIES_CLASS, ElementName=CAPABILITIES_ID, ElementNameEditSupported=False,
                          InstanceID=CAPABILITIES_ID, LinkTechnologiesSupported=[11],
                          RequestedStatesSupported=list(PORT_STATES))]


# ---------------------------------------------------------------------------------------------- configuration


def _config(engine: Engine) -> dict[str, Any]:
    return {"sync": 1, "no_host": 0, "uefi_share": False, **(engine.store.get(CONFIG_KEY) or {})}


def _config_instance(engine: Engine) -> CimObject:
    config = _config(engine)
    obj = service_instance(CONFIG_CLASS, CONFIG_NAME, CONFIG_ELEMENT_NAME, EnabledState=5, HealthState=5,
                           LastConnectedSsidUnderMeControl="", NoHostCsmeSoftwarePolicy=config["no_host"],
                           RequestedState=12, localProfileSynchronizationEnabled=config["sync"])
    if _has_uefi_share(engine):
        obj["UEFIWiFiProfileShareEnabled"] = bool(config["uefi_share"])
    return obj


@service.instances(CONFIG_CLASS, realm=Realm.PT_ADMINISTRATION)
def wifi_configuration(engine: Engine) -> Iterable[CimObject]:
    return [_config_instance(engine)] if _nic(engine) is not None else []


_RADIO: Final = {"0": False, "1": True}


def _choice(new: CimObject, name: str, current: int, allowed: frozenset[int]) -> int:
    value = new.get(name, current)
    if isinstance(value, bool) or value not in allowed:
        raise _invalid(f"{name} is one of {sorted(allowed)}")
    return int(value)


@service.put(CONFIG_CLASS)
async def put_wifi_configuration(ctx: Context, current: CimObject, new: CimObject) -> CimObject:
    """MeshCommander's ``showWifiSyncDlgEx`` and ``UefiWifiCoExDlg``: Get-modify-Put of the policies."""
    engine = ctx.engine
    old = _config(engine)
    updated = dict(old, sync=_choice(new, "localProfileSynchronizationEnabled", old["sync"], SYNC_POLICIES),
                   no_host=_choice(new, "NoHostCsmeSoftwarePolicy", old["no_host"], NO_HOST_POLICIES))
    if _has_uefi_share(engine):
        share = new.get("UEFIWiFiProfileShareEnabled", old["uefi_share"])
        share = _RADIO.get(share, share) if isinstance(share, str) else share  # MeshCommander sends "0" or "1"
        if not isinstance(share, bool):
            raise _invalid("UEFIWiFiProfileShareEnabled is boolean")
        updated["uefi_share"] = share
    if updated != old:
        with engine.store.transaction():
            engine.store.set(CONFIG_KEY, updated)
            if updated["sync"] != old["sync"]:
                _audit(ctx, SYNC_CHANGED)
            if updated["uefi_share"] != old["uefi_share"]:
                _audit(ctx, UEFI_SHARE_CHANGED)
    return _config_instance(engine)


# ---------------------------------------------------------------------------------------------- AddWiFiSettings


def _refuse_parameter(reason: str) -> Exception:
    return MethodError(INVALID_PARAMETER, reason)


def _text(settings: CimObject, name: str, limit: int) -> str:
    value = settings.get(name)
    if not isinstance(value, str) or not 0 < len(value.encode("utf-8")) <= limit:
        raise MethodError(INVALID_PARAMETER, f"{name} is 1..{limit} bytes of text")
    return value


def _secrets(settings: CimObject, authentication: int) -> dict[str, str]:
    if authentication not in PASSPHRASE_METHODS:
        return {}
    passphrase, psk = settings.get("PSKPassPhrase"), settings.get("PSKValue")
    if isinstance(psk, bytes) and len(psk) == 32:
        return {"psk": psk.hex()}
    if isinstance(passphrase, str) and 8 <= len(passphrase) <= 63 and passphrase.isascii():
        return {"passphrase": passphrase}
    raise MethodError(INVALID_PARAMETER, "a PSK profile needs a passphrase of 8..63 ASCII characters or a 32-byte PSK")


def _certificate(engine: Engine, message: CimObject, name: str, *, client: bool) -> int | None:
    ref = optional_ref(message, name, code=INVALID_REFERENCE)
    if ref is None:
        return None
    handle = certificate_handle(ref)
    usable = client_certificate_ok if client else issuer_certificate_ok
    if handle is None or not usable(engine, handle):
        raise MethodError(INVALID_REFERENCE, f"{name} names no usable certificate")
    return handle


def _profile_from(engine: Engine, message: CimObject) -> WifiProfile:
    endpoint = optional_ref(message, "WiFiEndpoint", code=INVALID_REFERENCE)
    if endpoint is None or endpoint.class_name != ENDPOINT_CLASS or selector_text(endpoint, "Name") != ENDPOINT_NAME:
        raise MethodError(INVALID_REFERENCE, f"WiFiEndpoint must name {ENDPOINT_NAME}")
    settings = message.get("WiFiEndpointSettingsInput")
    if not isinstance(settings, CimObject) or settings.class_name != SETTINGS_CLASS:
        raise MethodError(INVALID_PARAMETER, "WiFiEndpointSettingsInput is an embedded CIM_WiFiEndpointSettings")
    name = _text(settings, "ElementName", MAX_NAME)
    ssid = _text(settings, "SSID", MAX_SSID)
    priority = int_param(settings, "Priority", low=1, high=255, code=INVALID_PARAMETER)
    authentication = int_param(settings, "AuthenticationMethod", allowed=ENCRYPTIONS, code=INVALID_PARAMETER)
    encryption = int_param(settings, "EncryptionMethod", allowed=ENCRYPTIONS[authentication], code=INVALID_PARAMETER)
    ieee = message.get("IEEE8021xSettingsInput")
    credentials = None
    if authentication in IEEE8021X_METHODS:
        if not isinstance(ieee, CimObject) or ieee.class_name != IEEE_CLASS:
            raise MethodError(INVALID_PARAMETER, "an 802.1x profile needs IEEE8021xSettingsInput")
        credentials = credentials_from(ieee, {}, _refuse_parameter)
        if credentials.protocol is None:
            raise MethodError(INVALID_PARAMETER, "an 802.1x profile needs an AuthenticationProtocol")
    elif ieee is not None:
        raise MethodError(INVALID_PARAMETER, "802.1x settings go with an 802.1x authentication method only")
    return WifiProfile(name, ssid, priority, authentication, encryption, _secrets(settings, authentication),
                       credentials, _certificate(engine, message, "ClientCredential", client=True),
                       _certificate(engine, message, "CACredential", client=False))


@service.method(CONFIG_CLASS, "AddWiFiSettings", realm=Realm.PT_ADMINISTRATION)
async def add_wifi_settings(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
    engine = ctx.engine
    try:
        profile = _profile_from(engine, message)
        existing = profiles(engine)
        if any(p.name == profile.name for p in existing):
            raise MethodError(INVALID_PARAMETER, f"a profile named {profile.name!r} exists")
        if any(p.priority == profile.priority for p in existing):
            raise MethodError(INVALID_PARAMETER, f"priority {profile.priority} is taken")
        if len(existing) >= MAX_PROFILES:
            raise MethodError(FAILED, f"at most {MAX_PROFILES} profiles")
    except MethodError as refused:  # AddWiFiSettings' own ReturnValue table, not PT_STATUS
        return method_output(CONFIG_CLASS, "AddWiFiSettings", refused.code)
    with engine.store.transaction():
        engine.store.set(PROFILE_PREFIX + profile.name, profile.to_json())
        _audit(ctx, PROFILE_ADDED)
    return method_output(CONFIG_CLASS, "AddWiFiSettings", COMPLETED, WiFiEndpointSettings=profile.settings_epr,
                         IEEE8021xSettings=profile.ieee_epr if profile.ieee8021x is not None else None)


@status_method(service, CONFIG_CLASS, "DeleteAllITProfiles", realm=Realm.PT_ADMINISTRATION)
async def delete_all_it_profiles(ctx: Context, target: CimObject | None, message: CimObject) -> Mapping[str, Any]:
    engine = ctx.engine
    with engine.store.transaction():
        for profile in profiles(engine):
            engine.store.delete(PROFILE_PREFIX + profile.name)
            _audit(ctx, PROFILE_REMOVED)
    return {}


# ---------------------------------------------------------------------------------------------- profile classes


@service.instances(SETTINGS_CLASS, realm=Realm.PT_ADMINISTRATION)
def wifi_settings(engine: Engine) -> Iterable[CimObject]:
    if _nic(engine) is None:
        return []
    return [CimObject.new(SETTINGS_CLASS, AuthenticationMethod=p.authentication, BSSType=INFRASTRUCTURE,
                          ElementName=p.name, EncryptionMethod=p.encryption, InstanceID=SETTINGS_ID.format(p.name),
                          Priority=p.priority, SSID=p.ssid)
            for p in profiles(engine)]


@service.delete(SETTINGS_CLASS)
async def delete_wifi_settings(ctx: Context, current: CimObject) -> None:
    engine = ctx.engine
    profile = next((p for p in profiles(engine) if SETTINGS_ID.format(p.name) == current.get("InstanceID")), None)
    if profile is None:
        raise F.DestinationUnreachable()
    with engine.store.transaction():
        engine.store.delete(PROFILE_PREFIX + profile.name)
        _audit(ctx, PROFILE_REMOVED)


def _with_8021x(engine: Engine) -> list[WifiProfile]:
    return [p for p in profiles(engine) if p.ieee8021x is not None] if _nic(engine) is not None else []


@service.instances(IEEE_CLASS, realm=Realm.PT_ADMINISTRATION)
def wifi_8021x_settings(engine: Engine) -> Iterable[CimObject]:
    out = []
    for p in _with_8021x(engine):
        assert p.ieee8021x is not None
        out.append(CimObject.new(IEEE_CLASS, p.ieee8021x.fields(), ElementName=p.name,
                                 InstanceID=IEEE_ID.format(p.name)))
    return out


@service.instances("CIM_CredentialContext", realm=Realm.PT_ADMINISTRATION)
def wifi_credential_contexts(engine: Engine) -> Iterable[CimObject]:
    return [CimObject.new("CIM_CredentialContext", ElementInContext=epr, ElementProvidingContext=p.ieee_epr)
            for p in _with_8021x(engine)
            for epr in certificate_links(engine, [p.client_certificate, p.ca_certificate])]
