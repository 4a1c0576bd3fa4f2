"""Real-time pacing of outbound agent audio, and what the caller has heard of it.

ACS plays whatever we send from its own buffer; sending a whole reply at once would make
barge-in depend on StopAudio alone (everything queued keeps playing until it lands) and
would hide how much the caller heard. So audio leaves in small chunks, some lead ahead of
the caller's ear, and a model of ACS's playout buffer gives the heard milliseconds.

The lead is adaptive: `lead_ms` plus the spread of the caller's frame arrivals
(audio/jitter.py), up to `max_lead_ms`. On a quiet path it stays small; when the network
jitters or stalls, or this process is too busy to send on time, the arrivals show it and
the lead grows so the caller's ear does not run dry. Barge-in does not wait for the lead:
StopAudio empties ACS's buffer, whatever its depth.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from callbridge.audio.jitter import ArrivalJitter
from callbridge.audio.pcm import duration_ms, frame_bytes
from callbridge.core.clock import SYSTEM_CLOCK, Clock
from callbridge.core.histogram import Histogram

# Until this much of the caller's stream has arrived, the lead is at least
# UNKNOWN_PATH_LEAD_MS (within the ceiling): the jitter of a path is not yet known.
LEARN_S = 2.0
UNKNOWN_PATH_LEAD_MS = 200.0


class Playout:
    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        sample_rate: int,
        *,
        chunk_ms: int = 20,
        lead_ms: int = 60,
        max_lead_ms: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._send = send
        self._rate = sample_rate
        self._chunk_bytes = frame_bytes(sample_rate, chunk_ms)
        self._chunk_ms = chunk_ms
        self._base_lead_ms = float(lead_ms)
        self._max_lead_ms = float(max(lead_ms, max_lead_ms if max_lead_ms is not None else 0))
        self.arrivals = ArrivalJitter()  # fed by the bridge with the caller's frames
        self.lead_peak_ms = float(lead_ms)  # the largest lead used (stats)
        self._now = clock.now
        self._sleep = clock.sleep
        self._queue = bytearray()
        self._wake = asyncio.Event()
        self._open = asyncio.Event()  # cleared while the media leg is away (hold/resume)
        self._open.set()
        self._play_end = 0.0  # when ACS's buffer runs dry, on our clock
        self._sent_ms = 0.0  # all audio sent (and not flushed), every reply
        self._reply_start_ms = 0.0  # where the current reply starts in that stream
        self._available_at = 0.0  # when the audio at the head of the queue arrived
        self.lateness = Histogram()  # send time minus due time, per chunk (ms)
        self.chunks_sent = 0
        self.bytes_sent = 0

    # --- state -----------------------------------------------------------------
    def buffered_ms(self) -> float:
        """Audio queued here plus audio already at ACS not yet played."""
        return duration_ms(len(self._queue), self._rate) + self._unplayed_ms()

    def _unplayed_ms(self) -> float:
        return max(0.0, self._play_end - self._now()) * 1000.0

    @property
    def lead_ms(self) -> float:
        """How far ahead of the caller's ear audio leaves now."""
        if self._max_lead_ms <= self._base_lead_ms:
            return self._base_lead_ms  # a fixed lead
        lead = self._base_lead_ms + self.arrivals.spread_ms
        if self.arrivals.observed_s < LEARN_S:
            # The path is not known yet (the greeting plays at once): assume a rough one.
            lead = max(lead, UNKNOWN_PATH_LEAD_MS)
        return min(self._max_lead_ms, lead)

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

    def hold(self) -> None:
        """The media leg is gone (a broken socket ACS may reopen): keep the audio queued."""
        self._open.clear()

    def resume(self) -> None:
        """A new media leg: ACS's buffer behind it starts empty; the path is the same."""
        self._play_end = min(self._play_end, self._now())
        self.arrivals.restart()
        self._open.set()

    async def run(self) -> None:
        while True:
            if not self._open.is_set():
                await self._open.wait()
                continue
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = self._now()
            lead_ms = self.lead_ms
            self.lead_peak_ms = max(self.lead_peak_ms, lead_ms)
            due = self._play_end - lead_ms / 1000.0
            if due > now:
                await self._sleep(due - now)
                continue
            # Everything due now leaves in one message: the whole lead when ACS's buffer is
            # dry (the start of a reply lands with its cushion, so the jitter between its
            # first messages is no gap), a chunk at a time once it is full, and the chunks
            # a busy loop owes at once.
            room_ms = lead_ms - max(0.0, self._play_end - now) * 1000.0
            take = self._chunk_bytes * max(1, int(room_ms // self._chunk_ms))
            chunk = bytes(self._queue[:take])
            del self._queue[:take]
            now = self._now()
            if self._play_end > now:
                # How late this chunk left against when it was due (or arrived, if later).
                self.lateness.add(max(0.0, now - max(due, self._available_at)) * 1000.0)
            ms = duration_ms(len(chunk), self._rate)
            self._play_end = max(self._play_end, now) + ms / 1000.0
            self._sent_ms += ms
            self.chunks_sent += 1
            self.bytes_sent += len(chunk)
            await self._send(chunk)
