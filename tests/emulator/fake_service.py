"""A tiny fake callbridge service (aiohttp + the real ACS SDK) to drive the emulator."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from azure.communication.callautomation import (
    AudioFormat,
    MediaStreamingAudioChannelType,
    MediaStreamingContentType,
    MediaStreamingOptions,
    StreamingTransportType,
)
from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.credentials import AzureKeyCredential


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, amp: int = 8000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amp).astype("<i2").tobytes()


@dataclass
class WsSession:
    headers: dict[str, str]
    ws: web.WebSocketResponse
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    raw_text: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # per-socket state of a hook


# on_media(session, message) -> awaited for every message the emulator sends on the socket
MediaHook = Callable[[WsSession, dict[str, Any] | None], Awaitable[None]]


async def echo(session: WsSession, msg: dict[str, Any] | None) -> None:
    """Echo each caller audio frame back as outbound AudioData (PascalCase)."""
    if msg and msg.get("kind") == "AudioData":
        data = msg["audioData"]["data"]
        await session.ws.send_str(
            json.dumps({"Kind": "AudioData", "AudioData": {"Data": data}, "StopAudio": None})
        )


async def send_audio(session: WsSession, pcm: bytes) -> None:
    b64 = base64.b64encode(pcm).decode()
    await session.ws.send_str(
        json.dumps({"Kind": "AudioData", "AudioData": {"Data": b64}, "StopAudio": None})
    )


async def send_stop_audio(session: WsSession) -> None:
    await session.ws.send_str(json.dumps({"Kind": "StopAudio", "AudioData": None, "StopAudio": {}}))


def echo_after_silence(gap_s: float = 0.4) -> MediaHook:
    """A turn-taking "agent": each caller utterance is echoed back once the caller has
    been silent for ``gap_s`` (counted in the caller's 20 ms frames, so it is exact)."""
    gap_frames = round(gap_s / 0.02)

    async def hook(session: WsSession, msg: dict[str, Any] | None) -> None:
        if not msg or msg.get("kind") != "AudioData":
            return
        st = session.state
        data = msg["audioData"]
        if not data["silent"]:
            st.setdefault("utterance", bytearray()).extend(base64.b64decode(data["data"]))
            st["quiet_frames"] = 0
        elif st.get("utterance"):
            st["quiet_frames"] += 1
            if st["quiet_frames"] >= gap_frames:
                st.setdefault("replies", []).append(time.monotonic())
                await send_audio(session, bytes(st.pop("utterance")))

    return hook


def greeter(seconds: float = 1.0, then: MediaHook | None = None) -> MediaHook:
    """Plays a ``seconds`` greeting tone as soon as media starts and stops it (StopAudio)
    when the caller speaks over it; every message is also passed on to ``then``."""

    async def hook(session: WsSession, msg: dict[str, Any] | None) -> None:
        st = session.state
        kind = (msg or {}).get("kind")
        if msg and kind == "AudioMetadata":
            rate = msg["audioMetadata"]["sampleRate"]
            st["greeting_until"] = time.monotonic() + seconds
            await send_audio(session, tone(seconds, rate, freq=330.0))
        elif (
            msg
            and kind == "AudioData"
            and not msg["audioData"]["silent"]
            and time.monotonic() < st.get("greeting_until", 0.0)
        ):
            st["greeting_until"] = 0.0
            st["barged_in"] = time.monotonic()
            await send_stop_audio(session)
        if then is not None:
            await then(session, msg)

    return hook


class FakeService:
    def __init__(self, key: str) -> None:
        self.key = key
        self.emulator_endpoint = ""
        self.port = 0
        self.answer = True
        self.answer_times = 1
        self.media = True
        self.audio_format: str = AudioFormat.PCM24_K_MONO
        self.start_media = True
        self.ws_path = "/ws"
        self.transport_url: str | None = None
        self.validation_ok = True
        self.on_media: MediaHook = echo
        self.on_callback: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None
        self.incoming: list[tuple[dict[str, str], Any]] = []
        self.validations: list[tuple[str, dict[str, str]]] = []
        self.callbacks: list[tuple[float, dict[str, Any], dict[str, str], str]] = []
        self.ws_sessions: list[WsSession] = []
        self.contexts: asyncio.Queue[str] = asyncio.Queue()
        self.answer_errors: list[Exception] = []
        self._runner: web.AppRunner | None = None
        self.client: CallAutomationClient | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook(self) -> str:
        return f"{self.base}/acs/incoming?key=secret"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/acs/incoming", self._incoming)
        app.router.add_route("OPTIONS", "/acs/incoming", self._options)
        app.router.add_post("/acs/callbacks/{id}", self._callback)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/forbidden", self._forbidden)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def connect_sdk(self, endpoint: str) -> CallAutomationClient:
        self.emulator_endpoint = endpoint
        self.client = CallAutomationClient(endpoint, AzureKeyCredential(self.key))
        return self.client

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = [e for _, e, _, _ in self.callbacks]
        if name:
            out = [e for e in out if e["type"] == f"Microsoft.Communication.{name}"]
        return out

    def event_names(self) -> list[str]:
        return [e["type"].removeprefix("Microsoft.Communication.") for e in self.events()]

    async def wait_event(self, name: str, count: int = 1, timeout_s: float = 5.0) -> dict[str, Any]:
        """The ``count``-th callback event called ``name`` (polls the list every 10 ms)."""
        async with asyncio.timeout(timeout_s):
            while len(self.events(name)) < count:  # noqa: ASYNC110 - a plain list
                await asyncio.sleep(0.01)
        return self.events(name)[count - 1]

    # ------------------------------------------------------------------ handlers

    async def _options(self, request: web.Request) -> web.Response:
        self.validations.append(("OPTIONS", dict(request.headers)))
        if not self.validation_ok:
            return web.Response(status=403, text="nope")
        origin = request.headers.get("WebHook-Request-Origin", "")
        return web.Response(headers={"WebHook-Allowed-Origin": origin, "Allow": "POST"})

    async def _incoming(self, request: web.Request) -> web.Response:
        assert request.query.get("key") == "secret"
        body = json.loads(await request.read())
        if request.headers.get("aeg-event-type") == "SubscriptionValidation":
            self.validations.append(("POST", dict(request.headers)))
            if not self.validation_ok:
                return web.Response(status=500, text="validation broken")
            return web.json_response({"validationResponse": body[0]["data"]["validationCode"]})
        self.incoming.append((dict(request.headers), body))
        event = body[0] if isinstance(body, list) else body
        ctx = event["data"]["incomingCallContext"]
        await self.contexts.put(ctx)
        if self.answer:
            for _ in range(self.answer_times):
                try:
                    await self._answer(ctx)
                except Exception as exc:
                    self.answer_errors.append(exc)
        return web.Response(status=200)

    async def _answer(self, ctx: str) -> Any:
        assert self.client is not None
        media = None
        if self.media:
            media = MediaStreamingOptions(
                transport_url=self.transport_url or f"ws://127.0.0.1:{self.port}{self.ws_path}",
                transport_type=StreamingTransportType.WEBSOCKET,
                content_type=MediaStreamingContentType.AUDIO,
                audio_channel_type=MediaStreamingAudioChannelType.MIXED,
                start_media_streaming=self.start_media,
                enable_bidirectional=True,
                audio_format=self.audio_format,
                enable_dtmf_tones=True,
            )
        return await self.client.answer_call(
            incoming_call_context=ctx,
            callback_url=f"{self.base}/acs/callbacks/c1?callerId=%2B1425",
            operation_context="answer-op",
            media_streaming=media,
        )

    async def _callback(self, request: web.Request) -> web.Response:
        body = await request.json()
        event = body[0]
        self.callbacks.append((time.monotonic(), event, dict(request.headers), request.path_qs))
        if self.on_callback is not None:
            await self.on_callback(event["type"].removeprefix("Microsoft.Communication."), event)
        return web.Response(status=200)

    async def _forbidden(self, request: web.Request) -> web.Response:
        return web.Response(status=403)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = WsSession(dict(request.headers), ws)
        self.ws_sessions.append(session)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            session.raw_text.append(msg.data)
            try:
                parsed = json.loads(msg.data)
            except ValueError:
                parsed = None
            session.received.append((time.monotonic(), parsed or {}))
            await self.on_media(session, parsed)
        return ws
