"""The media WebSocket ACS opens to the service's transportUrl: frames and the socket.

The emulator is the WebSocket *client*. Inbound frames (ACS → service) are built
here; outbound frames (service → ACS) are parsed case-insensitively because the
Python docs use PascalCase and the JS SDK lower-camel, and both work against ACS. Public
reference: https://learn.microsoft.com/azure/communication-services/how-tos/call-automation/audio-streaming-quickstart
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from .ids import iso_now_ms
from .network import DelayLine, NetworkConditions

log = logging.getLogger("callbridge.emulator")

# audioFormat: GA casing pcm16KMono/pcm24KMono, preview Pcm16KMono/Pcm24KMono; default 16 kHz.
_RATES = {"pcm16kmono": 16000, "pcm24kmono": 24000}
CONNECT_TIMEOUT_S = 10.0


def parse_audio_format(value: Any) -> tuple[str, int]:
    """(format as given, sample rate); raises ValueError for an unknown format."""
    if value is None:
        return "pcm16KMono", 16000
    rate = _RATES.get(str(value).lower())
    if rate is None:
        raise ValueError(f"unsupported audioFormat {value!r}")
    return str(value), rate


def metadata_frame(subscription_id: str, rate: int) -> str:
    # The first message; length = bytes per 20 ms frame.
    return json.dumps(
        {
            "kind": "AudioMetadata",
            "audioMetadata": {
                "subscriptionId": subscription_id,
                "encoding": "PCM",
                "sampleRate": rate,
                "channels": 1,
                "length": rate // 50 * 2,
            },
        }
    )


def audio_frame(pcm_b64: str, participant_raw_id: str, silent: bool) -> str:
    # One 20 ms frame of the caller's audio.
    return json.dumps(
        {
            "kind": "AudioData",
            "audioData": {
                "timestamp": iso_now_ms(),
                "participantRawID": participant_raw_id,
                "data": pcm_b64,
                "silent": silent,
            },
        }
    )


def dtmf_frame(digit: str) -> str:
    return json.dumps({"kind": "DtmfData", "dtmfData": {"data": digit}})


@dataclass
class Outbound:
    kind: str  # "audio" | "stop" | "invalid"
    pcm: bytes = b""
    reason: str = ""


def _lower_keys(obj: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in obj.items()}


def parse_outbound(text: str) -> Outbound:
    """Parse one service → ACS frame, matching names case-insensitively."""
    try:
        msg = json.loads(text)
    except ValueError:
        return Outbound("invalid", reason="not JSON")
    if not isinstance(msg, dict):
        return Outbound("invalid", reason="not a JSON object")
    msg = _lower_keys(msg)
    kind = str(msg.get("kind", "")).lower()
    if kind == "stopaudio":
        return Outbound("stop")
    if kind != "audiodata":
        return Outbound("invalid", reason=f"unknown kind {msg.get('kind')!r}")
    payload = msg.get("audiodata")
    if not isinstance(payload, dict):
        return Outbound("invalid", reason="AudioData without an AudioData object")
    data = _lower_keys(payload).get("data")
    if not isinstance(data, str):
        return Outbound("invalid", reason="AudioData.Data missing or not a string")
    try:
        pcm = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return Outbound("invalid", reason="AudioData.Data is not valid base64")
    if len(pcm) % 2:
        return Outbound("invalid", reason="odd number of PCM bytes")
    return Outbound("audio", pcm=pcm)


class MediaConnectError(Exception):
    """The WebSocket to transportUrl could not be opened."""


class MediaSocket:
    """The emulator's end of one media WebSocket; with `network` conditions, each direction
    goes through a `DelayLine` (emulator/network.py)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        headers: dict[str, str],
        on_frame: Callable[[Outbound, str], None],
        on_closed: Callable[[], None],
        *,
        network: NetworkConditions | None = None,
        media_time: Callable[[], float | None] = lambda: None,
    ) -> None:
        self._session = session
        self._url = url
        self._headers = headers
        self._on_frame = on_frame
        self._on_closed = on_closed
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._out: DelayLine[str] | None = None
        self._in: DelayLine[str] | None = None
        self._lines: list[asyncio.Task[None]] = []
        if network is not None and network.shapes_traffic:
            rng = random.Random(network.seed)
            self._out = DelayLine(network, self._send_now, media_time, rng)
            self._in = DelayLine(network, self._receive_now, media_time, rng)

    @property
    def open(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def connect(self) -> None:
        try:
            self._ws = await self._session.ws_connect(
                self._url,
                headers=self._headers,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                autoping=True,
                max_msg_size=0,
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise MediaConnectError(f"WebSocket upgrade refused: HTTP {exc.status}") from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise MediaConnectError(f"{type(exc).__name__}: {exc}") from exc
        self._reader = asyncio.create_task(self._read(), name="acs-emulator-media-reader")
        for line in (self._out, self._in):
            if line is not None:
                self._lines.append(asyncio.create_task(line.run(), name="acs-emulator-network"))

    async def send(self, text: str) -> bool:
        """Send a frame to the service (through the network's delay line, if any); False
        when the socket is not open."""
        ws = self._ws
        if ws is None or ws.closed:
            return False
        if self._out is not None:
            self._out.put(text)
            return True
        return await self._send_now(text)

    async def _send_now(self, text: str) -> bool:
        ws = self._ws
        if ws is None or ws.closed:
            return False
        try:
            await ws.send_str(text)
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            log.info("media send failed: %s", exc)
            return False
        return True

    async def close(self) -> None:
        """Normal close (1000) — what a caller hang-up looks like on the socket."""
        self._closing = True
        if self._ws is not None and not self._ws.closed:
            try:
                await asyncio.wait_for(self._ws.close(code=aiohttp.WSCloseCode.OK), 5.0)
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
        await self._stop_tasks()

    async def abort(self) -> None:
        """The connection breaks: no close frame, the service sees an abnormal closure."""
        self._closing = True
        ws = self._ws
        # aiohttp has no public abort for a client WebSocket; its connection's transport
        # is the TCP socket itself.
        transport = getattr(getattr(ws, "_conn", None), "transport", None)
        if transport is not None:
            transport.abort()
        elif ws is not None and not ws.closed:
            await ws.close(code=aiohttp.WSCloseCode.INTERNAL_ERROR)
        await self._stop_tasks()

    async def _stop_tasks(self) -> None:
        tasks = [t for t in (self._reader, *self._lines) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _receive_now(self, text: str) -> None:
        self._on_frame(parse_outbound(text), text)

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                if self._in is not None:
                    self._in.put(msg.data)
                else:
                    self._on_frame(parse_outbound(msg.data), msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self._on_frame(Outbound("invalid", reason="binary frame"), "<binary>")
            elif msg.type == aiohttp.WSMsgType.ERROR:
                break
        if not self._closing:
            self._on_closed()
