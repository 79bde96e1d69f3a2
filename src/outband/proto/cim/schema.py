"""The vocabulary of the class catalog: CIM types, property, method and class definitions.

A class definition is data, in the spirit of sushy's ``Field`` mapping: it says which properties a class has,
their CIM types, which are keys, which enums they carry and which methods (with typed in/out parameters) the
class offers.  :mod:`outband.proto.cim.model` uses it to turn XML text into typed Python values and back; the
engine uses it to validate what clients send; the CLI uses it to show names instead of numbers.

Properties are listed in the order AMT emits them (alphabetical in almost every capture), which is also the
order :class:`~outband.proto.cim.model.CimObject` writes new objects in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol

from ..wsman.namespaces import resource_uri


class CimType(enum.Enum):
    STRING = "string"
    BOOLEAN = "boolean"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    UINT64 = "uint64"
    SINT8 = "sint8"
    SINT16 = "sint16"
    SINT32 = "sint32"
    SINT64 = "sint64"
    REAL32 = "real32"
    REAL64 = "real64"
    DATETIME = "datetime"
    """CIM datetime: on the wire a ``cim:Datetime``/``cim:Interval``/``cim:Date``/``cim:Time`` child element."""
    BASE64 = "base64"
    """An octet string carried as base64 text (certificates, log records, UUIDs); typed as ``bytes``."""
    REFERENCE = "reference"
    """An endpoint reference to another instance."""
    INSTANCE = "instance"
    """An embedded instance (e.g. AddAlarm's AlarmTemplate)."""

    @property
    def is_integer(self) -> bool:
        return self in _INTEGER_RANGES

    @property
    def range(self) -> tuple[int, int]:
        return _INTEGER_RANGES[self]


_INTEGER_RANGES: Final = {
    CimType.UINT8: (0, 2**8 - 1),
    CimType.UINT16: (0, 2**16 - 1),
    CimType.UINT32: (0, 2**32 - 1),
    CimType.UINT64: (0, 2**64 - 1),
    CimType.SINT8: (-(2**7), 2**7 - 1),
    CimType.SINT16: (-(2**15), 2**15 - 1),
    CimType.SINT32: (-(2**31), 2**31 - 1),
    CimType.SINT64: (-(2**63), 2**63 - 1),
}

_EMPTY: Final[Mapping[int, str]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Prop:
    """A property of a class, or a parameter of a method.

    ``values`` is the DMTF/Intel ValueMap for enums that matter (number -> meaning); ``ref_class`` names the
    class a REFERENCE or INSTANCE value points at.
    """

    name: str
    type: CimType = CimType.STRING
    array: bool = False
    key: bool = False
    values: Mapping[int, str] = field(default_factory=lambda: _EMPTY)
    ref_class: str | None = None
    description: str = ""

    def meaning(self, value: object) -> str | None:
        """The ValueMap name of ``value``, if this property has one for it."""
        if isinstance(value, int) and not isinstance(value, bool):
            return self.values.get(value)
        return None


@dataclass(frozen=True, slots=True)
class Method:
    """A custom method: typed inputs, typed outputs and the meanings of its ReturnValue."""

    name: str
    inputs: tuple[Prop, ...] = ()
    outputs: tuple[Prop, ...] = ()
    returns: Mapping[int, str] = field(default_factory=lambda: _EMPTY)
    description: str = ""

    def input(self, name: str) -> Prop | None:
        return next((p for p in self.inputs if p.name == name), None)

    def output(self, name: str) -> Prop | None:
        if name == "ReturnValue":
            return Prop("ReturnValue", CimType.UINT32, values=self.returns)
        return next((p for p in self.outputs if p.name == name), None)


@dataclass(frozen=True, slots=True)
class CimClass:
    """One class of the catalog."""

    name: str
    properties: tuple[Prop, ...] = ()
    methods: tuple[Method, ...] = ()
    description: str = ""
    _by_name: dict[str, Prop] = field(init=False, repr=False, compare=False)
    _methods: dict[str, Method] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.properties})
        object.__setattr__(self, "_methods", {m.name: m for m in self.methods})

    @property
    def resource_uri(self) -> str:
        return resource_uri(self.name)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.properties if p.key)

    def prop(self, name: str) -> Prop | None:
        return self._by_name.get(name)

    def method(self, name: str) -> Method | None:
        return self._methods.get(name)

    def order_of(self, name: str) -> int:
        """Position of a property in emission order; unknown names sort after known ones."""
        for i, p in enumerate(self.properties):
            if p.name == name:
                return i
        return len(self.properties)


class _PropMaker(Protocol):
    def __call__(
        self,
        name: str,
        *,
        array: bool = False,
        key: bool = False,
        values: Mapping[int, str] | None = None,
        description: str = "",
    ) -> Prop: ...


# Small constructors keep the catalog readable: ``string("Name", key=True)``, ``uint16("PowerState", ...)``.
def _maker(t: CimType) -> _PropMaker:
    def make(
        name: str,
        *,
        array: bool = False,
        key: bool = False,
        values: Mapping[int, str] | None = None,
        description: str = "",
    ) -> Prop:
        frozen = MappingProxyType(dict(values)) if values else _EMPTY
        return Prop(name, t, array, key, frozen, None, description)

    return make


string = _maker(CimType.STRING)
boolean = _maker(CimType.BOOLEAN)
uint8 = _maker(CimType.UINT8)
uint16 = _maker(CimType.UINT16)
uint32 = _maker(CimType.UINT32)
uint64 = _maker(CimType.UINT64)
sint8 = _maker(CimType.SINT8)
sint16 = _maker(CimType.SINT16)
sint32 = _maker(CimType.SINT32)
sint64 = _maker(CimType.SINT64)
real32 = _maker(CimType.REAL32)
real64 = _maker(CimType.REAL64)
datetime = _maker(CimType.DATETIME)
base64 = _maker(CimType.BASE64)


def ref(name: str, ref_class: str, *, array: bool = False, key: bool = False, description: str = "") -> Prop:
    return Prop(name, CimType.REFERENCE, array, key, _EMPTY, ref_class, description)


def instance(name: str, ref_class: str, *, array: bool = False, description: str = "") -> Prop:
    return Prop(name, CimType.INSTANCE, array, False, _EMPTY, ref_class, description)
