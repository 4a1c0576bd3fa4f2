"""The console's page and static-file routes, over ASGI (no browser)."""

from __future__ import annotations

import html
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from callbridge.web.routes import console_router, safe_next


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


# --- the login page's ?next=: only a plain path of this site -----------------------------
@pytest.mark.parametrize(
    "raw",
    [
        "/%5Cevil.example/",  # "/\evil.example/": browsers read "\" as "/"
        "/%09/evil.example/",  # a tab: browsers drop it, leaving "//evil.example/"
        "/%0A/evil.example/",
        "/%0D/evil.example/",
        "/%20/evil.example/",
        "/%00/evil.example/",
        "//evil.example/",
        "///evil.example/",
        "%2F%2Fevil.example%2F",  # "//evil.example/" once decoded
        "https://evil.example/",
        "javascript:alert(1)",
        "evil.example",
        "/%255Cevil.example/",  # "/%5Cevil.example/" after the query's decoding: "\" again
        "/%2509/evil.example/",  # a tab after a second decoding
        "/%252F/evil.example",  # "/%2F/..." -> "//" after a second decoding
        "/\u2028/evil.example/",
        "",
    ],
)
async def test_login_never_sends_elsewhere(client: httpx.AsyncClient, raw: str) -> None:
    r = await client.get(f"/console/login?next={raw}")
    assert r.status_code == 200
    assert 'data-next="/console"' in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/console/calls",
        "/console/calls?q=order+10023&outcome=resolved",  # as calls.js writes its query
        "/console/calls/abc123",
        "/console/calls/caf%C3%A9",
        "/phone",
    ],
)
async def test_login_keeps_a_path_of_this_site(client: httpx.AsyncClient, path: str) -> None:
    # common.js sends encodeURIComponent(location.pathname + location.search).
    r = await client.get(f"/console/login?next={quote(path, safe='')}")
    assert f'data-next="{html.escape(path)}"' in r.text


def test_safe_next() -> None:
    assert safe_next(None) == safe_next("") == "/console"
    assert safe_next("/console/calls?outcome=failed&q=x") == "/console/calls?outcome=failed&q=x"
    assert safe_next("/console/calls/caf%C3%A9") == "/console/calls/caf%C3%A9"
    for bad in ("/\\evil.example/", "/\t/evil.example/", "/%5Cevil.example/", "/%09/x"):
        assert safe_next(bad) == "/console", bad
    assert safe_next("/" + "a" * 5000) == "/console"
