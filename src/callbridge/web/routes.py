"""The console's and the browser phone's pages, and their static files.

The pages are shells: they hold no call data. Their scripts read the admin token from the
tab's sessionStorage (put there by the login page) and fetch everything from the records
API (`docs/api.md`) with it, so the token guards the data itself; a page opened without a
token sends the browser to the login page, which sends it back afterwards only to a path
of this site (`safe_next`).
"""

from __future__ import annotations

import asyncio
import functools
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from callbridge import __version__
from callbridge.web.assets import Asset, bundle_version, load_assets

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).parent / "templates"

# Everything is served from this origin; nothing inline, nothing from elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


HOME = "/console"


def _plain_path(text: str) -> bool:
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return False
    # Browsers drop tabs and newlines from URLs ("/\t/evil" is "//evil") and some read a
    # backslash as a slash ("/\evil" is "//evil"), so no control character and no
    # whitespace anywhere.
    if any(ch.isspace() or unicodedata.category(ch)[0] in "CZ" for ch in text):
        return False
    parts = urlsplit(text)
    return not parts.scheme and not parts.netloc


def safe_next(next_url: str | None) -> str:
    """Where the login page may send the browser after signing in: `next_url` when it is a
    plain absolute path of this site, else the console's home. A path must start with one
    `/` and hold no `\\`, no control character and no whitespace, and have no scheme or
    host when parsed, as it is and percent-decoded again (`/%5Cevil.example/`)."""
    if not next_url or len(next_url) > 2000:
        return HOME
    decoded = unquote(next_url)
    return next_url if _plain_path(next_url) and _plain_path(decoded) else HOME


@functools.cache
def _templates() -> Jinja2Templates:
    # Jinja loads with the first page, not with the service: a replica that only takes
    # calls never holds it (~1.7 MB; docs/architecture.md, "Memory").
    from fastapi.templating import Jinja2Templates

    return Jinja2Templates(directory=TEMPLATES_DIR)


def console_router() -> APIRouter:
    router = APIRouter(tags=["console"], include_in_schema=False)
    assets = load_assets()
    version = bundle_version(assets)

    async def page(request: Request, template: str, **context: object) -> HTMLResponse:
        # The first load imports Jinja (~35 ms) in a thread: the calls' media goes on.
        templates = await asyncio.to_thread(_templates)
        return templates.TemplateResponse(
            request,
            template,
            {"version": version, "app_version": __version__, **context},
            headers=PAGE_HEADERS,
        )

    @router.get("/console", response_class=HTMLResponse)
    async def live_page(request: Request) -> HTMLResponse:
        return await page(request, "live.html", page="live", title="Live calls")

    @router.get("/console/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str | None = None) -> HTMLResponse:
        # The page's script goes to `data-next` after signing in: only a path of this site.
        next_path = safe_next(next)
        return await page(request, "login.html", page="login", title="Sign in", next=next_path)

    @router.get("/console/calls", response_class=HTMLResponse)
    async def calls_page(request: Request) -> HTMLResponse:
        return await page(request, "calls.html", page="calls", title="Call history")

    @router.get("/console/calls/{call_id}", response_class=HTMLResponse)
    async def call_page(request: Request, call_id: str) -> HTMLResponse:
        return await page(request, "call.html", page="call", title="Call", call_id=call_id)

    @router.get("/phone", response_class=HTMLResponse)
    async def phone_page(request: Request) -> HTMLResponse:
        return await page(request, "phone.html", page="phone", title="Browser phone")

    @router.get("/console/", include_in_schema=False)
    async def console_slash() -> RedirectResponse:
        return RedirectResponse("/console")

    @router.get("/console/static/{name}")
    async def static_file(name: str, request: Request) -> Response:
        asset: Asset | None = assets.get(name)
        if asset is None:
            return Response("not found", status_code=404, media_type="text/plain")
        headers = {
            "ETag": asset.etag,
            # Revalidate every time (a 304 on loopback costs nothing): module imports
            # between scripts carry no version, so they must never go stale.
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    return router
