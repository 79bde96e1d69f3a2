"""The device SDK: :class:`AmtClient` speaks to one AMT device; :mod:`.services` holds typed shortcuts.

Errors: transport failures are :class:`~outband.aio.errors.TransportError` subclasses (re-exported here);
SOAP faults are :class:`~outband.proto.wsman.WsmanFault` subclasses.
"""

from ..aio.errors import AuthenticationError, BadResponse, ConnectError, RequestTimeout, TransportError
from ..proto.cim.model import key_selectors
from ..proto.wsman import WsmanFault
from . import services
from .amt import AmtClient, Selectors, Target

__all__ = [
    "AmtClient", "AuthenticationError", "BadResponse", "ConnectError", "RequestTimeout", "Selectors", "Target",
    "TransportError", "WsmanFault", "key_selectors", "services",
]
