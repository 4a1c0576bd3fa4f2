"""Real-time pacing of outbound agent audio, and what the caller has heard of it.

ACS plays whatever we send from its own buffer; sending a whole reply at once would make
barge-in slow (everything queued keeps playing until StopAudio lands) and would hide how
much the caller heard. So audio leaves in small chunks, at most `lead_ms` ahead of the
caller's ear, and a model of ACS's playout buffer gives the heard milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from callbridge.audio.pcm import duration_ms, frame_bytes
from callbridge.core.clock import SYSTEM_CLOCK, Clock


class Playout:
    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        sample_rate: int,
        *,
        chunk_ms: int = 20,
        lead_ms: int = 60,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._send = send
        self._rate = sample_rate
        self._chunk_bytes = frame_bytes(sample_rate, chunk_ms)
        self._lead_s = lead_ms / 1000.0
        self._now = clock.now
        self._sleep = clock.sleep
        self._queue = bytearray()
        self._wake = asyncio.Event()
        self._play_end = 0.0  # when ACS's buffer runs dry, on our clock
        self._sent_ms = 0.0  # all audio sent (and not flushed), every reply
        self._reply_start_ms = 0.0  # where the current reply starts in that stream
        self._available_at = 0.0  # when the audio at the head of the queue arrived
        self.lateness_ms: list[float] = []  # send time minus due time, per chunk
        self.chunks_sent = 0
        self.bytes_sent = 0

    # --- state -----------------------------------------------------------------
    def buffered_ms(self) -> float:
        """Audio queued here plus audio already at ACS not yet played."""
        return duration_ms(len(self._queue), self._rate) + self._unplayed_ms()

    def _unplayed_ms(self) -> float:
        return max(0.0, self._play_end - self._now()) * 1000.0

    @property
    def speaking(self) -> bool:
        return bool(self._queue) or self._unplayed_ms() > 0

    @property
    def heard_ms(self) -> int:
        """Milliseconds of the current reply that have reached the caller's ear (not
        counting the tail of an earlier reply still playing before it)."""
        played = self._sent_ms - self._unplayed_ms()
        return int(max(0.0, played - self._reply_start_ms))

    # --- control ---------------------------------------------------------------
    def start_reply(self) -> None:
        """The audio enqueued from now on is a new reply: it starts after what is queued."""
        self._reply_start_ms = self._sent_ms + duration_ms(len(self._queue), self._rate)

    def enqueue(self, pcm: bytes) -> None:
        if not self._queue:
            self._available_at = self._now()
        self._queue += pcm
        self._wake.set()

    def flush(self) -> int:
        """Drop everything not yet heard (StopAudio empties ACS's buffer too); return heard ms."""
        heard = self.heard_ms
        self._sent_ms -= self._unplayed_ms()  # what ACS drops was never heard
        self._queue.clear()
        self._play_end = min(self._play_end, self._now())
        return heard

    async def run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = self._now()
            due = self._play_end - self._lead_s
            if due > now:
                await self._sleep(due - now)
                continue
            chunk = bytes(self._queue[: self._chunk_bytes])
            del self._queue[: self._chunk_bytes]
            now = self._now()
            if self._play_end > now:
                # How late this chunk left against when it was due (or arrived, if later).
                self.lateness_ms.append(max(0.0, now - max(due, self._available_at)) * 1000.0)
                if len(self.lateness_ms) > 20000:
                    del self.lateness_ms[:10000]
            ms = duration_ms(len(chunk), self._rate)
            self._play_end = max(self._play_end, now) + ms / 1000.0
            self._sent_ms += ms
            self.chunks_sent += 1
            self.bytes_sent += len(chunk)
            await self._send(chunk)
