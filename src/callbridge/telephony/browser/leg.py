"""The browser phone's WebSocket as a `MediaLeg`.

Everything the service sends goes through one writer task, in order: agent audio from the
playout pacer and control messages posted synchronously by call observers (transcripts,
`ended`) share the socket without concurrent sends. On barge-in, audio still waiting in
the writer's queue is dropped before `stop` goes out, so the page never receives audio
from after the interruption.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from callbridge.audio.pcm import bytes_per_ms, silence
from callbridge.call.media_leg import CallerAudio, CallerDtmf, CallerInput
from callbridge.core.ending import EndCause, EndReason
from callbridge.telephony.browser import protocol
from callbridge.telephony.browser.protocol import (
    ClientMessage,
    Dtmf,
    Flushed,
    HangUp,
    Hello,
    Mute,
    Playback,
    ProtocolError,
)

log = logging.getLogger(__name__)

ControlHandler = Callable[[ClientMessage], None]


async def receive_message(ws: WebSocket) -> tuple[str | bytes | None, int | None]:
    """The next frame's payload, or (None, close code) once the socket is gone."""
    try:
        msg = await ws.receive()
    except (WebSocketDisconnect, RuntimeError):
        return None, None
    if msg["type"] == "websocket.disconnect":
        return None, int(msg.get("code", 1000))
    data: str | bytes | None = msg.get("text")
    if data is None:
        data = msg.get("bytes")
    return (data if data is not None else b""), None


class BrowserMediaLeg:
    """Caller PCM and control messages in; agent PCM, `stop` and page updates out."""

    def __init__(
        self,
        ws: WebSocket,
        sample_rate: int,
        *,
        on_control: ControlHandler | None = None,
        max_message_bytes: int = 65536,
        max_bad_messages: int = 50,
        max_queued_ms: int = 5000,
    ) -> None:
        self._ws = ws
        self.sample_rate = sample_rate
        self.close_reason: EndReason | None = None
        self.on_control = on_control
        # What the page told us, for the call's record and for tests.
        self.muted = False
        self.playing = False
        self.played_ms = 0
        self.flushes: list[int] = []  # ms of unplayed audio the page dropped, per stop
        # What we sent.
        self.bytes_sent = 0
        self.stops_sent = 0
        self.dropped_bytes = 0
        self.bad_messages = 0
        self._max_bytes = max_message_bytes
        self._max_bad = max_bad_messages
        self._max_queued = int(bytes_per_ms(sample_rate) * max_queued_ms)
        self._queued_audio = 0
        self._out: deque[str | bytes] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._closed = False
        self._writer = asyncio.create_task(self._write())

    # --- inbound ------------------------------------------------------------------------
    async def receive(self) -> CallerInput | None:
        while not self._closed:
            data, code = await receive_message(self._ws)
            if data is None:
                self.close_reason = self.close_reason or EndReason(
                    EndCause.CALLER_HUNG_UP, f"browser closed the socket ({code})"
                )
                return None
            if len(data) > self._max_bytes:
                self.close_reason = EndReason(EndCause.MEDIA_FAILED, "oversized media message")
                await self.close(protocol.CLOSE_TOO_BIG)
                return None
            if isinstance(data, bytes):
                if len(data) % 2:
                    if await self._reject("odd-length PCM frame"):
                        return None
                    continue
                # Muted is still audio: silence keeps the agent's VAD on the true timeline.
                return CallerAudio(silence(len(data)) if self.muted else data)
            try:
                msg = protocol.parse_client(data)
            except ProtocolError as exc:
                if await self._reject(str(exc)):
                    return None
                continue
            if isinstance(msg, Dtmf):
                return CallerDtmf(msg.digit)
            if isinstance(msg, Mute):
                self.muted = msg.muted
            elif isinstance(msg, Playback):
                self.playing = msg.playing
                self.played_ms = max(self.played_ms, msg.played_ms)
            elif isinstance(msg, Flushed):
                self.flushes.append(msg.dropped_ms)
            elif isinstance(msg, Hello):
                if await self._reject("hello after the call started"):
                    return None
                continue
            elif isinstance(msg, HangUp):
                self.close_reason = EndReason(EndCause.CALLER_HUNG_UP, "caller hung up")
            if self.on_control is not None:
                self.on_control(msg)
            if isinstance(msg, HangUp):
                return None
        return None

    async def _reject(self, reason: str) -> bool:
        """Log a bad message; True (and the leg closed) if the page has sent too many."""
        self.bad_messages += 1
        if self.bad_messages <= 5:
            log.warning("rejected browser message #%d: %s", self.bad_messages, reason)
        if self.bad_messages < self._max_bad:
            return False
        self.close_reason = EndReason(
            EndCause.MEDIA_FAILED, "too many malformed messages from the browser"
        )
        await self.close(protocol.CLOSE_BAD_MESSAGE)
        return True

    # --- outbound -----------------------------------------------------------------------
    def post(self, text: str) -> None:
        """Queue a control message for the page (safe to call from sync observers)."""
        if not self._closing:
            self._out.append(text)
            self._wake.set()

    async def send_audio(self, pcm: bytes) -> None:
        if self._closing or not pcm:
            return
        if self._queued_audio + len(pcm) > self._max_queued:
            # The page stopped reading; dropping keeps memory bounded, pacing keeps time.
            self.dropped_bytes += len(pcm)
            return
        self._queued_audio += len(pcm)
        self._out.append(pcm)
        self._wake.set()

    async def stop_audio(self) -> None:
        if self._closing:
            return
        kept = [item for item in self._out if isinstance(item, str)]
        self.dropped_bytes += self._queued_audio
        self._queued_audio = 0
        self._out.clear()
        self._out.extend(kept)
        self.stops_sent += 1
        self.post(protocol.STOP)

    async def _write(self) -> None:
        try:
            while True:
                while self._out:
                    item = self._out.popleft()
                    if isinstance(item, bytes):
                        self._queued_audio -= len(item)
                        await self._ws.send_bytes(item)
                        self.bytes_sent += len(item)
                    else:
                        await self._ws.send_text(item)
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            log.info("browser socket gone while sending: %s", exc)
            self._closing = True  # nothing more is queued for a socket that is gone
            self._out.clear()

    async def close(self, code: int = protocol.CLOSE_NORMAL) -> None:
        """Send what control messages are queued (e.g. `ended`), then close the socket."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._out = deque(item for item in self._out if isinstance(item, str))
        self._wake.set()
        if self._writer is not asyncio.current_task():
            # A page that stopped reading must not hold the call's teardown up.
            await asyncio.wait({self._writer}, timeout=1.0)
            self._writer.cancel()
        if self._ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await self._ws.close(code)
