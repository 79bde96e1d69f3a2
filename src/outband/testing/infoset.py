"""Compare two XML documents by infoset, the way WS-MAN peers read them.

Two envelopes are "the same" to a real AMT client when their elements have the same namespace-qualified names in
the same order, the same attributes (by qualified name, in any order) and the same character data once the
indentation of pretty-printed captures is stripped.  Prefix letters, namespace declarations, attribute order,
comments, processing instructions, CDATA sections versus escaped text, and self-closing versus empty-pair tags
are all invisible to them, so they are invisible here too.

QName-valued text (a SOAP fault's ``<a:Value>a:Sender</a:Value>``) names a namespace through a prefix, so it only
compares meaningfully once resolved; pass ``resolve_qname_text=True`` to compare such text as ``{ns}local``.
Pass ``keep_leaf_blanks=True`` where blanks around a value are data (an SMBIOS string padded with spaces): the
text of elements without children then loses only surrounding whitespace that spans a line break (the
indentation of a pretty-printed capture), never plain blanks.

These helpers read trusted test input: bytes are parsed without entity expansion or network access, but without
the size and shape caps of :mod:`outband.proto.wsman.xml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lxml import etree

__all__ = ["assert_same_infoset", "element_count", "infoset_differences", "to_element"]

_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)

XmlInput = etree._Element | bytes | str


def to_element(xml: XmlInput) -> etree._Element:
    """The root element of ``xml`` (already an element, or bytes/str of a whole document)."""
    if isinstance(xml, etree._Element):
        return xml
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    return etree.fromstring(data, _PARSER)


def element_count(xml: XmlInput) -> int:
    """How many elements ``xml`` holds, itself included (comments and PIs are not elements)."""
    return sum(1 for _ in to_element(xml).iter(tag=etree.Element))


def infoset_differences(
    expected: XmlInput,
    actual: XmlInput,
    *,
    resolve_qname_text: bool = False,
    keep_leaf_blanks: bool = False,
    limit: int = 20,
) -> list[str]:
    """Human-readable differences between two documents' infosets (empty when they are the same).

    Each entry starts with the path of the element concerned, e.g. ``/Envelope/Body/AMT_GeneralSettings[1]``;
    at most ``limit`` are reported, since one missing element otherwise cascades into hundreds.
    """
    out: list[str] = []
    options = _Options(resolve_qname_text, keep_leaf_blanks, limit)
    _compare(to_element(expected), to_element(actual), "", 1, options, out)
    return out


def assert_same_infoset(
    expected: XmlInput, actual: XmlInput, *, resolve_qname_text: bool = False, keep_leaf_blanks: bool = False
) -> None:
    """Raise AssertionError listing where ``actual`` departs from ``expected``."""
    differences = infoset_differences(
        expected, actual, resolve_qname_text=resolve_qname_text, keep_leaf_blanks=keep_leaf_blanks
    )
    if differences:
        raise AssertionError("XML infosets differ:\n  " + "\n  ".join(differences))


@dataclass(frozen=True, slots=True)
class _Options:
    resolve_qname_text: bool
    keep_leaf_blanks: bool
    limit: int


def _compare(
    exp: etree._Element, act: etree._Element, parent: str, index: int, options: _Options, out: list[str]
) -> None:
    path = f"{parent}/{etree.QName(exp).localname}[{index}]"
    if len(out) >= options.limit:
        return
    if exp.tag != act.tag:
        out.append(f"{path}: element {etree.QName(exp).text} became {etree.QName(act).text}")
        return
    exp_attrs, act_attrs = dict(exp.attrib), dict(act.attrib)
    if exp_attrs != act_attrs:
        out.append(f"{path}: attributes {sorted(exp_attrs.items())} became {sorted(act_attrs.items())}")
    exp_text, act_text = _character_data(exp, options), _character_data(act, options)
    if exp_text != act_text:
        out.append(f"{path}: text {exp_text!r} became {act_text!r}")
    exp_children = list(exp.iterchildren(tag=etree.Element))
    act_children = list(act.iterchildren(tag=etree.Element))
    if [c.tag for c in exp_children] != [c.tag for c in act_children]:
        out.append(
            f"{path}: children {[etree.QName(c).localname for c in exp_children]} "
            f"became {[etree.QName(c).localname for c in act_children]}"
        )
        return
    seen: dict[object, int] = {}
    for exp_child, act_child in zip(exp_children, act_children, strict=True):
        seen[exp_child.tag] = seen.get(exp_child.tag, 0) + 1
        _compare(exp_child, act_child, path, seen[exp_child.tag], options, out)


def _character_data(el: etree._Element, options: _Options) -> str:
    """The element's own text: its leading text plus the text after each child, stripped as a whole.

    For a leaf that is simply its (stripped) text; for a container it is whitespace (so "") in every
    well-formed WS-MAN message, and anything else is mixed content that must survive too.
    """
    text = "".join([el.text or "", *(child.tail or "" for child in el)])
    text = _trim_layout(text) if options.keep_leaf_blanks and len(el) == 0 else text.strip()
    if options.resolve_qname_text and len(el) == 0:
        prefix, colon, local = text.rpartition(":")
        namespace = el.nsmap.get(prefix) if colon and prefix else None
        if namespace is not None:
            return f"{{{namespace}}}{local}"
    return text


def _trim_layout(text: str) -> str:
    """Drop leading or trailing whitespace only where it holds a line break: layout, not data."""
    body = text.lstrip()
    if "\n" in text[: len(text) - len(body)]:
        text = body
    body = text.rstrip()
    if "\n" in text[len(body):]:
        text = body
    return text
