"""WS-MAN dispatch: from a parsed request envelope to the reply envelope, as AMT answers.

Theory of operation: the action decides the operation (Get/Put/Create/Delete/Enumerate/Pull/Release, or a
custom method ``<class URI>/<Method>``); the resource URI decides the :class:`ClassHandler`; the caller's
account must hold the handler's realm; header selectors pick the instance by its key properties.  Anything
that goes wrong is a :class:`WsmanFault` raised by a handler or by these checks, turned into AMT's fault reply.
Enumerations snapshot the instances at Enumerate time (as AMT does) and hand them out in Pulls; contexts are
few and short-lived, and a reply never includes a context once the last item has gone (§11).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ..proto.amt import Realm
from ..proto.cim.model import CimObject, key_selectors
from ..proto.wsman import Envelope, Header, SelectorSet
from ..proto.wsman import faults as F
from ..proto.wsman.addressing import EndpointReference
from ..proto.wsman.envelope import (
    Body,
    Enumerate,
    EnumerateResponse,
    Item,
    ObjectAndEPR,
    Pull,
    PullResponse,
    Release,
    ResourceCreated,
)
from ..proto.wsman.namespaces import ENUMERATE_EPR, ENUMERATE_OBJECT_AND_EPR, Action
from .registry import ClassHandler, Context

if TYPE_CHECKING:
    from .acl import Account
    from .core import Engine

log = logging.getLogger(__name__)

MAX_CONTEXTS: Final = 32
CONTEXT_IDLE_SECONDS: Final = 120.0
MAX_OPERATION_TIMEOUT_FLOOR: Final = 30


@dataclass(slots=True)
class _Enumeration:
    resource_uri: str
    items: list[Item]
    position: int
    touched: float


class Enumerations:
    """Open enumeration contexts of one engine, named in AMT's GUID-shaped counter style."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._open: OrderedDict[str, _Enumeration] = OrderedDict()
        self._counter = itertools.count(1)
        self._clock = clock

    def open(self, resource_uri: str, items: list[Item]) -> str:
        self._expire()
        while len(self._open) >= MAX_CONTEXTS:
            self._open.popitem(last=False)
        n = next(self._counter) & 0xFFFFFFFF
        context = f"{int.from_bytes(n.to_bytes(4, 'little'), 'big'):08X}-0000-0000-0000-000000000000"
        self._open[context] = _Enumeration(resource_uri, items, 0, self._clock())
        return context

    def take(self, context: str, resource_uri: str | None, count: int | None) -> tuple[list[Item], bool]:
        """Up to ``count`` items (all when None); the flag says the enumeration is finished (and closed)."""
        self._expire()
        state = self._open.get(context)
        if state is None or (resource_uri and resource_uri != state.resource_uri):
            raise F.InvalidEnumerationContext()
        end = len(state.items) if count is None else min(len(state.items), state.position + max(count, 1))
        chunk = state.items[state.position : end]
        state.position, state.touched = end, self._clock()
        if end >= len(state.items):
            del self._open[context]
            return chunk, True
        return chunk, False

    def release(self, context: str) -> None:
        if self._open.pop(context, None) is None:
            raise F.InvalidEnumerationContext()

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, v in self._open.items() if now - v.touched > CONTEXT_IDLE_SECONDS]:
            del self._open[key]


def instance_keys(handler: ClassHandler, obj: CimObject) -> SelectorSet:
    """The selector set naming ``obj``: the handler's keys, or the catalog's."""
    return key_selectors(obj, handler.keys)


def epr_of(handler: ClassHandler, obj: CimObject) -> EndpointReference:
    return EndpointReference(obj.resource_uri, instance_keys(handler, obj))


def _select(handler: ClassHandler, engine: Engine, selectors: SelectorSet) -> CimObject:
    """The one instance the selectors name.  No selectors on a multi-instance class picks the first one,
    as AMT does for Gets of e.g. AMT_EthernetPortSettings without an InstanceID."""
    if handler.instances is None:
        raise F.ActionNotSupported()
    instances = list(handler.instances(engine))
    if not selectors:
        if not instances:
            raise F.DestinationUnreachable()
        return instances[0]
    for obj in instances:
        if selectors.matches(instance_keys(handler, obj)):
            return obj
    known = {name for obj in instances[:1] for name in instance_keys(handler, obj).as_dict()}
    unknown = [s.name for s in selectors if known and s.name not in known]
    if unknown:
        raise F.InvalidSelectors(detail=F.detail_uri("UnexpectedSelectors"))
    raise F.DestinationUnreachable()


def _check_realm(account: Account, realm: Realm | None) -> None:
    if not account.may(realm):
        raise F.AccessDenied()


async def dispatch(engine: Engine, request: Envelope, account: Account, peer: str) -> Envelope:
    """Answer one authenticated request (never raises a WsmanFault: it becomes the reply)."""
    header = request.header
    try:
        body = await _operate(engine, request, account, peer)
    except F.WsmanFault as fault:
        return engine.fault_reply(header, fault)
    except Exception:
        # A bug in a service must cost one request, not the connection: answer as AMT does when an
        # operation fails inside the firmware, and keep the traceback for the operator.
        log.exception("internal error answering %s on %s", header.action, header.resource_uri)
        return engine.fault_reply(header, F.InternalError(detail="AMT-STATUS 1"))
    return engine.reply(header, body)


async def _operate(engine: Engine, request: Envelope, account: Account, peer: str) -> Body:
    header = request.header
    _check_headers(header)
    handler = engine.registry.lookup(header.resource_uri)
    action = header.action
    if handler is None:
        if action in (Action.PULL, Action.RELEASE) and isinstance(request.body, Pull | Release):
            raise F.InvalidEnumerationContext()
        raise F.DestinationUnreachable(detail=F.detail_uri("InvalidResourceURI"))
    if not all(gate(engine, handler.class_name) for gate in engine.registry.gates):
        raise F.AccessDenied()
    ctx = Context(engine, account, peer, header)

    if action == Action.GET:
        _check_realm(account, handler.realm)
        return _select(handler, engine, header.selectors)

    if action == Action.PUT:
        _check_realm(account, handler.write_realm or handler.realm)
        if handler.put is None:
            raise F.ActionNotSupported()
        new = request.body
        if not isinstance(new, CimObject) or new.element != handler.class_name or new.method_name is not None:
            raise F.InvalidRepresentation(detail=F.detail_uri("InvalidValues"))
        current = _select(handler, engine, header.selectors)
        return await handler.put(ctx, current, new)

    if action == Action.CREATE:
        _check_realm(account, handler.write_realm or handler.realm)
        if handler.create is None:
            raise F.ActionNotSupported()
        new = request.body
        if not isinstance(new, CimObject) or new.element != handler.class_name:
            raise F.InvalidRepresentation(detail=F.detail_uri("InvalidValues"))
        return ResourceCreated(await handler.create(ctx, new))

    if action == Action.DELETE:
        _check_realm(account, handler.write_realm or handler.realm)
        if handler.delete is None:
            raise F.ActionNotSupported()
        await handler.delete(ctx, _select(handler, engine, header.selectors))
        return None

    if action == Action.ENUMERATE:
        _check_realm(account, handler.realm)
        if handler.instances is None:
            raise F.ActionNotSupported()
        req = request.body if isinstance(request.body, Enumerate) else Enumerate()
        items = _items(handler, engine, req.mode)
        if req.optimize:
            context = engine.enumerations.open(handler.resource_uri, items)
            chunk, done = engine.enumerations.take(context, None, req.max_elements or 1)
            return EnumerateResponse(None if done else context, chunk, done)
        return EnumerateResponse(engine.enumerations.open(handler.resource_uri, items))

    if action == Action.PULL:
        _check_realm(account, handler.realm)
        if not isinstance(request.body, Pull):
            raise F.SchemaValidationError(detail="Pull without a Pull body")
        chunk, done = engine.enumerations.take(request.body.context, None, request.body.max_elements)
        return PullResponse(chunk, None if done else request.body.context, done)

    if action == Action.RELEASE:
        if not isinstance(request.body, Release):
            raise F.SchemaValidationError(detail="Release without a Release body")
        engine.enumerations.release(request.body.context)
        return None

    prefix = handler.resource_uri + "/"
    if action.startswith(prefix):
        method_name = action[len(prefix) :]
        method = handler.methods.get(method_name)
        if method is None:
            raise F.ActionNotSupported()
        _check_realm(account, method.realm)
        message = request.body
        if message is None:
            message = CimObject(f"{method_name}_INPUT", handler.resource_uri)
        if not isinstance(message, CimObject) or message.element != f"{method_name}_INPUT":
            raise F.InvalidRepresentation(detail=F.detail_uri("InvalidValues"))
        target = _select(handler, engine, header.selectors) if handler.instances is not None else None
        return await method.fn(ctx, target, message)

    raise F.ActionNotSupported()


def _items(handler: ClassHandler, engine: Engine, mode: str | None) -> list[Item]:
    assert handler.instances is not None
    objs = list(handler.instances(engine))
    if mode == ENUMERATE_EPR:
        return [epr_of(handler, o) for o in objs]
    if mode == ENUMERATE_OBJECT_AND_EPR:
        return [ObjectAndEPR(o, epr_of(handler, o)) for o in objs]
    if mode is not None:
        raise F.UnsupportedFeature(detail=F.detail_uri("EnumerationMode"))
    return list(objs)


def _check_headers(header: Header) -> None:
    """DSP0226 rules AMT enforces on every request (AMT-PROTOCOLS.md §2.3)."""
    if header.option_set is not None and 'mustUnderstand="true"' in header.option_set:
        raise F.MustUnderstand()
    for extra in header.extra:
        if extra.must_understand:
            raise F.MustUnderstand()
    if header.max_envelope_size is not None and header.max_envelope_size < 50000:
        raise F.EncodingLimit(detail=F.detail_uri("MaxEnvelopeSize"))
