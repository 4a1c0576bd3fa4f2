"""Draining on SIGTERM, at the call layer: no new calls, each caller told in the line's
voice, each call ended once that was heard, late ones ended at the bound (fake clock)."""

from __future__ import annotations

import asyncio

from callbridge.agent.base import AgentAudio, ResponseDone
from callbridge.call.line import Line, Rescue
from callbridge.call.registry import CallRegistry
from callbridge.core.ending import EndCause
from callbridge.testing.fake_clock import FakeClock
from tests.call_fakes import ScriptedAgent
from tests.unit.test_call_rescue import Voice
from tests.unit.test_call_timing import RATE, finish, start_call


async def test_a_drain_tells_each_caller_then_hangs_up() -> None:
    clock = FakeClock()
    registry = CallRegistry(max_calls=5)
    voice = Voice()
    agent = ScriptedAgent([AgentAudio(bytes(RATE), "r1"), ResponseDone("r1")])
    line = Line("l", lambda: agent, speak=voice, rescue=Rescue(shutdown="We must stop now."))
    session, leg, carrier, observed, bridge = await start_call(line, clock)
    registry.add(session)
    await clock.advance(0.2)  # the agent is mid-sentence
    draining = asyncio.create_task(registry.drain(timeout_s=5))
    await clock.advance(0.1)
    assert registry.full() and voice.said == ["We must stop now."]
    assert carrier.hang_ups == []  # the agent's words, then the notice, are heard first
    await clock.advance(3.0)
    assert await draining == 0
    assert session.end_reason == "ended by shutdown" and len(carrier.hang_ups) == 1
    assert session.ending is not None and session.ending.cause is EndCause.SHUTDOWN
    assert ("shutdown", {}) in observed.events and registry.calls == {}
    await finish(session, bridge, leg)


async def test_calls_still_there_at_the_bound_are_ended_at_once() -> None:
    clock = FakeClock()
    registry = CallRegistry(max_calls=5)

    async def stuck(text: str, rate: int) -> bytes:
        return bytes(rate * 2 * 60)  # a notice that would play for a minute

    line = Line("l", ScriptedAgent, speak=stuck)
    session, leg, carrier, _, bridge = await start_call(line, clock)
    registry.add(session)
    assert await registry.drain(timeout_s=0.2) == 1
    assert session.end_reason == "ended by shutdown" and len(carrier.hang_ups) == 1
    await finish(session, bridge, leg)
