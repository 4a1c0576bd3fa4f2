"""FallbackAgent: everything goes to the primary until it gives up, then to the fallback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callbridge.agent.base import (
    AgentEvent,
    AgentFailed,
    AgentSession,
    AgentTranscript,
    EventStream,
    GaveUp,
)
from callbridge.agent.fallback import FallbackAgent
from callbridge.core.call_info import CallInfo
from callbridge.core.heard import Heard

CALL = CallInfo("call-1", "+14255550123", "+18005550100", 16000)


class Stub:
    """Records what it is given; `say` puts an event out."""

    def __init__(self, name: str, greeting: str = "", fail_start: bool = False) -> None:
        self.name = name
        self.greeting = greeting
        self.fail_start = fail_start
        self.started: CallInfo | None = None
        self.calls: list[tuple[str, Any]] = []
        self.closed = False
        self._events = EventStream()

    def say(self, event: AgentEvent) -> None:
        self._events.put(event)

    async def start(self, call: CallInfo) -> None:
        if self.fail_start:
            raise RuntimeError("no models")
        self.started = call
        if self.greeting:
            self.say(AgentTranscript(self.greeting, f"{self.name}-1"))

    async def push_audio(self, pcm: bytes) -> None:
        self.calls.append(("audio", len(pcm)))

    async def push_dtmf(self, digit: str) -> None:
        self.calls.append(("dtmf", digit))

    async def tool_result(self, call_id: str, output: str) -> None:
        self.calls.append(("tool", call_id))

    async def interrupted(self, heard: Heard) -> None:
        self.calls.append(("interrupted", heard.ms))

    async def notify(self, notice: str, detail: dict[str, Any]) -> None:
        self.calls.append(("notify", notice))

    def events(self) -> Any:
        return aiter(self._events)

    async def close(self) -> None:
        self.closed = True
        self._events.close()


async def next_event(events: Any) -> AgentEvent:
    event: AgentEvent = await asyncio.wait_for(anext(events), 2)
    return event


async def drive(agent: AgentSession) -> None:
    await agent.push_audio(bytes(640))
    await agent.push_dtmf("5")
    await agent.tool_result("t1", "{}")
    await agent.interrupted(Heard(120, "Hel…", "r1"))
    await agent.notify("caller_silent", {})


async def test_forwards_to_the_primary_until_it_gives_up() -> None:
    primary = Stub("primary")
    made: list[Stub] = []

    def make() -> AgentSession:
        made.append(Stub("offline", greeting="Sorry. Let's carry on."))
        return made[-1]

    agent = FallbackAgent(primary, make)
    events = agent.events()
    await agent.start(CALL)
    assert primary.started is CALL and not made
    await drive(agent)
    assert [c[0] for c in primary.calls] == ["audio", "dtmf", "tool", "interrupted", "notify"]
    primary.say(AgentTranscript("Hello", "rt-1"))
    assert await next_event(events) == AgentTranscript("Hello", "rt-1")
    assert not agent.handed_over

    primary.say(GaveUp("the connection to the model was lost"))
    # The fallback starts with the same call; its greeting is the hand-over.
    assert await next_event(events) == AgentTranscript("Sorry. Let's carry on.", "offline-1")
    (fallback,) = made
    assert fallback.started is CALL
    assert agent.handed_over and primary.closed
    await drive(agent)
    assert len(primary.calls) == 5  # nothing more for the primary
    assert [c[0] for c in fallback.calls] == ["audio", "dtmf", "tool", "interrupted", "notify"]
    fallback.say(AgentTranscript("Anything else?", "offline-2"))
    assert await next_event(events) == AgentTranscript("Anything else?", "offline-2")

    await agent.close()
    assert fallback.closed
    with pytest.raises(StopAsyncIteration):
        await next_event(events)


async def test_close_without_a_hand_over_makes_no_fallback() -> None:
    primary = Stub("primary")
    made: list[Stub] = []

    def make() -> AgentSession:
        made.append(Stub("x"))
        return made[-1]

    agent = FallbackAgent(primary, make)
    await agent.start(CALL)
    await agent.close()
    await agent.close()  # twice is fine
    assert primary.closed and not made


async def test_a_fallback_that_cannot_start_fails_the_agent() -> None:
    primary = Stub("primary")
    agent = FallbackAgent(primary, lambda: Stub("offline", fail_start=True))
    events = agent.events()
    await agent.start(CALL)
    primary.say(GaveUp("gone"))
    event = await next_event(events)
    assert isinstance(event, AgentFailed) and "no models" in event.reason
    assert not agent.handed_over
    await agent.close()
