"""Hardened XML parsing and a small, fast XML writer in AMT's style.

Parsing: every byte that reaches :func:`parse` may be hostile.  The size is capped before lxml sees it, the
parser never loads a DTD, never resolves entities and never touches the network, and any document that carries a
DOCTYPE at all is refused (SOAP 1.2 forbids one; AMT-PROTOCOLS.md §7, ECOSYSTEM.md B1).  Nesting depth and element
count are capped after the parse, so a reply cannot make us walk an unbounded tree.

Writing: replies are produced as text by :class:`XmlWriter` rather than by building an lxml tree; that keeps the
hot path cheap and gives exact control over what real clients are picky about (AMT-PROTOCOLS.md §11): namespace
prefixes declared on the root, no self-closing elements (``<x></x>``), no comments, no CDATA.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from lxml import etree

from .errors import DecodeError

MAX_ENVELOPE_BYTES: Final = 4 * 1024 * 1024
"""Largest envelope we parse; AMT itself answers in tens of kB, consoles never need more than this."""

MAX_DEPTH: Final = 64
MAX_ELEMENTS: Final = 200_000

MAX_ATTRIBUTES: Final = 2000
"""In the whole document: lxml's attribute access is quadratic in an element's attribute count, and a WS-MAN
envelope carries a few dozen at most (mustUnderstand flags, selector names)."""


class _NoExternalLoads(etree.Resolver):
    """Answers every external load (DTD, parameter entity, XInclude) with nothing.

    ``load_dtd=False`` does not stop libxml2 from loading parameter entities of an internal subset:
    ``<!ENTITY % p SYSTEM "file:///dev/zero"> %p;`` would spin forever and ``/proc/self/fd/0`` would block.
    """

    def resolve(self, system_url: str | None, public_id: str | None, context: object, /) -> Any:
        return self.resolve_empty(context)


def _new_parser() -> etree.XMLParser:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )
    parser.resolvers.add(_NoExternalLoads())
    return parser


_PARSER: Final = _new_parser()

# Shape limits checked by libxml2's XPath engine in C: a Python walk costs more than the parse itself.
# One expression, one call: each XPath evaluation has a fixed cost comparable to the checks themselves.
_OUT_OF_SHAPE: Final = etree.XPath(
    "boolean(/" + "/".join(["*"] * (MAX_DEPTH + 1)) + f") or count(//*) > {MAX_ELEMENTS}"
    f" or count(//@*) > {MAX_ATTRIBUTES}"
)
_TOO_DEEP: Final = etree.XPath("boolean(/" + "/".join(["*"] * (MAX_DEPTH + 1)) + ")")
_DEEPER_THAN_WSMAN: Final = etree.XPath("boolean(/" + "/".join(["*"] * 17) + ")")
"""A first, shorter depth test: WS-MAN documents are a dozen levels deep, and every step of the full test costs
even once no element is left at that depth."""
_TOO_MANY: Final = etree.XPath(f"count(//*) > {MAX_ELEMENTS}")

# Counts the byte length alone bounds.  Every element takes at least 4 bytes (``<a/>``) and every attribute at
# least 5 (`` a=""``; namespace declarations are not attributes to XPath), in any encoding, and nothing but the
# bytes can add either (no DTD, so no entities or defaulted attributes).  A document below both bounds -- every
# reply AMT sends -- only needs the depth checked, which saves most of the shape check's cost.
_COUNTS_BOUNDED_BELOW: Final = min(4 * MAX_ELEMENTS, 5 * MAX_ATTRIBUTES)


def parse(data: bytes, *, max_bytes: int = MAX_ENVELOPE_BYTES) -> etree._Element:
    """Parse untrusted XML into an element tree, or raise :class:`DecodeError`.

    The same parser object is reused: lxml parsers are not thread-safe, but the whole proto layer runs on one
    event loop, and reuse saves a measurable share of each parse.
    """
    if len(data) > max_bytes:
        raise DecodeError(f"XML document of {len(data)} bytes exceeds the {max_bytes}-byte limit", limit=True)
    if not data or data.isspace():
        raise DecodeError("empty XML document")
    # SOAP 1.2 forbids both; refuse before libxml2 sees them.  A one-byte scan (memchr) first: most documents
    # have no ``!`` at all, and each substring scan costs a twentieth of a bare parse.
    if b"!" in data and (b"<!DOCTYPE" in data or b"<!ENTITY" in data):
        raise DecodeError("XML with a DOCTYPE is refused (no DTDs or entities in SOAP)")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise DecodeError(f"malformed XML: {exc.msg}") from None
    except (ValueError, TypeError) as exc:  # e.g. an encoding declaration lxml cannot honour
        raise DecodeError(f"unreadable XML: {exc}") from None
    if root.getroottree().docinfo.doctype:  # a DOCTYPE in another encoding than the byte scan saw
        raise DecodeError("XML with a DOCTYPE is refused (no DTDs or entities in SOAP)")
    counts_bounded = len(data) <= _COUNTS_BOUNDED_BELOW
    if (_DEEPER_THAN_WSMAN(root) and _TOO_DEEP(root)) if counts_bounded else _OUT_OF_SHAPE(root):
        if _TOO_DEEP(root):
            raise DecodeError(f"XML nested deeper than {MAX_DEPTH} levels", limit=True)
        if _TOO_MANY(root):
            raise DecodeError(f"XML with more than {MAX_ELEMENTS} elements", limit=True)
        raise DecodeError(f"XML with more than {MAX_ATTRIBUTES} attributes", limit=True)
    return root


def split(tag: object) -> tuple[str | None, str]:
    """Split lxml's ``{ns}local`` into ``(ns, local)``; ``ns`` is None for an unqualified name.

    :func:`parse` guarantees every tag is a ``str``; the loose parameter type only spares callers a cast.
    """
    if not isinstance(tag, str):
        raise DecodeError("unexpected non-element node")
    if tag[:1] == "{":
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def children(el: etree._Element) -> Iterator[etree._Element]:
    """Child elements only: comments and processing instructions were dropped at parse time."""
    return iter(el)


def text_of(el: etree._Element) -> str:
    """Element text with surrounding whitespace removed (pretty-printed captures indent their values)."""
    return (el.text or "").strip()


def verbatim(el: etree._Element) -> str:
    """An element as exclusive canonical XML: only the namespaces it uses, ``<x></x>`` never ``<x/>``, so a
    kept fragment reads the same whatever context it came from and is safe to write back into a reply.

    libxml2's canonicaliser refuses namespace URIs that are relative or that it cannot parse as URIs
    (``xmlns:p="rel"``), which XML itself allows; such an element is written by :class:`XmlWriter` instead
    (same infoset, prefixes of its choosing), so keeping a fragment never fails.
    """
    try:
        return etree.tostring(el, method="c14n", exclusive=True, with_comments=False).decode("utf-8")
    except etree.C14NError:
        w = XmlWriter()
        _write_element(w, el)
        return w.getvalue()


def _write_element(w: XmlWriter, el: etree._Element) -> None:
    """Write ``el`` and its subtree (depth is capped by :func:`parse`, so the recursion is bounded)."""
    ns, local = split(el.tag)
    w.start(ns, local, [(*split(str(key)), str(value)) for key, value in el.items()])
    if el.text:
        w.text(el.text)
    for child in el:
        _write_element(w, child)
        if child.tail:
            w.text(child.tail)
    w.end()


def leaf_text(el: etree._Element, what: str) -> str:
    """The text of an element that may hold nothing else: children or attributes there would be lost."""
    if len(el) or el.attrib:
        raise DecodeError(f"{what} must hold only text")
    return (el.text or "").strip()


def check_container(el: etree._Element, what: str, *, attributes: bool = False) -> None:
    """An element that holds only elements: text between them would be lost, so it is refused (as are
    attributes, unless the caller keeps them)."""
    text = el.text
    if text and not text.isspace():
        raise DecodeError(f"text mixed with elements inside {what}")
    for child in el[:]:  # a slice builds the list in C: cheaper than iterating
        tail = child.tail
        if tail and not tail.isspace():
            raise DecodeError(f"text mixed with elements inside {what}")
    if el.attrib and not attributes:
        raise DecodeError(f"unexpected attribute on {what}")


def is_nil(el: etree._Element) -> bool:
    return el.get(_XSI_NIL) in ("true", "1")


_XSI_NIL: Final = "{http://www.w3.org/2001/XMLSchema-instance}nil"

# ---------------------------------------------------------------------------------------------- writing


XML_NS: Final = "http://www.w3.org/XML/1998/namespace"


def escape_text(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def escape_attr(text: str) -> str:
    return (
        escape_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")
    )


class XmlWriter:
    """Accumulates XML text; namespaces are declared once, on the element that first needs them.

    The writer never declares a default namespace, so an unqualified name (``ns=None``) stays unqualified.

    ``declare`` maps namespace URI -> prefix for the element it is given with (the root).  A namespace met
    later without a prefix in scope is declared on that element with a fresh prefix, and stays in scope for
    its descendants.  In-scope prefixes are one flat dict with an undo list per open element, so the common
    case -- a text-only element in a namespace already declared -- costs one lookup and one f-string.
    """

    __slots__ = ("_counter", "_parts", "_prefixes", "_stack", "_undo")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._prefixes: dict[str, str] = {}
        self._undo: list[list[tuple[str, str | None]] | None] = []
        self._stack: list[str] = []
        self._counter = 0

    def _declare(self, ns: str, prefix: str, changes: list[tuple[str, str | None]]) -> None:
        changes.append((ns, self._prefixes.get(ns)))
        self._prefixes[ns] = prefix

    def start(
        self,
        ns: str | None,
        local: str,
        attrs: Iterable[tuple[str | None, str, str]] = (),
        declare: dict[str, str] | None = None,
    ) -> None:
        """Open an element.  ``attrs`` are ``(namespace or None, name, value)``."""
        changes: list[tuple[str, str | None]] = []
        decls: list[str] = []
        if declare:
            for uri, prefix in declare.items():
                self._declare(uri, prefix, changes)
                decls.append(f' xmlns:{prefix}="{escape_attr(uri)}"')
        name = local if ns is None else f"{self._prefix_for(ns, changes, decls)}:{local}"
        rendered = []
        for ans, aname, value in attrs:
            if ans is None:
                qualified = aname
            elif ans == XML_NS:
                qualified = f"xml:{aname}"
            else:
                qualified = f"{self._prefix_for(ans, changes, decls)}:{aname}"
            rendered.append(f' {qualified}="{escape_attr(value)}"')
        self._undo.append(changes or None)
        self._parts.append(f"<{name}{''.join(decls)}{''.join(rendered)}>")
        self._stack.append(name)

    def _prefix_for(self, ns: str, changes: list[tuple[str, str | None]], decls: list[str]) -> str:
        prefix = self._prefixes.get(ns)
        if prefix is None:
            self._counter += 1
            prefix = f"n{self._counter}"
            self._declare(ns, prefix, changes)
            decls.append(f' xmlns:{prefix}="{escape_attr(ns)}"')
        return prefix

    def text(self, value: str) -> None:
        self._parts.append(escape_text(value))

    def end(self) -> None:
        changes = self._undo.pop()
        if changes:
            for ns, previous in reversed(changes):
                if previous is None:
                    del self._prefixes[ns]
                else:
                    self._prefixes[ns] = previous
        self._parts.append(f"</{self._stack.pop()}>")

    def leaf(
        self, ns: str | None, local: str, value: str, attrs: Iterable[tuple[str | None, str, str]] = ()
    ) -> None:
        """An element holding only text (possibly empty: written as ``<x></x>``, never ``<x/>``)."""
        if not attrs:
            prefix = "" if ns is None else self._prefixes.get(ns)
            if prefix is not None:
                name = f"{prefix}:{local}" if prefix else local
                self._parts.append(f"<{name}>{escape_text(value)}</{name}>")
                return
        self.start(ns, local, attrs)
        self._parts.append(escape_text(value))
        self.end()

    def raw(self, xml: str) -> None:
        """Insert pre-serialised XML (a preserved fragment); it must declare its own namespaces."""
        self._parts.append(xml)

    def prefix_of(self, ns: str) -> str | None:
        return self._prefixes.get(ns)

    def getvalue(self) -> str:
        if self._stack:
            raise RuntimeError(f"unclosed elements: {self._stack}")
        return "".join(self._parts)
