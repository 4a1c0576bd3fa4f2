"""Slow clients: request headers and bodies that never finish are cut off by the server.

The real uvicorn server of `callbridge.server.uvicorn_server` runs on loopback with
half-second timeouts; raw sockets play the slow clients (one byte at a time, more often
than the timeout, so a timer that restarts on every byte would never fire)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import websockets
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect

from callbridge.config import ConfigError, Settings, load_settings
from callbridge.server import connection_limit, uvicorn_server

HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5
SLACK = 1.5  # scheduling on a shared 2-core machine; the old server held them for ever
TRICKLE = 0.15  # seconds between the slow clients' bytes: well under the timeouts


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.websocket("/ws")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await ws.send_bytes(await ws.receive_bytes())

    return app


def _settings(port: int, **overrides: object) -> Settings:
    return load_settings(
        acs_connection="endpoint=http://127.0.0.1:9/;accesskey=a2V5",
        public_url=f"http://127.0.0.1:{port}",
        eventgrid_secret="s" * 24,
        host="127.0.0.1",
        port=port,
        **overrides,
    )


@dataclass
class Served:
    port: int
    url: str


@asynccontextmanager
async def _serving(**overrides: object) -> AsyncIterator[Served]:
    """The app under `uvicorn_server`, on a free loopback port (as callbridge.devstack)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = _settings(port, **overrides)
    server = uvicorn_server(_app(), settings, embedded=True)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not serving.done(), "the server stopped while starting"
            await asyncio.sleep(0.01)
        yield Served(port, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        sock.close()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with _serving(header_timeout_s=HEADER_TIMEOUT, body_timeout_s=BODY_TIMEOUT) as served:
        yield served


async def _slow_client(port: int, head: bytes, *, trickle: bool = True) -> tuple[float, bytes]:
    """Send `head`, then one byte every TRICKLE s until the server closes the connection.

    Returns how long the connection stayed open and what the server sent back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = time.monotonic()

    async def drip() -> None:
        with contextlib.suppress(OSError):
            if head:
                writer.write(head)
                await writer.drain()
            while trickle:
                await asyncio.sleep(TRICKLE)
                writer.write(b"a")
                await writer.drain()

    dripping = asyncio.create_task(drip())
    received = b""
    try:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(4096):
                received += chunk
        return time.monotonic() - opened, received
    finally:
        dripping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dripping
        writer.close()


SLOW_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
SLOW_BODY = (
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Length: 100000\r\n\r\n0123456789"
)


async def test_slow_headers_and_bodies_are_closed_and_the_rest_is_served(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    limit = max(HEADER_TIMEOUT, BODY_TIMEOUT) + SLACK
    silent = [_slow_client(served.port, b"", trickle=False) for _ in range(5)]
    slow_headers = [_slow_client(served.port, SLOW_HEADERS) for _ in range(50)]
    slow_bodies = [_slow_client(served.port, SLOW_BODY) for _ in range(20)]
    slow = asyncio.gather(*silent, *slow_headers, *slow_bodies)

    async with websockets.connect(f"ws://127.0.0.1:{served.port}/ws") as ws:
        # Normal requests are answered while the slow ones are being held.
        async with httpx.AsyncClient(base_url=served.url, timeout=5) as client:
            await asyncio.sleep(0.1)
            health = await client.get("/healthz")
            upload = await client.post("/upload", content=b"x" * 200_000)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert upload.status_code == 200 and upload.json() == {"received": 200_000}

        try:
            results = await asyncio.wait_for(slow, limit + 0.5)
        except TimeoutError:
            pytest.fail(f"slow connections still open after {limit + 0.5:.1f} s")

        # The media socket, idle and open for longer than both timeouts, still works.
        await asyncio.sleep(started + 3 * max(HEADER_TIMEOUT, BODY_TIMEOUT) - time.monotonic())
        await ws.send(b"still here")
        assert await asyncio.wait_for(ws.recv(), 2) == b"still here"

    durations = [duration for duration, _ in results]
    assert max(durations) < limit, f"held up to {max(durations):.2f} s"
    assert min(durations) >= HEADER_TIMEOUT * 0.9, "closed before the timeout"
    # A 408 is sent when a response can still be sent: here, to every slow client.
    for _, received in results:
        assert received.startswith(b"HTTP/1.1 408 "), received[:60]
        assert b"connection: close" in received.lower()

    messages = [r.getMessage() for r in caplog.records if r.name == "callbridge.http_timeouts"]
    assert sum("request headers" in m for m in messages) == 55, messages[:3]
    assert sum("request body" in m for m in messages) == 20, messages[:3]

    # And the server still serves after the clean-up.
    async with httpx.AsyncClient(base_url=served.url, timeout=5) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_a_body_the_app_answers_early_is_cut_off_without_a_second_response(
    served: Served,
) -> None:
    # The app answers 404 without reading the body; the client keeps trickling it.
    duration, received = await asyncio.wait_for(
        _slow_client(served.port, SLOW_BODY.replace(b"/upload", b"/nowhere")), 5
    )
    assert duration < BODY_TIMEOUT + SLACK
    assert received.startswith(b"HTTP/1.1 404 ")
    assert b" 408 " not in received


async def test_keep_alive_requests_each_get_their_own_header_timeout(served: Served) -> None:
    # One connection, several requests, longer in total than the header timeout.
    async with httpx.AsyncClient(base_url=served.url, timeout=5) as client:
        for _ in range(4):
            assert (await client.get("/healthz")).status_code == 200
            await asyncio.sleep(HEADER_TIMEOUT / 2)
            upload = await client.post("/upload", content=b"y" * 1000)
            assert upload.json() == {"received": 1000}


async def test_over_the_connection_cap_requests_get_503_but_media_sockets_open() -> None:
    async with _serving(max_connections=4) as served:
        idle = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(4)]
        await asyncio.sleep(0.1)  # accepted by the server
        async with httpx.AsyncClient(base_url=served.url, timeout=5) as client:
            assert (await client.get("/healthz")).status_code == 503
        async with websockets.connect(f"ws://127.0.0.1:{served.port}/ws") as ws:
            await ws.send(b"call audio")
            assert await asyncio.wait_for(ws.recv(), 2) == b"call audio"
        for _, writer in idle:
            writer.close()


def test_timeouts_and_connection_cap_are_settings() -> None:
    settings = _settings(8080)
    assert (settings.header_timeout_s, settings.body_timeout_s) == (10.0, 30.0)
    assert settings.max_connections is None
    assert connection_limit(settings) == 4 * settings.max_calls + 512
    assert connection_limit(_settings(8080, max_connections=50)) == 50
    for bad in ({"header_timeout_s": 0}, {"body_timeout_s": -1}, {"max_connections": 0}):
        with pytest.raises(ConfigError, match="CALLBRIDGE_"):
            _settings(8080, **bad)
