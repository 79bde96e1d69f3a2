"""How AMT services plug into the engine: one handler per class, registered by service modules.

A service module (``services/power.py``...) creates a :class:`Service` and decorates plain functions:

* ``@svc.instances("AMT_GeneralSettings", realm=Realm.GENERAL_INFO)`` -- the class's current instances,
  computed from engine state on demand (nothing is kept per engine but state, so a fleet stays small);
* ``@svc.put(...)``, ``@svc.create(...)``, ``@svc.delete(...)`` -- the transfer operations it allows;
* ``@svc.method("CIM_PowerManagementService", "RequestPowerStateChange", realm=Realm.REMOTE_CONTROL)``.

The dispatcher (``dispatch.py``) resolves resource URI -> :class:`ClassHandler`, checks the caller's realm,
matches selectors against instance keys and calls the function.  Faults are raised as
:class:`~outband.proto.wsman.WsmanFault` subclasses and rendered by the dispatcher.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..proto.amt import Realm
from ..proto.cim.model import CimObject
from ..proto.wsman import EndpointReference, Header, SelectorSet
from ..proto.wsman.namespaces import class_name_of, resource_uri

if TYPE_CHECKING:
    from .acl import Account
    from .core import Engine


@dataclass(slots=True)
class Context:
    """One authenticated request as a handler sees it."""

    engine: Engine
    account: Account
    peer: str
    header: Header

    @property
    def selectors(self) -> SelectorSet:
        return self.header.selectors


InstancesFn = Callable[["Engine"], Iterable[CimObject]]
PutFn = Callable[[Context, CimObject, CimObject], Awaitable["CimObject | None"]]
"""(ctx, current instance, instance sent by the client) -> instance after the change, or None for the empty
body some AMT classes answer a Put with."""
CreateFn = Callable[[Context, CimObject], Awaitable[EndpointReference]]
DeleteFn = Callable[[Context, CimObject], Awaitable[None]]
MethodFn = Callable[[Context, "CimObject | None", CimObject], Awaitable[CimObject]]
"""(ctx, target instance or None for a class-level call, the _INPUT) -> the _OUTPUT."""


@dataclass(slots=True)
class MethodHandler:
    fn: MethodFn
    realm: Realm | None


@dataclass(slots=True)
class ClassHandler:
    """Everything the engine can do with one resource URI.

    ``realm`` guards reads; ``write_realm`` guards Put/Create/Delete (defaults to ``realm``).  ``None`` means
    any authenticated user.  ``keys`` are the selector names that identify an instance (from the catalog
    when not given).
    """

    class_name: str
    realm: Realm | None = None
    write_realm: Realm | None = None
    instances: InstancesFn | None = None
    put: PutFn | None = None
    create: CreateFn | None = None
    delete: DeleteFn | None = None
    methods: dict[str, MethodHandler] = field(default_factory=dict)
    keys: tuple[str, ...] | None = None

    @property
    def resource_uri(self) -> str:
        return resource_uri(self.class_name)


F = TypeVar("F", bound=Callable[..., Any])


class Service:
    """A named group of class handlers; the engine merges all services into one :class:`Registry`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.handlers: dict[str, ClassHandler] = {}
        self.attach_hooks: list[Callable[[Engine], None]] = []
        self.start_hooks: list[Callable[[Engine], None]] = []
        self.stop_hooks: list[Callable[[Engine], None]] = []
        self.gates: list[Callable[[Engine, str], bool]] = []

    def gate(self, fn: Callable[[Engine, str], bool]) -> Callable[[Engine, str], bool]:
        """``fn(engine, class_name)`` may refuse a class for now (before provisioning AMT serves only a few):
        a refused request gets AccessDenied whoever asks."""
        self.gates.append(fn)
        return fn

    def on_start(self, fn: Callable[[Engine], None]) -> Callable[[Engine], None]:
        """Run ``fn(engine)`` when the engine starts, inside the event loop (timers are armed here)."""
        self.start_hooks.append(fn)
        return fn

    def on_stop(self, fn: Callable[[Engine], None]) -> Callable[[Engine], None]:
        """Run ``fn(engine)`` when the engine stops (nothing of a stopped engine may still fire)."""
        self.stop_hooks.append(fn)
        return fn

    def on_attach(self, fn: Callable[[Engine], None]) -> Callable[[Engine], None]:
        """Run ``fn(engine)`` once when an engine with this service is built (to subscribe to its events)."""
        self.attach_hooks.append(fn)
        return fn

    def handler(self, class_name: str) -> ClassHandler:
        key = class_name_of(class_name)
        if key not in self.handlers:
            self.handlers[key] = ClassHandler(key)
        return self.handlers[key]

    def instances(
        self, class_name: str, *, realm: Realm | None, write_realm: Realm | None = None,
        keys: tuple[str, ...] | None = None,
    ) -> Callable[[InstancesFn], InstancesFn]:
        def register(fn: InstancesFn) -> InstancesFn:
            h = self.handler(class_name)
            h.instances, h.realm, h.keys = fn, realm, keys
            h.write_realm = write_realm if write_realm is not None else h.write_realm
            return fn
        return register

    def put(self, class_name: str) -> Callable[[PutFn], PutFn]:
        def register(fn: PutFn) -> PutFn:
            self.handler(class_name).put = fn
            return fn
        return register

    def create(self, class_name: str) -> Callable[[CreateFn], CreateFn]:
        def register(fn: CreateFn) -> CreateFn:
            self.handler(class_name).create = fn
            return fn
        return register

    def delete(self, class_name: str) -> Callable[[DeleteFn], DeleteFn]:
        def register(fn: DeleteFn) -> DeleteFn:
            self.handler(class_name).delete = fn
            return fn
        return register

    def method(self, class_name: str, method: str, *, realm: Realm | None) -> Callable[[MethodFn], MethodFn]:
        def register(fn: MethodFn) -> MethodFn:
            self.handler(class_name).methods[method] = MethodHandler(fn, realm)
            return fn
        return register


class Registry:
    """All handlers of an engine, by class name.  It holds no engine state, so engines running the same
    services share one (:func:`registry_for`)."""

    def __init__(self, services: Iterable[Service]) -> None:
        self.handlers: dict[str, ClassHandler] = {}
        self.attach_hooks: list[Callable[[Engine], None]] = []
        self.start_hooks: list[Callable[[Engine], None]] = []
        self.stop_hooks: list[Callable[[Engine], None]] = []
        self.gates: list[Callable[[Engine, str], bool]] = []
        for service in services:
            self.gates.extend(service.gates)
            self.attach_hooks.extend(service.attach_hooks)
            self.start_hooks.extend(service.start_hooks)
            self.stop_hooks.extend(service.stop_hooks)
            for name, handler in service.handlers.items():
                if name in self.handlers:
                    raise ValueError(f"class {name} is registered by two services")
                self.handlers[name] = handler

    def lookup(self, uri: str | None) -> ClassHandler | None:
        if not uri:
            return None
        return self.handlers.get(class_name_of(uri))


@functools.lru_cache(maxsize=32)
def registry_for(services: tuple[Service, ...]) -> Registry:
    """The registry of these services, built once and shared by every engine that runs them (a fleet of ten
    thousand engines holds one).  Services are registered at import time, so a built registry never changes."""
    return Registry(services)
