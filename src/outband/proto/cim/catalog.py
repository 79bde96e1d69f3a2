"""The class catalog: every AMT, CIM and IPS class outband knows, looked up by name or resource URI."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from ..wsman.namespaces import class_name_of
from .classes import amt, cim, ips
from .schema import CimClass

CATALOG: Final = MappingProxyType({c.name: c for c in (*amt.CLASSES, *cim.CLASSES, *ips.CLASSES)})


def lookup(name_or_uri: str) -> CimClass | None:
    """The class definition for ``AMT_GeneralSettings`` or its full resource URI, or None if unknown."""
    return CATALOG.get(class_name_of(name_or_uri))


def require(name_or_uri: str) -> CimClass:
    """Like :func:`lookup`, but an unknown class is a programming error."""
    cls = lookup(name_or_uri)
    if cls is None:
        raise KeyError(f"class {name_or_uri!r} is not in the catalog")
    return cls
