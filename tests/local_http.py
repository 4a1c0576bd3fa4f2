"""An aiohttp application served on 127.0.0.1 for the length of a test (key endpoints,
OpenID configurations: what the service fetches over HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """The app on a free loopback port; yields its base URL (`http://127.0.0.1:<port>`)."""
    runner = web.AppRunner(app, shutdown_timeout=0.1)  # a stalled handler ends the test fast
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
