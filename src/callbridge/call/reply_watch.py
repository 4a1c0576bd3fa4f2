"""Whether a reply the caller is waiting for has started, and what happens if it has not.

A reply is due when the caller's turn ends, when a tool's result goes back to the agent,
and at the start of a line whose agent greets. It has started when the agent's voice
arrives. The watch is paused while the caller speaks or a tool runs (tools have their own
timeouts and fillers). A reply still missing `reply_timeout_s` after it fell due is a
stall: the session then speaks for the agent (call/rescue.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from callbridge.core.clock import Clock


class ReplyWatch:
    def __init__(
        self, clock: Clock, bound_s: float, on_stall: Callable[[str], Awaitable[None]]
    ) -> None:
        self._clock = clock
        self._bound = bound_s
        self._on_stall = on_stall
        self._due_at: float | None = None
        self._why = ""
        self._armed = asyncio.Event()

    @property
    def due(self) -> bool:
        return self._due_at is not None

    def expect(self, why: str) -> None:
        """A reply is due from now (`why` says for what, for the log and the record)."""
        self._due_at = self._clock.now()
        self._why = why
        self._armed.set()

    def clear(self) -> None:
        """The reply started, or none is due any more."""
        self._due_at = None

    async def run(self) -> None:
        while True:
            if self._due_at is None:
                self._armed.clear()
                await self._armed.wait()
                continue
            left = self._due_at + self._bound - self._clock.now()
            if left > 0:
                await self._clock.sleep(left)
                continue
            why, self._due_at = self._why, None
            await self._on_stall(why)
