"""WS-Management as Intel AMT speaks it: envelopes, addressing, enumeration, faults (sans-I/O).

Parse with :func:`parse_envelope`, build requests and replies with :mod:`.messages`, serialise with
:meth:`Envelope.to_bytes`.  Instances and method messages are :class:`~outband.proto.cim.model.CimObject`.
"""

from .addressing import EndpointReference, Selector, SelectorSet
from .envelope import (
    Body,
    Enumerate,
    EnumerateResponse,
    Envelope,
    Header,
    Identify,
    IdentifyResponse,
    ObjectAndEPR,
    OpaqueBody,
    Pull,
    PullResponse,
    Release,
    ResourceCreated,
    Style,
    parse_envelope,
)
from .errors import DecodeError, WsmanError
from .faults import WsmanFault
from .namespaces import Action, class_name_of, resource_uri

__all__ = [
    "Action", "Body", "DecodeError", "EndpointReference", "Enumerate", "EnumerateResponse", "Envelope",
    "Header", "Identify", "IdentifyResponse", "ObjectAndEPR", "OpaqueBody", "Pull", "PullResponse", "Release",
    "ResourceCreated", "Selector", "SelectorSet", "Style", "WsmanError", "WsmanFault", "class_name_of",
    "parse_envelope", "resource_uri",
]
