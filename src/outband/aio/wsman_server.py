"""The HTTP side of an AMT-compatible WS-MAN endpoint, on aiohttp.web.

Theory of operation: ``POST /wsman`` bodies are capped before they are read.  A request without credentials
is answered with AMT's HTML 401 and a Digest challenge -- except ``wsmid:Identify``, which AMT answers
anonymously.  A request with credentials is verified by the endpoint's :class:`DigestVerifier` (shared with
the redirection listener, so anti-hammering counts both); only then is the body parsed and handed to the
endpoint's ``dispatch``.  Replies go out chunked with AMT's headers; SOAP faults as HTTP 400 (§2.1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from aiohttp import web

from ..proto.digest import AuthResult, DigestVerifier, Reason
from ..proto.wsman import DecodeError, Envelope, parse_envelope
from ..proto.wsman import faults as F
from ..proto.wsman.envelope import Header, Identify
from ..proto.wsman.messages import reply

MAX_REQUEST_BYTES: Final = 512 * 1024
"""AMT's own limit is far smaller; MaxEnvelopeSize must be >= 50000, so this leaves ample room."""

SOAP_CONTENT_TYPE: Final = "application/soap+xml; charset=UTF-8"
LOGIN_FAILED_HTML: Final = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" >\n<html><head>'
    b'<link rel=stylesheet href=/styles.css>\n<meta http-equiv="Content-Type" content="text/html; '
    b'charset=utf-8">\n<title>Intel&reg; Active Management Technology</title></head>\n<body>\n'
    b'<table class=header>\n<tr><td valign=top nowrap>\n<p class=top1>Intel<font class=r><sup>&reg;'
    b'</sup></font> Active Management Technology\n</td></tr></table>\n<br>\n<h2 class=warn>Log on failed. '
    b"Incorrect user name or password, or user account temporarily locked.</h2>\n\n<p>\n"
    b"<form METHOD=\"GET\" action=\"index.htm\"><h2><input type=submit value=\"Try again\">\n</h2></form>\n"
    b"<p>\n\n</body>\n</html>\n"
)


class WsmanEndpoint(Protocol):
    """What the HTTP adapter needs from the engine."""

    verifier: DigestVerifier
    server_header: str

    async def dispatch(self, envelope: Envelope, user: str, peer: str) -> Envelope:
        """Answer an authenticated request (faults are returned as fault envelopes, not raised)."""
        ...

    def identify(self, envelope: Envelope) -> Envelope:
        """Answer an anonymous ``wsmid:Identify``."""
        ...

    def login_failed(self, result: AuthResult, peer: str) -> None:
        """Record a failed login (AMT audits 1605 and logs sensor type 6)."""
        ...

    def fault_reply(self, request: Header, fault: F.WsmanFault) -> Envelope:
        """A fault reply with the endpoint's own MessageID sequence."""
        ...


EndpointResolver = Callable[[web.Request], "WsmanEndpoint | None"]
"""Picks the endpoint for a request: one engine, or (fleet mode) the engine owning the local address."""


def add_wsman_routes(app: web.Application, resolve: EndpointResolver, path: str = "/wsman") -> None:
    app.router.add_post(path, _handler(resolve))


def _peer(request: web.Request) -> str:
    return request.remote or "unknown"


def _handler(resolve: EndpointResolver) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        endpoint = resolve(request)
        if endpoint is None:
            raise web.HTTPNotFound()
        peer = _peer(request)
        if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
            return _fault_response(endpoint, Header(), F.EncodingLimit(
                detail=F.detail_uri("MaxEnvelopeSize")), close=True)
        body = await _read_capped(request)
        if body is None:
            return _fault_response(endpoint, Header(), F.EncodingLimit(
                detail=F.detail_uri("MaxEnvelopeSize")), close=True)

        authorization = request.headers.get("Authorization")
        # Identify is answered with or without credentials: curl --digest first sends an empty body to earn
        # the challenge, then the Identify with an Authorization header (wsl does this).
        if b"Identify" in body:
            try:
                envelope = parse_envelope(body)
            except DecodeError:
                envelope = None
            if envelope is not None and isinstance(envelope.body, Identify):
                return _soap_response(endpoint, endpoint.identify(envelope))

        result = endpoint.verifier.verify(
            request.method, authorization, body, expected_uri=request.raw_path, peer=peer
        )
        if not result.ok:
            if result.counted:
                endpoint.login_failed(result, peer)
            return _unauthorized(endpoint, stale=result.reason is Reason.STALE_NONCE)
        assert result.username is not None
        try:
            envelope = parse_envelope(body, max_bytes=MAX_REQUEST_BYTES)
        except DecodeError as exc:
            fault: F.WsmanFault = (
                F.EncodingLimit(str(exc)) if exc.limit else F.SchemaValidationError(detail=str(exc)[:200])
            )
            return _fault_response(endpoint, Header(), fault)
        answer = await endpoint.dispatch(envelope, result.username, peer)
        return _soap_response(endpoint, answer)

    return handle


async def _read_capped(request: web.Request) -> bytes | None:
    """The whole body however it was chunked on the wire, or None once it passes the cap."""
    body = bytearray()
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            return None


def _unauthorized(endpoint: WsmanEndpoint, *, stale: bool) -> web.Response:
    return web.Response(
        status=401,
        body=LOGIN_FAILED_HTML,
        headers={
            "WWW-Authenticate": endpoint.verifier.challenge(stale=stale),
            "Content-Type": "text/html",
            "Server": endpoint.server_header,
            "Connection": "close",
        },
    )


def _fault_response(
    endpoint: WsmanEndpoint, header: Header, fault: F.WsmanFault, *, close: bool = False
) -> web.Response:
    return _soap_response(endpoint, endpoint.fault_reply(header, fault), close=close)


def _soap_response(endpoint: WsmanEndpoint, envelope: Envelope, *, close: bool = False) -> web.Response:
    """AMT's chunked reply, handed to aiohttp whole: headers, the one chunk and the terminating chunk then
    leave in a single write (one segment on the wire) instead of three."""
    fault = envelope.fault
    response = web.Response(
        status=fault.http_status if fault is not None else 200,
        body=envelope.to_bytes(),
        headers={
            "Content-Type": SOAP_CONTENT_TYPE,
            "X-Frame-Options": "DENY",
            "Server": endpoint.server_header,
        },
    )
    if close:
        response.force_close()
    response.enable_chunked_encoding()
    return response


__all__ = ["MAX_REQUEST_BYTES", "WsmanEndpoint", "add_wsman_routes", "reply"]
