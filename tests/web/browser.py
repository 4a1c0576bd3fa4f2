"""Headless Chromium for the console tests: where it is, how it starts, its fake microphone."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

CHROMIUM = Path(os.environ.get("CALLBRIDGE_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).parent / "screenshots"
ADMIN_TOKEN = "console-test-admin-token-0123"


def chromium_path() -> str:
    """The Chromium the tests drive; fails the test with the fix when it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed ({CHROMIUM} is missing): the browser tests drive it "
            "headless. Install it with: sudo apt-get install -y chromium "
            "(or point CALLBRIDGE_CHROMIUM at a Chromium binary)",
            pytrace=False,
        )
    return str(CHROMIUM)


def chromium_args(fake_mic: Path | None = None) -> list[str]:
    """Quiet, offline Chromium; with a WAV, its fake microphone plays that file once."""
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
    ]
    if fake_mic is not None:
        # %noloop: play the file once, then silence (by default Chromium loops it).
        args.append(f"--use-file-for-fake-audio-capture={fake_mic}%noloop")
    return args


def write_wav(path: Path, pcm: bytes, rate: int) -> Path:
    """16-bit mono PCM WAV: the format Chromium's fake capture device reads."""
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(rate)
        wf.writeframes(pcm)
    return path


def timeline(rate: int, total_s: float, said: list[tuple[float, bytes]]) -> bytes:
    """`total_s` of silence with each (start second, PCM) laid in at its place."""
    out = np.zeros(int(total_s * rate), dtype="<i2")
    for start_s, pcm in said:
        speech = np.frombuffer(pcm, dtype="<i2")
        at = int(start_s * rate)
        out[at : at + speech.size] = speech[: max(0, out.size - at)]
    return out.tobytes()


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


@contextlib.asynccontextmanager
async def chromium(fake_mic: Path | None = None) -> AsyncIterator[Browser]:
    """Headless Chromium for one test; with a WAV as its microphone when given."""
    path = chromium_path()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, args=chromium_args(fake_mic))
        try:
            yield browser
        finally:
            await browser.close()


class PageErrors:
    """Collects a page's script errors and failed requests, so a test can say none happened."""

    def __init__(self, page: Page, allow: tuple[str, ...] = ()) -> None:
        self.errors: list[str] = []
        self._allow = allow
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        page.on("console", self._console)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error" and not any(a in msg.text for a in self._allow):
            self.errors.append(f"console: {msg.text}")


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port in this event loop; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # A page left open by a failed test holds an event stream: do not wait for it long.
    config = uvicorn.Config(
        app, log_config=None, lifespan="on", ws="websockets-sansio", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
