"""Running the app under uvicorn with the service's own limits."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from callbridge.config import Settings


def uvicorn_server(app: FastAPI, settings: Settings) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws="websockets",
        ws_max_size=settings.max_ws_message_bytes,
        log_config=None,  # our logging setup, with the call id on every line
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)
