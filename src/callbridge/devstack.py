"""The service and the ACS emulator on loopback, wired to each other as a deployment is
wired to Azure: used by `callbridge dev`, `callbridge test-call`, tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from callbridge.api.records import Records
from callbridge.app import STEP_S, create_app
from callbridge.config import Settings, load_settings
from callbridge.emulator import AcsEmulator
from callbridge.server import uvicorn_server
from callbridge.telephony.acs.edge import AcsEdge
from callbridge.testing.service_process import free_port
from callbridge.testing.topology import balancer as haproxy


@dataclass
class Stack:
    emulator: AcsEmulator
    settings: Settings
    edge: AcsEdge
    service_url: str  # this replica itself (a balancer may be in front: settings.public_url)
    records: Records  # the call records (store, writer, live feed) of the service
    # SIGTERM's drain: stop taking calls, hand them to other replicas (or end them).
    drain: Callable[[], Awaitable[None]] | None = None


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
    balancer: bool = False,
    **overrides: Any,
) -> AsyncIterator[list[Stack]]:
    """One emulator and `count` replicas of the service, each answering on its own port
    with the same settings (give them a shared `redis_url` and database to make them one
    service); the emulator's webhook is the first replica, or with `balancer` HAProxy in
    front of them all (their public URL: deliveries, callbacks and media land on any
    replica, as in a deployment). Stopped on exit."""
    socks = [_listen(port if i == 0 else 0) for i in range(count)]
    urls = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in socks]
    front = f"http://127.0.0.1:{free_port()}" if balancer else None
    key = AcsEmulator.generate_access_key()
    secret = secrets.token_urlsafe(24)
    emulator = AcsEmulator(
        f"{front or urls[0]}/acs/incoming?key={secret}",
        key,
        port=emulator_port,
        event_schema=event_schema,
    )
    await emulator.start()
    try:
        async with contextlib.AsyncExitStack() as replicas:
            stacks = []
            for i, (sock, url) in enumerate(zip(socks, urls, strict=True)):
                # Each its own replica id (the default, host and pid, is one per process).
                replica = {"replica_id": f"replica-{i + 1}"} if count > 1 else {}
                settings = load_settings(
                    acs_connection=f"endpoint={emulator.endpoint}/;accesskey={key}",
                    public_url=front or url,
                    eventgrid_secret=secret,
                    host="127.0.0.1",
                    port=sock.getsockname()[1],
                    acs_jwks_url=emulator.jwks_url,
                    acs_jwt_issuer=emulator.issuer,
                    acs_jwt_audience=emulator.audience,
                    **{**replica, **overrides},
                )
                serving = _serving(settings, sock, emulator, url)
                stacks.append(await replicas.enter_async_context(serving))
            if front is not None:
                ports = [(s.settings.replica_id, s.settings.port) for s in stacks]
                await replicas.enter_async_context(haproxy(int(front.rsplit(":", 1)[1]), ports))
            yield stacks
    finally:
        await emulator.stop()
        for sock in socks:
            sock.close()


@asynccontextmanager
async def _serving(
    settings: Settings, sock: socket.socket, emulator: AcsEmulator, url: str
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
        yield Stack(emulator, settings, app.state.edge, url, app.state.records, app.state.drain)
    finally:
        server.should_exit = True
        # Longer than any one step of the app's own shutdown (app.STEP_S), so a step that
        # runs out is named in the log rather than cut here.
        await asyncio.wait_for(serving, 3 * STEP_S)
