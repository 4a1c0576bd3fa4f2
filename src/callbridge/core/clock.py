"""Time as the call's timed behaviour sees it, so tests can run it on a fake clock.

Watchers (silence, idle, maximum duration, a hand-over waiting for the agent's last words)
and the keypad menu read `now()` and `sleep()` here instead of the event loop's clock;
`callbridge.testing.fake_clock.FakeClock` moves time on by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""

    async def sleep(self, seconds: float) -> None: ...

    async def wait_for(self, awaitable: Awaitable[T], within_s: float) -> T:
        """`awaitable`'s result, or TimeoutError once `within_s` has passed on this clock."""


class SystemClock:
    # The functions themselves, not wrappers: playout sleeps on every 20 ms chunk.
    now = staticmethod(time.monotonic)
    sleep = staticmethod(asyncio.sleep)

    async def wait_for(self, awaitable: Awaitable[T], within_s: float) -> T:
        return await asyncio.wait_for(awaitable, within_s)


SYSTEM_CLOCK = SystemClock()
