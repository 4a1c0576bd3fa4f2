"""How unevenly the caller's media frames arrive: the evidence for the outbound lead.

ACS sends the caller's audio as a steady stream of 20 ms frames (silent ones included), so
the spread of their arrival times against that cadence is what the path between ACS and
this process adds: network jitter, TCP stalls, and this event loop's own lateness in reading
them. Agent audio sent back crosses the same path and the same loop, so it needs at least
that much lead at ACS to arrive before the caller's ear runs dry. RFC 3550 (section 6.4.1)
tracks the mean deviation; a playout lead needs the extremes, so this keeps the spread
(max - min of transit-time variation) over a sliding window of one-second buckets.
"""

from __future__ import annotations

from collections import deque


class ArrivalJitter:
    def __init__(self, window_s: int = 10) -> None:
        self._window = window_s
        self._media_s = 0.0  # stream time of the frames seen so far
        self._start: float | None = None  # arrival time of the first frame
        self._buckets: deque[tuple[int, float, float]] = deque()  # (second, min, max)
        self._second_base = 0  # bucket numbers go on across a restart

    def reset(self) -> None:
        """Forget everything (a new path)."""
        self.restart()
        self._buckets.clear()

    def restart(self) -> None:
        """A new stream over the same path (a reopened media socket): its timeline starts
        afresh, and what the path showed so far still counts."""
        self._media_s = 0.0
        self._start = None
        self._second_base = self._buckets[-1][0] + 1 if self._buckets else 0

    @property
    def observed_s(self) -> float:
        """Seconds of stream seen since the last (re)start."""
        return self._media_s

    def arrived(self, now: float, frame_ms: float) -> None:
        """A frame of `frame_ms` of audio arrived at `now` (seconds, any monotonic clock)."""
        if self._start is None:
            self._start = now
        # Transit variation: how much later than the steady cadence this frame came.
        offset = (now - self._start) - self._media_s
        self._media_s += frame_ms / 1000.0
        second = self._second_base + int(self._media_s)
        if self._buckets and self._buckets[-1][0] == second:
            _, low, high = self._buckets[-1]
            self._buckets[-1] = (second, min(low, offset), max(high, offset))
        else:
            self._buckets.append((second, offset, offset))
            while self._buckets and self._buckets[0][0] <= second - self._window:
                self._buckets.popleft()

    @property
    def spread_ms(self) -> float:
        """Max minus min transit variation over the window, in milliseconds."""
        if not self._buckets:
            return 0.0
        low = min(b[1] for b in self._buckets)
        high = max(b[2] for b in self._buckets)
        return (high - low) * 1000.0
