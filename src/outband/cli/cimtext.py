"""CIM values as a person types and reads them on a command line.

Parsing goes through the class catalog, so ``PowerState=2`` and ``PowerState=on`` (a ValueMap name),
``SharedFQDN=true``, ``TimeoutPeriod=PT30S`` and ``ManagedElement=CIM_ComputerSystem?Name=ManagedSystem``
become the typed values the wire needs.  Formatting is the inverse, with ValueMap meanings beside numbers
(``2 (On)``); references print in the same ``Class?Key=Value&Key2=Value2`` form they are typed in, so a
reference read from one command can be pasted into the next.  In that form ``%``, ``&`` and ``=`` inside
values are written ``%25``, ``%26`` and ``%3D``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import unquote

from ..proto.cim.model import CimDateTime, CimObject, Value, XmlFragment, parse_duration
from ..proto.cim.schema import CimType, Prop
from ..proto.wsman import EndpointReference, SelectorSet, class_name_of, resource_uri


class CliValueError(ValueError):
    """Text from the command line that cannot become what was asked for; the message says why."""


_CLASS: Final = re.compile(r"^(?:AMT|CIM|IPS)_\w+$")
_EPR_TEXT: Final = re.compile(r"^(?:AMT|CIM|IPS)_\w+\?")
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
_ESCAPES: Final = (("%", "%25"), ("&", "%26"), ("=", "%3D"))

Values = dict[str, Value | list[Value]]


def class_uri(name: str) -> str:
    """The resource URI of a class named on the command line (a class name or a full URI)."""
    if "://" in name:
        return name
    if not _CLASS.match(name):
        raise CliValueError(f"{name!r} is not a class name (AMT_..., CIM_..., IPS_...) or a resource URI")
    return resource_uri(name)


def split_assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not name.replace("_", "").isalnum():
        raise CliValueError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def parse_epr(text: str) -> EndpointReference:
    """``Class?Key=Value&Key2=Value2`` (or just ``Class``) as an endpoint reference."""
    cls, _, query = text.partition("?")
    pairs: list[tuple[str, str | EndpointReference]] = []
    for part in query.split("&") if query else ():
        key, value = split_assignment(part)
        pairs.append((key, unquote(value)))
    return EndpointReference(class_uri(cls), SelectorSet.of(pairs))


def parse_selectors(texts: Iterable[str]) -> SelectorSet:
    """``-s Key=Value`` options; a value in reference form becomes an EPR selector (association keys)."""
    pairs: list[tuple[str, str | EndpointReference]] = []
    for text in texts:
        name, value = split_assignment(text)
        pairs.append((name, parse_epr(value) if _EPR_TEXT.match(value) else value))
    return SelectorSet.of(pairs)


def parse_value(prop: Prop | None, text: str) -> Value:
    """One value typed by its catalog definition; without one it stays text (or a reference, by its form)."""
    if prop is None:
        return parse_epr(text) if _EPR_TEXT.match(text) else text
    t = prop.type
    if t.is_integer:
        return _integer(prop, text)
    if t is CimType.BOOLEAN:
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise CliValueError(f"{prop.name} is a boolean: true or false, not {text!r}")
    if t in (CimType.REAL32, CimType.REAL64):
        try:
            return float(text)
        except ValueError:
            raise CliValueError(f"{prop.name} is a number, not {text!r}") from None
    if t is CimType.DATETIME:
        return _datetime(prop, text)
    if t is CimType.BASE64:
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise CliValueError(f"{prop.name} is binary: give it as base64") from None
    if t is CimType.REFERENCE:
        return parse_epr(text)
    if t is CimType.INSTANCE:
        raise CliValueError(f"{prop.name} is an embedded instance, which cannot be typed on the command line")
    return text


def _integer(prop: Prop, text: str) -> int:
    try:
        number = int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        by_name = {meaning.lower(): value for value, meaning in prop.values.items()}
        if text.strip().lower() in by_name:
            return by_name[text.strip().lower()]
        names = ", ".join(f"{v} ({m})" for v, m in prop.values.items())
        raise CliValueError(f"{prop.name} is a number{': one of ' + names if names else ''}; not {text!r}") from None
    low, high = prop.type.range
    if not low <= number <= high:
        raise CliValueError(f"{prop.name}={number} is out of range for {prop.type.value}")
    return number


def _datetime(prop: Prop, text: str) -> CimDateTime:
    if text.startswith("P"):
        try:
            parse_duration(text)
        except ValueError:
            raise CliValueError(f"{prop.name}: {text!r} is not a duration such as PT30S or P1DT2H") from None
        return CimDateTime("Interval", text)
    try:
        return CimDateTime.of(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise CliValueError(f"{prop.name}: {text!r} is neither a date-time (2024-05-01T12:00:00Z) "
                            "nor a duration (PT30S)") from None


def parse_assignments(texts: Iterable[str], definition: Callable[[str], Prop | None]) -> Values:
    """``NAME=VALUE`` arguments; a name given twice, or naming an array, collects a list."""
    grouped: dict[str, list[Value]] = {}
    for text in texts:
        name, value = split_assignment(text)
        grouped.setdefault(name, []).append(parse_value(definition(name), value))
    out: Values = {}
    for name, values in grouped.items():
        prop = definition(name)
        out[name] = values if (prop is not None and prop.array) or len(values) > 1 else values[0]
    return out


def assign(obj: CimObject, values: Values) -> None:
    """Set typed values on an object; the catalog's own checks (range, type) become command-line errors."""
    for name, value in values.items():
        try:
            obj[name] = value
        except (TypeError, ValueError) as exc:
            raise CliValueError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- formatting


def _escape(value: str) -> str:
    for char, code in _ESCAPES:
        value = value.replace(char, code)
    return value


def format_epr(epr: EndpointReference) -> str:
    parts = []
    for sel in epr.selectors or ():
        value = f"({format_epr(sel.value)})" if isinstance(sel.value, EndpointReference) else _escape(sel.value)
        parts.append(f"{sel.name}={value}")
    return f"{class_name_of(epr.resource_uri or '')}?{'&'.join(parts)}"


def format_value(prop: Prop | None, value: Value) -> str:
    if value is None:
        return "(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        meaning = prop.meaning(value) if prop is not None else None
        return f"{value} ({meaning})" if meaning else str(value)
    if isinstance(value, EndpointReference):
        return format_epr(value)
    if isinstance(value, CimDateTime):
        return value.text
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, CimObject):
        inner = ", ".join(f"{name}={format_values(value, name)}" for name in value.names())
        return f"{value.class_name}({inner})"
    if isinstance(value, XmlFragment):
        return value.xml
    return str(value)


def format_values(obj: CimObject, name: str) -> str:
    """Every value of a field (arrays one per line), formatted with its definition."""
    prop = obj.prop_def(name)
    return "\n".join(format_value(prop, v) for v in obj.getlist(name))
