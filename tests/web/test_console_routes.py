"""The console's page and static-file routes, over ASGI (no browser)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from callbridge.web.routes import console_router


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(console_router())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize(
    ("path", "script"),
    [
        ("/console", "live.js"),
        ("/console/login", "login.js"),
        ("/console/calls", "calls.js"),
        ("/console/calls/abc123", "call.js"),
        ("/phone", "phone.js"),
    ],
)
async def test_pages_are_shells_with_a_strict_policy(
    client: httpx.AsyncClient, path: str, script: str
) -> None:
    r = await client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["cache-control"] == "no-store"
    assert f'src="/console/static/{script}?v=' in r.text
    assert "<script>" not in r.text  # nothing inline: the policy would block it anyway


async def test_call_id_is_escaped_into_the_page(client: httpx.AsyncClient) -> None:
    r = await client.get('/console/calls/"><img src=x onerror=alert(1)>')
    assert r.status_code == 200
    assert "<img" not in r.text and "&#34;&gt;&lt;img src=x" in r.text


async def test_static_files_revalidate_with_etags(client: httpx.AsyncClient) -> None:
    r = await client.get("/console/static/phone-worklet.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert "registerProcessor" in r.text and r.headers["cache-control"] == "no-cache"
    again = await client.get(
        "/console/static/phone-worklet.js", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    css = await client.get("/console/static/console.css")
    assert css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("name", ["nope.js", "..%2F..%2Fconfig.py", "%2E%2E%2Froutes.py"])
async def test_only_known_static_files_are_served(client: httpx.AsyncClient, name: str) -> None:
    r = await client.get(f"/console/static/{name}")
    assert r.status_code == 404
