"""The console's pages in headless Chromium, against a stand-in records API.

These need no speech models and no telephony: they check what each page draws from the
documented API shapes, sign-in and sign-out, history search and paging, the call page
(transcript, tools, events, the latency chart, the recording player) and live calls
arriving over Server-Sent Events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page, expect

from callbridge.web.routes import console_router

from .browser import ADMIN_TOKEN, PageErrors, chromium, screenshot_path, serving, write_wav
from .fake_api import T0, FakeRecords, fake_api_router, iso, make_call, rich_call

RICH = 30


@pytest.fixture
def records(tmp_path: Path) -> FakeRecords:
    recs = FakeRecords(ADMIN_TOKEN)
    for n in range(RICH):
        call = make_call(n)
        recs.calls[call["id"]] = call
    rich = rich_call(RICH)
    recs.calls[rich["id"]] = rich
    tone = (np.sin(np.arange(8000 * 12) * 2 * np.pi * 440 / 8000) * 8000).astype("<i2")
    recs.recordings[rich["id"]] = write_wav(tmp_path / "rec.wav", tone.tobytes(), 8000)
    return recs


@pytest.fixture
async def site(records: FakeRecords) -> AsyncIterator[str]:
    app = FastAPI()
    app.include_router(fake_api_router(records))
    app.include_router(console_router())
    async with serving(app) as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def sign_in(page: Page, site: str, path: str) -> None:
    """Open `path` signed out: the page sends us to the login page and back."""
    await page.goto(site + path)
    await page.wait_for_url("**/console/login?next=*")
    await page.fill("#token", ADMIN_TOKEN)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(site + path)


async def test_login_rejects_a_wrong_token_and_signs_out(browser: Browser, site: str) -> None:
    page = await browser.new_page()
    errors = PageErrors(page, allow=("401",))
    await page.goto(site + "/console/calls")
    await page.wait_for_url("**/console/login?next=%2Fconsole%2Fcalls")
    await page.fill("#token", "not-the-token-at-all")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("That token is not right.")
    path = screenshot_path("console-login")
    await page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    await page.fill("#token", ADMIN_TOKEN)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(site + "/console/calls")
    await page.click("#sign-out")
    await page.wait_for_url("**/console/login")
    assert await page.evaluate("sessionStorage.length") == 0
    assert errors.errors == []


async def test_history_pages_searches_and_filters(browser: Browser, site: str) -> None:
    page = await browser.new_page()
    errors = PageErrors(page)
    await sign_in(page, site, "/console/calls")
    rows = page.locator("#calls-body tr")
    await expect(rows).to_have_count(25)
    await expect(page.locator("#range")).to_have_text("1–25 of 31")
    # newest first: the rich call is the latest
    await expect(rows.first).to_contain_text("+14255550030")
    path = screenshot_path("console-history")
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")

    await page.click("#next")
    await expect(page.locator("#range")).to_have_text("26–31 of 31")
    await expect(page.locator("#next")).to_be_disabled()
    assert "offset=25" in page.url

    await page.select_option("#outcome", "transferred")
    await expect(page.locator("#range")).to_have_text("1–6 of 6")
    await expect(page.locator("#calls-body .badge")).to_have_text(["transferred"] * 6)

    await page.select_option("#outcome", "")
    await page.fill("#q", "opening hours")
    await expect(rows).to_have_count(1)
    assert "q=opening+hours" in page.url
    await rows.first.click()
    await page.wait_for_url(f"**/console/calls/call{RICH:04d}*")
    assert errors.errors == []


async def test_call_page_shows_the_whole_record(browser: Browser, site: str) -> None:
    page = await browser.new_page()
    errors = PageErrors(page)
    call_id = f"call{RICH:04d}" + "0" * 24
    await sign_in(page, site, f"/console/calls/{call_id}")
    await expect(page.locator("#call-facts")).to_contain_text("+14255550030")
    await expect(page.locator("#summary")).to_have_text(
        "Caller asked for the opening hours; the agent told them."
    )
    turns = page.locator("#transcript li.turn")
    # the two greeting sentences are one agent bubble
    await expect(turns).to_have_count(4)
    await expect(turns.nth(0)).to_contain_text("Thank you for calling Contoso. How can I help?")
    await expect(turns.nth(1)).to_have_attribute("data-role", "caller")
    await expect(turns.nth(1).locator(".when")).to_have_text("0:04")
    # call data is text, never markup
    await expect(turns.nth(3).locator(".text")).to_have_text("<b>Thanks</b>, bye.")
    assert await page.locator("#transcript b").count() == 0

    await expect(page.locator("#tools tr[data-tool]")).to_have_count(2)
    await expect(page.locator("#tools tr[data-tool='opening_hours']")).to_contain_text("ok")
    await expect(page.locator("#events li")).to_have_count(2)
    await expect(page.locator("#events li[data-event='barge_in']")).to_contain_text("840")

    chart = page.locator("#latency-chart svg.latency")
    await expect(chart).to_have_attribute("data-turns", "5")
    await expect(chart.locator("g.turn")).to_have_count(5)
    await expect(chart.locator("g.turn rect.stt")).to_have_count(5)
    await expect(chart.locator("line.v2v")).to_have_count(6)  # 5 turns + the legend
    tooltip = await chart.locator("g.turn title").last.text_content()
    assert tooltip and "voice to voice 940 ms" in tooltip

    audio = page.locator("#recording")
    await expect(page.locator("#recording-box")).to_be_visible()
    assert f"token={ADMIN_TOKEN}" in (await audio.get_attribute("src") or "")
    duration = await page.evaluate(
        """() => new Promise((ok) => {
            const a = document.getElementById("recording");
            if (a.readyState >= 1) ok(a.duration);
            else a.addEventListener("loadedmetadata", () => ok(a.duration));
        })"""
    )
    assert duration == pytest.approx(12.0, abs=0.05)
    await turns.nth(1).click()  # seeks the recording to the caller's question
    position = await page.evaluate("document.getElementById('recording').currentTime")
    assert 3.5 <= position <= 4.5
    path = screenshot_path("console-call")
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")

    await page.goto(site + "/console/calls/nope")
    await expect(page.locator("#call-error")).to_have_text("There is no call with this id.")
    assert [e for e in errors.errors if "404" not in e] == []


async def test_live_calls_stream_in(browser: Browser, site: str, records: FakeRecords) -> None:
    live_id = "live" + "0" * 28
    records.live[live_id] = {
        "id": live_id,
        "caller": "+14255550999",
        "callee": "+18005550100",
        "profile": "Contoso support line",
        "started_at": iso(T0),
        "transcript": [{"role": "agent", "text": "Hello, Contoso.", "at": iso(T0)}],
        "replica": "r0",
    }
    page = await browser.new_page()
    errors = PageErrors(page)
    await sign_in(page, site, "/console")
    await expect(page.locator("#feed-status")).to_have_text("live")
    card = page.locator(f"article[data-call-id='{live_id}']")
    await expect(card).to_contain_text("Hello, Contoso.")

    new_id = "new" + "0" * 29
    records.publish(
        "call_started",
        {
            "call_id": new_id,
            "caller": "Browser caller",
            "callee": "browser phone",
            "profile": "p",
            "started_at": iso(T0),
        },
    )
    new = page.locator(f"article[data-call-id='{new_id}']")
    await expect(new).to_contain_text("Browser caller")
    for role, text in [
        ("caller", "What are your opening hours, and are you open on Sundays?"),
        ("agent", "We're open."),
    ]:
        records.publish(
            "transcript", {"call_id": new_id, "role": role, "text": text, "at": iso(T0)}
        )
        await expect(new.locator(f"li[data-role='{role}']")).to_contain_text(text)
    records.publish("tool", {"call_id": new_id, "name": "opening_hours", "ok": True, "at": iso(T0)})
    await expect(new.locator(".tool")).to_have_text("opening_hours ✓")
    # Lines wrap inside the card rather than run out of it.
    overflowing = await new.locator("li.turn").evaluate_all(
        "lines => lines.filter(li => li.scrollWidth > li.clientWidth).length"
    )
    assert overflowing == 0
    path = screenshot_path("console-live")
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")

    records.publish(
        "call_ended",
        {"call_id": new_id, "outcome": "resolved", "reason": "agent ended the call"},
    )
    await expect(new).to_have_class("card live-call ended")
    await expect(new.locator("a")).to_have_attribute("href", f"/console/calls/{new_id}")
    # Several replicas: the card says which holds the call, and follows it when it moves.
    held = card.locator(".replica")
    await expect(held).to_have_text(" · on r0")
    moved = {**records.live[live_id], "call_id": live_id, "replica": "r1"}
    records.publish("call_started", moved)
    await expect(held).to_have_text(" · on r1")
    await expect(page.locator(f"article[data-call-id='{live_id}']")).to_have_count(1)
    await expect(page.locator("#live-empty")).to_be_hidden()
    assert errors.errors == []
    await page.close()
    for _ in range(50):  # the page's EventSource is gone with it
        if records.subscribers == 0:
            break
        await asyncio.sleep(0.02)


async def test_call_page_refreshes_until_analysed(
    browser: Browser, site: str, records: FakeRecords
) -> None:
    call = make_call(40, summary=None, sentiment=None)
    call["analytics"] = {"summary": None, "sentiment": None, "analyzed_at": None}
    records.calls[call["id"]] = call
    page = await browser.new_page()
    errors = PageErrors(page)
    await sign_in(page, site, f"/console/calls/{call['id']}")
    await expect(page.locator("#call-outcome")).to_have_text("resolved")
    await expect(page.locator("#summary-box")).to_be_hidden()
    # The analysis lands; the page's next refresh (every 2 s) draws it.
    analysed = {"summary": "Caller asked about an order.", "analyzed_at": iso(T0)}
    call.update(summary=analysed["summary"], analytics={**call["analytics"], **analysed})
    await expect(page.locator("#summary")).to_have_text(analysed["summary"], timeout=5000)
    await expect(page.locator("#call-outcome")).to_have_count(1)
    assert errors.errors == []
