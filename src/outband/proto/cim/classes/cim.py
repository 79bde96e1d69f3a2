"""CIM_ classes (DMTF CIM schema 2.x, as Intel AMT implements it), and the MOF base-class groups AMT_/IPS_ reuse.

The MOF hierarchy is flattened the way a MOF compiler would: each class splats the property groups of its
ancestors (``MANAGED_ELEMENT``, ``ENABLED_LOGICAL_ELEMENT``, ``SERVICE`` ...) and adds its own; a later
definition of a name overrides an earlier one, as a subclass overrides its parent (``Service`` makes ``Name`` a
key; ``AMT_RedirectionService`` gives ``EnabledState`` its own vendor values).  :func:`cim_class` then sorts the
result into the order AMT emits (alphabetical, AMT-PROTOCOLS.md §3.4).

Types follow the DMTF/Intel MOF (cross-checked against Intel's MOF-generated classes in intel/lms and the
Intel AMT SDK class reference); value maps carry the enums a user needs to read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from ..schema import (
    CimClass,
    Method,
    Prop,
    base64,
    boolean,
    datetime,
    real64,
    ref,
    sint16,
    string,
    uint8,
    uint16,
    uint32,
    uint64,
)

# ---------------------------------------------------------------------------------------------- building


def alphabetical(*props: Prop) -> tuple[Prop, ...]:
    """Properties in AMT's emission order: by name in code-point order (``BootMediaIndex`` < ``BootguardStatus``).

    A later definition of the same name replaces an earlier one (a subclass overriding its parent's property).
    """
    by_name: dict[str, Prop] = {}
    for p in props:
        by_name[p.name] = p
    return tuple(sorted(by_name.values(), key=lambda p: p.name))


def _merge_methods(methods: Iterable[Method]) -> tuple[Method, ...]:
    by_name: dict[str, Method] = {}
    for m in methods:
        by_name[m.name] = m
    return tuple(by_name.values())


def cim_class(
    name: str,
    *props: Prop,
    methods: Iterable[Method] = (),
    trailing: tuple[Prop, ...] = (),
    description: str = "",
) -> CimClass:
    """A class whose properties (inherited groups first, then its own) are emitted alphabetically.

    ``trailing`` are properties AMT writes after the sorted ones (IPS_PowerManagementService, §3.4).  Methods
    override by name, like properties.
    """
    return CimClass(name, (*alphabetical(*props), *trailing), _merge_methods(methods), description)


# ---------------------------------------------------------------------------------------------- value maps

DMTF_RETURN: Final[Mapping[int, str]] = {
    0: "Completed with No Error",
    1: "Not Supported",
    2: "Unknown or Unspecified Error",
    3: "Cannot complete within Timeout Period",
    4: "Failed",
    5: "Invalid Parameter",
    6: "In Use",
    4096: "Method Parameters Checked - Job Started",
    4097: "Invalid State Transition",
    4098: "Use of Timeout Parameter Not Supported",
    4099: "Busy",
}
"""ReturnValue of RequestStateChange and RequestPowerStateChange (DSP1027)."""

BOOT_RETURN: Final[Mapping[int, str]] = {
    0: "Completed with No Error",
    1: "Not Supported",
    2: "Unknown/Unspecified Error",
    3: "Busy",
    4: "Invalid Reference",
    5: "Invalid Parameter",
    6: "Access Denied",
    4096: "Method Parameters Checked - Job Started",
}
"""ReturnValue of the boot-control methods (DSP1012)."""

ENABLED_STATE: Final[Mapping[int, str]] = {
    0: "Unknown",
    1: "Other",
    2: "Enabled",
    3: "Disabled",
    4: "Shutting Down",
    5: "Not Applicable",
    6: "Enabled but Offline",
    7: "In Test",
    8: "Deferred",
    9: "Quiesce",
    10: "Starting",
}

REQUESTED_STATE: Final[Mapping[int, str]] = {
    0: "Unknown",
    2: "Enabled",
    3: "Disabled",
    4: "Shut Down",
    5: "No Change",
    6: "Offline",
    7: "Test",
    8: "Deferred",
    9: "Quiesce",
    10: "Reboot",
    11: "Reset",
    12: "Not Applicable",
}

ENABLED_DEFAULT: Final[Mapping[int, str]] = {
    2: "Enabled",
    3: "Disabled",
    5: "Not Applicable",
    6: "Enabled but Offline",
    7: "No Default",
    9: "Quiesce",
}

OPERATIONAL_STATUS: Final[Mapping[int, str]] = {
    0: "Unknown",
    1: "Other",
    2: "OK",
    3: "Degraded",
    4: "Stressed",
    5: "Predictive Failure",
    6: "Error",
    7: "Non-Recoverable Error",
    8: "Starting",
    9: "Stopping",
    10: "Stopped",
    11: "In Service",
    12: "No Contact",
    13: "Lost Communication",
    14: "Aborted",
    15: "Dormant",
    16: "Supporting Entity in Error",
    17: "Completed",
    18: "Power Mode",
}

HEALTH_STATE: Final[Mapping[int, str]] = {
    0: "Unknown",
    5: "OK",
    10: "Degraded/Warning",
    15: "Minor failure",
    20: "Major failure",
    25: "Critical failure",
    30: "Non-recoverable error",
}

POWER_STATE: Final[Mapping[int, str]] = {
    1: "Other",
    2: "On",
    3: "Sleep - Light",
    4: "Sleep - Deep",
    5: "Power Cycle (Off - Soft)",
    6: "Off - Hard",
    7: "Hibernate (Off - Soft)",
    8: "Off - Soft",
    9: "Power Cycle (Off - Hard)",
    10: "Master Bus Reset",
    11: "Diagnostic Interrupt (NMI)",
    12: "Off - Soft Graceful",
    13: "Off - Hard Graceful",
    14: "Master Bus Reset Graceful",
    15: "Power Cycle (Off - Soft Graceful)",
    16: "Power Cycle (Off - Hard Graceful)",
}
"""DSP1027 power states (AMT-PROTOCOLS.md §3.3); out of band AMT performs 2, 5, 8 and 10."""

PACKAGE_TYPE: Final[Mapping[int, str]] = {
    0: "Unknown",
    1: "Other",
    2: "Rack",
    3: "Chassis/Frame",
    4: "Cross Connect/Backplane",
    5: "Container/Frame Slot",
    6: "Power Supply",
    7: "Fan",
    8: "Sensor",
    9: "Module/Card",
    10: "Port/Connector",
    11: "Battery",
    12: "Processor",
    13: "Memory",
    14: "Power Source/Generator",
    15: "Storage Media Package",
    16: "Blade",
    17: "Blade Expansion",
}

INFO_FORMAT: Final[Mapping[int, str]] = {
    1: "Other",
    2: "Host Name",
    3: "IPv4 Address",
    4: "IPv6 Address",
    200: "URL",
    201: "FQDN",
}
"""CIM_RemoteServiceAccessPoint.InfoFormat, the values AMT uses (an MPS is addressed by 3, 4 or 201)."""

# ---------------------------------------------------------------------------------------------- MOF groups

MANAGED_ELEMENT: Final = (string("Caption"), string("Description"), string("ElementName"))

MANAGED_SYSTEM_ELEMENT: Final = (
    *MANAGED_ELEMENT,
    datetime("InstallDate"),
    string("Name"),
    uint16("OperationalStatus", array=True, values=OPERATIONAL_STATUS),
    string("StatusDescriptions", array=True),
    string("Status"),
    uint16("HealthState", values=HEALTH_STATE),
    uint16("CommunicationStatus"),
    uint16("DetailedStatus"),
    uint16("OperatingStatus"),
    uint16("PrimaryStatus"),
)

ENABLED_LOGICAL_ELEMENT: Final = (
    *MANAGED_SYSTEM_ELEMENT,
    uint16("EnabledState", values=ENABLED_STATE),
    string("OtherEnabledState"),
    uint16("RequestedState", values=REQUESTED_STATE),
    uint16("EnabledDefault", values=ENABLED_DEFAULT),
    datetime("TimeOfLastStateChange"),
    uint16("AvailableRequestedStates", array=True, values=REQUESTED_STATE),
    uint16("TransitioningToState", values=REQUESTED_STATE),
)

SERVICE_KEYS: Final = (
    string("CreationClassName", key=True),
    string("Name", key=True),
    string("SystemCreationClassName", key=True),
    string("SystemName", key=True),
)
"""Keys of a Service or ServiceAccessPoint scoped to a System (AMT: ``SystemName=Intel(r) AMT``)."""

SERVICE: Final = (
    *ENABLED_LOGICAL_ELEMENT,
    *SERVICE_KEYS,
    string("PrimaryOwnerName"),
    string("PrimaryOwnerContact"),
    string("StartMode"),
    boolean("Started"),
)

SERVICE_ACCESS_POINT: Final = (*ENABLED_LOGICAL_ELEMENT, *SERVICE_KEYS)

PROTOCOL_ENDPOINT: Final = (
    *SERVICE_ACCESS_POINT,
    string("NameFormat"),
    uint16("ProtocolType"),
    uint16("ProtocolIFType"),
    string("OtherTypeDescription"),
)

LAN_ENDPOINT: Final = (
    *PROTOCOL_ENDPOINT,
    string("LANID"),
    uint16("LANType"),
    string("OtherLANType"),
    string("MACAddress"),
    string("AliasAddresses", array=True),
    string("GroupAddresses", array=True),
    uint32("MaxDataSize"),
)

REMOTE_SERVICE_ACCESS_POINT: Final = (
    *SERVICE_ACCESS_POINT,
    string("AccessInfo"),
    uint16("InfoFormat", values=INFO_FORMAT),
    string("OtherInfoFormatDescription"),
    uint16("AccessContext"),
    string("OtherAccessContext"),
)
"""CIM_RemoteServiceAccessPoint: where a remote service is reached (an MPS, an HTTP proxy)."""

LOGICAL_DEVICE: Final = (
    *ENABLED_LOGICAL_ELEMENT,
    string("CreationClassName", key=True),
    string("DeviceID", key=True),
    string("SystemCreationClassName", key=True),
    string("SystemName", key=True),
    boolean("PowerManagementSupported"),
    uint16("PowerManagementCapabilities", array=True),
    uint16("Availability"),
    uint16("StatusInfo"),
    uint32("LastErrorCode"),
    string("ErrorDescription"),
    boolean("ErrorCleared"),
    string("OtherIdentifyingInfo", array=True),
    uint64("PowerOnHours"),
    uint64("TotalPowerOnHours"),
    string("IdentifyingDescriptions", array=True),
    uint16("AdditionalAvailability", array=True),
    uint64("MaxQuiesceTime"),
)

SETTING_DATA: Final = (*MANAGED_ELEMENT, string("InstanceID", key=True))

CAPABILITIES: Final = SETTING_DATA
"""CIM_Capabilities has the same shape as SettingData: ManagedElement plus an InstanceID key."""

ENABLED_LOGICAL_ELEMENT_CAPABILITIES: Final = (
    *CAPABILITIES,
    boolean("ElementNameEditSupported"),
    uint16("MaxElementNameLen"),
    uint16("RequestedStatesSupported", array=True, values=REQUESTED_STATE),
    string("ElementNameMask"),
)

CREDENTIAL: Final = (*MANAGED_ELEMENT, datetime("Issued"), datetime("Expires"))

LOG: Final = (
    *ENABLED_LOGICAL_ELEMENT,
    uint64("MaxNumberOfRecords"),
    uint64("CurrentNumberOfRecords"),
    uint16("OverwritePolicy", values={0: "Unknown", 2: "Wraps When Full", 7: "Never Overwrites"}),
    uint16("LogState", values={0: "Unknown", 2: "Normal", 3: "Erasing", 4: "Not Applicable"}),
)

PHYSICAL_ELEMENT: Final = (
    *MANAGED_SYSTEM_ELEMENT,
    string("Tag", key=True),
    string("CreationClassName", key=True),
    string("Manufacturer"),
    string("Model"),
    string("SKU"),
    string("SerialNumber"),
    string("Version"),
    string("PartNumber"),
    string("OtherIdentifyingInfo"),
    boolean("PoweredOn"),
    datetime("ManufactureDate"),
    string("VendorEquipmentType"),
    string("UserTracking"),
    boolean("CanBeFRUed"),
)

_REMOVABILITY: Final = (
    uint16("RemovalConditions", values={0: "Unknown", 2: "Not Applicable", 3: "Removable when off",
                                        4: "Removable when on or off"}),
    boolean("Removable"),
    boolean("Replaceable"),
    boolean("HotSwappable"),
)

PHYSICAL_COMPONENT: Final = (*PHYSICAL_ELEMENT, *_REMOVABILITY)

PHYSICAL_PACKAGE: Final = (
    *PHYSICAL_ELEMENT,
    *_REMOVABILITY,
    real64("Height"),
    real64("Depth"),
    real64("Width"),
    real64("Weight"),
    uint16("PackageType", values=PACKAGE_TYPE),
    string("OtherPackageType"),
    string("VendorCompatibilityStrings", array=True),
)

SYSTEM: Final = (
    *ENABLED_LOGICAL_ELEMENT,
    string("CreationClassName", key=True),
    string("Name", key=True),
    string("NameFormat"),
    string("PrimaryOwnerName"),
    string("PrimaryOwnerContact"),
    string("Roles", array=True),
    string("OtherIdentifyingInfo", array=True),
    string("IdentifyingDescriptions", array=True),
)

SOFTWARE_ELEMENT: Final = (
    *MANAGED_SYSTEM_ELEMENT,
    string("Name", key=True),
    string("Version", key=True),
    uint16("SoftwareElementState", key=True,
           values={0: "Deployable", 1: "Installable", 2: "Executable", 3: "Running"}),
    string("SoftwareElementID", key=True),
    uint16("TargetOperatingSystem", key=True),
    string("OtherTargetOS"),
    string("Manufacturer"),
    string("BuildNumber"),
    string("SerialNumber"),
    string("CodeSet"),
    string("IdentificationCode"),
    string("LanguageEdition"),
)

POLICY: Final = (*MANAGED_ELEMENT, string("CommonName"), string("PolicyKeywords", array=True))

IEEE8021X_CREDENTIALS: Final = (
    uint16("AuthenticationProtocol"),
    string("RoamingIdentity"),
    string("ServerCertificateName"),
    uint16("ServerCertificateNameComparison"),
    string("Username"),
    string("Password"),
    string("Domain"),
    base64("ProtectedAccessCredential"),
    string("PACPassword"),
)
"""The 802.1x credential fields of CIM_IEEE8021xSettings (and of AMT_8021XProfile, which repeats them)."""


def dependency(antecedent: str, dependent: str) -> tuple[Prop, Prop]:
    """The two keys of a CIM_Dependency association."""
    return ref("Antecedent", antecedent, key=True), ref("Dependent", dependent, key=True)


def credential_context(in_context: str = "CIM_Credential") -> tuple[Prop, ...]:
    """CIM_CredentialContext: a credential (key) and the element that gives it its context (key)."""
    return (
        ref("ElementInContext", in_context, key=True),
        ref("ElementProvidingContext", "CIM_ManagedElement", key=True),
        uint16("Usage"),
    )


# ---------------------------------------------------------------------------------------------- methods


def request_state_change(states: Mapping[int, str] = REQUESTED_STATE) -> Method:
    """CIM_EnabledLogicalElement.RequestStateChange, with the class's own RequestedState values."""
    return Method(
        "RequestStateChange",
        inputs=(uint16("RequestedState", values=states), datetime("TimeoutPeriod")),
        outputs=(ref("Job", "CIM_ConcreteJob"),),
        returns=DMTF_RETURN,
    )


REQUEST_STATE_CHANGE: Final = request_state_change()


def enabled_logical_element(
    name: str,
    *props: Prop,
    methods: Iterable[Method] = (),
    states: Mapping[int, str] | None = None,
    trailing: tuple[Prop, ...] = (),
    description: str = "",
) -> CimClass:
    """A class derived from CIM_EnabledLogicalElement (inherits RequestStateChange).

    ``states`` are vendor EnabledState/RequestedState values (32768..) the class adds to the DMTF ones; they also
    become values of its RequestStateChange's RequestedState.
    """
    if states:
        props = (
            *props,
            uint16("EnabledState", values={**ENABLED_STATE, **states}),
            uint16("RequestedState", values={**REQUESTED_STATE, **states}),
        )
        methods = (request_state_change({**REQUESTED_STATE, **states}), *methods)
    return cim_class(name, *props, methods=(REQUEST_STATE_CHANGE, *methods), trailing=trailing,
                     description=description)


def power_state_change(name: str, state: Prop) -> Method:
    """A RequestPowerStateChange-shaped method: move a CIM_ComputerSystem to ``state``, optionally later."""
    return Method(
        name,
        inputs=(state, ref("ManagedElement", "CIM_ComputerSystem"), datetime("Time"), datetime("TimeoutPeriod")),
        outputs=(ref("Job", "CIM_ConcreteJob"),),
        returns=DMTF_RETURN,
    )


def service(
    name: str,
    *props: Prop,
    methods: Iterable[Method] = (),
    states: Mapping[int, str] | None = None,
    trailing: tuple[Prop, ...] = (),
    description: str = "",
) -> CimClass:
    """A CIM_Service subclass: the Service properties and keys, plus ``props``."""
    return enabled_logical_element(name, *SERVICE, *props, methods=methods, states=states, trailing=trailing,
                                   description=description)


def setting_data(name: str, *props: Prop, methods: Iterable[Method] = (), description: str = "") -> CimClass:
    """A CIM_SettingData subclass, keyed by InstanceID."""
    return cim_class(name, *SETTING_DATA, *props, methods=methods, description=description)


# ---------------------------------------------------------------------------------------------- classes

_BOOT_OCR_STATES: Final = {
    32768: "Intel One Click Recovery and Intel RPE disabled, other boot options enabled",
    32769: "Intel One Click Recovery enabled, Intel RPE disabled, other boot options enabled",
    32770: "Intel RPE enabled, Intel One Click Recovery disabled, other boot options enabled",
    32771: "Intel One Click Recovery, Intel RPE and all other boot options enabled",
}

_WIFI_PORT_STATES: Final = {3: "Disabled", 32768: "Enabled in S0", 32769: "Enabled in S0, Sx/AC"}

_WIFI_BSS_TYPE: Final = {0: "Unknown", 2: "Independent", 3: "Infrastructure"}
_WIFI_ENCRYPTION: Final = {1: "Other", 2: "WEP", 3: "TKIP", 4: "CCMP", 5: "None"}
_WIFI_AUTHENTICATION: Final = {1: "Other", 2: "Open System", 3: "Shared Key", 4: "WPA PSK", 5: "WPA IEEE 802.1x",
                               6: "WPA2 PSK", 7: "WPA2 IEEE 802.1x", 32768: "WPA3 SAE", 32769: "WPA3 OWE"}

CLASSES: tuple[CimClass, ...] = (
    cim_class(
        "CIM_ServiceAvailableToElement",
        ref("ServiceProvided", "CIM_Service", key=True),
        ref("UserOfService", "CIM_ManagedElement", key=True),
        description="Association: a service and an element that may use it.",
    ),
    cim_class(
        "CIM_AssociatedPowerManagementService",
        ref("ServiceProvided", "CIM_PowerManagementService", key=True),
        ref("UserOfService", "CIM_ManagedElement", key=True),
        uint16("PowerState", values=POWER_STATE, description="The current power state of the host."),
        string("OtherPowerState"),
        uint16("RequestedPowerState", values=POWER_STATE),
        string("OtherRequestedPowerState"),
        datetime("PowerOnTime"),
        uint16("AvailableRequestedPowerStates", array=True, values=POWER_STATE),
        uint16("TransitioningToPowerState", values=POWER_STATE),
        description="Subclass of CIM_ServiceAvailableToElement that carries the host power state; "
        "AMT returns it when CIM_ServiceAvailableToElement is enumerated.",
    ),
    service(
        "CIM_PowerManagementService",
        methods=(power_state_change("RequestPowerStateChange", uint16("PowerState", values=POWER_STATE)),),
    ),
    enabled_logical_element(
        "CIM_ComputerSystem",
        *SYSTEM,
        uint16("Dedicated", array=True),
        string("OtherDedicatedDescriptions", array=True),
        uint16("ResetCapability", values={1: "Other", 2: "Unknown", 3: "Disabled", 4: "Enabled",
                                          5: "Not Implemented"}),
        uint16("PowerManagementCapabilities", array=True),
        description="Name=ManagedSystem is the host, Name=Intel(r) AMT the management engine.",
    ),
    service(
        "CIM_BootService",
        states=_BOOT_OCR_STATES,
        methods=(
            Method(
                "SetBootConfigRole",
                inputs=(
                    ref("BootConfigSetting", "CIM_BootConfigSetting"),
                    uint16("Role", values={1: "Is Next Single Use", 32768: "Is Not Next"}),
                ),
                outputs=(ref("Job", "CIM_ConcreteJob"),),
                returns=BOOT_RETURN,
            ),
        ),
    ),
    setting_data(
        "CIM_BootConfigSetting",
        methods=(
            Method(
                "ChangeBootOrder",
                inputs=(ref("Source", "CIM_BootSourceSetting", array=True),),
                outputs=(ref("Job", "CIM_ConcreteJob"),),
                returns=BOOT_RETURN,
                description="Select the one-shot boot source; an empty input clears it.",
            ),
        ),
    ),
    setting_data(
        "CIM_BootSourceSetting",
        string("StructuredBootString"),
        string("BIOSBootString"),
        string("BootString"),
        uint16("FailThroughSupported", values={0: "Unknown", 1: "Is Supported", 2: "Not Supported"}),
    ),
    cim_class(
        "CIM_ElementSettingData",
        ref("ManagedElement", "CIM_ManagedElement", key=True),
        ref("SettingData", "CIM_SettingData", key=True),
        uint16("IsDefault", values={0: "Unknown", 1: "Is Default", 2: "Is Not Default"}),
        uint16("IsCurrent", values={0: "Unknown", 1: "Is Current", 2: "Is Not Current"}),
        uint16("IsNext", values={0: "Unknown", 1: "Is Next", 2: "Is Not Next", 3: "Is Next For Single Use"}),
    ),
    enabled_logical_element(
        "CIM_KVMRedirectionSAP",
        *SERVICE_ACCESS_POINT,
        uint16("KVMProtocol", values={0: "Unknown", 1: "Other", 2: "Raw", 3: "RDP", 4: "VNC-RFB"}),
        string("OtherKVMProtocol"),
        description="EnabledState 2 enabled, 3 disabled, 6 enabled but offline (KVM on, no session).",
    ),
    cim_class(
        "CIM_SoftwareIdentity",
        *MANAGED_SYSTEM_ELEMENT,
        string("InstanceID", key=True),
        boolean("IsEntity"),
        string("VersionString"),
        uint16("MajorVersion"),
        uint16("MinorVersion"),
        uint16("RevisionNumber"),
        uint16("BuildNumber"),
        uint64("LargeBuildNumber"),
        boolean("IsLargeBuildNumber"),
        string("Manufacturer"),
        datetime("ReleaseDate"),
        string("SerialNumber"),
        uint16("Classifications", array=True),
        string("ClassificationDescriptions", array=True),
        string("TargetTypes", array=True),
        string("TargetOperatingSystems", array=True),
        string("Languages", array=True),
        description="One instance per firmware component; InstanceID=AMT carries the AMT version.",
    ),
    cim_class(
        "CIM_BIOSElement",
        *SOFTWARE_ELEMENT,
        boolean("PrimaryBIOS"),
        datetime("ReleaseDate"),
        string("RegistryURIs", array=True),
        uint64("LoadedStartingAddress"),
        uint64("LoadedEndingAddress"),
        string("LoadUtilityInformation"),
        string("ListOfLanguages", array=True),
        string("CurrentLanguage"),
    ),
    cim_class("CIM_PhysicalPackage", *PHYSICAL_PACKAGE),
    cim_class(
        "CIM_Card",
        *PHYSICAL_PACKAGE,
        boolean("HostingBoard"),
        string("SlotLayout"),
        boolean("RequiresDaughterBoard"),
        boolean("SpecialRequirements"),
        string("RequirementsDescription"),
        sint16("OperatingVoltages", array=True),
        description="The baseboard (PackageType 9).",
    ),
    cim_class(
        "CIM_Chassis",
        *PHYSICAL_PACKAGE,
        boolean("LockPresent"),
        boolean("AudibleAlarm"),
        boolean("VisibleAlarm"),
        uint16("SecurityBreach"),
        string("BreachDescription"),
        boolean("IsLocked"),
        uint16("ServicePhilosophy", array=True),
        string("ServiceDescriptions", array=True),
        string("CableManagementStrategy"),
        uint16("ChassisPackageType"),
        string("ChassisTypeDescription"),
        uint16("ChassisTypes", array=True),
        string("TypeDescriptions", array=True),
        uint16("NumberOfPowerCords"),
        sint16("CurrentRequiredOrProduced"),
        uint16("HeatGeneration"),
        uint16("MultipleSystemSupport"),
        uint16("RackMountable"),
    ),
    cim_class("CIM_Chip", *PHYSICAL_COMPONENT, uint16("FormFactor")),
    cim_class(
        "CIM_PhysicalMemory",
        *PHYSICAL_COMPONENT,
        uint16("FormFactor"),
        uint16("MemoryType"),
        uint32("Speed", description="Access time in ns (0 when IsSpeedInMhz)."),
        uint64("Capacity", description="Bytes."),
        string("BankLabel"),
        uint32("ConfiguredMemoryClockSpeed"),
        boolean("IsSpeedInMhz"),
        uint32("MaxMemorySpeed"),
        uint16("DataWidth"),
        uint16("TotalWidth"),
        uint32("PositionInRow"),
        uint32("InterleavePosition"),
    ),
    enabled_logical_element(
        "CIM_Processor",
        *LOGICAL_DEVICE,
        string("Role"),
        uint16("Family"),
        string("OtherFamilyDescription"),
        uint16("UpgradeMethod"),
        uint32("MaxClockSpeed"),
        uint32("CurrentClockSpeed"),
        uint32("ExternalBusClockSpeed"),
        uint16("DataWidth"),
        uint16("AddressWidth"),
        uint16("LoadPercentage"),
        string("Stepping"),
        string("UniqueID"),
        uint16("CPUStatus", values={0: "Unknown", 1: "CPU Enabled", 2: "CPU Disabled by User",
                                    3: "CPU Disabled By BIOS (POST Error)", 4: "CPU Is Idle", 7: "Other"}),
        uint16("Characteristics", array=True),
        uint16("EnabledProcessorCharacteristics", array=True),
        uint16("NumberOfEnabledCores"),
    ),
    enabled_logical_element(
        "CIM_MediaAccessDevice",
        *LOGICAL_DEVICE,
        uint16("Capabilities", array=True),
        string("CapabilityDescriptions", array=True),
        string("ErrorMethodology"),
        string("CompressionMethod"),
        uint32("NumberOfMediaSupported"),
        uint64("MaxMediaSize", description="Kilobytes."),
        uint64("DefaultBlockSize"),
        uint64("MaxBlockSize"),
        uint64("MinBlockSize"),
        boolean("NeedsCleaning"),
        boolean("MediaIsLocked"),
        uint16("Security"),
        datetime("LastCleaned"),
        uint64("MaxAccessTime"),
        uint32("UncompressedDataRate"),
        uint64("LoadTime"),
        uint64("UnloadTime"),
        uint64("MountCount"),
        datetime("TimeOfLastMount"),
        uint64("TotalMountTime"),
        string("UnitsDescription"),
        uint64("MaxUnitsBeforeCleaning"),
        uint64("UnitsUsed"),
    ),
    enabled_logical_element(
        "CIM_Battery",
        *LOGICAL_DEVICE,
        uint16("BatteryStatus"),
        uint16("Chemistry"),
        uint32("DesignCapacity"),
        uint64("DesignVoltage"),
        uint16("EstimatedChargeRemaining"),
        uint32("EstimatedRunTime"),
        uint32("ExpectedLife"),
        uint32("FullChargeCapacity"),
        uint32("MaxRechargeTime"),
        string("SmartBatteryVersion"),
        uint32("TimeOnBattery"),
        uint32("TimeToFullCharge"),
    ),
    cim_class("CIM_SystemPackaging", *dependency("CIM_PhysicalElement", "CIM_System")),
    cim_class(
        "CIM_ComputerSystemPackage",
        *dependency("CIM_PhysicalPackage", "CIM_ComputerSystem"),
        string("PlatformGUID", description="32 hex digits; links the chassis to the host system."),
    ),
    cim_class("CIM_ConcreteDependency", *dependency("CIM_ManagedElement", "CIM_ManagedElement")),
    cim_class("CIM_CredentialContext", *credential_context()),
    cim_class("CIM_Identity", *MANAGED_ELEMENT, string("InstanceID", key=True), boolean("CurrentlyAuthenticated")),
    cim_class(
        "CIM_Role",
        *MANAGED_ELEMENT,
        string("CreationClassName", key=True),
        string("Name", key=True),
        string("BusinessCategory"),
        string("CommonName"),
        uint16("RoleCharacteristics", array=True, values={2: "Static", 3: "Opaque"}),
    ),
    setting_data("CIM_IEEE8021xSettings", *IEEE8021X_CREDENTIALS, base64("PSK")),
    setting_data(
        "CIM_WiFiEndpointSettings",
        uint8("Priority"),
        string("SSID"),
        uint16("BSSType", values=_WIFI_BSS_TYPE),
        uint16("EncryptionMethod", values=_WIFI_ENCRYPTION),
        string("OtherEncryptionMethod"),
        uint16("AuthenticationMethod", values=_WIFI_AUTHENTICATION),
        string("OtherAuthenticationMethod"),
        uint8("KeyIndex"),
        string("Keys", array=True),
        string("PSKPassPhrase"),
        base64("PSKValue"),
    ),
    enabled_logical_element(
        "CIM_WiFiPort",
        *LOGICAL_DEVICE,
        uint64("Speed"),
        uint64("MaxSpeed"),
        uint64("RequestedSpeed"),
        uint16("UsageRestriction"),
        uint16("PortType"),
        string("OtherPortType"),
        uint16("PortNumber"),
        uint16("LinkTechnology", values={0: "Unknown", 1: "Other", 2: "Ethernet", 11: "Wireless LAN"}),
        string("OtherLinkTechnology"),
        string("OtherNetworkPortType"),
        string("PermanentAddress"),
        string("NetworkAddresses", array=True),
        boolean("FullDuplex"),
        boolean("AutoSense"),
        uint64("SupportedMaximumTransmissionUnit"),
        uint64("ActiveMaximumTransmissionUnit"),
        states=_WIFI_PORT_STATES,
    ),
    enabled_logical_element(
        "CIM_WiFiEndpoint",
        *LAN_ENDPOINT,
        uint16("EncryptionMethod", values=_WIFI_ENCRYPTION),
        string("OtherEncryptionMethod"),
        uint16("AuthenticationMethod", values=_WIFI_AUTHENTICATION),
        string("OtherAuthenticationMethod"),
        uint16("IEEE8021xAuthenticationProtocol"),
        string("AccessPointAddress"),
        uint16("BSSType", values=_WIFI_BSS_TYPE),
        boolean("Associated"),
        description="The wireless endpoint AddWiFiSettings attaches profiles to (Name=WiFi Endpoint 0).",
    ),
    cim_class(
        "CIM_WiFiPortCapabilities",
        *ENABLED_LOGICAL_ELEMENT_CAPABILITIES,
        uint64("RequestedSpeedsSupported", array=True),
        boolean("AutoSenseSpeedConfigurable"),
        boolean("SpeedConfigurable"),
        uint64("PortSpeedsSupported", array=True),
        boolean("NetworkIDsConfigurable"),
        uint16("NetworkIDsFormat"),
        uint16("LinkTechnologiesSupported", array=True),
        uint16("SupportedPortTypes", array=True),
        string("OtherSupportedPortTypes", array=True),
    ),
)
