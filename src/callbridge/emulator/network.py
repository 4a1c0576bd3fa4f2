"""The network between ACS and the service, as one call's media socket sees it.

ACS reaches a service over the internet: its media WebSocket sees delay, jitter, TCP
stalls and broken connections that ACS reopens. `NetworkConditions` says how bad, per call
(``CallScript.network``, a scenario's ``network:`` section); a `DelayLine` per direction
applies it. WebSocket messages ride TCP, so they are never lost or reordered: jitter and
stalls hold a message (and, head-of-line, every message behind it) rather than drop it.
How much ACS itself buffers, and whether it reopens a broken media socket, is not
documented: docs/emulator.md lists what here is unconfirmed.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class NetworkConditions:
    """How the network treats one call's media socket, both directions alike.

    Times in ``stalls`` and ``drops`` are seconds since media start (the call clock).
    """

    delay_ms: float = 0.0  # one-way delay of every message
    # Extra one-way delay per message, exponentially distributed with this 99th percentile
    # (a heavy-ish tail, as queueing on a real path gives).
    jitter_p99_ms: float = 0.0
    stalls: tuple[tuple[float, float], ...] = ()  # (at_s, for_s): nothing passes meanwhile
    drops: tuple[float, ...] = ()  # at_s: the connection breaks without a close frame
    reconnect_after_s: float = 0.5  # ACS opens a new socket this long after a drop
    seed: int | None = None  # for a repeatable jitter sequence

    def __post_init__(self) -> None:
        if self.delay_ms < 0 or self.jitter_p99_ms < 0 or self.reconnect_after_s < 0:
            raise ValueError("network delay, jitter and reconnect time cannot be negative")
        if any(for_s <= 0 or at_s < 0 for at_s, for_s in self.stalls):
            raise ValueError("a stall needs a start >= 0 and a length > 0 (seconds)")
        if any(at_s < 0 for at_s in self.drops):
            raise ValueError("a drop time cannot be negative")

    @property
    def shapes_traffic(self) -> bool:
        """Whether messages need a delay line at all (drops alone do not)."""
        return bool(self.delay_ms or self.jitter_p99_ms or self.stalls)

    def held_until(self, media_s: float) -> float:
        """The media time a message sent at ``media_s`` can leave: after any stall it falls in."""
        for at_s, for_s in self.stalls:
            if at_s <= media_s < at_s + for_s:
                media_s = at_s + for_s
        return media_s


# An exponential distribution's p99 is ln(100) times its mean.
_P99_PER_MEAN = math.log(100.0)


class DelayLine(Generic[T]):
    """One direction of the path: each message comes out in order after the delay, its
    jitter and any stall, by the running loop's clock."""

    def __init__(
        self,
        conditions: NetworkConditions,
        deliver: Callable[[T], Awaitable[object]],
        media_time: Callable[[], float | None],
        rng: random.Random,
    ) -> None:
        self._c = conditions
        self._deliver = deliver
        self._media_time = media_time  # seconds since media start, None before it
        self._rng = rng
        self._queue: deque[tuple[float, T]] = deque()
        self._wake = asyncio.Event()
        self._last_due = 0.0
        self._mean_jitter_s = conditions.jitter_p99_ms / 1000.0 / _P99_PER_MEAN

    def put(self, item: T) -> None:
        now = asyncio.get_running_loop().time()
        due = now + self._c.delay_ms / 1000.0
        if self._mean_jitter_s:
            due += self._rng.expovariate(1.0 / self._mean_jitter_s)
        media_now = self._media_time()
        if media_now is not None and self._c.stalls:
            media_due = media_now + (due - now)
            due += self._c.held_until(media_due) - media_due
        due = max(due, self._last_due)  # TCP keeps order: a late message holds those behind
        self._last_due = due
        self._queue.append((due, item))
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            due, item = self._queue[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._queue.popleft()
            await self._deliver(item)
