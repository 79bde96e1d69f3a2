"""SOAP 1.2 envelopes of WS-Management: parsing and building, both sides.

An :class:`Envelope` is a :class:`Header` plus one body, which is one of the message types below or a
:class:`~outband.proto.cim.model.CimObject` (the instance of a Get/Put/Create, or a method's ``_INPUT`` /
``_OUTPUT``).  :func:`parse_envelope` takes untrusted bytes (hardened parser, :mod:`.xml`) and returns one;
:meth:`Envelope.to_bytes` writes one in either of two styles:

* ``Style.RESPONSE`` is how AMT answers (AMT-PROTOCOLS.md §2.4): prefixes ``a``..``f`` fixed on the root, then
  ``g``, ``h``, ``i`` for the class, enumeration and CIM-common namespaces; Action marked mustUnderstand.
* ``Style.REQUEST`` is how consoles ask (GWM/MCMD shape, §2.3): ``s``/``a``/``w`` and ``h`` for the class.

Parsing never depends on prefixes.  Every element of the body is kept (typed where the catalog allows, verbatim
otherwise), so a parsed envelope's body re-serialises to the same infoset.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from ..cim.model import CimObject, XmlFragment, lazy_object, write_object
from .addressing import (
    EndpointReference,
    SelectorSet,
    parse_epr,
    parse_selector_set,
    write_epr_content,
    write_selector_set,
)
from .errors import DecodeError
from .faults import QName, WsmanFault, fault_class_for
from .namespaces import (
    ADDRESSING,
    ANONYMOUS,
    CIM_COMMON,
    CIMBINDING,
    ENUMERATION,
    EVENTING,
    SECEXT,
    SOAP,
    TRANSFER,
    TRUST,
    WSMAN,
    WSMID,
    XML,
    XSD,
    XSI,
)
from .xml import MAX_ENVELOPE_BYTES, XmlWriter, check_container, leaf_text, parse, split, text_of, verbatim

# ---------------------------------------------------------------------------------------------- bodies


@dataclass(slots=True)
class Enumerate:
    """An Enumerate request.  ``mode`` is ``EnumerateEPR``/``EnumerateObjectAndEPR`` (DSP0226 §8.7) or None."""

    max_elements: int | None = None
    optimize: bool = False
    mode: str | None = None
    filter_xml: str | None = None


@dataclass(slots=True)
class ObjectAndEPR:
    """One ``wsman:Item`` of an EnumerateObjectAndEPR enumeration."""

    obj: CimObject
    epr: EndpointReference


Item = CimObject | EndpointReference | ObjectAndEPR


@dataclass(slots=True)
class EnumerateResponse:
    context: str | None
    items: list[Item] = field(default_factory=list)
    end_of_sequence: bool = False
    """Set when the items came back optimised (DSP0226 §8.2.3) and there are no more."""


@dataclass(slots=True)
class Pull:
    context: str
    max_elements: int | None = None
    max_characters: int | None = None


@dataclass(slots=True)
class PullResponse:
    """Items of one Pull.  A context means "pull again"; ``end_of_sequence`` is authoritative when both appear."""

    items: list[Item] = field(default_factory=list)
    context: str | None = None
    end_of_sequence: bool = False
    items_element: bool = True
    """Whether the Items element is there even when empty (AMT always writes it; a peer may leave it out)."""


@dataclass(slots=True)
class Release:
    context: str


@dataclass(slots=True)
class ResourceCreated:
    epr: EndpointReference


@dataclass(slots=True)
class Identify:
    """``wsmid:Identify``: the one request AMT answers without authentication."""


@dataclass(slots=True)
class IdentifyResponse:
    protocol_version: str = WSMAN
    product_vendor: str = "Intel Corporation"
    product_version: str = ""
    dash_version: str | None = None
    security_profiles: tuple[str, ...] = ()


@dataclass(slots=True)
class OpaqueBody:
    """A body element this layer does not model (WS-Eventing Subscribe, ...), kept verbatim."""

    xml: str


Body = (
    CimObject | Enumerate | EnumerateResponse | Pull | PullResponse | Release | ResourceCreated | Identify
    | IdentifyResponse | WsmanFault | OpaqueBody | None
)

DASH: Final = "http://schemas.dmtf.org/wbem/dash/1/dash.xsd"

# ---------------------------------------------------------------------------------------------- header


@dataclass(frozen=True, slots=True)
class ExtraHeader:
    """A header element this layer does not interpret; servers must fault on it when ``must_understand``."""

    ns: str | None
    local: str
    must_understand: bool
    xml: str


_NO_SELECTORS: Final = SelectorSet()
"""Immutable, so one shared empty set serves every header that has none."""


@dataclass(slots=True)
class Header:
    action: str = ""
    resource_uri: str | None = None
    message_id: str | None = None
    to: str | None = None
    relates_to: str | None = None
    reply_to: str | None = None
    selectors: SelectorSet = _NO_SELECTORS
    operation_timeout: str | None = None
    max_envelope_size: int | None = None
    locale: str | None = None
    option_set: str | None = None
    """Verbatim ``wsman:OptionSet`` (AMT does not support option sets; servers fault on them)."""
    extra: tuple[ExtraHeader, ...] = ()


@dataclass(slots=True)
class Envelope:
    header: Header
    body: Body = None

    def to_bytes(self, style: Style | None = None) -> bytes:
        """Serialise; the default style is RESPONSE when the header relates to a request, else REQUEST."""
        if style is None:
            style = Style.RESPONSE if self.header.relates_to is not None else Style.REQUEST
        return _write(self, style).encode("utf-8")

    @property
    def fault(self) -> WsmanFault | None:
        return self.body if isinstance(self.body, WsmanFault) else None


class Style(enum.Enum):
    REQUEST = "request"
    RESPONSE = "response"


# ---------------------------------------------------------------------------------------------- parsing

_ENVELOPE: Final = f"{{{SOAP}}}Envelope"
_HEADER: Final = f"{{{SOAP}}}Header"
_BODY: Final = f"{{{SOAP}}}Body"
_MUST_UNDERSTAND: Final = f"{{{SOAP}}}mustUnderstand"
_EPR: Final = f"{{{ADDRESSING}}}EndpointReference"
_WSMAN_ITEM: Final = f"{{{WSMAN}}}Item"


def parse_envelope(data: bytes, *, max_bytes: int = MAX_ENVELOPE_BYTES) -> Envelope:
    """Parse an untrusted WS-MAN envelope; raise :class:`DecodeError` for anything unacceptable."""
    root = parse(data, max_bytes=max_bytes)
    return envelope_from_element(root)


def envelope_from_element(root: etree._Element) -> Envelope:
    if root.tag != _ENVELOPE:
        raise DecodeError(f"root element is {split(root.tag)[1]!r}, not a SOAP 1.2 Envelope")
    header_el = body_el = None
    for child in root:
        if child.tag == _HEADER and header_el is None:
            header_el = child
        elif child.tag == _BODY and body_el is None:
            body_el = child
        else:
            raise DecodeError(f"unexpected element {split(child.tag)[1]!r} in the Envelope")
    if body_el is None:
        raise DecodeError("SOAP Envelope without a Body")
    header = _parse_header(header_el) if header_el is not None else Header()
    body = _parse_body(body_el)
    if isinstance(body, WsmanFault) and header.action:
        body.fault_action = header.action  # the action travels in the header, not in the Fault element
    return Envelope(header, body)


_TEXT_HEADERS: Final = {
    f"{{{ADDRESSING}}}Action": "action",
    f"{{{ADDRESSING}}}To": "to",
    f"{{{ADDRESSING}}}MessageID": "message_id",
    f"{{{ADDRESSING}}}RelatesTo": "relates_to",
    f"{{{WSMAN}}}ResourceURI": "resource_uri",
    f"{{{WSMAN}}}OperationTimeout": "operation_timeout",
}
"""Headers that are just their text, by tag -> Header attribute: one lookup instead of a chain of tests."""


def _parse_header(el: etree._Element) -> Header:
    h = Header()
    extra: list[ExtraHeader] = []
    for child in el[:]:  # a slice builds the list in C: cheaper than iterating
        attribute = _TEXT_HEADERS.get(child.tag)  # type: ignore[arg-type]  # tags are str (xml.parse)
        if attribute is not None:
            setattr(h, attribute, text_of(child))
            continue
        ns, local = split(child.tag)
        if ns == ADDRESSING:
            if local == "ReplyTo":
                address = child.find(f"{{{ADDRESSING}}}Address")
                h.reply_to = text_of(address) if address is not None else ANONYMOUS
                continue
        elif ns == WSMAN:
            if local == "SelectorSet":
                h.selectors = parse_selector_set(child)
                continue
            if local == "MaxEnvelopeSize":
                try:
                    h.max_envelope_size = int(text_of(child))
                except ValueError:
                    raise DecodeError("MaxEnvelopeSize is not an integer") from None
                continue
            if local == "Locale":
                h.locale = child.get(f"{{{XML}}}lang") or text_of(child)
                continue
            if local == "OptionSet":
                h.option_set = verbatim(child)
                continue
        must = child.get(_MUST_UNDERSTAND) in ("true", "1")
        extra.append(ExtraHeader(ns, local, must, verbatim(child)))
    h.extra = tuple(extra)
    return h


def _parse_body(el: etree._Element) -> Body:
    check_container(el, "the SOAP Body")
    kids = list(el)
    if not kids:
        return None
    if len(kids) > 1:
        raise DecodeError(f"SOAP Body with {len(kids)} elements; WS-Management sends one")
    child = kids[0]
    ns, local = split(child.tag)
    if ns == ENUMERATION:
        parser = _ENUMERATION_BODIES.get(local)
        if parser is None:
            raise DecodeError(f"unknown enumeration message {local!r}")
        check_container(child, local)
        return parser(child)
    if ns == SOAP and local == "Fault":
        return parse_fault(child)
    if ns == TRANSFER and local == "ResourceCreated":
        if child.attrib:
            raise DecodeError("unexpected attribute on ResourceCreated")
        return ResourceCreated(parse_epr(child))
    if ns == WSMID:
        if local == "Identify":
            _empty(child, "Identify")
            return Identify()
        if local == "IdentifyResponse":
            return _parse_identify_response(child)
    if ns is None or ns in (EVENTING, SOAP, ADDRESSING, WSMAN, WSMID, TRANSFER) or (len(child) == 0 and text_of(child)):
        # Not an object: a message of a protocol we do not model, or a bare value (a synthetic capture has
        # ``<g:ReturnValue>0</g:ReturnValue>`` as its whole body).  Kept verbatim.
        return OpaqueBody(verbatim(child))
    return lazy_object(child)


def _int_of(el: etree._Element, what: str) -> int:
    text = leaf_text(el, what)
    if not text.isdigit() or len(text) > 12:
        raise DecodeError(f"{what} must be a non-negative integer, got {text[:40]!r}")
    return int(text)


def _empty(el: etree._Element, what: str) -> None:
    """A flag element (EndOfSequence, OptimizeEnumeration, Identify): anything inside it would be lost."""
    if leaf_text(el, what):
        raise DecodeError(f"{what} must be empty")


def _once(seen: set[str], local: str, where: str) -> None:
    if local in seen:
        raise DecodeError(f"{where} carries {local} twice")
    seen.add(local)


def _parse_enumerate(el: etree._Element) -> Enumerate:
    req = Enumerate()
    seen: set[str] = set()
    for child in el:
        ns, local = split(child.tag)
        _once(seen, local, "Enumerate")
        if ns == WSMAN and local == "OptimizeEnumeration":
            _empty(child, local)
            req.optimize = True
        elif ns == WSMAN and local == "MaxElements":
            req.max_elements = _int_of(child, "MaxElements")
        elif ns == WSMAN and local == "EnumerationMode":
            req.mode = leaf_text(child, local)
        elif local == "Filter":
            req.filter_xml = verbatim(child)
        else:
            raise DecodeError(f"Enumerate option {local!r} is not supported")
    return req


def _parse_items(el: etree._Element) -> list[Item]:
    """The items of a Pull or an optimised Enumerate; text between them would be lost, so it is refused (here,
    item by item, rather than by a separate pass of check_container over a list that can be long)."""
    text = el.text
    if text and not text.isspace():
        raise DecodeError("text mixed with elements inside Items")
    if el.attrib:
        raise DecodeError("unexpected attribute on Items")
    items: list[Item] = []
    for child in el[:]:  # a slice builds the list in C: cheaper than iterating
        tail = child.tail
        if tail and not tail.isspace():
            raise DecodeError("text mixed with elements inside Items")
        tag = child.tag
        if tag == _EPR:
            if child.attrib:
                raise DecodeError("unexpected attribute on an EndpointReference")
            items.append(parse_epr(child))
        elif tag == _WSMAN_ITEM:
            check_container(child, "wsman:Item")
            obj = epr = None
            for part in child:
                pns, plocal = split(part.tag)
                if pns == ADDRESSING and plocal == "EndpointReference" and epr is None:
                    epr = parse_epr(part)
                elif obj is None and not (pns == ADDRESSING and plocal == "EndpointReference"):
                    obj = lazy_object(part)
                else:
                    raise DecodeError("wsman:Item holds one object and one EndpointReference")
            if obj is None or epr is None:
                raise DecodeError("wsman:Item without both an object and an EndpointReference")
            items.append(ObjectAndEPR(obj, epr))
        else:
            items.append(lazy_object(child))
    return items


def _parse_enumerate_response(el: etree._Element) -> EnumerateResponse:
    resp = EnumerateResponse(None)
    seen: set[str] = set()
    for child in el:
        ns, local = split(child.tag)
        _once(seen, local, "EnumerateResponse")
        if (ns, local) == (ENUMERATION, "EnumerationContext"):
            resp.context = leaf_text(child, local)
        elif (ns, local) == (WSMAN, "Items"):  # optimised items are wsman:Items (DSP0226 §8.2.3)
            resp.items = _parse_items(child)
        elif (ns, local) == (WSMAN, "EndOfSequence"):
            _empty(child, local)
            resp.end_of_sequence = True
        else:
            raise DecodeError(f"unexpected element {local!r} in EnumerateResponse")
    return resp


def _parse_pull(el: etree._Element) -> Pull:
    context = None
    req = Pull("")
    seen: set[str] = set()
    for child in el:
        local = split(child.tag)[1]
        _once(seen, local, "Pull")
        if local == "EnumerationContext":
            context = leaf_text(child, local)
        elif local == "MaxElements":
            req.max_elements = _int_of(child, "MaxElements")
        elif local == "MaxCharacters":
            req.max_characters = _int_of(child, "MaxCharacters")
        else:
            raise DecodeError(f"Pull option {local!r} is not supported")
    if context is None:
        raise DecodeError("Pull without an EnumerationContext")
    req.context = context
    return req


def _parse_pull_response(el: etree._Element) -> PullResponse:
    resp = PullResponse(items_element=False)
    seen: set[str] = set()
    for child in el:
        ns, local = split(child.tag)
        _once(seen, local, "PullResponse")
        if ns != ENUMERATION:
            raise DecodeError(f"unexpected element {local!r} in PullResponse")
        if local == "EnumerationContext":
            resp.context = leaf_text(child, local)
        elif local == "Items":
            resp.items = _parse_items(child)
            resp.items_element = True
        elif local == "EndOfSequence":
            _empty(child, local)
            resp.end_of_sequence = True
        else:
            raise DecodeError(f"unexpected element {local!r} in PullResponse")
    return resp


def _parse_release(el: etree._Element) -> Release:
    kids = list(el)
    if len(kids) != 1 or kids[0].tag != f"{{{ENUMERATION}}}EnumerationContext":
        raise DecodeError("Release carries exactly one EnumerationContext")
    return Release(leaf_text(kids[0], "EnumerationContext"))


_ENUMERATION_BODIES: Final[dict[str, Callable[[etree._Element], Body]]] = {
    "Enumerate": _parse_enumerate,
    "EnumerateResponse": _parse_enumerate_response,
    "Pull": _parse_pull,
    "PullResponse": _parse_pull_response,
    "Release": _parse_release,
}

_IDENTIFY_FIELDS: Final = frozenset({"ProtocolVersion", "ProductVendor", "ProductVersion", "DASHVersion"})


def _parse_identify_response(el: etree._Element) -> IdentifyResponse:
    check_container(el, "IdentifyResponse")
    resp = IdentifyResponse()
    profiles: list[str] = []
    seen: set[str] = set()
    for child in el:
        local = split(child.tag)[1]
        _once(seen, local, "IdentifyResponse")
        if local == "SecurityProfiles":
            check_container(child, local)
            profiles.extend(leaf_text(p, "SecurityProfileName") for p in child)
        elif local in _IDENTIFY_FIELDS:
            text = leaf_text(child, local)
            if local == "ProtocolVersion":
                resp.protocol_version = text
            elif local == "ProductVendor":
                resp.product_vendor = text
            elif local == "ProductVersion":
                resp.product_version = text
            else:
                resp.dash_version = text
        else:
            raise DecodeError(f"unexpected element {local!r} in IdentifyResponse")
    resp.security_profiles = tuple(profiles)
    return resp


def _resolve_qname(el: etree._Element, text: str) -> QName:
    prefix, _, local = text.strip().rpartition(":")
    ns = el.nsmap.get(prefix or None)
    if ns is None:
        raise DecodeError(f"fault code {text!r} uses an undeclared prefix")
    return QName(ns, local)


def _one(el: etree._Element, tag: str, what: str) -> etree._Element:
    kids = list(el)
    if len(kids) != 1 or kids[0].tag != tag:
        raise DecodeError(f"{what} holds exactly one {split(tag)[1]}")
    return kids[0]


def parse_fault(el: etree._Element) -> WsmanFault:
    """Decode a ``soap:Fault`` element into the matching :class:`WsmanFault` subclass."""
    check_container(el, "Fault")
    code = QName(SOAP, "Receiver")
    subcode: QName | None = None
    reason = ""
    detail: str | None = None
    detail_xml: str | None = None
    seen: set[str] = set()
    value_tag = f"{{{SOAP}}}Value"
    for child in el:
        ns, local = split(child.tag)
        _once(seen, local, "Fault")
        if ns != SOAP:
            raise DecodeError(f"unexpected element {local!r} in a Fault")
        if local == "Code":
            check_container(child, "Code")
            parts = list(child)
            if not parts or parts[0].tag != value_tag or len(parts) > 2:
                raise DecodeError("a fault Code holds a Value and at most one Subcode")
            code = _resolve_qname(parts[0], leaf_text(parts[0], "Value"))
            if len(parts) == 2:
                if parts[1].tag != f"{{{SOAP}}}Subcode":
                    raise DecodeError("a fault Code holds a Value and at most one Subcode")
                check_container(parts[1], "Subcode")
                value = _one(parts[1], value_tag, "Subcode")
                subcode = _resolve_qname(value, leaf_text(value, "Value"))
        elif local == "Reason":
            check_container(child, "Reason")
            text = _one(child, f"{{{SOAP}}}Text", "Reason")
            if set(text.attrib) - {f"{{{XML}}}lang"} or len(text):
                raise DecodeError("a Reason Text holds only text")
            reason = (text.text or "").strip()
        elif local == "Detail":
            others = []
            for part in child:
                pns, plocal = split(part.tag)
                if pns == WSMAN and plocal == "FaultDetail" and detail is None:
                    detail = leaf_text(part, "FaultDetail")
                else:
                    others.append(verbatim(part))
                if part.tail and part.tail.strip():
                    raise DecodeError("text mixed with elements inside a fault Detail")
            if child.attrib:
                raise DecodeError("unexpected attribute on a fault Detail")
            free_text = (child.text or "").strip()
            if free_text:
                if detail is not None:
                    raise DecodeError("a fault Detail with both text and a FaultDetail")
                detail = free_text
            detail_xml = "".join(others) or None
        else:
            raise DecodeError(f"unexpected element {local!r} in a Fault")
    cls = fault_class_for(code, subcode)
    return cls(reason, detail=detail, detail_xml=detail_xml, code=code.local, subcode=subcode or QName("", ""))


# ---------------------------------------------------------------------------------------------- writing

# AMT's own prefix letters (FX captures): fixed a..f, then g.. for body namespaces.
_RESPONSE_PREFIXES: Final = {
    SOAP: "a", ADDRESSING: "b", WSMAN: "c", TRUST: "d", SECEXT: "e", CIMBINDING: "f",
}
_FAULT_PREFIXES: Final = {
    SOAP: "a", ADDRESSING: "b", ENUMERATION: "c", TRANSFER: "d", WSMAN: "e", EVENTING: "f",
    CIMBINDING: "g", TRUST: "h", SECEXT: "i",
}
_REQUEST_PREFIXES: Final = {SOAP: "s", ADDRESSING: "a", WSMAN: "w", XSI: "xsi", XSD: "xsd"}


def _body_namespaces(body: Body) -> list[str]:
    """Namespaces AMT declares on the root for this body, in letter order."""
    if isinstance(body, EnumerateResponse | PullResponse):
        out = [ENUMERATION]
        for item in body.items:
            obj = item.obj if isinstance(item, ObjectAndEPR) else item
            if isinstance(obj, CimObject) and obj.namespace not in out:
                out.append(obj.namespace)
        return [*out, CIM_COMMON]
    if isinstance(body, Enumerate | Pull | Release):
        return [ENUMERATION]
    if isinstance(body, CimObject):
        return [body.namespace, CIM_COMMON]
    if isinstance(body, ResourceCreated):
        return [TRANSFER]
    if isinstance(body, Identify | IdentifyResponse):
        return [WSMID, DASH]
    return []


def _write(env: Envelope, style: Style) -> str:
    body = env.body
    if style is Style.RESPONSE:
        if isinstance(body, WsmanFault):
            declare = dict(_FAULT_PREFIXES)
        else:
            declare = dict(_RESPONSE_PREFIXES)
            letters = iter("ghijklmnopqrstuvwxyz")  # past 'z' the writer declares its own prefixes
            for ns in _body_namespaces(body):
                letter = next(letters, None)
                if letter is None:
                    break
                if ns not in declare:
                    declare[ns] = letter
        declare[XSI] = "xsi"
    else:
        declare = dict(_REQUEST_PREFIXES)
        for i, ns in enumerate(_body_namespaces(body)):
            declare.setdefault(ns, "h" if i == 0 else f"h{i}")
    w = XmlWriter()
    w.start(SOAP, "Envelope", declare=declare)
    _write_header(w, env.header, style)
    w.start(SOAP, "Body")
    if body is not None:
        _write_body(w, body)
    w.end()
    w.end()
    text = w.getvalue()
    bad = _NOT_XML.search(text)
    if bad is not None:
        raise ValueError(f"character U+{ord(bad.group()):04X} cannot be carried in XML 1.0")
    return '<?xml version="1.0" encoding="UTF-8"?>' + text


_NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _write_header(w: XmlWriter, h: Header, style: Style) -> None:
    w.start(SOAP, "Header")
    if not h.action:
        pass  # Identify and its reply carry no addressing headers (DSP0226 §11)
    elif style is Style.RESPONSE:
        w.leaf(ADDRESSING, "To", h.to or ANONYMOUS)
        if h.relates_to is not None:
            w.leaf(ADDRESSING, "RelatesTo", h.relates_to)
        w.leaf(ADDRESSING, "Action", h.action, [(SOAP, "mustUnderstand", "true")])
        if h.message_id is not None:
            w.leaf(ADDRESSING, "MessageID", h.message_id)
        if h.resource_uri is not None:
            w.leaf(WSMAN, "ResourceURI", h.resource_uri)
    else:
        w.leaf(ADDRESSING, "Action", h.action)
        w.leaf(ADDRESSING, "To", h.to or "/wsman")
        if h.resource_uri is not None:
            w.leaf(WSMAN, "ResourceURI", h.resource_uri)
        if h.message_id is not None:
            w.leaf(ADDRESSING, "MessageID", h.message_id)
        w.start(ADDRESSING, "ReplyTo")
        w.leaf(ADDRESSING, "Address", h.reply_to or ANONYMOUS)
        w.end()
        if h.operation_timeout is not None:
            w.leaf(WSMAN, "OperationTimeout", h.operation_timeout)
        if h.max_envelope_size is not None:
            w.leaf(WSMAN, "MaxEnvelopeSize", str(h.max_envelope_size), [(SOAP, "mustUnderstand", "true")])
        if h.locale is not None:
            w.leaf(WSMAN, "Locale", "", [(XML, "lang", h.locale), (SOAP, "mustUnderstand", "false")])
    if h.selectors:
        write_selector_set(w, h.selectors)
    if h.option_set is not None:
        w.raw(h.option_set)
    for extra in h.extra:
        w.raw(extra.xml)
    w.end()


def _write_items(w: XmlWriter, items: list[Item], ns: str = ENUMERATION) -> None:
    """Items of a Pull are in the enumeration namespace; optimised items inside an EnumerateResponse are
    ``wsman:Items`` (DSP0226 §8.2.3)."""
    w.start(ns, "Items")
    for item in items:
        if isinstance(item, CimObject):
            write_object(w, item)
        elif isinstance(item, EndpointReference):
            w.start(ADDRESSING, "EndpointReference")
            write_epr_content(w, item)
            w.end()
        else:
            w.start(WSMAN, "Item")
            write_object(w, item.obj)
            w.start(ADDRESSING, "EndpointReference")
            write_epr_content(w, item.epr)
            w.end()
            w.end()
    w.end()


def _write_body(w: XmlWriter, body: Body) -> None:
    if isinstance(body, CimObject):
        write_object(w, body)
    elif isinstance(body, PullResponse):
        w.start(ENUMERATION, "PullResponse")
        if body.context is not None:
            w.leaf(ENUMERATION, "EnumerationContext", body.context)
        if body.items or body.items_element:  # AMT writes Items even when empty (FX ieee8021x/.../pull.xml)
            _write_items(w, body.items)
        if body.end_of_sequence:
            w.leaf(ENUMERATION, "EndOfSequence", "")
        w.end()
    elif isinstance(body, EnumerateResponse):
        w.start(ENUMERATION, "EnumerateResponse")
        if body.context is not None:
            w.leaf(ENUMERATION, "EnumerationContext", body.context)
        if body.items:
            _write_items(w, body.items, WSMAN)
        if body.end_of_sequence:
            w.leaf(WSMAN, "EndOfSequence", "")
        w.end()
    elif isinstance(body, Enumerate):
        w.start(ENUMERATION, "Enumerate")
        if body.optimize:
            w.leaf(WSMAN, "OptimizeEnumeration", "")
        if body.max_elements is not None:
            w.leaf(WSMAN, "MaxElements", str(body.max_elements))
        if body.mode is not None:
            w.leaf(WSMAN, "EnumerationMode", body.mode)
        if body.filter_xml is not None:
            w.raw(body.filter_xml)
        w.end()
    elif isinstance(body, Pull):
        w.start(ENUMERATION, "Pull")
        w.leaf(ENUMERATION, "EnumerationContext", body.context)
        if body.max_elements is not None:
            w.leaf(ENUMERATION, "MaxElements", str(body.max_elements))
        if body.max_characters is not None:
            w.leaf(ENUMERATION, "MaxCharacters", str(body.max_characters))
        w.end()
    elif isinstance(body, Release):
        w.start(ENUMERATION, "Release")
        w.leaf(ENUMERATION, "EnumerationContext", body.context)
        w.end()
    elif isinstance(body, ResourceCreated):
        w.start(TRANSFER, "ResourceCreated")
        write_epr_content(w, body.epr)
        w.end()
    elif isinstance(body, WsmanFault):
        write_fault(w, body)
    elif isinstance(body, Identify):
        w.leaf(WSMID, "Identify", "")
    elif isinstance(body, IdentifyResponse):
        w.start(WSMID, "IdentifyResponse")
        w.leaf(WSMID, "ProtocolVersion", body.protocol_version)
        w.leaf(WSMID, "ProductVendor", body.product_vendor)
        w.leaf(WSMID, "ProductVersion", body.product_version)
        if body.dash_version is not None:
            w.leaf(DASH, "DASHVersion", body.dash_version)
        if body.security_profiles:
            w.start(WSMID, "SecurityProfiles")
            for profile in body.security_profiles:
                w.leaf(WSMID, "SecurityProfileName", profile)
            w.end()
        w.end()
    elif isinstance(body, OpaqueBody):
        w.raw(body.xml)


def _qname_text(w: XmlWriter, q: QName) -> str:
    prefix = w.prefix_of(q.ns)
    if prefix is None:
        raise ValueError(f"namespace {q.ns} of {q.local} is not declared")
    return f"{prefix}:{q.local}"


def write_fault(w: XmlWriter, fault: WsmanFault) -> None:
    w.start(SOAP, "Fault")
    w.start(SOAP, "Code")
    w.leaf(SOAP, "Value", _qname_text(w, QName(SOAP, fault.fault_code)))
    if fault.subcode.local:
        w.start(SOAP, "Subcode")
        declare = {} if w.prefix_of(fault.subcode.ns) else {fault.subcode.ns: "s1"}
        w.start(SOAP, "Value", declare=declare or None)
        w.text(_qname_text(w, fault.subcode))
        w.end()
        w.end()
    w.end()
    w.start(SOAP, "Reason")
    w.leaf(SOAP, "Text", fault.reason, [(XML, "lang", "en-US")])
    w.end()
    w.start(SOAP, "Detail")
    if fault.detail is not None:
        if fault.detail.startswith("http://"):
            w.leaf(WSMAN, "FaultDetail", fault.detail)
        else:
            w.text(fault.detail)
    if fault.detail_xml:
        w.raw(fault.detail_xml)
    w.end()
    w.end()


__all__ = [
    "Body",
    "Enumerate",
    "EnumerateResponse",
    "Envelope",
    "ExtraHeader",
    "Header",
    "Identify",
    "IdentifyResponse",
    "Item",
    "ObjectAndEPR",
    "OpaqueBody",
    "Pull",
    "PullResponse",
    "Release",
    "ResourceCreated",
    "Style",
    "XmlFragment",
    "envelope_from_element",
    "parse_envelope",
    "parse_fault",
    "write_fault",
]
