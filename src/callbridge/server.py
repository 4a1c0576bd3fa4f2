"""Running the app under uvicorn with the service's own limits."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from callbridge.config import Settings
from callbridge.http_timeouts import quiet_timeouts, timed_http_protocol
from callbridge.pending_tasks import pending_tasks

# The default connection cap (uvicorn's limit_concurrency), per call slot and in all. A
# call holds one media WebSocket for its whole length, and ACS callbacks, Event Grid
# deliveries and idle kept-alive connections come and go beside it: 4 per call slot
# covers those with room to spare, 512 more the console, the API, probes and scrapes.
log = logging.getLogger(__name__)

CONNECTIONS_PER_CALL = 4
CONNECTIONS_HEADROOM = 512


def run_server(server: uvicorn.Server) -> None:
    run_loop(server.serve())


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (a dependency on Linux): the media path
    is thousands of small WebSocket messages a second and uvloop halves their cost."""
    factory: Callable[[], asyncio.AbstractEventLoop]
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


Drain = Callable[[], Coroutine[Any, Any, None]]


class DrainingServer(uvicorn.Server):
    """A uvicorn server that drains the calls on the first SIGTERM or Ctrl-C before it
    stops (`drain`, the app's `state.drain`); a second signal stops it at once.

    uvicorn on its own closes every WebSocket (1012) before the app's shutdown runs, so
    the calls would be cut without a word and recorded as closed by ACS.
    """

    freeze_after_start = True

    def __init__(self, config: uvicorn.Config, drain: Drain | None = None) -> None:
        super().__init__(config)
        self._drain = drain
        self._draining = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.freeze_after_start:
            freeze_what_start_made()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or self._drain is None:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        drain = self._drain
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(lambda: loop.create_task(self._drain_then_exit(drain)))

    async def _drain_then_exit(self, drain: Drain) -> None:
        asyncio.get_running_loop().create_task(_report_slow_stop())
        try:
            await drain()
        finally:
            self.should_exit = True


def freeze_what_start_made() -> None:
    """Move every object alive once the service has started (modules, the app, the models)
    out of the cyclic collector's sight (https://docs.python.org/3/library/gc.html#gc.freeze):
    they live as long as the process, and a full collection walking them all stopped the
    event loop, and with it every call's audio, for 289 ms a few seconds into 80 calls
    (docs/architecture.md, "The collector")."""
    gc.collect()
    gc.freeze()
    log.info("start-up objects frozen: %d out of the collector's sight", gc.get_freeze_count())


SLOW_STOP_S = 20.0


async def _report_slow_stop() -> None:
    """A stop that takes long says what it is waiting for, every `SLOW_STOP_S` seconds: the
    pending tasks and where each one waits (an orchestrator's kill follows otherwise, and
    nothing would tell why)."""
    while True:
        await asyncio.sleep(SLOW_STOP_S)
        lines = pending_tasks()
        log.warning("still stopping; %d task(s) pending:\n  %s", len(lines), "\n  ".join(lines))


class EmbeddedServer(DrainingServer):
    """A uvicorn server that leaves signals to its host (callbridge dev, tests), and the
    collector too: the host's objects are not the service's to freeze."""

    freeze_after_start = False

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def connection_limit(settings: Settings) -> int:
    """uvicorn's `limit_concurrency`: `CALLBRIDGE_MAX_CONNECTIONS`, else derived from the
    number of calls.

    uvicorn counts every open connection (idle, slow and WebSocket ones too) and every
    running request; over the limit a new HTTP request is answered 503 at once instead of
    reaching the app, so a flood of requests cannot starve the event loop the calls'
    audio runs on. WebSocket handshakes are never refused by it (uvicorn checks the limit
    after routing upgrades away), and `CALLBRIDGE_MAX_CALLS` already bounds the calls.
    With the header and body timeouts a slow client holds a place for seconds, not for
    ever. Unset, uvicorn has no limit at all.
    """
    if settings.max_connections is not None:
        return settings.max_connections
    return CONNECTIONS_PER_CALL * settings.max_calls + CONNECTIONS_HEADROOM


def uvicorn_server(app: FastAPI, settings: Settings, *, embedded: bool = False) -> uvicorn.Server:
    config = uvicorn.Config(
        quiet_timeouts(app),
        host=settings.host,
        port=settings.port,
        # httptools (a dependency; what http="auto" picks) with deadlines for the request
        # headers and body: uvicorn's own timeout covers idle keep-alive only.
        http=timed_http_protocol(settings.header_timeout_s, settings.body_timeout_s),
        limit_concurrency=connection_limit(settings),
        ws="websockets-sansio",
        ws_max_size=settings.max_ws_message_bytes,
        log_config=None,  # our logging setup, with the call id on every line
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    drain = getattr(app.state, "drain", None)
    return EmbeddedServer(config, drain) if embedded else DrainingServer(config, drain)
