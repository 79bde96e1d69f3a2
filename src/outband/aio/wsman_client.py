"""WS-Management over HTTP(S) to one device, on aiohttp, with AMT's flavour of Digest.

Theory of operation: every request to a device goes through :meth:`WsmanTransport.post` under the lock of its
:class:`DigestState`, so requests to one device are serialised (AMT serves few sessions, and Digest's ``nc``
must rise in the order the device sees requests: AMT, and our engine, count a repeated or lower ``nc`` as a
failed login).  A transport makes its own state unless it is handed one: transports sharing a state share the
nonce, its count and the lock, so a transport made for the next job attempt answers at once with the nonce an
earlier one proved.  Without a challenge the request goes out bare and earns a 401 challenge; from then on the
nonce is reused with an increasing ``nc``, costing one round trip per call.  A challenge is *proven* once a
request answered under it got a reply other than 401.  A 401 on a proven nonce means the device dropped it
(expired, forgotten in a restart): adopt the new challenge and retry once.  A 401 to the first answer of an
unproven challenge, without ``stale=true``, means the credentials are wrong (or the device is in its
anti-hammering lockout), and is final: the challenge is forgotten, so a wrong password costs the device one
counted failure per attempt, never two.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Final

import aiohttp

from ..proto.digest import DigestClient, DigestError
from ..proto.wsman import DecodeError, Envelope, parse_envelope
from ..proto.wsman import messages as msg
from ..proto.wsman.envelope import IdentifyResponse
from .closing import AsyncClosing
from .errors import (
    AuthenticationError,
    BadResponse,
    CertificateMismatch,
    ConnectError,
    RequestTimeout,
    TransportError,
)
from .tls import client_context, normalize_fingerprint

HTTP_PORT: Final = 16992
TLS_PORT: Final = 16993
MAX_REPLY_BYTES: Final = 8 * 1024 * 1024
CONTENT_TYPE: Final = "application/soap+xml;charset=UTF-8"


def _direct_connector() -> aiohttp.BaseConnector:
    """One connection per device at a time: AMT serves few sessions, and Digest wants ordered requests."""
    return aiohttp.TCPConnector(limit_per_host=1, enable_cleanup_closed=False)


def _is_stale(challenge: str) -> bool:
    """Whether a 401's challenge says the nonce was dropped while the credentials were right."""
    compact = challenge.replace(" ", "").lower()
    return 'stale="true"' in compact or "stale=true" in compact


class DigestState:
    """One account's Digest conversation with one device: the client (challenge, ``nc``), whether its challenge
    is proven, and the lock every request under it holds.  Share one between transports to the same device and
    account (see the console's device connector) and each new transport skips the challenge round trip.

    ``client`` is None for a transport without credentials (it only identifies).
    """

    __slots__ = ("client", "lock", "proven")

    def __init__(self, client: DigestClient | None) -> None:
        self.client = client
        self.lock = asyncio.Lock()
        self.proven = False
        """Whether a request answered under the current challenge got a reply other than 401."""

    def adopt(self, challenge: str) -> None:
        """Take a new challenge from a 401; it is unproven until a request answered under it gets through."""
        assert self.client is not None
        self.proven = False
        self.client.handle_challenge(challenge)

    def forget(self) -> None:
        """Drop the challenge: the next request goes out bare, as a first one does."""
        self.proven = False
        if self.client is not None:
            self.client.reset()


class WsmanTransport(AsyncClosing):
    """The WS-MAN endpoint of one device.

    ``fingerprint`` pins the device certificate's SHA-256 (self-signed AMT certificates); ``verify=False``
    skips verification without pinning (explicitly insecure).  A shared ``session`` lets a fleet worker reuse
    one connection pool; otherwise the transport owns its own.  A shared ``digest`` state (instead of
    ``username``/``password``) lets transports to the same device reuse each other's nonce.
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
        legacy_tls: bool = False,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        connector_factory: Callable[[], aiohttp.BaseConnector] | None = None,
        path: str = "/wsman",
        digest: DigestState | None = None,
    ) -> None:
        self.host = host
        self.port = port or (TLS_PORT if tls else HTTP_PORT)
        self.tls = tls
        self.path = path
        bracketed = f"[{host}]" if ":" in host else host
        self.url = f"{'https' if tls else 'http'}://{bracketed}:{self.port}{path}"
        if digest is not None and password is not None:
            raise ValueError("give a password or a shared digest state, not both")
        if digest is None:
            digest = DigestState(DigestClient(username, password) if password is not None else None)
        self._digest = digest
        self.server_header: str | None = None
        """The ``Server`` header of the last reply: AMT names its firmware version there."""
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._session = session
        self._connector_factory = connector_factory or _direct_connector
        self._owns_session = session is None
        self._ssl: ssl.SSLContext | aiohttp.Fingerprint | bool
        if not tls:
            self._ssl = False
        elif fingerprint:
            self._ssl = aiohttp.Fingerprint(normalize_fingerprint(fingerprint))
        else:
            self._ssl = client_context(verify=verify, legacy=legacy_tls)
            if not verify and not legacy_tls:
                self._ssl = False

    @property
    def username(self) -> str | None:
        client = self._digest.client
        return client.username if client is not None else None

    def _session_or_new(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=self._connector_factory(), auto_decompress=False)
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None


    # ------------------------------------------------------------------------------------------ requests

    async def send(self, envelope: Envelope) -> Envelope:
        """Send a request envelope and return the reply envelope (a fault reply is returned, not raised)."""
        status, body = await self.post(envelope.to_bytes())
        return self._parse(status, body)

    async def identify(self) -> IdentifyResponse:
        """``wsmid:Identify``, which AMT answers without authentication."""
        status, body = await self.post(msg.identify().to_bytes(), authenticate=False)
        reply = self._parse(status, body)
        if reply.fault is not None:
            raise reply.fault
        if not isinstance(reply.body, IdentifyResponse):
            raise BadResponse("Identify answered without an IdentifyResponse", host=self.host)
        return reply.body

    def _parse(self, status: int, body: bytes) -> Envelope:
        if status not in (200, 400, 500):
            raise BadResponse(f"unexpected HTTP status {status}", host=self.host, status=status)
        try:
            return parse_envelope(body)
        except DecodeError as exc:
            raise BadResponse(f"unreadable reply (HTTP {status}): {exc}", host=self.host, status=status) from None

    async def post(self, payload: bytes, *, authenticate: bool = True) -> tuple[int, bytes]:
        """POST one SOAP payload, answering Digest challenges; returns (status, body)."""
        state = self._digest
        async with state.lock:
            for _ in range(3):
                headers = {"Content-Type": CONTENT_TYPE}
                digest = state.client if authenticate else None
                answered = digest is not None and digest.challenge is not None
                answered_unproven = answered and not state.proven
                if digest is not None and answered:
                    headers["Authorization"] = digest.authorization("POST", self.path, payload)
                status, resp_headers, body = await self._round_trip(payload, headers)
                self.server_header = resp_headers.get("Server", self.server_header)
                if status != 401 or not authenticate:
                    state.proven = state.proven or answered
                    return status, body
                if digest is None:
                    raise AuthenticationError("the device requires credentials", host=self.host)
                challenge = resp_headers.get("WWW-Authenticate", "")
                if answered_unproven and not _is_stale(challenge):
                    state.forget()
                    raise AuthenticationError(
                        "credentials refused (wrong user or password, or the device is locked out after "
                        "repeated failures)",
                        host=self.host,
                    )
                try:
                    state.adopt(challenge)
                except DigestError as exc:
                    state.forget()
                    raise AuthenticationError(f"unusable challenge: {exc}", host=self.host) from None
            raise AuthenticationError("the device keeps refusing fresh challenges", host=self.host)

    async def _round_trip(self, payload: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        session = self._session_or_new()
        try:
            async with session.post(
                self.url, data=payload, headers=headers, ssl=self._ssl, timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                length = resp.content_length
                if length is not None and length > MAX_REPLY_BYTES:
                    raise BadResponse(f"reply of {length} bytes is too large", host=self.host, status=resp.status)
                body = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > MAX_REPLY_BYTES:
                        raise BadResponse("reply is too large", host=self.host, status=resp.status)
                return resp.status, dict(resp.headers), bytes(body)
        except TransportError:
            raise
        except aiohttp.ServerFingerprintMismatch:
            raise CertificateMismatch("TLS certificate does not match the pinned fingerprint", host=self.host) from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise ConnectError(f"TLS certificate rejected: {exc.certificate_error}", host=self.host) from None
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"cannot connect to port {self.port}: {exc.strerror or exc}", host=self.host) from None
        except TimeoutError:
            raise RequestTimeout(f"no reply within {self._timeout.total:g} s", host=self.host) from None
        except aiohttp.ClientResponseError as exc:
            raise BadResponse(f"malformed HTTP reply: {exc.message}", host=self.host) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectError(f"connection failed: {exc}", host=self.host) from None
