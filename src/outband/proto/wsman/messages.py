"""Builders for the requests a console sends and the replies an endpoint sends.

Both sides of the wire use these, so a request built here is exactly what our engine parses and a reply built
here is exactly what our client parses; peer-pair tests then exercise the same code real peers meet.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping

from ..cim.model import CimObject
from .addressing import EndpointReference, SelectorSet, SelectorValue
from .envelope import Body, Enumerate, Envelope, Header, Identify, Pull, Release
from .faults import WsmanFault
from .namespaces import ANONYMOUS, Action, resource_uri

DEFAULT_OPERATION_TIMEOUT = "PT60S"
"""AMT enforces a minimum of 30 s (AMT-PROTOCOLS.md §2.3); consoles send 60 s."""

Selectors = Mapping[str, SelectorValue] | SelectorSet | None


def _selectors(selectors: Selectors) -> SelectorSet:
    return selectors if isinstance(selectors, SelectorSet) else SelectorSet.of(selectors)


def new_message_id() -> str:
    return f"uuid:{uuid.uuid4()}"


def request(
    action: str,
    resource: str,
    body: Body = None,
    *,
    selectors: Selectors = None,
    message_id: str | None = None,
    operation_timeout: str | None = DEFAULT_OPERATION_TIMEOUT,
    max_envelope_size: int | None = None,
) -> Envelope:
    """Any request; ``resource`` is a class name (``AMT_GeneralSettings``) or a full resource URI."""
    header = Header(
        action=action,
        resource_uri=resource_uri(resource),
        message_id=message_id or new_message_id(),
        to="/wsman",
        reply_to=ANONYMOUS,
        selectors=_selectors(selectors),
        operation_timeout=operation_timeout,
        max_envelope_size=max_envelope_size,
    )
    return Envelope(header, body)


def get(resource: str, selectors: Selectors = None) -> Envelope:
    return request(Action.GET, resource, selectors=selectors)


def put(obj: CimObject, selectors: Selectors = None) -> Envelope:
    return request(Action.PUT, obj.resource_uri, obj, selectors=selectors)


def create(obj: CimObject) -> Envelope:
    return request(Action.CREATE, obj.resource_uri, obj)


def delete(resource: str, selectors: Selectors = None) -> Envelope:
    return request(Action.DELETE, resource, selectors=selectors)


def enumerate_(
    resource: str, *, mode: str | None = None, optimize: bool = False, max_elements: int | None = None
) -> Envelope:
    return request(Action.ENUMERATE, resource, Enumerate(max_elements, optimize, mode))


def pull(resource: str, context: str, *, max_elements: int | None = None) -> Envelope:
    return request(Action.PULL, resource, Pull(context, max_elements))


def release(resource: str, context: str) -> Envelope:
    return request(Action.RELEASE, resource, Release(context))


def invoke(message: CimObject, selectors: Selectors = None) -> Envelope:
    """Invoke ``message`` (a ``<Method>_INPUT`` object) on the instance the selectors name."""
    method = message.method_name
    if method is None or message.is_output:
        raise ValueError(f"{message.element} is not a method input")
    return request(Action.method(message.resource_uri, method), message.resource_uri, message,
                   selectors=selectors)


def invoke_on(epr: EndpointReference, message: CimObject) -> Envelope:
    """Invoke a method on the instance an EPR names (resource URI and selectors from the EPR)."""
    return invoke(message, epr.selectors)


def identify() -> Envelope:
    """``wsmid:Identify`` carries no addressing headers at all (DSP0226 §11)."""
    return Envelope(Header(), Identify())


class MessageIds:
    """AMT's reply MessageIDs: ``uuid:00000000-8086-8086-8086-`` + a 12-hex-digit firmware counter."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)

    def next(self) -> str:
        return f"uuid:00000000-8086-8086-8086-{next(self._counter) & 0xFFFFFFFFFFFF:012X}"


def reply(req: Header, body: Body, message_id: str, *, action: str | None = None) -> Envelope:
    """The reply to ``req``: RelatesTo its MessageID, Action = its action + ``Response`` (or the fault action)."""
    if isinstance(body, WsmanFault):
        reply_action = body.fault_action
        uri = None
    else:
        reply_action = action or Action.response(req.action)
        uri = req.resource_uri
    header = Header(
        action=reply_action,
        resource_uri=uri,
        message_id=message_id,
        relates_to=req.message_id if req.message_id is not None else "0",
    )
    return Envelope(header, body)
