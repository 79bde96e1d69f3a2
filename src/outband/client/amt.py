"""AmtClient: the generic WS-MAN operations on one device, answered with typed objects.

Every operation is one request/reply exchange (or, for an enumeration, a short series of them) through a
:class:`~outband.aio.wsman_client.WsmanTransport`, which serialises requests per device and speaks Digest.
A reply is checked before it is believed: a SOAP fault is raised as the
:class:`~outband.proto.wsman.WsmanFault` subclass the device sent (``except DestinationUnreachable`` works);
any other reply must relate to our MessageID and carry our action plus ``Response``, or it is a
:class:`~outband.aio.errors.BadResponse`.  The transport is pluggable so a console can share one HTTP session
across a fleet, and later route the same calls through a CIRA channel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, Final, Literal, TypeVar, overload

from ..aio.closing import AsyncClosing
from ..aio.errors import BadResponse, TransportError
from ..aio.wsman_client import WsmanTransport
from ..proto.cim.model import CimObject, key_selectors
from ..proto.wsman import (
    EndpointReference,
    EnumerateResponse,
    Envelope,
    IdentifyResponse,
    ObjectAndEPR,
    PullResponse,
    ResourceCreated,
    SelectorSet,
    WsmanError,
)
from ..proto.wsman import messages as msg
from ..proto.wsman.addressing import SelectorValue
from ..proto.wsman.envelope import Body, Item
from ..proto.wsman.namespaces import ENUMERATE_EPR, ENUMERATE_OBJECT_AND_EPR, Action, resource_uri

Target = str | EndpointReference
"""What an operation addresses: a class name (``AMT_GeneralSettings``), a resource URI, or an instance's EPR."""

Selectors = Mapping[str, SelectorValue] | SelectorSet | None

PULL_BATCH: Final = 999
"""Items asked for per Pull when the caller does not say: what Open AMT's console sends to real firmware."""
MAX_PULLS: Final = 4096
MAX_ITEMS: Final = 100_000
"""Caps that end an enumeration a confused device keeps open forever (a context that never ends)."""
RELEASE_TIMEOUT: Final = 5.0
"""How long an abandoned enumeration may delay the error (or cancellation) that abandoned it."""

_T = TypeVar("_T")


def _target(target: Target, selectors: Selectors) -> tuple[str, Selectors]:
    if isinstance(target, EndpointReference):
        if selectors is not None:
            raise ValueError("give the selectors in the endpoint reference or separately, not both")
        if target.resource_uri is None:
            raise ValueError("the endpoint reference names no resource URI")
        return target.resource_uri, target.selectors or SelectorSet()
    return resource_uri(target), selectors


class AmtClient(AsyncClosing):
    """One AMT device (or anything that speaks WS-MAN like it).

    Connection arguments build a private :class:`WsmanTransport`, closed with the client; a ``transport``
    passed in instead is shared and left open.  ``max_pulls``/``max_items`` bound every enumeration.

    >>> async with AmtClient("10.0.0.5", password=secret) as amt:           # doctest: +SKIP
    ...     settings = await amt.get("AMT_GeneralSettings")
    ...     settings["HostName"] = "lab-7"
    ...     await amt.put(settings)
    """

    def __init__(
        self,
        host: str,
        username: str = "admin",
        password: str | None = None,
        *,
        port: int | None = None,
        tls: bool = False,
        fingerprint: str | None = None,
        verify: bool = True,
        timeout: float = 60.0,
        transport: WsmanTransport | None = None,
        max_pulls: int = MAX_PULLS,
        max_items: int = MAX_ITEMS,
    ) -> None:
        if transport is None:
            transport = WsmanTransport(
                host, username, password, port=port, tls=tls, fingerprint=fingerprint, verify=verify,
                timeout=timeout,
            )
            self._owns_transport = True
        elif password is not None or port is not None or tls or fingerprint is not None:
            raise ValueError("connection arguments belong to the transport when one is given")
        else:
            self._owns_transport = False
        self.transport = transport
        self.max_pulls = max_pulls
        self.max_items = max_items

    @property
    def host(self) -> str:
        return self.transport.host

    async def close(self) -> None:
        if self._owns_transport:
            await self.transport.close()


    # ------------------------------------------------------------------------------------------ exchange

    async def exchange(self, request: Envelope) -> Body:
        """Send any request and return the body of its checked reply (faults raised)."""
        reply = await self.transport.send(request)
        if reply.fault is not None:
            raise reply.fault
        if reply.header.relates_to != request.header.message_id:
            raise BadResponse(
                f"reply relates to {reply.header.relates_to!r}, not to our request {request.header.message_id!r}",
                host=self.host,
            )
        expected = Action.response(request.header.action)
        if reply.header.action != expected:
            raise BadResponse(f"reply action is {reply.header.action!r}, expected {expected!r}", host=self.host)
        return reply.body

    def _expect(self, body: Body, kind: type[_T], operation: str) -> _T:
        if not isinstance(body, kind):
            raise BadResponse(f"{operation} answered with {type(body).__name__}, not {kind.__name__}", host=self.host)
        return body

    def _instance(self, body: Body, operation: str) -> CimObject:
        obj = self._expect(body, CimObject, operation)
        if obj.method_name is not None:
            raise BadResponse(f"{operation} answered with a method message {obj.element}", host=self.host)
        return obj

    # ------------------------------------------------------------------------------------------ operations

    async def identify(self) -> IdentifyResponse:
        """``wsmid:Identify``: product and protocol versions, answered without authentication."""
        return await self.transport.identify()

    async def get(self, cls: Target, selectors: Selectors = None) -> CimObject:
        """The instance of ``cls`` the selectors name (the only or first instance when there are none)."""
        resource, sel = _target(cls, selectors)
        return self._instance(await self.exchange(msg.get(resource, sel)), "Get")

    async def put(self, obj: CimObject, selectors: Selectors = None) -> CimObject:
        """Replace an instance with ``obj`` (Get it, change it, Put it back); returns what the device now holds.

        Without selectors the instance is named by ``obj``'s own key properties.
        """
        sel = key_selectors(obj) if selectors is None else selectors
        return self._instance(await self.exchange(msg.put(obj, sel)), "Put")

    async def create(self, obj: CimObject) -> EndpointReference:
        """Create an instance; returns the reference the device assigned to it."""
        return self._expect(await self.exchange(msg.create(obj)), ResourceCreated, "Create").epr

    async def delete(self, target: Target, selectors: Selectors = None) -> None:
        resource, sel = _target(target, selectors)
        await self.exchange(msg.delete(resource, sel))

    async def invoke(
        self,
        target: Target,
        method: str,
        params: Mapping[str, Any] | CimObject | None = None,
        selectors: Selectors = None,
    ) -> CimObject:
        """Call ``method`` on the instance ``target`` (and selectors) names; returns the ``<Method>_OUTPUT``.

        ``params`` are the input parameters (typed through the catalog), or a ready ``_INPUT`` object.
        """
        resource, sel = _target(target, selectors)
        if isinstance(params, CimObject):
            if params.element != f"{method}_INPUT" or params.resource_uri != resource:
                raise ValueError(f"{params.class_name}.{params.element} is not the input of {method}")
            message = params
        else:
            message = CimObject.method_input(resource, method, params or {})
        output = self._expect(await self.exchange(msg.invoke(message, sel)), CimObject, method)
        if output.element != f"{method}_OUTPUT":
            raise BadResponse(f"{method} answered with {output.element}, not {method}_OUTPUT", host=self.host)
        return output

    @overload
    async def enumerate(self, cls: str, *, mode: None = None, max_elements: int | None = None) -> list[CimObject]:
        ...

    @overload
    async def enumerate(
        self, cls: str, *, mode: Literal["EnumerateEPR"], max_elements: int | None = None
    ) -> list[EndpointReference]:
        ...

    @overload
    async def enumerate(
        self, cls: str, *, mode: Literal["EnumerateObjectAndEPR"], max_elements: int | None = None
    ) -> list[ObjectAndEPR]:
        ...

    @overload
    async def enumerate(
        self, cls: str, *, mode: str | None = None, max_elements: int | None = None
    ) -> list[CimObject] | list[EndpointReference] | list[ObjectAndEPR]:
        ...

    async def enumerate(
        self, cls: str, *, mode: str | None = None, max_elements: int | None = None
    ) -> list[CimObject] | list[EndpointReference] | list[ObjectAndEPR]:
        """Every instance of ``cls``: Enumerate, then Pull until the device says the sequence has ended.

        ``mode`` asks for references (``EnumerateEPR``) or objects with their references
        (``EnumerateObjectAndEPR``) instead of objects; ``max_elements`` is the batch size of each Pull.
        """
        kind = _ITEM_KINDS.get(mode)
        if kind is None:
            raise ValueError(f"unknown enumeration mode {mode!r}")
        items = await self._enumerate(resource_uri(cls), mode, max_elements or PULL_BATCH)
        for item in items:
            if not isinstance(item, kind) or (isinstance(item, CimObject) and item.method_name is not None):
                raise BadResponse(f"enumeration returned a {type(item).__name__} item, expected {kind.__name__}",
                                  host=self.host)
        return items  # type: ignore[return-value]  # every item was just checked to be ``kind``

    async def _enumerate(self, resource: str, mode: str | None, batch: int) -> list[Item]:
        """The Enumerate/Pull loop.  ``EndOfSequence`` ends it even beside a context (seen on real firmware); a
        reply with neither ends it too.  An enumeration left unfinished (error, cap, cancellation) is released
        so the device, which holds few contexts, gets its slot back."""
        opened = self._expect(await self.exchange(msg.enumerate_(resource, mode=mode)), EnumerateResponse,
                              "Enumerate")
        items: list[Item] = list(opened.items)
        context = opened.context
        done = opened.end_of_sequence or context is None
        try:
            pulls = 0
            while not done and context is not None:
                if pulls >= self.max_pulls:
                    raise BadResponse(f"enumeration still open after {pulls} pulls", host=self.host)
                pulls += 1
                page = self._expect(await self.exchange(msg.pull(resource, context, max_elements=batch)),
                                    PullResponse, "Pull")
                items.extend(page.items)
                if len(items) > self.max_items:
                    raise BadResponse(f"enumeration exceeds {self.max_items} items", host=self.host)
                done = page.end_of_sequence or page.context is None
                context = page.context or context
        except BaseException:
            if not done and context is not None:
                await self._release(resource, context)
            raise
        return items

    async def _release(self, resource: str, context: str) -> None:
        """Best effort: the enumeration is being abandoned anyway, so no failure here may mask the reason."""
        with contextlib.suppress(TransportError, WsmanError, TimeoutError):
            async with asyncio.timeout(RELEASE_TIMEOUT):
                await self.exchange(msg.release(resource, context))


_ITEM_KINDS: Final[dict[str | None, type]] = {
    None: CimObject,
    ENUMERATE_EPR: EndpointReference,
    ENUMERATE_OBJECT_AND_EPR: ObjectAndEPR,
}
