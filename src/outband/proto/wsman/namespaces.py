"""Namespace URIs, action URIs and resource-URI prefixes of WS-Management as Intel AMT speaks it.

Everything here is a wire constant (AMT-PROTOCOLS.md §2.3-2.5); parsers match on these URIs, never on prefixes.
"""

from typing import Final

SOAP: Final = "http://www.w3.org/2003/05/soap-envelope"
ADDRESSING: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSMAN: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
ENUMERATION: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
TRANSFER: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
EVENTING: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
TRUST: Final = "http://schemas.xmlsoap.org/ws/2005/02/trust"
SECEXT: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
CIMBINDING: Final = "http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd"
WSMID: Final = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
CIM_COMMON: Final = "http://schemas.dmtf.org/wbem/wscim/1/common"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
XSD: Final = "http://www.w3.org/2001/XMLSchema"
XML: Final = "http://www.w3.org/XML/1998/namespace"

ANONYMOUS: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

# Resource URI prefix per class-name prefix (GWM internal/message/constants.go; MCMD CompleteName).
AMT_SCHEMA: Final = "http://intel.com/wbem/wscim/1/amt-schema/1/"
CIM_SCHEMA: Final = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
IPS_SCHEMA: Final = "http://intel.com/wbem/wscim/1/ips-schema/1/"
SCHEMA_BY_PREFIX: Final = {"AMT": AMT_SCHEMA, "CIM": CIM_SCHEMA, "IPS": IPS_SCHEMA}


def resource_uri(class_name: str) -> str:
    """The resource URI of a class (``AMT_GeneralSettings`` -> ``http://intel.com/.../AMT_GeneralSettings``).

    A full URI is returned unchanged, so callers may pass either form.
    """
    if "://" in class_name:
        return class_name
    prefix, _, _ = class_name.partition("_")
    try:
        return SCHEMA_BY_PREFIX[prefix] + class_name
    except KeyError:
        raise ValueError(f"no schema is known for class {class_name!r} (expected AMT_, CIM_ or IPS_)") from None


def class_name_of(uri: str) -> str:
    """The class name a resource URI ends with (the inverse of :func:`resource_uri`)."""
    return uri.rstrip("/").rsplit("/", 1)[-1]


class Action:
    """Action URIs of the intrinsic operations (AMT-PROTOCOLS.md §2.4)."""

    GET: Final = TRANSFER + "/Get"
    GET_RESPONSE: Final = TRANSFER + "/GetResponse"
    PUT: Final = TRANSFER + "/Put"
    PUT_RESPONSE: Final = TRANSFER + "/PutResponse"
    CREATE: Final = TRANSFER + "/Create"
    CREATE_RESPONSE: Final = TRANSFER + "/CreateResponse"
    DELETE: Final = TRANSFER + "/Delete"
    DELETE_RESPONSE: Final = TRANSFER + "/DeleteResponse"
    ENUMERATE: Final = ENUMERATION + "/Enumerate"
    ENUMERATE_RESPONSE: Final = ENUMERATION + "/EnumerateResponse"
    PULL: Final = ENUMERATION + "/Pull"
    PULL_RESPONSE: Final = ENUMERATION + "/PullResponse"
    RELEASE: Final = ENUMERATION + "/Release"
    RELEASE_RESPONSE: Final = ENUMERATION + "/ReleaseResponse"
    SUBSCRIBE: Final = EVENTING + "/Subscribe"
    SUBSCRIBE_RESPONSE: Final = EVENTING + "/SubscribeResponse"
    UNSUBSCRIBE: Final = EVENTING + "/Unsubscribe"
    UNSUBSCRIBE_RESPONSE: Final = EVENTING + "/UnsubscribeResponse"
    ADDRESSING_FAULT: Final = ADDRESSING + "/fault"
    WSMAN_FAULT: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
    ENUMERATION_FAULT: Final = ENUMERATION + "/fault"
    TRANSFER_FAULT: Final = TRANSFER + "/fault"

    @staticmethod
    def method(resource_uri: str, method: str) -> str:
        """The action of a custom method: ``<class URI>/<Method>``."""
        return f"{resource_uri}/{method}"

    @staticmethod
    def response(action: str) -> str:
        """The action a reply carries: the request action plus ``Response``."""
        return action + "Response"


# Enumeration modes of DSP0226 §8.7.
ENUMERATE_EPR: Final = "EnumerateEPR"
ENUMERATE_OBJECT_AND_EPR: Final = "EnumerateObjectAndEPR"
