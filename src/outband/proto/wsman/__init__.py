"""WS-Management as Intel AMT speaks it: envelopes, addressing, enumeration, faults (sans-I/O).

Parse with :func:`parse_envelope`, build requests and replies with :mod:`.messages`, serialise with
:meth:`Envelope.to_bytes`.  Instances and method messages are :class:`~outband.proto.cim.model.CimObject`.
"""

from typing import TYPE_CHECKING, Any

from .addressing import EndpointReference, Selector, SelectorSet
from .errors import DecodeError, WsmanError
from .faults import WsmanFault
from .namespaces import Action, class_name_of, resource_uri

if TYPE_CHECKING:  # the envelope layer imports proto.cim, which imports this package: load it lazily
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

_LAZY = frozenset({
    "Body", "Enumerate", "EnumerateResponse", "Envelope", "Header", "Identify", "IdentifyResponse", "ObjectAndEPR",
    "OpaqueBody", "Pull", "PullResponse", "Release", "ResourceCreated", "Style", "parse_envelope",
})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import envelope

        return getattr(envelope, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Action", "Body", "DecodeError", "EndpointReference", "Enumerate", "EnumerateResponse", "Envelope",
    "Header", "Identify", "IdentifyResponse", "ObjectAndEPR", "OpaqueBody", "Pull", "PullResponse", "Release",
    "ResourceCreated", "Selector", "SelectorSet", "Style", "WsmanError", "WsmanFault", "class_name_of",
    "parse_envelope", "resource_uri",
]
