"""Shapes several service modules share: AMT's scoped service instances and per-engine runtime state.

Every AMT service (AMT_AuthorizationService, IPS_OptInService, AMT_RedirectionService...) is an instance
scoped to the ME's own CIM_ComputerSystem with the same key and naming conventions (AMT-PROTOCOLS.md §3.1;
FX ``amt/authorization/get.xml``, ``ips/optin/get.xml``), so they are built in one place.

Runtime state is what AMT keeps in RAM and loses on an ME reset (open redirection sessions, the secret behind a
displayed consent code): it lives beside the engine, never in the state store, and disappears with it.
"""

from __future__ import annotations

from typing import Any, Final

from ...proto.cim.model import CimObject
from ...proto.wsman.namespaces import resource_uri
from .runtimestate import runtime

ME_SYSTEM_NAME: Final = "Intel(r) AMT"
HOST_SYSTEM_NAME: Final = "ManagedSystem"

__all__ = ["HOST_SYSTEM_NAME", "ME_SYSTEM_NAME", "me_service", "method_output", "runtime"]


def me_service(class_name: str, name: str, /, **properties: Any) -> CimObject:
    """An AMT service instance: ``Name`` = ``ElementName`` = ``name``, scoped to the ME system."""
    return CimObject.new(
        class_name,
        {
            "CreationClassName": class_name,
            "ElementName": name,
            "Name": name,
            "SystemCreationClassName": "CIM_ComputerSystem",
            "SystemName": ME_SYSTEM_NAME,
            **properties,
        },
    )


def method_output(class_name: str, method: str, return_value: int, /, **outputs: Any) -> CimObject:
    """``<method>_OUTPUT`` with ``outputs`` in the catalog's parameter order and ReturnValue last.

    Outputs that are None are left out, as AMT leaves them out of a failed call's reply.
    """
    out = CimObject(f"{method}_OUTPUT", resource_uri(class_name))
    for name, value in outputs.items():
        if value is not None:
            out[name] = value
    out["ReturnValue"] = int(return_value)
    return out
