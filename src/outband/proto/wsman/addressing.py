"""WS-Addressing endpoint references and WS-Management selector sets.

An EPR names one instance: ``Address`` (AMT ignores its text) plus ``ReferenceParameters`` holding the
``ResourceURI`` and a ``SelectorSet``.  Selector values are text or, for association keys, another EPR
(AMT-PROTOCOLS.md §2.6).  These types are immutable and hashable so dispatch tables and tests can use them
as keys and compare them directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Union

from lxml import etree

from .errors import DecodeError
from .namespaces import ADDRESSING, ANONYMOUS, WSMAN
from .xml import XmlWriter, check_container, leaf_text, split

SelectorValue = Union[str, "EndpointReference"]

_NAME_ATTRS = ("Name", f"{{{WSMAN}}}Name")


@dataclass(frozen=True, slots=True)
class Selector:
    name: str
    value: SelectorValue


@dataclass(frozen=True, slots=True)
class SelectorSet:
    """An ordered set of selectors; order is kept for faithful re-serialisation, equality ignores it."""

    selectors: tuple[Selector, ...] = ()

    @classmethod
    def of(cls, items: Mapping[str, SelectorValue] | Iterable[tuple[str, SelectorValue]] | None) -> SelectorSet:
        if items is None:
            return cls()
        pairs = items.items() if isinstance(items, Mapping) else items
        return cls(tuple(Selector(k, v) for k, v in pairs))

    def __iter__(self) -> Iterator[Selector]:
        return iter(self.selectors)

    def __len__(self) -> int:
        return len(self.selectors)

    def __bool__(self) -> bool:
        return bool(self.selectors)

    def get(self, name: str, default: SelectorValue | None = None) -> SelectorValue | None:
        for sel in self.selectors:
            if sel.name == name:
                return sel.value
        return default

    def as_dict(self) -> dict[str, SelectorValue]:
        return {sel.name: sel.value for sel in self.selectors}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SelectorSet):
            return NotImplemented
        return sorted(self._key()) == sorted(other._key())

    def __hash__(self) -> int:
        return hash(frozenset(self._key()))

    def _key(self) -> list[tuple[str, str]]:
        return [(s.name, repr(s.value)) for s in self.selectors]

    def matches(self, other: SelectorSet) -> bool:
        """True when every selector of ``self`` appears in ``other`` with an equal value (references compare by
        what they name: the Address text varies between clients and AMT ignores it)."""
        theirs = other.as_dict()
        return all(name in theirs and _same(theirs[name], value) for name, value in self.as_dict().items())


def _same(a: SelectorValue, b: SelectorValue) -> bool:
    if isinstance(a, EndpointReference) and isinstance(b, EndpointReference):
        mine, theirs = a.selectors or SelectorSet(), b.selectors or SelectorSet()
        return a.resource_uri == b.resource_uri and len(mine) == len(theirs) and mine.matches(theirs)
    return a == b


@dataclass(frozen=True, slots=True)
class EndpointReference:
    """A reference to one resource instance.

    ``resource_uri`` and ``selectors`` are None when the element was absent, and empty when it was present
    but empty (AMT's AddAlarm reply carries both empty), so either form round-trips.
    """

    resource_uri: str | None
    selectors: SelectorSet | None = field(default_factory=SelectorSet)
    address: str = ANONYMOUS

    @classmethod
    def to(cls, resource_uri: str, selectors: Mapping[str, SelectorValue] | None = None) -> EndpointReference:
        return cls(resource_uri, SelectorSet.of(selectors))

    @property
    def class_name(self) -> str:
        return (self.resource_uri or "").rstrip("/").rsplit("/", 1)[-1]

    @property
    def selector_dict(self) -> dict[str, SelectorValue]:
        return self.selectors.as_dict() if self.selectors else {}


def is_epr_element(el: etree._Element) -> bool:
    """True when ``el``'s children are an EPR (Address and/or ReferenceParameters in the addressing namespace)."""
    first = next(iter(el), None)
    return first is not None and first.tag in (_ADDRESS, _REFPARAMS)


_ADDRESS = f"{{{ADDRESSING}}}Address"
_REFPARAMS = f"{{{ADDRESSING}}}ReferenceParameters"
_EPR = f"{{{ADDRESSING}}}EndpointReference"
_RESOURCE_URI = f"{{{WSMAN}}}ResourceURI"
_SELECTOR_SET = f"{{{WSMAN}}}SelectorSet"
_SELECTOR = f"{{{WSMAN}}}Selector"


def parse_epr(el: etree._Element) -> EndpointReference:
    """Read the EPR held by ``el`` (the element whose children are Address/ReferenceParameters)."""
    address = ANONYMOUS
    resource_uri: str | None = None
    selectors: SelectorSet | None = None
    seen_address = False
    check_container(el, "an endpoint reference", attributes=True)  # attributes belong to the holder
    for child in el[:]:  # a slice builds the list in C: cheaper than iterating
        tag = child.tag
        if tag == _ADDRESS and not seen_address and resource_uri is None and selectors is None:
            address = leaf_text(child, "Address")
            seen_address = True
        elif tag == _REFPARAMS and resource_uri is None and selectors is None:
            check_container(child, "ReferenceParameters")
            for param in child[:]:
                tag = param.tag
                if tag == _RESOURCE_URI and resource_uri is None:
                    resource_uri = leaf_text(param, "ResourceURI")
                elif tag == _SELECTOR_SET and selectors is None:
                    selectors = parse_selector_set(param)
                else:
                    raise DecodeError(f"unexpected reference parameter {split(param.tag)[1]!r}")
        else:
            raise DecodeError(f"unexpected element {split(child.tag)[1]!r} in an endpoint reference")
    if not seen_address:
        raise DecodeError("endpoint reference without an Address (WS-Addressing requires one)")
    return EndpointReference(resource_uri, selectors, address)


def parse_selector_set(el: etree._Element) -> SelectorSet:
    check_container(el, "a SelectorSet")
    out = []
    for sel in el[:]:  # a slice builds the list in C: cheaper than iterating
        if sel.tag != _SELECTOR:
            raise DecodeError(f"unexpected element {split(sel.tag)[1]!r} in a SelectorSet")
        attributes = sel.items()
        if len(attributes) != 1 or attributes[0][0] not in _NAME_ATTRS or not attributes[0][1]:
            raise DecodeError("a Selector carries exactly one Name attribute")
        name = str(attributes[0][1])
        if len(sel):
            inner = sel[0]
            check_container(sel, "a Selector", attributes=True)
            if inner.tag != _EPR or len(sel) != 1 or inner.attrib:
                raise DecodeError(f"unexpected element {split(inner.tag)[1]!r} inside a Selector")
            out.append(Selector(name, parse_epr(inner)))
        else:
            out.append(Selector(name, (sel.text or "").strip()))
    return SelectorSet(tuple(out))


def write_epr_content(w: XmlWriter, epr: EndpointReference) -> None:
    """Write the Address and ReferenceParameters children of an EPR-valued element."""
    w.leaf(ADDRESSING, "Address", epr.address)
    if epr.resource_uri is None and epr.selectors is None:
        return
    w.start(ADDRESSING, "ReferenceParameters")
    if epr.resource_uri is not None:
        w.leaf(WSMAN, "ResourceURI", epr.resource_uri)
    if epr.selectors is not None:
        write_selector_set(w, epr.selectors)
    w.end()


def write_selector_set(w: XmlWriter, selectors: SelectorSet) -> None:
    w.start(WSMAN, "SelectorSet")
    for sel in selectors:
        if isinstance(sel.value, EndpointReference):
            w.start(WSMAN, "Selector", [(None, "Name", sel.name)])
            w.start(ADDRESSING, "EndpointReference")
            write_epr_content(w, sel.value)
            w.end()
            w.end()
        else:
            w.leaf(WSMAN, "Selector", sel.value, [(None, "Name", sel.name)])
    w.end()
