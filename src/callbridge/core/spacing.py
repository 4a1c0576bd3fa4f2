"""Turns at least a set interval apart: for work that is cheap alone and costly in a burst.

Answering a call sets up its callbacks, media socket and model connection within a few
hundred milliseconds, all on the one event loop that also paces every live call's audio.
When many calls arrive in the same instant (Event Grid delivers a surge, or its retries,
together), their set-ups land together and the loop falls behind the calls already talking.
Spacing the answers spreads that work; a lone call is answered at once.
"""

from __future__ import annotations

from callbridge.core.clock import SYSTEM_CLOCK, Clock


class Spacing:
    def __init__(
        self, interval_s: float, clock: Clock = SYSTEM_CLOCK, *, max_wait_s: float = 5.0
    ) -> None:
        if interval_s < 0 or max_wait_s < 0:
            raise ValueError("a spacing and its longest wait cannot be negative")
        self.interval_s = interval_s
        # How long ACS keeps an unanswered call answerable is not documented (it ends one
        # with subcode 8587, "not answered within time"): no turn waits longer than this,
        # so a burst larger than the spacing allows goes together at the end.
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._next = float("-inf")  # when the next turn may start

    async def turn(self) -> float:
        """Wait for this caller's turn; returns how long it waited, in seconds.

        The slot is taken before the wait, so waiters go in the order they came; a waiter
        cancelled meanwhile leaves its slot unused rather than moving the others up.
        """
        if self.interval_s <= 0:
            return 0.0
        now = self._clock.now()
        start = min(max(now, self._next), now + self.max_wait_s)
        self._next = max(self._next, start + self.interval_s)
        wait = start - now
        if wait > 0:
            await self._clock.sleep(wait)
        return wait
