"""An agent with a stand-in: the call is the primary agent's until it gives up for good,
then a fallback agent takes it over for the rest of the call.

The primary says it has given up with a `GaveUp` event (a realtime agent whose service
stays unreachable, with the profile's `fallback: offline`). The fallback agent is made only
then, started with the same call, and from that moment gets everything the call sends; its
greeting is the hand-over (the apology and a "let's carry on" line, set up by whoever makes
it). The primary is closed at the hand-over. Until then the wrapper is transparent: every
call and every event goes straight through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from callbridge.agent.base import AgentEvent, AgentFailed, AgentSession, EventStream, GaveUp
from callbridge.core.call_info import CallInfo
from callbridge.core.heard import Heard

log = logging.getLogger(__name__)


class FallbackAgent:
    def __init__(self, primary: AgentSession, make_fallback: Callable[[], AgentSession]) -> None:
        self._primary = primary
        self._make_fallback = make_fallback
        self._active: AgentSession = primary  # where the call's input goes
        self._fallback: AgentSession | None = None
        self._call: CallInfo | None = None
        self._events = EventStream()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def handed_over(self) -> bool:
        """The fallback agent has the call."""
        return self._active is not self._primary

    # --- AgentSession ----------------------------------------------------------------------
    async def start(self, call: CallInfo) -> None:
        self._call = call
        self._spawn(self._forward(self._primary))
        await self._primary.start(call)

    async def push_audio(self, pcm: bytes) -> None:
        await self._active.push_audio(pcm)

    async def push_dtmf(self, digit: str) -> None:
        await self._active.push_dtmf(digit)

    async def tool_result(self, call_id: str, output: str) -> None:
        await self._active.tool_result(call_id, output)

    async def interrupted(self, heard: Heard) -> None:
        await self._active.interrupted(heard)

    async def notify(self, notice: str, detail: dict[str, Any]) -> None:
        await self._active.notify(notice, detail)

    def events(self) -> AsyncIterator[AgentEvent]:
        return aiter(self._events)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for agent in (self._primary, self._fallback):
            if agent is not None:
                with contextlib.suppress(Exception):
                    await agent.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._events.close()

    # --- plumbing ----------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, agent: AgentSession) -> None:
        async for event in agent.events():
            if isinstance(event, GaveUp):
                if agent is self._primary:
                    await self._hand_over(event.reason)
                    return
                continue  # a fallback that gives up has nothing to hand over to
            if not self._closed:
                self._events.put(event)

    async def _hand_over(self, reason: str) -> None:
        if self._closed or self._call is None or self._fallback is not None:
            return
        log.warning("handing the call over to the fallback agent (%s)", reason)
        try:
            fallback = self._fallback = self._make_fallback()
            self._spawn(self._forward(fallback))
            await fallback.start(self._call)  # its greeting is the hand-over
        except Exception as exc:
            log.exception("the fallback agent did not start")
            self._events.put(AgentFailed(f"{reason}; then the fallback agent failed: {exc}"))
            return
        self._active = fallback
        with contextlib.suppress(Exception):
            await self._primary.close()
