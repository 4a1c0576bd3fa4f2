"""Fakes for driving a CallSession directly: a carrier that records what the session asks
of the edge, and a scripted agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from callbridge.agent.base import AgentEvent
from callbridge.call.carrier import CarrierError
from callbridge.core.call_info import CallInfo
from callbridge.core.heard import Heard


class RecordingCarrier:
    """Records hang-ups, transfers and participants; `fail_transfer` makes them fail."""

    def __init__(self, can_add_participants: bool = True, now: Callable[[], float] | None = None):
        self.can_add_participants = can_add_participants
        self._now = now or time.monotonic
        self.hang_ups: list[float] = []
        self.transfers: list[tuple[float, str, dict[str, str]]] = []
        self.added: list[tuple[str, dict[str, str], int]] = []
        self.left = 0
        self.fail_transfer = False

    async def hang_up(self) -> None:
        self.hang_ups.append(self._now())

    async def transfer(self, target: str, context: dict[str, str]) -> None:
        if self.fail_transfer:
            raise CarrierError("transfer refused")
        self.transfers.append((self._now(), target, context))

    async def add_participant(
        self, target: str, context: dict[str, str], ring_timeout_s: int
    ) -> None:
        if self.fail_transfer:
            raise CarrierError("add participant refused")
        self.added.append((target, context, ring_timeout_s))

    async def leave(self) -> None:
        self.left += 1


class ScriptedAgent:
    """Emits a script at start, records what the session tells it."""

    def __init__(self, script: list[AgentEvent] | None = None) -> None:
        self.script = list(script or [])
        self.started: CallInfo | None = None
        self.results: list[tuple[str, str]] = []
        self.notices: list[tuple[str, dict[str, Any]]] = []
        self.heard: list[Heard] = []
        self.digits: list[str] = []
        self.closed = False
        self._queue: asyncio.Queue[AgentEvent | None] = asyncio.Queue()

    async def start(self, call: CallInfo) -> None:
        self.started = call
        for ev in self.script:
            self._queue.put_nowait(ev)

    def emit(self, event: AgentEvent) -> None:
        self._queue.put_nowait(event)

    async def push_audio(self, pcm: bytes) -> None:
        return None

    async def push_dtmf(self, digit: str) -> None:
        self.digits.append(digit)

    async def tool_result(self, call_id: str, output: str) -> None:
        self.results.append((call_id, output))

    async def interrupted(self, heard: Heard) -> None:
        self.heard.append(heard)

    async def notify(self, notice: str, detail: dict[str, Any]) -> None:
        self.notices.append((notice, detail))

    async def events(self) -> AsyncIterator[AgentEvent]:
        while (ev := await self._queue.get()) is not None:
            yield ev

    async def close(self) -> None:
        self.closed = True
        self._queue.put_nowait(None)
