"""Settings instances: AMT defaults plus what clients changed, persisted, served as typed CIM objects.

Most AMT setting classes (AMT_GeneralSettings, AMT_BootSettingData, AMT_EthernetPortSettings...) behave
alike: a fixed instance whose writable properties a console changes with Get-modify-Put.  :class:`SettingsClass`
captures that once: the defaults, which properties are writable, and where changes live in the state store.
A Put changes only writable properties (read-only ones a console echoes back are ignored, as AMT ignores
them), refuses key changes and mistyped values, and persists the change in one transaction.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..proto.cim.model import CimDateTime, CimObject, Value
from ..proto.cim.schema import CimType
from ..proto.wsman import faults as F

if TYPE_CHECKING:
    from .core import Engine

Json = Any
MEMO_SIZE = 64
"""Built instances kept per settings class (see :meth:`SettingsClass.instance`)."""


def to_json(value: Value | list[Value]) -> Json:
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, CimDateTime):
        return {"cim": value.kind, "text": value.text}
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if value is None or isinstance(value, str | int | bool | float):
        return value
    raise TypeError(f"cannot persist a {type(value).__name__}")


def from_json(value: Json) -> Value | list[Value]:
    if isinstance(value, list):
        return [_scalar_from_json(v) for v in value]
    return _scalar_from_json(value)


def _scalar_from_json(value: Json) -> Value:
    if isinstance(value, dict):
        if "cim" in value:
            return CimDateTime(str(value["cim"]), str(value["text"]))
        if "base64" in value:
            return base64.b64decode(str(value["base64"]))
    if value is None or isinstance(value, str | int | bool | float):
        return value
    raise TypeError(f"unexpected stored value {value!r}")


@dataclass(frozen=True, slots=True)
class SettingsClass:
    """One settings instance.  ``defaults`` may depend on the engine (host name, MAC...)."""

    class_name: str
    instance_id: str
    defaults: Callable[[Engine], Mapping[str, Any]]
    writable: frozenset[str]
    _built: OrderedDict[int, tuple[dict[str, Any], CimObject]] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False)
    """The last instances built, with the values each was built from, least recently used first; keyed by
    ``id(engine)`` only to find a likely match (see :meth:`instance`)."""

    @property
    def store_key(self) -> str:
        return f"settings/{self.class_name}/{self.instance_id}"

    def values(self, engine: Engine) -> dict[str, Any]:
        merged = dict(self.defaults(engine))
        stored = engine.store.get(self.store_key) or {}
        merged.update({k: from_json(v) for k, v in stored.items()})
        return merged

    def instance(self, engine: Engine) -> CimObject:
        """The instance as it stands, built from its values; a copy, so a caller may change it freely.

        Building a typed instance costs far more than a Get's other work, and consoles poll settings, so the
        last one built for an engine is kept with the values it was built from, and reused only while the values
        are identical: identical values always build the same instance, so a memo is never stale, whatever its
        key (even an id reused by a later engine).  The memo is bounded: a fleet polled engine after engine
        keeps the most recent few, not one per engine.
        """
        values = self.values(engine)
        key = id(engine)
        memo = self._built.get(key)
        if memo is None or not _identical(memo[0], values):
            memo = (values, CimObject.new(self.class_name, values))
            self._built[key] = memo
            while len(self._built) > MEMO_SIZE:
                self._built.popitem(last=False)
        self._built.move_to_end(key)
        return memo[1].copy()

    def update(self, engine: Engine, changes: Mapping[str, Any]) -> None:
        """Persist ``changes`` (already validated) on top of what is stored."""
        stored = dict(engine.store.get(self.store_key) or {})
        stored.update({k: to_json(v) for k, v in changes.items()})
        engine.store.set(self.store_key, stored)

    def changes_from_put(self, current: CimObject, new: CimObject) -> dict[str, Any]:
        """The writable properties a Put changes; key changes and mistyped values are faults."""
        cls = current.cls
        changes: dict[str, Any] = {}
        for name in new.names():
            definition = cls.prop(name) if cls is not None else None
            if definition is not None and definition.key:
                if name in current and new[name] != current[name]:
                    raise F.InvalidRepresentation(f"key property {name} cannot change",
                                                  detail=F.detail_uri("InvalidValues"))
                continue
            if name not in self.writable:
                continue
            value = new[name]
            if definition is not None:
                _check_type(name, definition.type, definition.array, value)
            if name not in current or current[name] != value:
                changes[name] = value
        return changes


def _identical(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (``1 == True`` for Python, not on the wire)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(v, b[k]) for k, v in a.items())
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(_identical, a, b))
    return bool(a == b)


def _check_type(name: str, t: CimType, array: bool, value: Value | list[Value]) -> None:
    values = value if isinstance(value, list) else [value]
    if len(values) > 1 and not array:
        raise F.InvalidRepresentation(f"{name} is not an array", detail=F.detail_uri("InvalidValues"))
    for v in values:
        ok = (
            (t is CimType.BOOLEAN and isinstance(v, bool))
            or (t.is_integer and isinstance(v, int) and not isinstance(v, bool) and t.range[0] <= v <= t.range[1])
            or (t is CimType.STRING and isinstance(v, str))
            or (t not in (CimType.BOOLEAN, CimType.STRING) and not t.is_integer)
        )
        if not ok:
            raise F.InvalidRepresentation(f"{name}: {v!r} is not a valid {t.value}",
                                          detail=F.detail_uri("InvalidValues"))
