"""The service and the ACS emulator on loopback, wired to each other as a deployment is
wired to Azure: used by `callbridge dev`, `callbridge test-call`, tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from callbridge.api.records import Records
from callbridge.app import create_app
from callbridge.config import Settings, load_settings
from callbridge.emulator import AcsEmulator
from callbridge.server import uvicorn_server
from callbridge.telephony.acs.edge import AcsEdge


@dataclass
class Stack:
    emulator: AcsEmulator
    settings: Settings
    edge: AcsEdge
    service_url: str
    records: Records  # the call records (store, writer, live feed) of the service


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@asynccontextmanager
async def running_stack(
    *,
    port: int = 0,
    emulator_port: int = 0,
    event_schema: str = "eventgrid",
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """Start the emulator and the service (port 0: any free port); stop both on exit."""
    async with running_replicas(
        1, port=port, emulator_port=emulator_port, event_schema=event_schema, **overrides
    ) as stacks:
        yield stacks[0]


@asynccontextmanager
async def running_replicas(
    count: int,
    *,
    port: int = 0,
    emulator_port: int = 0,
    event_schema: str = "eventgrid",
    **overrides: Any,
) -> AsyncIterator[list[Stack]]:
    """One emulator and `count` replicas of the service, each answering on its own port
    with the same settings (give them a shared `redis_url` and database to make them one
    service); the emulator's webhook is the first replica. Stopped on exit."""
    socks = [_listen(port if i == 0 else 0) for i in range(count)]
    urls = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in socks]
    key = AcsEmulator.generate_access_key()
    secret = secrets.token_urlsafe(24)
    emulator = AcsEmulator(
        f"{urls[0]}/acs/incoming?key={secret}",
        key,
        port=emulator_port,
        event_schema=event_schema,
    )
    await emulator.start()
    try:
        async with contextlib.AsyncExitStack() as replicas:
            stacks = []
            for sock, url in zip(socks, urls, strict=True):
                settings = load_settings(
                    acs_connection=f"endpoint={emulator.endpoint}/;accesskey={key}",
                    public_url=url,
                    eventgrid_secret=secret,
                    host="127.0.0.1",
                    port=sock.getsockname()[1],
                    acs_jwks_url=emulator.jwks_url,
                    acs_jwt_issuer=emulator.issuer,
                    acs_jwt_audience=emulator.audience,
                    **overrides,
                )
                serving = _serving(settings, sock, emulator)
                stacks.append(await replicas.enter_async_context(serving))
            yield stacks
    finally:
        await emulator.stop()
        for sock in socks:
            sock.close()


@asynccontextmanager
async def _serving(
    settings: Settings, sock: socket.socket, emulator: AcsEmulator
) -> AsyncIterator[Stack]:
    app = create_app(settings)
    server = uvicorn_server(app, settings, embedded=True)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if serving.done():
                serving.result()
                raise RuntimeError("the service stopped while starting")
            await asyncio.sleep(0.02)
        url = settings.public_url
        yield Stack(emulator, settings, app.state.edge, url, app.state.records)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 15)
