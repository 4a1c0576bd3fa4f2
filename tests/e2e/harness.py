"""The service and the ACS emulator on loopback, wired as a deployment would be."""

from __future__ import annotations

import asyncio
import secrets
import socket
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from callbridge.app import create_app
from callbridge.config import Settings, load_settings
from callbridge.emulator import AcsEmulator
from callbridge.server import uvicorn_server
from callbridge.telephony.acs.edge import AcsEdge

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def hello_pcm16k() -> bytes:
    """A spoken sentence (4.35 s, 16 kHz mono) shipped with the repo."""
    with wave.open(str(SAMPLES / "hello.wav"), "rb") as wf:
        return wf.readframes(wf.getnframes())


def silence16k(seconds: float) -> bytes:
    return bytes(int(16000 * seconds) * 2)


def speech_end_s(pcm: bytes, rate: int = 16000) -> float:
    """Where the last loud 20 ms frame of `pcm` ends."""
    frame = rate // 50
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    loud = [
        i
        for i in range(0, x.size - frame + 1, frame)
        if np.sqrt(np.mean(x[i : i + frame] ** 2)) > 500
    ]
    return (loud[-1] + frame) / rate if loud else 0.0


def rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


@dataclass
class Stack:
    emulator: AcsEmulator
    settings: Settings
    edge: AcsEdge
    service_url: str


@asynccontextmanager
async def running_stack(
    *, event_schema: str = "eventgrid", **overrides: Any
) -> AsyncIterator[Stack]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    service_url = f"http://127.0.0.1:{port}"
    key = AcsEmulator.generate_access_key()
    secret = secrets.token_urlsafe(24)
    emulator = AcsEmulator(
        f"{service_url}/acs/incoming?key={secret}", key, event_schema=event_schema
    )
    await emulator.start()
    settings = load_settings(
        acs_connection=f"endpoint={emulator.endpoint}/;accesskey={key}",
        public_url=service_url,
        eventgrid_secret=secret,
        host="127.0.0.1",
        port=port,
        acs_jwks_url=emulator.jwks_url,
        acs_jwt_issuer=emulator.issuer,
        acs_jwt_audience=emulator.audience,
        **overrides,
    )
    app = create_app(settings)
    server = uvicorn_server(app, settings)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.02)
        yield Stack(emulator, settings, app.state.edge, service_url)
    finally:
        await emulator.stop()
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        sock.close()
