"""Structural comparison of an engine reply with a firmware capture, for classes whose instance counts vary,
and the few request helpers the inventory, network and log tests share.

Two replies have the same shape when their Action and ResourceURI are equal and their bodies have the same
element QNames in the same order, with leaf values of the same format.  Runs of same-named siblings count as
one element (one disk or four, two LinkPolicy values or three), every element of a run must have the shape of
the capture's first one, and values are compared by format only (an integer, a boolean, an IPv4 or MAC
address, a 32-digit GUID, a datetime, empty, other text); a property the catalog declares as a string is "text"
whatever it looks like, since a serial number may happen to be all digits.  Prefixes, MessageIDs and RelatesTo
never matter.  ``ignore`` drops elements by local name where a capture is known to be partial or hand-edited
(each test says why).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from lxml import etree

from outband.aio.wsman_client import WsmanTransport
from outband.engine.acl import Account
from outband.proto.amt import Realm
from outband.proto.cim.catalog import lookup
from outband.proto.cim.model import CimObject
from outband.proto.cim.schema import CimType
from outband.proto.digest import ha1
from outband.proto.wsman import EnumerateResponse, PullResponse, parse_envelope
from outband.proto.wsman import messages as msg
from outband.testing.engine import RunningEngine

SOAP = "{http://www.w3.org/2003/05/soap-envelope}"
ADDRESSING = "{http://schemas.xmlsoap.org/ws/2004/08/addressing}"
WSMAN = "{http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd}"

_FORMATS = (
    ("boolean", re.compile(r"true|false")),
    ("integer", re.compile(r"-?\d+")),
    ("ipv4", re.compile(r"\d{1,3}(\.\d{1,3}){3}")),
    ("mac", re.compile(r"[0-9a-f]{2}(-[0-9a-f]{2}){5}")),
    ("guid", re.compile(r"[0-9A-F]{32}")),
    ("datetime", re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")),
)


def _declared_string(parent: etree._Element, el: etree._Element) -> bool:
    qname = etree.QName(el)
    cls = lookup(qname.namespace or "")
    if cls is None:
        return False
    owner = etree.QName(parent).localname
    if owner == cls.name:
        prop = cls.prop(qname.localname)
    else:
        method = cls.method(owner.removesuffix("_OUTPUT").removesuffix("_INPUT"))
        prop = method.output(qname.localname) if method is not None else None
    return prop is not None and prop.type is CimType.STRING


def value_format(parent: etree._Element, el: etree._Element) -> str:
    text = (el.text or "").strip()
    if not text:
        return "empty"
    if _declared_string(parent, el):
        return "text"
    return next((name for name, pattern in _FORMATS if pattern.fullmatch(text)), "text")


def _lines(el: etree._Element, ignore: frozenset[str], depth: int = 0) -> Iterable[str]:
    """One line per element run: indentation, QName, and the leaf format when it has no children."""
    children = [c for c in el if isinstance(c.tag, str) and etree.QName(c).localname not in ignore]
    runs: list[list[etree._Element]] = []
    for child in children:
        if runs and runs[-1][0].tag == child.tag:
            runs[-1].append(child)
        else:
            runs.append([child])
    for run in runs:
        shapes = {tuple(_element(el, child, ignore, depth)) for child in run}
        if len(shapes) > 1:
            yield f"{'  ' * depth}{run[0].tag} (run of differently shaped elements: {sorted(shapes)})"
        else:
            yield from shapes.pop()


def _element(parent: etree._Element, el: etree._Element, ignore: frozenset[str], depth: int) -> list[str]:
    has_children = any(isinstance(c.tag, str) for c in el)
    head = f"{'  ' * depth}{el.tag}" + ("" if has_children else f" = {value_format(parent, el)}")
    return [head, *_lines(el, ignore, depth + 1)]


def shape(xml: bytes, ignore: Iterable[str] = ()) -> list[str]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(xml, parser)
    header, body = root.find(f"{SOAP}Header"), root.find(f"{SOAP}Body")
    assert header is not None, "not a SOAP envelope"
    assert body is not None, "not a SOAP envelope"
    return [
        f"Action {(header.findtext(f'{ADDRESSING}Action') or '').strip()}",
        f"ResourceURI {(header.findtext(f'{WSMAN}ResourceURI') or '').strip()}",
        *_lines(body, frozenset(ignore)),
    ]


def assert_same_shape(ours: bytes, capture: Path, *, ignore: Iterable[str] = ()) -> None:
    mine, theirs = shape(ours, ignore), shape(capture.read_bytes(), ignore)
    assert mine == theirs, "reply shape differs from " + capture.name + ":\n" + "\n".join(
        f"{'  ' if a == b else '≠ '}{a:<100} | {b}" for a, b in itertools.zip_longest(mine, theirs, fillvalue="-")
    )


# ---------------------------------------------------------------------------------------------- requests


async def enumerate_raw(t: WsmanTransport, resource: str, *, max_elements: int | None = None) -> bytes:
    """Enumerate ``resource`` and return the first Pull reply's bytes (everything, or ``max_elements``)."""
    started = await t.send(msg.enumerate_(resource))
    assert isinstance(started.body, EnumerateResponse), started.body
    assert started.body.context, started.body
    status, body = await t.post(msg.pull(resource, started.body.context, max_elements=max_elements).to_bytes())
    assert status == 200, body
    return body


async def pull_objects(t: WsmanTransport, resource: str) -> list[CimObject]:
    reply = parse_envelope(await enumerate_raw(t, resource))
    assert isinstance(reply.body, PullResponse), reply.body
    assert reply.body.end_of_sequence, reply.body
    return [item for item in reply.body.items if isinstance(item, CimObject)]


async def get_object(t: WsmanTransport, resource: str, selectors: Mapping[str, str] | None = None) -> CimObject:
    reply = await t.send(msg.get(resource, selectors))
    assert reply.fault is None, reply.fault
    assert isinstance(reply.body, CimObject)
    return reply.body


async def invoke(t: WsmanTransport, resource: str, method: str, selectors: Mapping[str, str] | None = None,
                 **params: object) -> CimObject:
    reply = await t.send(msg.invoke(CimObject.method_input(resource, method, **params), selectors))
    assert reply.fault is None, reply.fault
    assert isinstance(reply.body, CimObject), reply.body
    assert reply.body.element == f"{method}_OUTPUT", reply.body
    return reply.body


def add_user(env: RunningEngine, name: str, password: str, realms: Iterable[Realm]) -> WsmanTransport:
    """A digest user holding only ``realms``, and a transport logged in as it."""
    accounts = env.engine.accounts
    accounts.save(Account(accounts.next_handle(), name, ha1(name, env.engine.realm, password), frozenset(realms)))
    return env.transport(name, password)
