"""A call from the browser phone in headless Chromium, through the real service.

Chromium's fake microphone plays a WAV of a caller (made with the Piper voice): silence
while the greeting plays, "What are your opening hours?", then, while the agent is still
answering, "No thanks, goodbye." The agent (offline: VAD, Whisper, flow brain, Piper) is
the one `callbridge dev` runs. The test checks both sides: audio sent and played, the
question answered through the opening_hours tool, the barge-in flushing the page's queue,
the call ending, and the console showing the call live and then in the history.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from callbridge import devstack
from callbridge.app import create_app
from callbridge.telephony.browser.edge import BrowserEdge
from callbridge.telephony.browser.leg import BrowserMediaLeg

from .browser import (
    ADMIN_TOKEN,
    PageErrors,
    chromium,
    chromium_path,
    screenshot_path,
    timeline,
    write_wav,
)

pytestmark = pytest.mark.e2e

# Where the caller speaks on the microphone's timeline (which starts as the call does).
# The greeting is about 8.1 s; the answer to the question about 7.5 s, starting 1-2 s
# after the question ends, so "goodbye" lands in the middle of it even on a slow machine.
QUESTION_AT_S = 9.5
GOODBYE_AT_S = 16.0
WAV_S = 24.0


def caller_wav(folder: Path) -> Path:
    from callbridge.agent.local.models import get_tts

    # Piper's noise off: the same caller every run. With it, about 1 rendering in 10 of
    # "opening hours" is heard by Whisper tiny as "opening now", whole and alone too
    # (tests/local_models/test_turn_audio.py checks this rendering on the agent's path).
    tts = get_tts().with_options(noise_scale=0.0, noise_w_scale=0.0)
    pcm = timeline(
        tts.sample_rate,
        WAV_S,
        [
            (QUESTION_AT_S, tts.synthesize("What are your opening hours?")),
            (GOODBYE_AT_S, tts.synthesize("No thanks, goodbye.")),
        ],
    )
    return write_wav(folder / "caller.wav", pcm, tts.sample_rate)


async def shot(page: Page, name: str) -> None:
    path = screenshot_path(name)
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


async def sign_in(page: Page, url: str) -> None:
    """Open a console page signed out: the login page takes the token and sends us back."""
    await page.goto(url)
    await page.wait_for_url("**/console/login?next=*")
    await page.fill("#token", ADMIN_TOKEN)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url(url)


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_browser_phone_call_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chromium_path()  # fail first, and clearly, if Chromium is missing
    wav = caller_wav(tmp_path)
    apps: list[Any] = []
    make_app = create_app

    def capture_app(*args: Any, **kw: Any) -> Any:
        apps.append(make_app(*args, **kw))
        return apps[-1]

    monkeypatch.setattr(devstack, "create_app", capture_app)  # to see the service's side
    started = time.monotonic()
    async with (
        devstack.running_stack(
            agent="local",
            admin_token=ADMIN_TOKEN,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
            recordings_dir=str(tmp_path / "recordings"),
        ) as stack,
        chromium(fake_mic=wav) as browser,
    ):
        edge: BrowserEdge = apps[0].state.browser_edge
        base = stack.service_url
        console = await browser.new_page()
        phone = await browser.new_page()
        errors = [PageErrors(console), PageErrors(phone)]

        await sign_in(console, base + "/console")
        await expect(console.locator("#feed-status")).to_have_text("live")
        await sign_in(phone, base + "/phone")
        await expect(phone.locator("#phone")).to_have_attribute("data-state", "idle")

        # --- the call is placed and the greeting plays ---------------------------------
        await phone.click("#call-button")
        await expect(phone.locator("#phone")).to_have_attribute("data-state", "in-call")
        call_id = await phone.get_attribute("#phone", "data-call-id")
        assert call_id and call_id in edge.calls
        session = edge.calls[call_id]
        leg: BrowserMediaLeg = edge.legs[call_id]
        assert leg.sample_rate == 24000  # the context runs at 44.1/48 kHz: 24 kHz is chosen
        await until(lambda: leg.played_ms > 3000, 15, "the page to report the greeting played")
        assert leg.bytes_sent > 0 and leg.playing
        # Mute and unmute while the agent talks (the caller is quiet then anyway).
        await phone.click("#mute-button")
        await expect(phone.locator("#mute-button")).to_have_attribute("aria-pressed", "true")
        await until(lambda: leg.muted, 5, "the service to hear of the mute")
        await phone.click("#mute-button")
        await until(lambda: not leg.muted, 5, "the service to hear of the unmute")

        # --- the console sees the call live, its transcript streaming in ---------------
        card = console.locator(f"article[data-call-id='{call_id}']")
        await expect(card).to_contain_text("Browser caller")
        await expect(card.locator("li[data-role='agent']").first).to_contain_text(
            "Thank you for calling Contoso"
        )
        await expect(card.locator("li[data-role='caller']").first).to_contain_text(
            "opening hours", timeout=20000
        )
        await expect(card.locator(".tool")).to_contain_text("opening_hours")
        await shot(console, "e2e-console-live")

        # --- the question is answered; "goodbye" barges in; the agent ends the call ------
        transcript = phone.locator("#phone-transcript")
        await expect(transcript.locator("li[data-role='agent']").nth(1)).to_contain_text(
            "Monday to Friday", timeout=20000
        )
        await expect(transcript.locator("li[data-tool='opening_hours']")).to_have_count(1)
        await expect(phone.locator("#phone")).to_have_attribute(
            "data-state", "ended", timeout=30000
        )
        await expect(phone.locator("#phone-status")).to_have_text(
            "Call ended: agent ended the call (resolved)."
        )
        # One stop for "goodbye"; a slow start could make the question barge in as well.
        stops = int(await phone.get_attribute("#phone", "data-stops") or 0)
        assert stops >= 1
        played_ms = int(await phone.get_attribute("#played", "data-ms") or 0)
        assert played_ms > 8000  # the greeting and part of the answer
        await shot(phone, "e2e-phone")

        # The service's side of the same call.
        assert session.ended and session.end_reason == "agent ended the call"
        assert session.stats.bytes_out > 0 and session.stats.replies >= 3
        assert session.stats.barge_ins == leg.stops_sent == stops
        assert len(leg.flushes) == stops  # the page emptied its queue each time it was told
        assert leg.played_ms > 8000 and leg.bad_messages == 0
        tools = {run.name: run.ok for run in session.tool_runs}
        assert tools.get("opening_hours") is True and tools.get("end_call") is True
        said = [text.lower() for role, text in session.transcript if role == "caller"]
        assert any("opening hours" in text for text in said), said

        # --- the console: the call ends live, then is in the history with its record -----
        await expect(card).to_have_class("card live-call ended")
        await console.goto(base + "/console/calls")
        row = console.locator(f"#calls-body tr[data-call-id='{call_id}']")
        await expect(row).to_contain_text("Browser caller")
        await expect(row.locator(".badge")).to_have_text("resolved")
        await shot(console, "e2e-console-history")
        await row.click()
        await console.wait_for_url(f"**/console/calls/{call_id}")
        record = console.locator("#transcript")
        await expect(record.locator("li[data-role='caller']").first).to_contain_text(
            "opening hours"
        )
        await expect(record.locator("li[data-role='agent']").nth(1)).to_contain_text(
            "Monday to Friday"
        )
        await expect(console.locator("#tools tr[data-tool='opening_hours']")).to_contain_text("ok")
        await expect(console.locator("#events li[data-event='barge_in']")).to_have_count(stops)
        await expect(console.locator("#events li[data-event='muted']")).to_have_count(1)
        await expect(console.locator("#events li[data-event='unmuted']")).to_have_count(1)
        await expect(console.locator("#latency-chart svg.latency g.turn")).not_to_have_count(0)
        await shot(console, "e2e-console-call")
        assert [e for page in errors for e in page.errors] == []
    print(f"browser phone end to end: {time.monotonic() - started:.1f} s")
