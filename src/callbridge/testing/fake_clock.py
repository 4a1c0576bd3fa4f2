"""A clock that moves only when a test moves it, for the call's timed behaviour.

`await clock.advance(30)` runs 30 s of silence watching, reprompts and hang-ups in a few
milliseconds: every sleeper due within the step wakes in deadline order, and the event loop
runs what they start before time moves on (the idea of LiveKit Agents' virtual-time test
loop, https://github.com/livekit/agents, as a `core.clock.Clock`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

# Loop turns given to woken tasks before time moves again: enough for a chain of awaits
# (a watcher that notifies an agent that answers) to settle.
_SETTLE_TURNS = 20


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._seq), fut))
        await fut

    async def wait_for(self, awaitable: Awaitable[T], within_s: float) -> T:
        task = asyncio.ensure_future(awaitable)
        timer = asyncio.ensure_future(self.sleep(within_s))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if task.done():
            return task.result()
        task.cancel()
        raise TimeoutError

    async def settle(self) -> None:
        for _ in range(_SETTLE_TURNS):
            await asyncio.sleep(0)

    async def stall(self, seconds: float) -> None:
        """The event loop was busy for `seconds`: time jumps on, and the sleepers due
        meanwhile wake only then, late, in deadline order."""
        self._now += seconds
        await self.advance(0)

    async def advance(self, seconds: float, step: float = 0.05) -> None:
        """Move time on by `seconds`, waking sleepers in order, `step` at a time at most."""
        end = self._now + seconds
        await self.settle()
        while True:
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)  # cancelled sleepers
            due = self._sleepers[0][0] if self._sleepers else end + 1
            target = min(end, max(due, self._now), self._now + step)
            self._now = max(self._now, target)
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, fut = heapq.heappop(self._sleepers)
                if not fut.done():
                    fut.set_result(None)
            await self.settle()
            if self._now >= end:
                return
