"""The ACS media WebSocket as a `MediaLeg`: decoding, silence, and rejection of bad frames."""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from callbridge.audio.pcm import frame_bytes, silence
from callbridge.call.media_leg import CallerAudio, CallerDtmf, CallerInput
from callbridge.core.ending import EndCause, EndReason
from callbridge.telephony.acs.media_codec import (
    STOP_AUDIO,
    AudioData,
    AudioMetadata,
    DtmfData,
    FrameError,
    encode_audio,
    parse_frame,
)

log = logging.getLogger(__name__)

SUPPORTED_RATES = (16000, 24000)


class AcsMediaLeg:
    """Reads ACS media frames from an accepted WebSocket and writes agent audio to it."""

    def __init__(
        self,
        ws: WebSocket,
        sample_rate: int,
        *,
        max_message_bytes: int = 65536,
        max_bad_frames: int = 50,
    ) -> None:
        self._ws = ws
        self.sample_rate = sample_rate
        self.close_reason: EndReason | None = None
        self.metadata: AudioMetadata | None = None
        self.bad_frames = 0
        self._max_bytes = max_message_bytes
        self._max_bad = max_bad_frames
        self._closed = False
        self._pending: str | bytes | None = None

    async def _next_message(self) -> str | bytes | None:
        try:
            msg = await self._ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            self.close_reason = self.close_reason or EndReason(
                EndCause.MEDIA_CLOSED, "media socket closed"
            )
            return None
        if msg["type"] == "websocket.disconnect":
            code = msg.get("code", 1000)
            if code == 1009:  # the server's frame-size limit tripped before we saw the frame
                log.warning("media message over the %d-byte limit", self._max_bytes)
                self.close_reason = EndReason(EndCause.MEDIA_FAILED, "oversized media message")
            self.close_reason = self.close_reason or EndReason(
                EndCause.MEDIA_CLOSED, f"media socket closed by ACS ({code})"
            )
            return None
        data: str | bytes | None = msg.get("text")
        if data is None:
            data = msg.get("bytes")
        return data if data is not None else b""

    def _closed_by_peer(self, text: str) -> None:
        if self.close_reason is None:
            self.close_reason = EndReason(EndCause.MEDIA_CLOSED, text)

    def _reject(self, reason: str) -> bool:
        """Log a bad frame; True if the call has sent too many to go on."""
        self.bad_frames += 1
        if self.bad_frames <= 5 or self.bad_frames % 100 == 0:
            log.warning("rejected media frame #%d: %s", self.bad_frames, reason)
        return self.bad_frames >= self._max_bad

    async def receive(self) -> CallerInput | None:
        while not self._closed:
            data, self._pending = self._pending, None
            if data is None:
                data = await self._next_message()
            if data is None:
                return None
            if len(data) > self._max_bytes:
                log.warning("media message of %d bytes is over the limit", len(data))
                self.close_reason = EndReason(EndCause.MEDIA_FAILED, "oversized media message")
                await self.close(1009)
                return None
            try:
                frame = parse_frame(data)
            except FrameError as exc:
                if self._reject(str(exc)):
                    self.close_reason = EndReason(
                        EndCause.MEDIA_FAILED, "too many malformed media frames"
                    )
                    await self.close(1007)
                    return None
                continue
            if isinstance(frame, AudioData):
                if frame.silent:
                    # Keep silence as silence so the agent's VAD sees the true timeline.
                    n = len(frame.pcm) or frame_bytes(self.sample_rate, 20)
                    return CallerAudio(silence(n))
                return CallerAudio(frame.pcm)
            if isinstance(frame, DtmfData):
                return CallerDtmf(frame.digit)
            if isinstance(frame, AudioMetadata):
                self._on_metadata(frame)
        return None

    def _on_metadata(self, meta: AudioMetadata) -> None:
        self.metadata = meta
        if meta.encoding.upper() != "PCM" or meta.channels != 1:
            log.warning("unexpected AudioMetadata %s; treating audio as PCM mono", meta)
        if meta.sample_rate in SUPPORTED_RATES and meta.sample_rate != self.sample_rate:
            log.warning(
                "ACS streams %d Hz, not the %d Hz asked for; resampling",
                meta.sample_rate,
                self.sample_rate,
            )
            self.sample_rate = meta.sample_rate
        log.info("media started: %d Hz, subscription %s", self.sample_rate, meta.subscription_id)

    async def open(self) -> None:
        """ACS sends AudioMetadata first: learn the stream's rate before the bridge starts.

        Older deployments send no metadata; then the first frame is kept for `receive`.
        """
        data = await self._next_message()
        if data is None:
            self._closed = True
            return
        try:
            frame = parse_frame(data) if len(data) <= self._max_bytes else None
        except FrameError:
            frame = None
        if isinstance(frame, AudioMetadata):
            self._on_metadata(frame)
        else:
            self._pending = data

    async def send_audio(self, pcm: bytes) -> None:
        await self._send(encode_audio(pcm))

    async def stop_audio(self) -> None:
        await self._send(STOP_AUDIO)

    async def _send(self, text: str) -> None:
        """Send unless closed; a socket that broke under us drops the frame (the receive
        side reports the close, and the call decides what follows)."""
        if self._closed:
            return
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            log.debug("media send on a broken socket: %s", exc)
            self._closed = True

    async def close(self, code: int = 1000) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ws.application_state == WebSocketState.CONNECTED:
            try:
                await self._ws.close(code)
            except RuntimeError:
                pass
