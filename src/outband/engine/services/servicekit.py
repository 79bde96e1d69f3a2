"""Method inputs and ReturnValue answers, as AMT_/IPS_ methods speak them.

AMT reports most method failures in-band: the reply is a normal ``<Method>_OUTPUT`` whose ``ReturnValue`` is a
status code (PT_STATUS for AMT_ classes, small per-method tables for IPS_ classes), not a SOAP fault.  Handlers
registered with :func:`status_method` raise :class:`MethodError` with that code as soon as an input is wrong,
and return only the output fields on success; the wrapper turns both into the ``_OUTPUT`` object.

The ``*_param`` readers treat every input as hostile: they cap lengths, refuse values of the wrong type (the
model keeps text that is not in its declared type's canonical form as a ``str``), and accept the base64 line
breaks some consoles send.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, Final

from ...proto.amt import Realm
from ...proto.cim.model import CimObject
from ...proto.wsman import EndpointReference
from ...proto.wsman.namespaces import resource_uri
from ..registry import Context, Service
from .support import ME_SYSTEM_NAME, me_service, method_output

log = logging.getLogger(__name__)

INVALID_PARAMETER: Final = 36
"""PT_STATUS INVALID_PARAMETER (0x24), the usual answer of AMT_ methods to a malformed input."""

StatusHandler = Callable[[Context, "CimObject | None", CimObject], Awaitable[Mapping[str, Any]]]


class MethodError(Exception):
    """A method refused its input or its state: ``code`` becomes the ReturnValue, ``why`` goes to the log."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(why)
        self.code = code
        self.why = why


def status_method(
    service: Service, class_name: str, method: str, *, realm: Realm | None
) -> Callable[[StatusHandler], StatusHandler]:
    """Register ``fn`` as ``class_name.method``; a :class:`MethodError` it raises becomes the ReturnValue."""

    def register(fn: StatusHandler) -> StatusHandler:
        async def handler(ctx: Context, target: CimObject | None, message: CimObject) -> CimObject:
            try:
                fields = await fn(ctx, target, message)
            except MethodError as refused:
                log.info("%s.%s from %s refused (%d): %s", class_name, method, ctx.peer, refused.code, refused.why)
                return method_output(class_name, method, refused.code)
            return method_output(class_name, method, 0, **fields)

        service.method(class_name, method, realm=realm)(handler)
        return fn

    return register


def _present(message: CimObject, name: str, required: bool, code: int) -> bool:
    if name in message and message.get(name) is not None:
        if len(message.getlist(name)) > 1:
            raise MethodError(code, f"{name} is given more than once")
        return True
    if required:
        raise MethodError(code, f"{name} is missing")
    return False


def optional_int(
    message: CimObject, name: str, *, allowed: Collection[int] | None = None, low: int = 0, high: int = 2**32 - 1,
    code: int = INVALID_PARAMETER,
) -> int | None:
    """An integer input within ``low..high`` (and among ``allowed`` when given), or None when absent."""
    if not _present(message, name, False, code):
        return None
    value = message[name]
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 20:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise MethodError(code, f"{name} is not an integer")
    if not low <= value <= high or (allowed is not None and value not in allowed):
        raise MethodError(code, f"{name}={value} is not an accepted value")
    return value


def int_param(
    message: CimObject, name: str, *, allowed: Collection[int] | None = None, low: int = 0, high: int = 2**32 - 1,
    code: int = INVALID_PARAMETER,
) -> int:
    """A required integer input (see :func:`optional_int`)."""
    _present(message, name, True, code)
    value = optional_int(message, name, allowed=allowed, low=low, high=high, code=code)
    assert value is not None
    return value


def bool_param(message: CimObject, name: str, *, code: int = INVALID_PARAMETER) -> bool:
    _present(message, name, True, code)
    value = message[name]
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise MethodError(code, f"{name} is not a boolean")
    return value


def optional_str(message: CimObject, name: str, *, max_length: int, code: int = INVALID_PARAMETER) -> str | None:
    """A text input of at most ``max_length`` characters, or None when absent (an empty element is "")."""
    if not _present(message, name, False, code):
        return None
    value = message[name]
    if not isinstance(value, str):
        raise MethodError(code, f"{name} is not text")
    if len(value) > max_length:
        raise MethodError(code, f"{name} is longer than {max_length} characters")
    return value


def str_param(message: CimObject, name: str, *, max_length: int, code: int = INVALID_PARAMETER) -> str:
    _present(message, name, True, code)
    value = optional_str(message, name, max_length=max_length, code=code)
    assert value is not None
    return value


def optional_bytes(message: CimObject, name: str, *, max_length: int, code: int = INVALID_PARAMETER
                   ) -> bytes | None:
    """A base64 input decoded to at most ``max_length`` bytes, or None when absent; line breaks are tolerated."""
    if not _present(message, name, False, code):
        return None
    value = message[name]
    if isinstance(value, str):
        text = "".join(value.split())
        if len(text) > (max_length + 2) // 3 * 4:
            raise MethodError(code, f"{name} is longer than {max_length} bytes")
        try:
            value = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise MethodError(code, f"{name} is not base64") from None
    if not isinstance(value, bytes):
        raise MethodError(code, f"{name} is not base64")
    if len(value) > max_length:
        raise MethodError(code, f"{name} is longer than {max_length} bytes")
    return value


def bytes_param(message: CimObject, name: str, *, max_length: int, code: int = INVALID_PARAMETER) -> bytes:
    _present(message, name, True, code)
    value = optional_bytes(message, name, max_length=max_length, code=code)
    assert value is not None
    return value


def ref_params(message: CimObject, name: str, *, code: int = INVALID_PARAMETER) -> list[EndpointReference]:
    """Every endpoint reference given as ``name`` (an array parameter repeats the element)."""
    refs = []
    for value in message.getlist(name):
        if not isinstance(value, EndpointReference):
            raise MethodError(code, f"{name} is not an endpoint reference")
        refs.append(value)
    return refs


def optional_ref(message: CimObject, name: str, *, code: int = INVALID_PARAMETER) -> EndpointReference | None:
    refs = ref_params(message, name, code=code)
    if len(refs) > 1:
        raise MethodError(code, f"{name} is given more than once")
    return refs[0] if refs else None


def ref_param(message: CimObject, name: str, *, code: int = INVALID_PARAMETER) -> EndpointReference:
    ref = optional_ref(message, name, code=code)
    if ref is None:
        raise MethodError(code, f"{name} is missing")
    return ref


def selector_text(epr: EndpointReference, name: str) -> str | None:
    """A text selector of an EPR (None when absent or an EPR itself)."""
    value = epr.selector_dict.get(name)
    return value if isinstance(value, str) else None


def service_instance(class_name: str, name: str, element_name: str | None = None, /, **props: Any) -> CimObject:
    """An AMT service (or service access point) instance scoped to the ME, whose ElementName is its Name unless
    told otherwise (AMT_PublicKeyManagementService, for one, is "Intel(r) AMT Certificate Store Service")."""
    if element_name is not None:
        props["ElementName"] = element_name
    return me_service(class_name, name, **props)


def service_epr(class_name: str, name: str) -> EndpointReference:
    """The EPR naming a service instance, with all four keys in AMT's order."""
    return EndpointReference.to(resource_uri(class_name), {
        "CreationClassName": class_name,
        "Name": name,
        "SystemCreationClassName": "CIM_ComputerSystem",
        "SystemName": ME_SYSTEM_NAME,
    })
