"""Typed shortcuts for what a console asks every device, each a thin layer over AmtClient's generic calls.

They read and write exactly what the consoles studied do (AMT-PROTOCOLS.md §3.2-3.3), so they work against
real firmware as well as against our engine.
"""

from __future__ import annotations

from typing import Final

from ..aio.errors import BadResponse
from ..proto.cim.model import CimObject
from ..proto.wsman import EndpointReference
from ..proto.wsman.faults import DestinationUnreachable
from .amt import AmtClient

POWER_SERVICE: Final = "CIM_PowerManagementService"
MANAGED_SYSTEM: Final = EndpointReference.to(
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ComputerSystem",
    {"CreationClassName": "CIM_ComputerSystem", "Name": "ManagedSystem"},
)
"""The host computer as AMT names it: the ``ManagedElement`` of every power request."""


async def general_settings(client: AmtClient) -> CimObject:
    """AMT_GeneralSettings: host and domain name, Digest realm, network switches."""
    return await client.get("AMT_GeneralSettings")


async def power_state(client: AmtClient) -> int:
    """The host's CIM PowerState (2 on, 8 off-soft, ...), read where consoles read it: the
    CIM_AssociatedPowerManagementService instance that ties the power service to the host."""
    for association in await client.enumerate("CIM_ServiceAvailableToElement"):
        service = association.get("ServiceProvided")
        if isinstance(service, EndpointReference) and service.class_name == POWER_SERVICE:
            state = association.get("PowerState")
            if isinstance(state, int) and not isinstance(state, bool):
                return state
            raise BadResponse(f"PowerState is {state!r}, not a number", host=client.host)
    raise BadResponse("no association names the power management service", host=client.host)


async def request_power(client: AmtClient, state: int) -> int:
    """Ask for a power transition (2 on, 8 off, 10 reset, ...); returns the method's ReturnValue (0 = accepted)."""
    output = await client.invoke(
        POWER_SERVICE, "RequestPowerStateChange", {"PowerState": state, "ManagedElement": MANAGED_SYSTEM}
    )
    return _return_value(client, output)


async def amt_version(client: AmtClient) -> str:
    """The firmware version (``16.1.30``): CIM_SoftwareIdentity ``AMT`` as MeshCommander reads it, else the
    major.minor that Identify reports without authentication."""
    try:
        identity = await client.get("CIM_SoftwareIdentity", {"InstanceID": "AMT"})
    except DestinationUnreachable:
        identity = None
    version = identity.get("VersionString") if identity is not None else None
    if isinstance(version, str) and version:
        return version
    return (await client.identify()).product_version.removeprefix("AMT").strip()


def _return_value(client: AmtClient, output: CimObject) -> int:
    value = output.get("ReturnValue")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise BadResponse(f"{output.element} carries ReturnValue {value!r}, not a number", host=client.host)
