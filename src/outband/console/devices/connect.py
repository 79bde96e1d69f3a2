"""From a stored device to a WS-MAN conversation with it.

One :class:`DeviceConnector` per console holds the connection pool every device conversation shares (bounded
by ``device_concurrency``, one connection per device address).  ``connector.client(target)`` hands out an
:class:`~outband.client.AmtClient` whose every exchange is timed into the console's WS-MAN latency histogram.
``connector.check(target)`` is what adding a device runs: reach it, verify its TLS identity, authenticate, and
read its firmware version, provisioning mode, UUID and power state.  Its failures say which step failed, so
the user learns whether to fix the address, the certificate pin or the password.

The connector also remembers each device's Digest state (:class:`DigestCache`): every transport it hands out
for a device shares the nonce the last one proved, so a job attempt costs the device one HTTP request per
WS-MAN exchange instead of a challenge round trip first (and over another MPS node's relay, one connection
instead of two).

A device whose transport is CIRA is not dialled: it dials the console's MPS, and its WS-MAN calls and
redirection sessions travel as channels of its tunnel.  The MPS plugs its tunnel registry in as
``connector.cira`` (:class:`CiraRoutes`); the transport and the redirection streams handed out here are the
same objects either way, so nothing above this module knows which path a device takes.  A CIRA device without
a tunnel to this console fails its exchanges with :class:`DeviceOffline`, an unreachable device's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import ssl
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, TypeVar

import aiohttp

from ...aio.errors import AuthenticationError, BadResponse, ConnectError, RequestTimeout, TransportError
from ...aio.redirection import REDIRECTION_PORT, REDIRECTION_TLS_PORT, RedirectionStream
from ...aio.tls import client_context, normalize_fingerprint
from ...aio.wsman_client import DigestState, WsmanTransport
from ...client import AmtClient, services
from ...client.redirection import StreamFactory
from ...client.streams import direct_stream
from ...proto.cim.model import CimObject
from ...proto.digest import DigestClient
from ...proto.wsman import IdentifyResponse, WsmanError, WsmanFault
from ..db.models import Device, Transport
from ..metrics import ConsoleMetrics

CheckFailure = Literal[
    "unreachable", "timeout", "tls_pin_mismatch", "tls_untrusted", "not_amt", "auth_refused", "fault",
]
MAX_FACT_LENGTH: Final = 32
DIGEST_CACHE_DEVICES: Final = 100_000
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class DeviceTarget:
    """Everything needed to talk to one device, its password decrypted (never printed: ``repr`` hides it)."""

    device_id: int | None
    name: str
    host: str
    username: str
    password: str = field(repr=False)
    http_port: int = 16992
    tls_port: int = 16993
    use_tls: bool = False
    fingerprint: str | None = None
    transport: Transport = Transport.DIRECT

    @property
    def port(self) -> int:
        return self.tls_port if self.use_tls else self.http_port

    @property
    def redirection_port(self) -> int:
        return REDIRECTION_TLS_PORT if self.use_tls else REDIRECTION_PORT

    @classmethod
    def of(cls, device: Device, password: str) -> DeviceTarget:
        return cls(device.id, device.name, device.host, device.username, password, device.http_port,
                   device.tls_port, device.use_tls, device.fingerprint, device.transport)


class DeviceOffline(ConnectError):
    """A CIRA device that has no tunnel to this console now; it is reachable again once it dials back in."""

    def __init__(self, reason: str, *, host: str | None = None) -> None:
        super().__init__(f"device offline (CIRA): {reason}", host=host)
        self.reason = reason


class CiraRoutes(Protocol):
    """How the console reaches devices that dial in (``console.mps`` implements it)."""

    def __contains__(self, device_id: object) -> bool:
        """Whether the device has a tunnel here now."""
        ...

    def connector(self, target: DeviceTarget) -> aiohttp.BaseConnector:
        """aiohttp connections to the device's WS-MAN port as channels of its tunnel (each fails with
        :class:`DeviceOffline` while it has none)."""
        ...

    async def open_redirection(self, target: DeviceTarget, seconds: float) -> RedirectionStream:
        """A channel to the device's redirection port (16995 with TLS, else 16994), opened within ``seconds``;
        raises a ConnectError."""
        ...

    def when_online(self, device_id: int, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` once when the device next dials in; returns what cancels that."""
        ...


class OfflineConnector(aiohttp.BaseConnector):
    """Connections that cannot be made: every one fails with :class:`DeviceOffline` (the request is never sent,
    so a job retries it like any unreachable device)."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__()
        self.host = host
        self.reason = reason

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109 -- aiohttp's
        raise DeviceOffline(self.reason, host=self.host)


class DeviceCheckError(Exception):
    """A device failed the check before being added or changed; ``reason`` says which step."""

    def __init__(self, reason: CheckFailure, message: str, *, presented_fingerprint: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.presented_fingerprint = presented_fingerprint


@dataclass(slots=True)
class DeviceFacts:
    """What the check learnt about a device (the start of its last known state)."""

    amt_version: str | None = None
    provisioning_mode: str | None = None
    uuid: str | None = None
    power_state: int | None = None
    fingerprint: str | None = None
    """SHA-256 of the certificate the device presented (TLS only)."""


class _MeasuredTransport(WsmanTransport):
    """A transport that reports each request's duration and transport failures to the console's metrics."""

    def __init__(self, *args: object, observe: Callable[[float, str | None], None], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._observe = observe

    async def post(self, payload: bytes, *, authenticate: bool = True) -> tuple[int, bytes]:
        started = time.perf_counter()
        failure: str | None = None
        try:
            return await super().post(payload, authenticate=authenticate)
        except TransportError as exc:
            failure = type(exc).__name__
            raise
        finally:
            self._observe(time.perf_counter() - started, failure)


class _TunnelClient(AmtClient):
    """Over CIRA the transport has a session of its own (its connections are channels of one tunnel): closing
    the client closes it."""

    async def close(self) -> None:
        await super().close()
        await self.transport.close()


_DeviceRoute = tuple[int | None, Transport, str, int, bool]


class DigestCache:
    """Each device's Digest state, so that every transport to a device shares the nonce an earlier one proved.

    An entry is found by how the device is reached (its id, route, address, port and TLS) and is used only for
    the same username and password: the password is compared as an HMAC-SHA-256 under a key drawn when the
    cache is made, so the cache keeps no second copy of it in clear (the entry's DigestClient holds the one it
    answers challenges with) and no plain hash to test guesses against.  Other credentials replace the entry;
    a transport still holding the old state keeps its own nonce, so the two never share a nonce count.

    Bounded: beyond ``capacity`` devices the least recently used entry goes (its device pays one challenge
    round trip next time).  One entry with a proven challenge costs about 1.2 KiB (tracemalloc, CPython 3.11:
    the key with its address, the password hash, DigestState, its lock, DigestClient, the parsed challenge, the
    password and HA1), so the default 100,000 devices hold about 115 MiB at most.
    """

    def __init__(self, capacity: int = DIGEST_CACHE_DEVICES) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._hash_key = secrets.token_bytes(32)
        self._entries: OrderedDict[_DeviceRoute, tuple[str, bytes, DigestState]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def forget(self, device_id: int) -> None:
        """Drop a device's entries (it was deleted, or how it is reached or logged in to changed): its password
        leaves memory now rather than when the LRU gets to it."""
        for route in [route for route in self._entries if route[0] == device_id]:
            del self._entries[route]

    def state(self, target: DeviceTarget) -> DigestState:
        """The shared state for this device and these credentials (made, or replaced, as needed)."""
        route = (target.device_id, target.transport, target.host, target.port, target.use_tls)
        password_hash = hmac.new(self._hash_key, target.password.encode("utf-8", "surrogatepass"),
                                 hashlib.sha256).digest()
        entry = self._entries.get(route)
        if entry is not None and entry[0] == target.username and hmac.compare_digest(entry[1], password_hash):
            self._entries.move_to_end(route)
            return entry[2]
        state = DigestState(DigestClient(target.username, target.password))
        self._entries[route] = (target.username, password_hash, state)
        self._entries.move_to_end(route)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return state


def _peek_context() -> ssl.SSLContext:
    """For reading a certificate without trusting it: no verification, no CA store to load (loading one per
    probe would stall the event loop during a scan), old protocol versions allowed so old firmware answers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # deliberately: TLS 1.0 is all the oldest AMT firmware speaks
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


class DeviceConnector:
    def __init__(self, metrics: ConsoleMetrics, *, concurrency: int = 256, timeout: float = 15.0,
                 connect_timeout: float = 5.0, digest_cache_devices: int = DIGEST_CACHE_DEVICES) -> None:
        self.metrics = metrics
        self.digests = DigestCache(digest_cache_devices)
        """Each device's nonce, shared by the transports handed out for it."""
        self.concurrency = concurrency
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None
        self._peek = _peek_context()
        self._verifying: ssl.SSLContext | None = None
        self.cira: CiraRoutes | None = None
        """The MPS's tunnels, while it runs."""

    @property
    def http(self) -> aiohttp.ClientSession:
        """The shared pool (made on first use, inside the running loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=1),
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def transport(self, target: DeviceTarget, *, operation: str = "other", verify: bool = True,
                  timeout: float | None = None) -> WsmanTransport:
        histogram = self.metrics.wsman_latency.labels(operation=operation)

        def observe(seconds: float, failure: str | None) -> None:
            histogram.observe(seconds)
            if failure is not None:
                self.metrics.wsman_errors.labels(operation=operation, kind=failure).inc()

        route: dict[str, Any] = {"session": self.http}
        if target.transport is Transport.CIRA:  # a session of its own, on the tunnel the device has when it is used
            route = {"connector_factory": lambda: self._cira_connector(target)}
        return _MeasuredTransport(
            target.host, port=target.port, tls=target.use_tls, digest=self.digests.state(target),
            fingerprint=target.fingerprint, verify=verify, timeout=timeout or self.timeout,
            connect_timeout=self.connect_timeout, observe=observe, **route,
        )

    def _cira_connector(self, target: DeviceTarget) -> aiohttp.BaseConnector:
        if self.cira is None:
            return OfflineConnector(target.host, "this console runs no MPS")
        return self.cira.connector(target)

    def reachable_now(self, target: DeviceTarget) -> bool:
        """Whether a call to the device could go out now (a CIRA device must have dialled in; a LAN device is
        only known by trying)."""
        if target.transport is not Transport.CIRA:
            return True
        return self.cira is not None and target.device_id in self.cira

    def when_online(self, target: DeviceTarget, callback: Callable[[], None]) -> Callable[[], None] | None:
        """Have ``callback`` called once when a CIRA device dials in (None: nothing to wait for here -- a LAN
        device, or no MPS in this process); the returned function cancels the wish."""
        if target.transport is not Transport.CIRA or self.cira is None or target.device_id is None:
            return None
        return self.cira.when_online(target.device_id, callback)

    def redirection_streams(self, target: DeviceTarget, timeout: float) -> StreamFactory:
        """How to reach the device's redirection service: its port over TCP (over TLS pinned to its stored
        fingerprint, when it has one), or a channel of its CIRA tunnel."""
        if target.transport is Transport.CIRA:
            async def through_tunnel() -> RedirectionStream:
                if self.cira is None:
                    raise DeviceOffline("this console runs no MPS", host=target.host)
                return await self.cira.open_redirection(target, timeout)

            return through_tunnel
        return direct_stream(target.host, target.redirection_port,
                             tls=target.use_tls, fingerprint=target.fingerprint if target.use_tls else None,
                             timeout=timeout)

    async def identify(self, host: str, port: int, *, tls: bool, seconds: float
                       ) -> tuple[IdentifyResponse, str | None]:
        """Identify an endpoint without credentials (discovery); for TLS also the certificate's fingerprint,
        which the Identify exchange is then pinned to."""
        fingerprint = await self.peer_fingerprint(host, port, seconds=seconds) if tls else None
        transport = WsmanTransport(host, port=port, tls=tls, fingerprint=fingerprint, timeout=seconds,
                                   connect_timeout=seconds, session=self.http)
        return await transport.identify(), fingerprint

    def client(self, target: DeviceTarget, *, operation: str = "other") -> AmtClient:
        """A client for one device over the shared pool (or its tunnel); ``operation`` labels its latency
        samples (use a bounded set of names: the job's operation).  Close it when done."""
        transport = self.transport(target, operation=operation)
        if target.transport is Transport.CIRA:
            return _TunnelClient(target.host, transport=transport)
        return AmtClient(target.host, transport=transport)

    # ------------------------------------------------------------------------------------------ check

    async def check(self, target: DeviceTarget) -> DeviceFacts:
        """Connect and authenticate as the console will; raise :class:`DeviceCheckError` saying what failed."""
        facts = DeviceFacts()
        if target.use_tls:
            facts.fingerprint = await self._check_tls(target)
        client = self.client(target, operation="check")
        try:
            identity = await _classified(client.identify())
            await _classified(services.general_settings(client))
            facts.amt_version = _short(identity.product_version.removeprefix("AMT").strip()) or None
            with contextlib.suppress(TransportError, WsmanError):
                version = (await client.get("CIM_SoftwareIdentity", {"InstanceID": "AMT"})).get("VersionString")
                facts.amt_version = _short(version) if isinstance(version, str) and version else facts.amt_version
            with contextlib.suppress(TransportError, WsmanError):
                facts.provisioning_mode = provisioning_mode(await client.get("AMT_SetupAndConfigurationService"))
            with contextlib.suppress(TransportError, WsmanError, ValueError):
                guid = (await client.get("CIM_ComputerSystemPackage")).get("PlatformGUID")
                facts.uuid = platform_uuid(guid) if isinstance(guid, str) else None
            with contextlib.suppress(TransportError, WsmanError):
                facts.power_state = await services.power_state(client)
        finally:
            await client.close()
        return facts

    async def _check_tls(self, target: DeviceTarget) -> str:
        presented = await self.peer_fingerprint(target.host, target.tls_port)
        if target.fingerprint is not None:
            if normalize_fingerprint(target.fingerprint) != bytes.fromhex(presented):
                raise DeviceCheckError(
                    "tls_pin_mismatch",
                    f"TLS pin mismatch: the device presents a certificate with SHA-256 {presented}, not the pinned "
                    "fingerprint",
                    presented_fingerprint=presented,
                )
            return presented
        if self._verifying is None:
            self._verifying = client_context(verify=True)
        try:
            await self._handshake(target.host, target.tls_port, self._verifying)
        except ssl.SSLCertVerificationError as exc:
            raise DeviceCheckError(
                "tls_untrusted",
                f"TLS certificate not trusted ({exc.verify_message}); pin its SHA-256 fingerprint {presented} if it "
                "is the device's own",
                presented_fingerprint=presented,
            ) from None
        return presented

    async def peer_fingerprint(self, host: str, port: int, *, seconds: float | None = None) -> str:
        """SHA-256 (hex) of the certificate a TLS endpoint presents, read without trusting it."""
        return await self._handshake(host, port, self._peek, seconds)

    async def _handshake(self, host: str, port: int, context: ssl.SSLContext, seconds: float | None = None) -> str:
        seconds = seconds or self.connect_timeout
        try:
            async with asyncio.timeout(seconds):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=context, server_hostname=host if context.check_hostname else None)
        except ssl.SSLCertVerificationError:
            raise
        except TimeoutError:
            raise DeviceCheckError("timeout", f"{host}:{port}: no TLS handshake within {seconds:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise DeviceCheckError("unreachable", f"{host}:{port}: cannot connect over TLS: {exc}") from None
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            if not der:
                raise DeviceCheckError("not_amt", f"{host}:{port} presented no certificate")
            return hashlib.sha256(der).hexdigest()
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                async with asyncio.timeout(1):
                    await writer.wait_closed()
            del reader


async def _classified(call: Awaitable[_T]) -> _T:
    """Await one step of the check, turning its failure into the reason a user can act on."""
    try:
        return await call
    except AuthenticationError as exc:
        raise DeviceCheckError("auth_refused", f"authentication refused: {exc}") from None
    except RequestTimeout as exc:
        raise DeviceCheckError("timeout", f"no answer: {exc}") from None
    except ConnectError as exc:
        raise DeviceCheckError("unreachable", f"unreachable: {exc}") from None
    except BadResponse as exc:
        raise DeviceCheckError("not_amt", f"not an AMT endpoint: {exc}") from None
    except WsmanFault as exc:
        raise DeviceCheckError("fault", f"the device refused: {exc}") from None


def _short(value: str) -> str:
    return value[:MAX_FACT_LENGTH]


_MODES: Final = {1: "acm", 4: "ccm"}
_STATES: Final = {0: "pre", 1: "in"}


def provisioning_mode(service: CimObject) -> str | None:
    """``acm``/``ccm`` once provisioned, else ``pre`` or ``in`` (from AMT_SetupAndConfigurationService)."""
    state, mode = service.get("ProvisioningState"), service.get("ProvisioningMode")
    if state == 2:
        return _MODES.get(mode) if isinstance(mode, int) else None
    return _STATES.get(state) if isinstance(state, int) else None


def platform_uuid(guid: str) -> str:
    """PlatformGUID (32 hex digits, first three fields little-endian as in SMBIOS) as a UUID string."""
    return str(uuid.UUID(bytes_le=bytes.fromhex(guid)))
