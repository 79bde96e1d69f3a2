"""Serving the built web UI: files from dist/, the app's page for every other path, never files outside dist,
never HTML for an API path, and a clear page when the UI was not built."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from tests.console._kit import asgi_client

from outband.console.runtime import open_runtime
from outband.console.web.serve import CONTENT_SECURITY_POLICY, WebApp


def client(app: WebApp) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>app</title>")
    (root / "assets" / "index-abc123.js").write_text("console.log('app')")
    (root / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside dist")
    return root


async def test_pages_get_the_app_and_assets_are_files(dist: Path) -> None:
    async with client(WebApp(dist)) as http:
        for path in ("/", "/devices/12/kvm", "/jobs"):
            reply = await http.get(path)
            assert reply.status_code == 200
            assert reply.text == "<!doctype html><title>app</title>"
            assert reply.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert reply.headers["cache-control"] == "no-cache"
        asset = await http.get("/assets/index-abc123.js")
        assert asset.text == "console.log('app')"
        assert "immutable" in asset.headers["cache-control"]
        assert (await http.get("/favicon.svg")).text == "<svg/>"
        assert (await http.head("/")).status_code == 200


async def test_nothing_outside_dist_and_no_html_for_the_api(dist: Path) -> None:
    async with client(WebApp(dist)) as http:
        for path in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"):
            reply = await http.get(path)
            assert "outside dist" not in reply.text
        api = await http.get("/api/no-such-route")
        assert api.status_code == 404
        assert api.json() == {"detail": "Not Found"}
        assert (await http.post("/devices")).status_code == 405


async def test_a_console_without_a_built_ui_says_how_to_build_it(tmp_path: Path) -> None:
    async with client(WebApp(tmp_path / "missing")) as http:
        reply = await http.get("/devices/3")
    assert reply.status_code == 503
    assert "The web UI is not built" in reply.text
    assert "bash scripts/setup.sh" in reply.text


async def test_the_console_serves_the_ui_after_its_api(runtime_for_serve) -> None:
    async with asgi_client(runtime_for_serve) as http:
        page = await http.get("/fleet-page-that-the-ui-routes")
        assert page.status_code in (200, 503)  # built or not, the web app answers page paths
        assert "text/html" in page.headers["content-type"]
        assert (await http.get("/api/health")).json()["status"] == "ok"
        assert (await http.get("/api/nothing-here")).status_code == 404


@pytest.fixture
async def runtime_for_serve(settings):
    runtime = await open_runtime(settings)
    try:
        yield runtime
    finally:
        await runtime.close()
