"""The login page's `?next=` in headless Chromium: after signing in, the browser goes to a
path of this site only. `/\\evil.example/` and `/<tab>/evil.example/` are paths to a naive
check (they start with one "/"), but a browser reads them as `//evil.example/`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Route

from callbridge.web.routes import console_router

from .browser import ADMIN_TOKEN, chromium, serving
from .fake_api import FakeRecords, fake_api_router


@pytest.fixture
async def site() -> AsyncIterator[str]:
    app = FastAPI()
    app.include_router(fake_api_router(FakeRecords(ADMIN_TOKEN)))
    app.include_router(console_router())
    async with serving(app) as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


@pytest.mark.parametrize(
    ("next_param", "lands_on"),
    [
        ("/%5Cevil.example/", "/console"),
        ("/%09/evil.example/", "/console"),
        ("/%255Cevil.example/", "/console"),
        ("%2Fconsole%2Fcalls%3Foutcome%3Dfailed", "/console/calls?outcome=failed"),
    ],
)
async def test_sign_in_goes_only_to_a_path_of_this_site(
    browser: Browser, site: str, next_param: str, lands_on: str
) -> None:
    page = await browser.new_page()
    elsewhere: list[str] = []

    async def only_this_site(route: Route) -> None:
        if route.request.url.startswith(site + "/"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_this_site)
    await page.goto(f"{site}/console/login?next={next_param}")
    await page.fill("#token", ADMIN_TOKEN)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(site + lands_on, timeout=5000)
    assert elsewhere == []
    await page.close()
