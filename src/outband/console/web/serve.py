"""Serving the built web UI: the files vite wrote to ``dist/``, and ``index.html`` for every other page path
(the UI routes in the browser: /devices/12/kvm is a page of the same app).

Built assets carry a content hash in their names, so they are cached for a year; ``index.html`` is never
cached (it names the current assets).  The page gets a content security policy that allows nothing from other
origins: the UI is built with everything it needs, no CDN at run time.  Paths under ``/api/`` never fall back
to the page (a mistyped API path must be a 404, not HTML).  When the UI was not built the console says so at
every page path instead of failing obscurely.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import Receive, Scope, Send

DIST: Final = Path(__file__).resolve().parent / "dist"
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
"""xterm.js writes its theme into a <style> element, hence 'unsafe-inline' for styles only."""
IMMUTABLE: Final = "public, max-age=31536000, immutable"
NOT_BUILT: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>outband console: web UI not built</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto; line-height: 1.5">
<h1>The web UI is not built</h1>
<p>This console serves its REST API at <a href="/api/docs">/api/docs</a>, but the browser interface has not been
built from its sources yet. Build it with</p>
<pre>bash scripts/setup.sh</pre>
<p>or, in <code>src/outband/console/web</code>: <code>npm ci &amp;&amp; npm run build</code>; then reload this
page.</p>
</body></html>
"""


class WebApp:
    """The ASGI app mounted at ``/`` after every API route."""

    def __init__(self, dist: Path = DIST) -> None:
        self.dist = dist.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        response = self.respond(scope["method"], scope["path"])
        await response(scope, receive, send)

    def respond(self, method: str, path: str) -> Response:
        if path == "/api" or path.startswith("/api/"):
            return _json(404, "Not Found")
        if method not in ("GET", "HEAD"):
            return _json(405, "Method Not Allowed")
        index = self.dist / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers={"cache-control": "no-store"})
        asset = self._file(path)
        if asset is not None:
            immutable = asset.parent.name == "assets"
            return FileResponse(asset, headers={"cache-control": IMMUTABLE if immutable else "no-cache"})
        return FileResponse(index, media_type="text/html; charset=utf-8",
                            headers={"cache-control": "no-cache", "content-security-policy": CONTENT_SECURITY_POLICY})

    def _file(self, path: str) -> Path | None:
        """The built file a path names, if it names one inside ``dist`` (never anything outside it)."""
        relative = path.lstrip("/")
        if not relative or "\x00" in relative:
            return None
        candidate = (self.dist / relative).resolve()
        if candidate.is_relative_to(self.dist) and candidate.is_file() and candidate.name != "index.html":
            return candidate
        return None


def _json(code: int, detail: str) -> Response:
    return Response(json.dumps({"detail": detail}), status_code=code, media_type="application/json")
