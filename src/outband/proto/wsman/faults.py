"""SOAP faults as typed exceptions that render back to the XML they came from.

A fault is both an error we raise (the engine raises ``DestinationUnreachable`` when a selector matches
nothing; the client raises whatever the device sent) and a message on the wire.  Each subclass fixes the SOAP
code, the subcode QName, the reason text and the header Action that AMT (or DSP0226, where no capture exists)
uses for it (AMT-PROTOCOLS.md §2.8); :func:`fault_class_for` maps a received subcode back to its subclass, so
``except AccessDenied`` works on the client side too.

::

    WsmanFault
    ├── DestinationUnreachable      selector matches no instance
    ├── ActionNotSupported          unknown action for this resource
    ├── AccessDenied                the user lacks the realm, or user consent is missing
    ├── AlreadyExists               duplicate Create
    ├── InvalidRepresentation       the body is not a valid instance or method input
    ├── InvalidParameter            a parameter value the service refuses (e.g. port 5900 without a password)
    ├── QuotaLimit                  e.g. more than 5 alarm clocks
    ├── InternalError               an intrinsic operation failed inside AMT (detail ``AMT-STATUS n``)
    ├── InvalidSelectors            missing/extra/mistyped selectors
    ├── TimedOut                    OperationTimeout elapsed
    ├── EncodingLimit               envelope too large or nested too deep
    ├── SchemaValidationError       the envelope is not well formed WS-MAN
    ├── InvalidMessageInformationHeader
    ├── UnsupportedFeature          e.g. fragment transfer, OptionSet
    ├── MustUnderstand              a mustUnderstand header we do not implement
    └── InvalidEnumerationContext   unknown, expired or released enumeration context
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from .errors import WsmanError
from .namespaces import ADDRESSING, ENUMERATION, SOAP, TRANSFER, WSMAN, Action

FAULT_DETAIL: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"


@dataclass(frozen=True, slots=True)
class QName:
    ns: str
    local: str

    def __str__(self) -> str:
        return f"{{{self.ns}}}{self.local}"


class WsmanFault(WsmanError):
    """A SOAP fault.

    ``detail`` is a FaultDetail URI (``.../faultDetail/MissingValues``) or free text (AMT's ``AMT-STATUS 2``);
    ``detail_xml`` keeps any other Detail content verbatim.  ``http_status`` is what the HTTP layer answers
    with: AMT sends every SOAP fault as 400 Bad Request (AMT-PROTOCOLS.md §2.1).
    """

    code: ClassVar[str] = "Receiver"
    subcode_ns: ClassVar[str] = WSMAN
    subcode_local: ClassVar[str] = ""
    default_reason: ClassVar[str] = "The service cannot comply with the request."
    action: ClassVar[str] = Action.WSMAN_FAULT
    http_status: ClassVar[int] = 400

    def __init__(
        self,
        reason: str | None = None,
        *,
        detail: str | None = None,
        detail_xml: str | None = None,
        code: str | None = None,
        subcode: QName | None = None,
        action: str | None = None,
    ) -> None:
        self.reason = reason if reason is not None else self.default_reason
        self.detail = detail
        self.detail_xml = detail_xml
        self.fault_code = code or self.code
        self.subcode = subcode or (QName(self.subcode_ns, self.subcode_local) if self.subcode_local else QName("", ""))
        self.fault_action = action or self.action
        super().__init__(self.describe())

    def describe(self) -> str:
        text = f"{self.subcode.local or self.fault_code}: {self.reason}"
        if self.detail:
            text += f" ({self.detail.removeprefix(FAULT_DETAIL)})"
        return text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WsmanFault):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[object, ...]:
        return (self.fault_code, self.subcode, self.reason, self.detail, self.detail_xml, self.fault_action)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, detail={self.detail!r})"

    def to_json(self) -> dict[str, object]:
        return {
            "fault": self.subcode.local or self.fault_code,
            "code": self.fault_code,
            "subcode": str(self.subcode),
            "reason": self.reason,
            "detail": self.detail,
            "action": self.fault_action,
        }


class DestinationUnreachable(WsmanFault):
    code = "Sender"
    subcode_ns = ADDRESSING
    subcode_local = "DestinationUnreachable"
    default_reason = "No route can be determined to reach the destination role defined by the WSAddressing To."
    action = Action.ADDRESSING_FAULT


class ActionNotSupported(WsmanFault):
    code = "Sender"
    subcode_ns = ADDRESSING
    subcode_local = "ActionNotSupported"
    default_reason = "The action is not supported by the service."
    action = Action.ADDRESSING_FAULT


class AccessDenied(WsmanFault):
    code = "Sender"
    subcode_local = "AccessDenied"
    default_reason = "The sender was not authorized to access the resource."


class AlreadyExists(WsmanFault):
    code = "Sender"
    subcode_local = "AlreadyExists"
    default_reason = "The sender attempted to create a resource which already exists."


class InvalidRepresentation(WsmanFault):
    code = "Sender"
    subcode_ns = TRANSFER
    subcode_local = "InvalidRepresentation"
    default_reason = "The XML content is not valid."


class InvalidParameter(WsmanFault):
    code = "Sender"
    subcode_local = "InvalidParameter"
    default_reason = "An operation parameter is not valid."


class QuotaLimit(WsmanFault):
    code = "Sender"
    subcode_local = "QuotaLimit"
    default_reason = "The service is busy servicing other requests."


class InternalError(WsmanFault):
    subcode_local = "InternalError"
    default_reason = "The service cannot comply with the request due to internal processing errors."


class InvalidSelectors(WsmanFault):
    code = "Sender"
    subcode_local = "InvalidSelectors"
    default_reason = "The Selectors for the resource are not valid."


class TimedOut(WsmanFault):
    subcode_local = "TimedOut"
    default_reason = "The operation has timed out."


class EncodingLimit(WsmanFault):
    code = "Sender"
    subcode_local = "EncodingLimit"
    default_reason = (
        "An internal encoding limit was exceeded in a request or would be violated if the message were processed."
    )


class SchemaValidationError(WsmanFault):
    code = "Sender"
    subcode_local = "SchemaValidationError"
    default_reason = "The supplied SOAP violates the corresponding XML Schema definition."


class InvalidMessageInformationHeader(WsmanFault):
    code = "Sender"
    subcode_ns = ADDRESSING
    subcode_local = "InvalidMessageInformationHeader"
    default_reason = "A message information header is not valid and the message cannot be processed."
    action = Action.ADDRESSING_FAULT


class UnsupportedFeature(WsmanFault):
    code = "Sender"
    subcode_local = "UnsupportedFeature"
    default_reason = "The specified feature is not supported."


class MustUnderstand(WsmanFault):
    code = "MustUnderstand"
    subcode_ns = ""
    subcode_local = ""
    default_reason = (
        "The WS-Management service cannot process a SOAP header in the request that is marked as "
        "mustUnderstand by the client."
    )
    action = Action.ADDRESSING_FAULT


class InvalidEnumerationContext(WsmanFault):
    subcode_ns = ENUMERATION
    subcode_local = "InvalidEnumerationContext"
    default_reason = "The supplied enumeration context is invalid."
    action = Action.ENUMERATION_FAULT


_REGISTRY: Final[dict[QName, type[WsmanFault]]] = {
    QName(cls.subcode_ns, cls.subcode_local): cls
    for cls in (
        DestinationUnreachable, ActionNotSupported, AccessDenied, AlreadyExists, InvalidRepresentation,
        InvalidParameter,
        QuotaLimit, InternalError, InvalidSelectors, TimedOut, EncodingLimit, SchemaValidationError,
        InvalidMessageInformationHeader, UnsupportedFeature, InvalidEnumerationContext,
    )
}


def fault_class_for(code: QName, subcode: QName | None) -> type[WsmanFault]:
    """The most specific fault class for a received code/subcode."""
    if subcode is not None and subcode in _REGISTRY:
        return _REGISTRY[subcode]
    if code == QName(SOAP, "MustUnderstand"):
        return MustUnderstand
    return WsmanFault


def detail_uri(name: str) -> str:
    """``MissingValues`` -> ``http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MissingValues``."""
    return FAULT_DETAIL + name
