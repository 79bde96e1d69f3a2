"""The engine's HTTP face on 16992/16993: WS-MAN plus AMT's read-only status page at ``/``.

One aiohttp application serves every engine of the process: the local address a request arrived on picks the
engine (fleet mode gives each engine its own loopback address), so ten thousand engines share one app.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence

from aiohttp import web

from ..aio.wsman_server import add_wsman_routes
from ..proto.amtlog import AuditRecord, EventRecord
from .core import Engine

ENGINES_KEY = web.AppKey("engines", dict[str, Engine])


def local_address(request: web.Request) -> str | None:
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    return str(sockname[0]) if sockname else None


def engine_for(request: web.Request) -> Engine | None:
    engines = request.app[ENGINES_KEY]
    if len(engines) == 1:
        return next(iter(engines.values()))
    address = local_address(request)
    return engines.get(address) if address is not None else None


def make_app(engines: Mapping[str, Engine]) -> web.Application:
    """An app for engines keyed by the address they listen on."""
    app = web.Application(client_max_size=1024 * 1024)
    app[ENGINES_KEY] = dict(engines)
    add_wsman_routes(app, engine_for)
    app.router.add_get("/", status_page)
    app.router.add_get("/index.htm", status_page)
    return app


async def status_page(request: web.Request) -> web.Response:
    """A read-only summary like AMT's built-in web UI; it needs the same Digest login as WS-MAN."""
    engine = engine_for(request)
    if engine is None:
        raise web.HTTPNotFound()
    result = engine.verifier.verify(request.method, request.headers.get("Authorization"),
                                    expected_uri=request.raw_path, peer=request.remote)
    if not result.ok:
        if result.counted:
            engine.login_failed(result, request.remote or "")
        return web.Response(status=401, headers={
            "WWW-Authenticate": engine.verifier.challenge(stale=result.stale), "Server": engine.server_header,
            "Connection": "close"}, text="Log on failed.", content_type="text/html")
    return web.Response(text=render_status(engine), content_type="text/html",
                        headers={"Server": engine.server_header, "X-Frame-Options": "DENY"})


def render_status(engine: Engine) -> str:
    profile = engine.platform.profile
    rows = [
        ("Power", engine.platform.power_state.name.replace("_", " ").lower()),
        ("Firmware", f"Intel(R) AMT {engine.amt_version}"),
        ("System", f"{profile.manufacturer} {profile.product}"),
        ("Serial number", profile.serial),
        ("System UUID", profile.system_uuid),
        ("BIOS", f"{profile.bios.vendor} {profile.bios.version}"),
        ("Digest realm", engine.realm),
    ]
    events = [EventRecord.decode(r) for r in engine.store.read_log("event")][-20:]
    audits = [AuditRecord.decode(r) for r in engine.store.read_log("audit")][-20:]

    def when(ts: int) -> str:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def table(head: tuple[str, ...], body: Sequence[tuple[str, ...]]) -> str:
        th = "".join(f"<th scope=col>{html.escape(h)}</th>" for h in head)
        tr = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{tr}</tbody></table>"

    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>Intel&reg; Active Management Technology"
        "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left}</style>"
        "</head><body><h1>System status</h1>"
        + table(("Item", "Value"), rows)
        + "<h2>Event log</h2>"
        + table(("Time", "Sensor", "Severity"), [(when(e.timestamp), str(e.sensor_type), str(e.severity))
                                                  for e in reversed(events)])
        + "<h2>Audit log</h2>"
        + table(("Time", "Event", "Initiator", "Address"), [(when(a.timestamp), a.description, a.initiator,
                                                              a.address) for a in reversed(audits)])
        + "</body></html>"
    )
