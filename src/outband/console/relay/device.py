"""A stored device as a redirection endpoint, and what to tell the user when a session cannot start.

AMT's redirection port is 16994 (16995 with TLS) on the device's address, or a channel of the device's CIRA
tunnel: the console's device connector chooses (:func:`redirection_streams`).  AMT refuses
a session it is busy with, or whose feature is switched off, before the login; a login it refuses for want of
the user's consent looks on the wire like a wrong password, so :func:`explain` asks the device's opt-in
service which of the two it was.
"""

from __future__ import annotations

import contextlib
from typing import Final

from ...aio.errors import AuthenticationError, ConnectError, RequestTimeout, TransportError
from ...aio.redirection import SessionRefused
from ...client.redirection import StreamFactory
from ...proto.redir.session import StartStatus
from ...proto.wsman import WsmanError
from ..db.models import Device
from ..devices.connect import DeviceTarget
from ..runtime import Runtime
from .access import CLOSE_UNAVAILABLE, Refusal

CONSENT_NONE: Final = 0
CONSENT_KVM: Final = 1
CONSENT_GRANTED: Final = frozenset({3, 4})
"""IPS_OptInService.OptInState: 3 the code was received, 4 a session runs under it."""
FEATURE_NAMES: Final = {"sol": "Serial-over-LAN", "kvm": "KVM", "ider": "IDE-R"}


async def load_target(runtime: Runtime, device_id: int) -> DeviceTarget | None:
    async with runtime.db.read() as session:
        device = await session.get(Device, device_id)
        if device is None:
            return None
        return DeviceTarget.of(device, runtime.box.decrypt(device.password_enc))


def redirection_streams(runtime: Runtime, target: DeviceTarget, timeout: float) -> StreamFactory:
    """How to reach the device's redirection service (over TLS pinned to its stored fingerprint, when it has
    one; a device reached without TLS may have a pin stored for later, which then plays no part)."""
    return runtime.connector.redirection_streams(target, timeout)


async def explain(runtime: Runtime, target: DeviceTarget, kind: str, exc: TransportError) -> Refusal:
    """Why a ``kind`` session (sol, kvm, ider) to the device did not start, in words a user can act on."""
    feature = FEATURE_NAMES.get(kind, kind)
    if isinstance(exc, SessionRefused):
        if exc.status == StartStatus.BUSY:
            return _refusal("busy", f"the device already has a {feature} session open (AMT allows one at a time); "
                                    "close it first")
        if exc.status == StartStatus.UNSUPPORTED:
            return _refusal("disabled", f"{feature} is switched off on the device; enable it in the device's "
                                        "settings")
        return _refusal("refused", f"the device refused the session: {exc}")
    if isinstance(exc, AuthenticationError):
        if kind != "sol" and await _needs_consent(runtime, target, kind):
            return _refusal("consent", "the device asks for the user's consent: start the consent request, then "
                                       "enter the code shown on the device's screen")
        return _refusal("auth", "the device refused the console's credentials for redirection")
    if isinstance(exc, RequestTimeout):
        return _refusal("timeout", f"the device did not answer in time: {exc}")
    if isinstance(exc, ConnectError):
        return _refusal("unreachable", f"cannot reach the device's redirection port: {exc}")
    return _refusal("protocol", f"the session failed: {exc}")


async def _needs_consent(runtime: Runtime, target: DeviceTarget, kind: str) -> bool:
    """The device's opt-in policy covers ``kind`` and no consent is in force (False when it cannot tell)."""
    amt = runtime.connector.client(target, operation="consent")
    try:
        with contextlib.suppress(TransportError, WsmanError):
            service = await amt.get("IPS_OptInService")
            required, state = service.get("OptInRequired"), service.get("OptInState")
            covered = required not in (None, CONSENT_NONE) and (required != CONSENT_KVM or kind == "kvm")
            return covered and state not in CONSENT_GRANTED
    finally:
        await amt.close()
    return False


def _refusal(code: str, message: str) -> Refusal:
    return Refusal(code, message, CLOSE_UNAVAILABLE)
