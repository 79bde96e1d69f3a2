"""Typed CIM objects: instances, method inputs and method outputs, decoded from XML and written back.

A :class:`CimObject` is one XML element (``<g:AMT_GeneralSettings>``, ``<h:AddAlarm_INPUT>``) whose children are
its fields, kept in document order.  Each field's text is typed through the catalog (:mod:`.schema`): numbers
become ``int``, booleans ``bool``, base64 octet strings ``bytes``, CIM datetimes :class:`CimDateTime`, references
:class:`~outband.proto.wsman.addressing.EndpointReference`, embedded instances nested ``CimObject``.  Anything the
catalog does not know, or text that is not in the canonical form of its declared type, stays a ``str``; any
element shape we do not understand is kept verbatim as an :class:`XmlFragment`.  Nothing a device sends is lost,
and writing an object back reproduces the same infoset (names, namespaces, order, values).

Objects read from an envelope are typed lazily (:func:`lazy_object`): a Pull of many instances is mostly read
for a few properties, or only written back, and typing every leaf of every item at parse time cost twice the
XML parse itself.  Everything that can *refuse* a document is still done at parse time -- text mixed with the
fields, and the whole decoding of fields that hold elements (EPRs, datetimes, embedded instances, verbatim
fragments), whose checks reach into their children -- so a parsed envelope is accepted or refused exactly as
before.  What is deferred, typing leaf text, cannot fail: a converter that does not recognise its type's
canonical form keeps the text.  The first access to :attr:`CimObject.fields` (through any reader: item access,
iteration, equality, repr, to_json) types the leaves once and lets go of the parsed element; writing an object
that was never read copies its leaf text straight through, which yields the same bytes as typing it and writing
the typed values back, because typing only ever accepts text that writes back unchanged.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Union, cast

from lxml import etree

from ..wsman.addressing import EndpointReference, SelectorSet, is_epr_element, parse_epr, write_epr_content
from ..wsman.errors import DecodeError
from ..wsman.namespaces import CIM_COMMON, XSI, class_name_of, resource_uri
from ..wsman.xml import XmlWriter, check_container, is_nil, split, verbatim
from .catalog import lookup
from .schema import CimClass, CimType, Method, Prop


@dataclass(frozen=True, slots=True)
class CimDateTime:
    """A CIM datetime value as the wire carries it: the wrapper kind and its text.

    ``kind`` is ``Datetime`` (an instant, ``2024-01-03T00:44:35Z``), ``Interval`` (an xs:duration,
    ``P1DT23H59M``), ``Date`` or ``Time``.
    """

    kind: str
    text: str

    @classmethod
    def of(cls, value: dt.datetime) -> CimDateTime:
        value = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return cls("Datetime", value.strftime("%Y-%m-%dT%H:%M:%SZ"))

    @classmethod
    def interval(cls, value: dt.timedelta) -> CimDateTime:
        return cls("Interval", format_duration(value))

    def as_datetime(self) -> dt.datetime:
        if self.kind != "Datetime":
            raise ValueError(f"a CIM {self.kind} is not an instant")
        return dt.datetime.fromisoformat(self.text.replace("Z", "+00:00"))

    def as_timedelta(self) -> dt.timedelta:
        if self.kind != "Interval":
            raise ValueError(f"a CIM {self.kind} is not an interval")
        return parse_duration(self.text)


_DURATION: Final = re.compile(
    r"^P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> dt.timedelta:
    """An xs:duration such as ``P1DT23H59M``; years and months count 365 and 30 days, as AMT's alarm clock does."""
    m = _DURATION.match(text)
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"not an xs:duration: {text!r}")
    g = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    days = g["y"] * 365 + g["mo"] * 30 + g["d"]
    return dt.timedelta(days=days, hours=g["h"], minutes=g["mi"], seconds=g["s"])


def format_duration(value: dt.timedelta) -> str:
    total = int(value.total_seconds())
    if total < 0:
        raise ValueError("negative durations are not representable")
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{seconds}S" if seconds else "")
    if clock or not days:
        out += "T" + (clock or "0S")
    return out


@dataclass(frozen=True, slots=True)
class XmlFragment:
    """Children of a field element we do not model, kept as serialised XML so they round-trip unchanged."""

    xml: str


Value = Union[
    str, int, bool, float, bytes, CimDateTime, EndpointReference, "CimObject", XmlFragment, None
]
"""A typed field value.  ``None`` is an ``xsi:nil`` element."""

Attrs = tuple[tuple[str | None, str, str], ...]


@dataclass(slots=True)
class Field:
    """One child element of an object: its name, namespace (None = unqualified), typed value, attributes."""

    name: str
    value: Value
    ns: str | None
    attrs: Attrs = ()


_CANON_INT: Final = re.compile(r"^-?(?:0|[1-9][0-9]{0,19})$")
"""Canonical integer text, at most 20 digits (uint64's width): longer text stays a string without ``int()``
refusing it (Python caps the digits it converts)."""


class CimObject:
    """An instance or a method message: an element whose children are typed fields.

    ``element`` is the element's local name (the class name for an instance, ``<Method>_INPUT``/``_OUTPUT``
    for a method message) and ``namespace`` its namespace, which is the class's resource URI.  When an
    embedded instance is written without a wrapping class element (AddAlarm's ``AlarmTemplate``),
    ``wrapped`` is False.
    """

    __slots__ = ("_fields", "_undecoded", "attrs", "element", "namespace", "wrapped")

    def __init__(
        self,
        element: str,
        namespace: str,
        fields: Iterable[Field] = (),
        *,
        attrs: Attrs = (),
        wrapped: bool = True,
    ) -> None:
        self.element = element
        self.namespace = namespace
        self._fields: list[Field] = list(fields)
        self._undecoded: _Undecoded | None = None
        self.attrs = attrs
        self.wrapped = wrapped

    @property
    def fields(self) -> list[Field]:
        """The fields in document order; an object read from the wire types its leaves here, on first use."""
        undecoded = self._undecoded
        if undecoded is not None:
            self._undecoded = None
            self._fields = _decoded_fields(undecoded, typed=True)
        return self._fields

    @fields.setter
    def fields(self, fields: list[Field]) -> None:
        self._undecoded = None
        self._fields = fields

    # ------------------------------------------------------------------------------------------ building

    @classmethod
    def new(cls, class_name: str, properties: Mapping[str, Any] | None = None, /, **kwargs: Any) -> CimObject:
        """A new instance of ``class_name`` with the given properties, in the catalog's emission order."""
        return cls._built(class_name_of(class_name), resource_uri(class_name), {**(properties or {}), **kwargs})

    @classmethod
    def method_input(
        cls, class_name: str, method: str, params: Mapping[str, Any] | None = None, /, **kwargs: Any
    ) -> CimObject:
        """The ``<Method>_INPUT`` element of an Invoke, with parameters in the method's declared order."""
        return cls._built(f"{method}_INPUT", resource_uri(class_name), {**(params or {}), **kwargs})

    @classmethod
    def _built(cls, element: str, namespace: str, values: Mapping[str, Any]) -> CimObject:
        """One pass: type-check each value and order the fields as the catalog emits them (names it does not
        know follow, in the order given)."""
        defs = _field_defs(namespace, element)
        order = _order_index(namespace, element, defs)
        fields: list[Field] = []
        for name, value in sorted(values.items(), key=lambda item: order.get(item[0], len(order))):
            found = defs.get(name)
            items = list(value) if isinstance(value, list | tuple) else [value]
            if found is not None:
                items = [_coerce_for(found[0], v) for v in items]
            fields.extend(Field(name, v, namespace) for v in items)
        return cls(element, namespace, fields)

    # ------------------------------------------------------------------------------------------ identity

    @property
    def resource_uri(self) -> str:
        return self.namespace

    @property
    def class_name(self) -> str:
        return class_name_of(self.namespace)

    @property
    def cls(self) -> CimClass | None:
        return lookup(self.namespace)

    @property
    def method_name(self) -> str | None:
        """``AddAlarm`` for ``AddAlarm_INPUT``/``AddAlarm_OUTPUT``; None for an instance."""
        for suffix in ("_INPUT", "_OUTPUT"):
            if self.element.endswith(suffix):
                return self.element[: -len(suffix)]
        return None

    @property
    def is_output(self) -> bool:
        return self.element.endswith("_OUTPUT")

    def prop_def(self, name: str) -> Prop | None:
        """The catalog definition of a field (a class property, or a method parameter)."""
        return _prop_def(self.cls, self.element, name)

    # ------------------------------------------------------------------------------------------ access

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.fields)

    def __getitem__(self, name: str) -> Value | list[Value]:
        values = self.getlist(name)
        if not values:
            raise KeyError(name)
        definition = self.prop_def(name)
        if (definition is not None and definition.array) or len(values) > 1:
            return values
        return values[0]

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def getlist(self, name: str) -> list[Value]:
        return [f.value for f in self.fields if f.name == name]

    def names(self) -> list[str]:
        """Field names in document order, each once."""
        return list(dict.fromkeys(f.name for f in self.fields))

    def properties(self) -> dict[str, Value | list[Value]]:
        return {name: self[name] for name in self.names()}

    def __setitem__(self, name: str, value: Any) -> None:
        """Set a field (a list sets an array); it keeps its place, or a new one goes where the catalog puts it."""
        definition = self.prop_def(name)
        values = list(value) if isinstance(value, list | tuple) else [value]
        if definition is not None:
            values = [_coerce_for(definition, v) for v in values]
        positions = [i for i, f in enumerate(self.fields) if f.name == name]
        ns = self.fields[positions[0]].ns if positions else self.namespace
        new = [Field(name, v, ns) for v in values]
        if positions:
            at = positions[0]
            self.fields = [f for f in self.fields if f.name != name]
        else:
            at = self._insert_position(name)
        self.fields[at:at] = new

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self.fields = [f for f in self.fields if f.name != name]

    def _insert_position(self, name: str) -> int:
        order = _field_order(self.cls, self.element)
        if order is None or name not in order:
            return len(self.fields)
        mine = order[name]
        for i, f in enumerate(self.fields):
            if order.get(f.name, len(order)) > mine:
                return i
        return len(self.fields)

    def copy(self) -> CimObject:
        return CimObject(
            self.element,
            self.namespace,
            [Field(f.name, f.value.copy() if isinstance(f.value, CimObject) else f.value, f.ns, f.attrs)
             for f in self.fields],
            attrs=self.attrs,
            wrapped=self.wrapped,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CimObject):
            return NotImplemented
        return (self.element, self.namespace, self.fields, self.wrapped) == (
            other.element, other.namespace, other.fields, other.wrapped
        )

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.properties().items())
        return f"<{self.element} {body}>"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view: class, element, properties with typed values (see :func:`value_to_json`)."""
        out: dict[str, Any] = {"class": self.class_name}
        if self.element != self.class_name:
            out["element"] = self.element
        props: dict[str, Any] = {}
        for name, value in self.properties().items():
            props[name] = [value_to_json(v) for v in value] if isinstance(value, list) else value_to_json(value)
        out["properties"] = props
        return out


def key_selectors(obj: CimObject, keys: Iterable[str] | None = None) -> SelectorSet:
    """The selector set naming ``obj``: its key properties (the catalog's, unless ``keys`` are given)."""
    if keys is None:
        cls = obj.cls
        keys = cls.keys if cls is not None else ()
    pairs: list[tuple[str, str | EndpointReference]] = []
    for key in keys:
        value = obj.get(key)
        if isinstance(value, EndpointReference | str):
            pairs.append((key, value))
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, int):
            pairs.append((key, str(value)))
    return SelectorSet.of(pairs)


def value_to_json(value: Value) -> Any:
    if isinstance(value, CimObject):
        return value.to_json()
    if isinstance(value, EndpointReference):
        return epr_to_json(value)
    if isinstance(value, CimDateTime):
        return {value.kind: value.text}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, XmlFragment):
        return {"xml": value.xml}
    return value


def epr_to_json(epr: EndpointReference) -> dict[str, Any]:
    selectors = {
        s.name: epr_to_json(s.value) if isinstance(s.value, EndpointReference) else s.value
        for s in (epr.selectors or SelectorSet())
    }
    return {"address": epr.address, "resource_uri": epr.resource_uri, "selectors": selectors}


# ---------------------------------------------------------------------------------------------- typing


_RETURN_VALUE: Final = Prop("ReturnValue", CimType.UINT32)


def _prop_def(cls: CimClass | None, element: str, name: str) -> Prop | None:
    if cls is None:
        # Every CIM method returns a uint32, even on a class the catalog does not know.
        return _RETURN_VALUE if name == "ReturnValue" and element.endswith("_OUTPUT") else None
    if element == cls.name:
        return cls.prop(name)
    method = _method_of(cls, element)
    if method is None:
        return None
    return method.output(name) if element.endswith("_OUTPUT") else method.input(name)


def _method_of(cls: CimClass, element: str) -> Method | None:
    for suffix in ("_INPUT", "_OUTPUT"):
        if element.endswith(suffix):
            return cls.method(element[: -len(suffix)])
    return None


def _field_order(cls: CimClass | None, element: str) -> dict[str, int] | None:
    if cls is None:
        return None
    if element == cls.name:
        return {p.name: i for i, p in enumerate(cls.properties)}
    method = _method_of(cls, element)
    if method is None:
        return None
    params = (*method.outputs, method.output("ReturnValue")) if element.endswith("_OUTPUT") else method.inputs
    return {p.name: i for i, p in enumerate(params) if p is not None}


def _coerce_for(definition: Prop, value: Any) -> Value:
    """Check a Python value against a property's type when it is set (a programming error raises)."""
    t = definition.type
    if value is None:
        return None
    if t.is_integer:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{definition.name} is {t.value}, not {type(value).__name__}")
        lo, hi = t.range
        if not lo <= value <= hi:
            raise ValueError(f"{definition.name}={value} is out of range for {t.value}")
        return value
    if t is CimType.BOOLEAN and not isinstance(value, bool):
        raise TypeError(f"{definition.name} is boolean, not {type(value).__name__}")
    if t is CimType.DATETIME:
        if isinstance(value, dt.datetime):
            return CimDateTime.of(value)
        if isinstance(value, dt.timedelta):
            return CimDateTime.interval(value)
    if isinstance(value, XmlFragment):
        return value  # verbatim XML is the caller's responsibility
    accepted = _ACCEPTED.get(t, ())
    if t is CimType.BASE64 and isinstance(value, bytearray | memoryview):
        return bytes(value)
    if t in (CimType.REAL32, CimType.REAL64) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, accepted) and not (isinstance(value, bool) and bool not in accepted):
        return cast(Value, value)
    raise TypeError(f"{definition.name} is {t.value}, not {type(value).__name__}")


_ACCEPTED: Final[dict[CimType, tuple[type, ...]]] = {
    CimType.STRING: (str,),
    CimType.BOOLEAN: (bool,),
    CimType.REAL32: (float, int),
    CimType.REAL64: (float, int),
    CimType.DATETIME: (CimDateTime,),
    CimType.BASE64: (bytes,),
    CimType.REFERENCE: (EndpointReference,),
    CimType.INSTANCE: (CimObject,),
}


def _to_bool(text: str) -> Value:
    return True if text == "true" else False if text == "false" else text


def _integer(t: CimType) -> Callable[[str], Value]:
    lo, hi = t.range

    def convert(text: str) -> Value:
        if _CANON_INT.match(text):
            number = int(text)
            if lo <= number <= hi:
                return number
        return text

    return convert


def _to_bytes(text: str) -> Value:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text
    return raw if base64.b64encode(raw).decode("ascii") == text else text


def _to_real(text: str) -> Value:
    try:
        number = float(text)
    except ValueError:
        return text
    return number if repr(number) == text else text


_CONVERTERS: Final[dict[CimType, Callable[[str], Value]]] = {
    CimType.BOOLEAN: _to_bool,
    CimType.BASE64: _to_bytes,
    CimType.REAL32: _to_real,
    CimType.REAL64: _to_real,
    **{t: _integer(t) for t in CimType if t.is_integer},
}
"""Text -> typed value per CIM type, only for text in canonical form (so a value always round-trips)."""


def _typed_text(definition: Prop | None, text: str) -> Value:
    """Type leaf text by its declared CIM type (strings, datetimes and unknown fields stay text)."""
    convert = _CONVERTERS.get(definition.type) if definition is not None else None
    return convert(text) if convert is not None else text


# ---------------------------------------------------------------------------------------------- decoding


FieldDef = tuple[Prop, "Callable[[str], Value] | None"]
"""A field's definition and the converter for its leaf text (None: the text stays a string)."""

_DEFS_CACHE: dict[tuple[str, str], dict[str, FieldDef]] = {}


def _field_defs(ns: str, element: str) -> dict[str, FieldDef]:
    """Field name -> (definition, converter) for an object element, cached: the catalog never changes at run
    time, and this lookup would otherwise cost more than the XML parse itself."""
    key = (ns, element)
    defs = _DEFS_CACHE.get(key)
    if defs is None:
        cls = lookup(ns)
        props: tuple[Prop, ...] = ()
        if cls is not None:
            if element == cls.name:
                props = cls.properties
            else:
                method = _method_of(cls, element)
                if method is not None:
                    returned = method.output("ReturnValue")
                    assert returned is not None
                    props = (*method.outputs, returned) if element.endswith("_OUTPUT") else method.inputs
        elif element.endswith("_OUTPUT"):
            props = (_RETURN_VALUE,)
        defs = {p.name: (p, _CONVERTERS.get(p.type)) for p in props}
        if len(_DEFS_CACHE) < 4096:  # unknown namespaces from a hostile peer must not grow it without end
            _DEFS_CACHE[key] = defs
    return defs


_Undecoded = tuple[etree._Element, str, str, tuple[Value, ...]]
"""The fields of an object, checked but not decoded yet: the element holding them, their class namespace, the
object's element name (the class, or ``<Method>_INPUT``/``_OUTPUT``) whose catalog definitions type them, and
the values of the fields that hold elements, in document order, decoded at parse time -- or None for an
EPR-shaped field, decoded on first read (a field holding elements is never nil, so None is free to mean that).
A plain tuple: one is made per parsed instance, and a class would cost a measurable share of the parse."""


def lazy_object(el: etree._Element, *, wrapped: bool = True) -> CimObject:
    """An instance or method-message element as an object whose leaf fields are typed when first read.

    Refuses, now, everything that typing every field at once would refuse: a missing namespace, text mixed
    with the fields, and anything wrong inside a field that holds elements.
    """
    tag = el.tag
    if not isinstance(tag, str) or tag[:1] != "{":
        raise DecodeError(f"object element {split(tag)[1]!r} has no namespace (expected a class resource URI)")
    ns, _, local = tag[1:].partition("}")
    undecoded = _checked_fields(el, ns, local)
    # Slots set directly: one object per parsed instance, and __init__'s keyword handling and list copy cost a
    # tenth of the whole per-instance parse.
    obj = object.__new__(CimObject)
    obj.element = local
    obj.namespace = ns
    obj.attrs = _attrs(el) if el.keys() else ()
    obj.wrapped = wrapped
    obj._fields = []
    obj._undecoded = undecoded
    return obj


def _checked_fields(el: etree._Element, ns: str, element_name: str) -> _Undecoded:
    """Check the children of ``el`` as fields of ``element_name`` in ``ns``: text between them would be lost,
    so it is refused.  A field holding elements is decoded now (its checks reach into it) unless it holds an
    EPR: past its own mixed-text check, decoding one cannot fail (an EPR we cannot read is kept verbatim)."""
    text = el.text
    if text and not text.isspace():
        raise DecodeError(f"text mixed with the fields of {split(el.tag)[1]}")
    held: list[Value] | None = None
    for child in el[:]:  # a slice builds the list in C: cheaper than iterating, for few fields
        tail = child.tail
        if tail and not tail.isspace():
            raise DecodeError(f"text mixed with the fields of {split(el.tag)[1]}")
        if len(child):
            if held is None:
                held = []
            if is_epr_element(child):
                check_container(child, split(child.tag)[1], attributes=True)  # decode_value's first check
                held.append(None)
            else:
                held.append(decode_value(child))  # a field's definition only types leaf text
    return el, ns, element_name, () if held is None else tuple(held)


def _order_index(ns: str, element: str, defs: dict[str, FieldDef]) -> dict[str, int]:
    """Emission order of an object's fields (the catalog lists them in AMT's order)."""
    return {name: i for i, name in enumerate(defs)}


def _decoded_fields(undecoded: _Undecoded, *, typed: bool) -> list[Field]:
    """The fields of an element :func:`lazy_object` accepted, leaves typed unless ``typed`` is False (then they
    keep their text, for writing straight back)."""
    el, ns, element_name, held_values = undecoded
    defs = _field_defs(ns, element_name) if typed else {}
    held = iter(held_values)
    prefix = "{" + ns + "}"
    cut = len(prefix)
    fields: list[Field] = []
    for child in el:
        ctag = child.tag
        convert = None
        if isinstance(ctag, str) and ctag.startswith(prefix):
            cns: str | None = ns
            cname = ctag[cut:]
            found = defs.get(cname)
            if found is not None:
                convert = found[1]
        else:
            cns, cname = split(ctag)
        attrs = _attrs(child) if child.keys() else ()
        if len(child):
            value = next(held)
            fields.append(Field(cname, decode_value(child) if value is None else value, cns, attrs))
        elif attrs and is_nil(child):
            fields.append(Field(cname, None, cns, tuple(a for a in attrs if a[:2] != (XSI, "nil"))))
        else:
            # Leaf text is kept exactly (an SMBIOS PartNumber may end in a blank AMT really sends).
            value = child.text or ""
            fields.append(Field(cname, convert(value) if convert is not None else value, cns, attrs))
    return fields


def decode_value(el: etree._Element, definition: Prop | None = None) -> Value:
    """Decode one field element into a typed value."""
    first = next(iter(el), None)
    if first is None:
        if is_nil(el):
            return None
        return _typed_text(definition, el.text or "")
    check_container(el, split(el.tag)[1], attributes=True)
    if is_epr_element(el):
        try:
            return parse_epr(el)
        except DecodeError:
            return _fragment(el)
    fns, flocal = split(first.tag)
    if len(el) == 1 and fns == CIM_COMMON and len(first) == 0 and not first.keys():
        return CimDateTime(flocal, (first.text or "").strip())
    if fns is not None and fns.startswith(("http://intel.com/wbem/wscim/", "http://schemas.dmtf.org/wbem/wscim/1/cim-schema")):
        if len(el) == 1 and flocal == class_name_of(fns):
            return lazy_object(first)
        # An embedded instance written without its class element: the children are its properties.
        inner = CimObject(class_name_of(fns), fns, wrapped=False)
        inner._undecoded = _checked_fields(el, fns, class_name_of(fns))
        return inner
    return _fragment(el)


def _fragment(el: etree._Element) -> XmlFragment:
    return XmlFragment("".join(verbatim(child) for child in el))


def _attrs(el: etree._Element) -> Attrs:
    out = []
    for key, value in el.items():
        ns, local = split(str(key))
        out.append((ns, local, str(value)))
    return tuple(out)


# ---------------------------------------------------------------------------------------------- encoding


def write_object(w: XmlWriter, obj: CimObject) -> None:
    """Write an object element (or, for an unwrapped embedded instance, just its fields)."""
    if obj.wrapped:
        w.start(obj.namespace, obj.element, obj.attrs)
    undecoded = obj._undecoded
    # Never read: its leaf text is what typing and writing back would produce (see the module docstring).
    fields = obj.fields if undecoded is None else _decoded_fields(undecoded, typed=False)
    for f in fields:
        write_field(w, f)
    if obj.wrapped:
        w.end()


def write_field(w: XmlWriter, f: Field) -> None:
    value = f.value
    attrs = f.attrs
    if value is None:
        if not any(a[0] == XSI and a[1] == "nil" for a in attrs):
            attrs = (*attrs, (XSI, "nil", "true"))
        w.leaf(f.ns, f.name, "", attrs)
        return
    if isinstance(value, str):
        w.leaf(f.ns, f.name, value, attrs)
        return
    if isinstance(value, bool):
        w.leaf(f.ns, f.name, "true" if value else "false", attrs)
        return
    if isinstance(value, int | float):
        w.leaf(f.ns, f.name, repr(value) if isinstance(value, float) else str(value), attrs)
        return
    if isinstance(value, bytes):
        w.leaf(f.ns, f.name, base64.b64encode(value).decode("ascii"), attrs)
        return
    w.start(f.ns, f.name, attrs)
    if isinstance(value, CimDateTime):
        w.leaf(CIM_COMMON, value.kind, value.text)
    elif isinstance(value, EndpointReference):
        write_epr_content(w, value)
    elif isinstance(value, CimObject):
        write_object(w, value)
    else:
        w.raw(value.xml)
    w.end()

