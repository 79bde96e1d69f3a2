"""The structure of a WS-MAN reply, to compare the engine's answers with firmware captures.

Two replies have the same shape when their Action and ResourceURI match and their bodies have the same elements
(namespace and local name), in the same order, with leaf values of the same format (a number, a boolean, empty
or other text).  Prefixes, MessageIDs, RelatesTo and the values themselves are not compared: they differ
between any two exchanges.  A capture that is known to be hand-made in places can be corrected by the test
(parse it with :func:`load`, patch the tree, then compare) so each deviation is written down where it is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

SOAP = "http://www.w3.org/2003/05/soap-envelope"
ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"

Node = tuple[str, "str | tuple[Node, ...]"]
"""(``{namespace}local``, the format of a leaf's text or the shapes of the children)."""

_INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class Shape:
    action: str
    resource_uri: str | None
    body: tuple[Node, ...]


def load(path: Path) -> etree._Element:
    return etree.fromstring(path.read_bytes())


def with_action(capture: Path, action: str) -> etree._Element:
    """A capture whose header Action is replaced (to compare a Put's reply with a Get capture, for instance)."""
    root = load(capture)
    element = root.find(f".//{{{ADDRESSING}}}Action")
    assert element is not None, f"{capture} has no Action"
    element.text = action
    return root


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def value_format(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        return "empty"
    if text in ("true", "false"):
        return "boolean"
    if _INTEGER.fullmatch(text):
        return "integer"
    return "text"


def node(el: etree._Element) -> Node:
    children = [c for c in el if isinstance(c.tag, str)]
    if not children:
        return (str(el.tag), value_format(el.text))
    return (str(el.tag), tuple(node(c) for c in children))


def shape_of(root: etree._Element) -> Shape:
    header = root.find(f"{{{SOAP}}}Header")
    body = root.find(f"{{{SOAP}}}Body")
    assert header is not None, "not a SOAP envelope"
    assert body is not None, "not a SOAP envelope"
    action = header.find(f"{{{ADDRESSING}}}Action")
    uri = header.find(f"{{{WSMAN}}}ResourceURI")
    return Shape(
        action=(action.text or "").strip() if action is not None else "",
        resource_uri=(uri.text or "").strip() if uri is not None else None,
        body=tuple(node(c) for c in body if isinstance(c.tag, str)),
    )


def assert_same_shape(ours: bytes, capture: Path | etree._Element) -> None:
    """Fail with both structures when the engine's reply and the capture differ in shape."""
    theirs = shape_of(load(capture) if isinstance(capture, Path) else capture)
    mine = shape_of(parse(ours))
    assert mine.action == theirs.action, f"action {mine.action} != capture {theirs.action}"
    assert mine.resource_uri == theirs.resource_uri, f"resource URI {mine.resource_uri} != {theirs.resource_uri}"
    assert mine.body == theirs.body, "body shape differs:\n  ours:    " + _show(mine.body) + "\n  capture: " + \
        _show(theirs.body)


def _show(nodes: tuple[Node, ...], depth: int = 0) -> str:
    parts = []
    for tag, content in nodes:
        local = tag.rsplit("}", 1)[-1]
        parts.append(f"{local}:{content}" if isinstance(content, str) else f"{local}[{_show(content, depth + 1)}]")
    return ", ".join(parts)
