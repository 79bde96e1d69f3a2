"""IPS_ classes (Intel platform schema, ``http://intel.com/wbem/wscim/1/ips-schema/1/``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ..schema import CimClass, Method, Prop, base64, boolean, datetime, ref, string, uint8, uint16, uint32
from .amt import pt_method
from .cim import (
    IEEE8021X_CREDENTIALS,
    INFO_FORMAT,
    MANAGED_ELEMENT,
    REMOTE_SERVICE_ACCESS_POINT,
    cim_class,
    credential_context,
    enabled_logical_element,
    power_state_change,
    service,
    setting_data,
)

# ---------------------------------------------------------------------------------------------- value maps

OPT_IN_RETURN: Final[Mapping[int, str]] = {
    0: "Success",
    1: "Internal Error",
    2: "Invalid State",
    3: "Blocked",
    4: "Failed FFS",
}
"""IPS_OptInService methods; Blocked is the denial-of-service back-off after wrong codes."""

HOST_SETUP_RETURN: Final[Mapping[int, str]] = {
    0: "Success",
    1: "Internal Error",
    2: "Invalid State",
    3: "Invalid Param",
    4: "Method Disabled",
    5: "Auth Failed",
    6: "Flash Write Limit Exceeded",
}
"""IPS_HostBasedSetupService methods (AMT-PROTOCOLS.md §3.3)."""

_CONTROL_MODE: Final = {0: "Not provisioned", 1: "Client", 2: "Admin"}
_PASS_ENCRYPTION: Final = {0: "None", 1: "Other", 2: "HTTP Digest MD5(A1)"}
_SIGNING_ALGORITHM: Final = {0: "None", 1: "Other", 2: "RSA_SHA2_256"}
_OS_POWER_SAVING_STATE: Final = uint16(
    "OSPowerSavingState", values={0: "Unknown", 1: "Unsupported", 2: "Full Power", 3: "OS Power Saving"}
)


def _setup_method(name: str, *inputs: Prop) -> Method:
    return Method(name, inputs, returns=HOST_SETUP_RETURN)


def _opt_in_method(name: str, *inputs: Prop) -> Method:
    return Method(name, inputs, returns=OPT_IN_RETURN)


# ---------------------------------------------------------------------------------------------- classes

CLASSES: tuple[CimClass, ...] = (
    service(
        "IPS_HostBasedSetupService",
        uint8("CurrentControlMode", values=_CONTROL_MODE),
        uint8("AllowedControlModes", array=True, values=_CONTROL_MODE),
        base64("ConfigurationNonce", description="20 bytes, signed in AdminSetup."),
        uint8("CertChainStatus", values={0: "Chain Not Started", 1: "Chain In Progress", 2: "Chain Complete"}),
        methods=(
            _setup_method(
                "Setup",
                uint16("NetAdminPassEncryptionType", values=_PASS_ENCRYPTION),
                string("NetworkAdminPassword", description="Hex MD5 of admin:DigestRealm:password."),
                base64("McNonce"),
                base64("Certificate"),
                uint16("SigningAlgorithm", values=_SIGNING_ALGORITHM),
                base64("DigitalSignature"),
            ),
            _setup_method(
                "AdminSetup",
                uint16("NetAdminPassEncryptionType", values=_PASS_ENCRYPTION),
                string("NetworkAdminPassword"),
                base64("McNonce"),
                uint16("SigningAlgorithm", values=_SIGNING_ALGORITHM),
                base64("DigitalSignature"),
            ),
            _setup_method(
                "AddNextCertInChain",
                base64("NextCertificate"),
                boolean("IsLeafCertificate"),
                boolean("IsRootCertificate"),
            ),
            _setup_method(
                "UpgradeClientToAdmin",
                base64("McNonce"),
                uint16("SigningAlgorithm", values=_SIGNING_ALGORITHM),
                base64("DigitalSignature"),
            ),
            _setup_method("DisableClientControlMode"),
        ),
    ),
    service(
        "IPS_OptInService",
        uint32("OptInRequired", values={0: "None", 1: "KVM", 4294967295: "All"}),
        uint8("OptInState", values={0: "Not Started", 1: "Requested", 2: "Displayed", 3: "Received",
                                    4: "In Session"}),
        uint8("CanModifyOptInPolicy", values={0: "False", 1: "True"}),
        uint32("OptInCodeTimeout", description="Seconds."),
        uint16("OptInDisplayTimeout", description="Seconds."),
        methods=(
            _opt_in_method("StartOptIn"),
            _opt_in_method("CancelOptIn"),
            _opt_in_method("SendOptInCode", uint32("OptInCode")),
        ),
    ),
    service(
        "IPS_PowerManagementService",
        methods=(power_state_change("RequestOSPowerSavingStateChange", _OS_POWER_SAVING_STATE),),
        # Real firmware writes this class's own property after the inherited, sorted ones (§3.4).
        trailing=(_OS_POWER_SAVING_STATE,),
    ),
    setting_data(
        "IPS_KVMRedirectionSettingData",
        boolean("EnabledByMEBx"),
        boolean("Is5900PortEnabled"),
        boolean("OptInPolicy", description="Whether KVM sessions need user consent."),
        uint16("OptInPolicyTimeout", description="Seconds."),
        uint16("SessionTimeout", description="Minutes."),
        string("RFBPassword", description="Write-only: reads back empty."),
        uint8("DefaultScreen"),
        uint8("InitialDecimationModeForLowRes"),
        boolean("GrayscalePixelFormatSupported"),
        boolean("ZlibControlSupported"),
        boolean("DoubleBufferEnabled"),
        boolean("DoubleBufferActive"),
        boolean("BackToBackFbMode"),
        methods=(
            pt_method("TerminateSession"),
            pt_method("DataChannelRead", outputs=(string("DataMessage"),)),
            pt_method("DataChannelWrite", (string("DataMessage"),)),
        ),
    ),
    service(
        "IPS_ScreenConfigurationService",
        uint16("CurrentState"),
        uint16("RemainingConsecutiveRebootsNum"),
        methods=(pt_method("SetSessionState", (uint8("SessionState"), uint8("ConsecutiveRebootsNum"))),),
    ),
    setting_data(
        "IPS_IPv6PortSettings",
        uint32("InterfaceIDType", values={0: "Randomized ID", 1: "Intel ID", 2: "Manual ID"}),
        string("ManualInterfaceID"),
        string("IPv6Address"),
        string("DefaultRouter"),
        string("PrimaryDNS"),
        string("SecondaryDNS"),
        string("CurrentAddressInfo", array=True),
        string("CurrentDefaultRouter"),
        string("CurrentPrimaryDNS"),
        string("CurrentSecondaryDNS"),
    ),
    cim_class(
        "IPS_AlarmClockOccurrence",
        *MANAGED_ELEMENT,
        string("InstanceID", key=True),
        datetime("StartTime"),
        datetime("Interval", description="An interval (xs:duration, e.g. P1DT23H59M)."),
        boolean("DeleteOnCompletion"),
        description="One alarm of AMT_AlarmClockService; created by AddAlarm, removed by Transfer Delete.",
    ),
    setting_data(
        "IPS_IEEE8021xSettings",
        *IEEE8021X_CREDENTIALS,
        base64("PSK"),
        uint32("Enabled", values={2: "Enabled", 3: "Disabled"}),
        boolean("AvailableInS0"),
        uint32("PxeTimeout", description="Seconds."),
        methods=(
            pt_method("SetCertificates", (ref("ServerCertificateIssuer", "AMT_PublicKeyCertificate"),
                                          ref("ClientCertificate", "AMT_PublicKeyCertificate"))),
        ),
    ),
    cim_class("IPS_8021xCredentialContext", *credential_context("AMT_PublicKeyCertificate")),
    service(
        "IPS_HTTPProxyService",
        boolean("SyncEnabled", description="Whether the host may synchronise its proxies into AMT."),
        methods=(
            pt_method(
                "AddProxyAccessPoint",
                (string("AccessInfo"), uint16("InfoFormat", values=INFO_FORMAT), uint16("Port"),
                 string("NetworkDnsSuffix")),
                (ref("ProxyAccessPoint", "IPS_HTTPProxyAccessPoint"),),
            ),
        ),
    ),
    enabled_logical_element(
        "IPS_HTTPProxyAccessPoint",
        *REMOTE_SERVICE_ACCESS_POINT,
        uint8("Type", values={0: "IT", 1: "Proxy sync"}, description="Who added the proxy."),
        uint16("Port"),
        string("NetworkDnsSuffix", description="The network (DNS suffix) on which this proxy is used."),
        uint32("Priority"),
        description="An HTTP proxy AMT tunnels CIRA through on one network; removed with Transfer Delete.",
    ),
)
