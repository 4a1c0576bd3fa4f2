"""One call's media streaming subscription: the WebSocket ACS opens to the transportUrl.

The answer's ``mediaStreamingOptions`` (:class:`MediaConfig`) say where and how.
:class:`MediaStream` opens the socket (at CallConnected, or on ``:startMediaStreaming``)
with the bearer token and call headers, sends ``AudioMetadata``, tells the service
MediaStreamingStarted / Stopped / Failed, and takes what the service sends back
(``AudioData`` into the playout buffer, ``StopAudio`` flushing it). The caller's frames
are sent by the call's clock (``clock.py``). Public reference:
https://learn.microsoft.com/azure/communication-services/how-tos/call-automation/audio-streaming-quickstart
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import events as ev
from .ids import new_id
from .media import MediaConnectError, MediaSocket, Outbound, metadata_frame

if TYPE_CHECKING:
    from .call import EmulatedCall

log = logging.getLogger("callbridge.emulator")


@dataclass
class MediaConfig:
    """``mediaStreamingOptions`` from the answer request."""

    transport_url: str
    audio_format: str
    rate: int
    start: bool
    bidirectional: bool
    dtmf: bool


class MediaStream:
    """The call's ``mediaStreamingSubscription`` and the socket behind it."""

    def __init__(self, call: EmulatedCall) -> None:
        self.call = call
        self.subscription_id = new_id()
        self.state = "disabled"  # "inactive" once answered with media, "active" while open
        self.socket: MediaSocket | None = None
        self._started_event_sent = False
        # :stopMediaStreaming answers 202 before the socket has closed. A start that
        # arrives meanwhile waits for it: the subscription's events keep their order
        # (Stopped for the old socket, then Started for the new), as one subscription's
        # operations would at ACS.
        self._operations = asyncio.Lock()

    def subscription(self) -> dict[str, Any]:
        """``mediaStreamingSubscription`` of CallConnectionProperties."""
        return {
            "id": self.subscription_id,
            "state": self.state,
            "subscribedContentTypes": ["audio"],
        }

    def _new_socket(self) -> MediaSocket:
        call = self.call
        media = call.media
        assert media is not None and call.call_connection_id is not None
        headers = {  # the upgrade request's headers
            "Authorization": f"Bearer {call.env.issuer.media_token()}",
            "x-ms-call-connection-id": call.call_connection_id,
            "x-ms-call-correlation-id": call.correlation_id,
        }
        return MediaSocket(
            call.env.session,
            media.transport_url,
            headers,
            self._on_outbound,
            self._on_closed,
            network=call.script.network,
            media_time=call.media_time,
        )

    async def start(self, operation_context: str | None, url: str | None) -> bool:
        """Open the socket; MediaStreamingStarted, or MediaStreamingFailed and False."""
        call = self.call
        media = call.media
        assert media is not None
        sock = self._new_socket()
        try:
            await sock.connect()
        except MediaConnectError as exc:
            log.warning("media connect to %s failed: %s", media.transport_url, exc)
            call.report.end_reason = f"media WebSocket to {media.transport_url} failed: {exc}"
            call.send_event(
                "MediaStreamingFailed",
                operation_context=operation_context,
                result=ev.MEDIA_FAILED,
                extra=ev.media_streaming_update(
                    "mediaStreamingFailed", "initialWebSocketConnectionFailed"
                ),
                url=url,
            )
            return False
        await sock.send(metadata_frame(self.subscription_id, media.rate))
        if not call.active:
            await sock.close()
            return False
        self.socket = sock
        self.state = "active"
        if call.clock_t0 is not None:  # :startMediaStreaming while the clock already runs
            call.media_ready.set()
        call.report.media_connected = True
        if call.report.media_start_s is None:
            call.report.media_start_s = round(time.monotonic() - call.t0, 3)
        self._started_event_sent = True
        call.send_event(
            "MediaStreamingStarted",
            operation_context=operation_context,
            result=ev.OK,
            extra=ev.media_streaming_update("mediaStreamingStarted", "subscriptionStarted"),
            url=url,
        )
        return True

    async def drop(self) -> None:
        """The network breaks the socket (``network.drops``); ACS opens a new one to the
        same transport URL ``reconnect_after_s`` later, with a new bearer token. No
        callback is sent for either: whether ACS reconnects, and what it reports, is
        unconfirmed (docs/emulator.md)."""
        call = self.call
        sock, self.socket = self.socket, None
        if sock is None or call.media is None:
            return
        call.report.media_drops += 1
        await sock.abort()
        network = call.script.network
        await asyncio.sleep(network.reconnect_after_s if network is not None else 0.5)
        if not call.active or self.socket is not None:
            return
        sock = self._new_socket()
        try:
            await sock.connect()
        except MediaConnectError as exc:
            log.warning("media reconnect failed: %s", exc)
            call.report.media_reconnects_failed += 1
            call.request_end("media_failed", f"media reconnect failed: {exc}", ev.MEDIA_FAILED)
            return
        await sock.send(metadata_frame(self.subscription_id, call.media.rate))
        if not call.active:
            await sock.close()
            return
        self.socket = sock
        call.report.media_reconnects += 1

    def start_later(self, operation_context: str | None, url: str | None) -> None:
        """``:startMediaStreaming`` — open the socket now (the clock is already running),
        once a stop in progress has closed the last one; nothing if one is open."""
        self.call.spawn(self._start_or_end(operation_context, url))

    async def _start_or_end(self, operation_context: str | None, url: str | None) -> None:
        call = self.call
        async with self._operations:
            if self.socket is not None and self.socket.open:
                return  # two starts in a row: the first opened it
            started = await self.start(operation_context, url)
        if not started and call.active:
            call.request_end("media_failed", "media WebSocket could not be opened", ev.MEDIA_FAILED)

    async def stop(self, operation_context: str | None, url: str | None) -> None:
        """``:stopMediaStreaming`` — close the socket, MediaStreamingStopped."""
        async with self._operations:
            if await self.close_socket():
                self.call.report.media_closed_by = "emulator"
                self.stopped(operation_context, url, "subscriptionStopped")

    async def bot_left(self) -> None:
        """The bot's leg ended while the caller stays on: close, MediaStreamingStopped."""
        if await self.close_socket():
            self.call.report.media_closed_by = "emulator"
        self.stopped(self.call.operation_context, None, "subscriptionStopped")

    async def hang_up(self) -> None:
        """The call ended: a normal close, whoever ended it."""
        report = self.call.report
        if await self.close_socket() and report.media_closed_by is None:
            report.media_closed_by = "emulator"

    async def close_socket(self) -> bool:
        """Close the socket if one is open; whether there was one."""
        sock, self.socket = self.socket, None
        if sock is None:
            return False
        await sock.close()
        return True

    def stopped(self, operation_context: str | None, url: str | None, details: str) -> None:
        """MediaStreamingStopped, once per MediaStreamingStarted."""
        if self._started_event_sent:
            self._started_event_sent = False
            self.state = "inactive"
            self.call.send_event(
                "MediaStreamingStopped",
                operation_context=operation_context,
                result=ev.OK,
                extra=ev.media_streaming_update("mediaStreamingStopped", details),
                url=url,
            )

    def _on_closed(self) -> None:
        call = self.call
        log.info("call %s: service closed the media socket", call.call_connection_id)
        self.socket = None
        call.report.media_closed_by = "service"
        if call.active:
            self.stopped(call.operation_context, None, "streamConnectionInterrupted")

    def _on_outbound(self, out: Outbound, raw: str) -> None:
        call = self.call
        r = call.report
        r.frames_received += 1
        if out.kind == "audio" and call.media is not None and call.media.bidirectional:
            r.outbound_bytes += len(out.pcm)
            call.playout.push(out.pcm, call.tick)
        elif out.kind == "stop":
            now = asyncio.get_running_loop().time()
            r.stop_audio_times.append(round(now - (call.clock_t0 or now), 3))
            call.playout.flush()
        else:
            reason = out.reason or "AudioData but enableBidirectional was not set"
            r.invalid_outbound_frames += 1
            if len(r.invalid_outbound_samples) < 5:
                r.invalid_outbound_samples.append(f"{reason}: {raw[:120]}")
