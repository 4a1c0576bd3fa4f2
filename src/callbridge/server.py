"""Running the app under uvicorn with the service's own limits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from callbridge.config import Settings


def run_server(server: uvicorn.Server) -> None:
    run_loop(server.serve())


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (it is, with uvicorn[standard]): the media path
    is thousands of small WebSocket messages a second and uvloop halves their cost."""
    factory: Callable[[], asyncio.AbstractEventLoop]
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host (callbridge dev, tests)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_server(app: FastAPI, settings: Settings, *, embedded: bool = False) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_max_size=settings.max_ws_message_bytes,
        log_config=None,  # our logging setup, with the call id on every line
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return EmbeddedServer(config) if embedded else uvicorn.Server(config)
