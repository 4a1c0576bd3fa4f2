"""The offline agent's brain or voice hangs mid-call: the service apologises in the line's
voice within the reply bound, then says goodbye and hangs up (real VAD, real time)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor

import pytest

from callbridge.agent.local.agent import LocalAgent, TurnSettings
from callbridge.agent.local.brain.base import ToolRunner
from callbridge.call.line import Line, Rescue
from callbridge.call.session import CallLimits, CallSession
from callbridge.core.call_info import CallInfo
from tests.agent.test_local_agent import POOL, RATE, FakeStt, FakeTts, ScriptBrain, quiet, speech
from tests.call_fakes import RecordingCarrier
from tests.unit.test_call_session import ScriptedLeg


class HangingBrain(ScriptBrain):
    async def turn(self, text: str, run_tool: ToolRunner) -> AsyncIterator[str]:
        await asyncio.Event().wait()  # a backend that never answers
        yield "never"


class HangingTts(FakeTts):
    """Says the greeting, then hangs on every later sentence."""

    def __init__(self) -> None:
        self.spoken = 0

    async def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]:
        self.spoken += 1
        if self.spoken > 1:
            await asyncio.Event().wait()
        async for pcm in super().stream(text, out_rate, executor):
            yield pcm


class Voice:
    def __init__(self) -> None:
        self.said: list[tuple[float, str]] = []

    async def __call__(self, text: str, rate: int) -> bytes:
        self.said.append((time.monotonic(), text))
        return bytes(rate // 2)


@pytest.mark.parametrize("broken", ["brain", "voice"])
async def test_a_stuck_offline_agent_is_apologised_for(broken: str) -> None:
    brain = HangingBrain({}) if broken == "brain" else ScriptBrain({})
    tts = HangingTts() if broken == "voice" else FakeTts()
    voice = Voice()
    line = Line(
        "offline",
        lambda: LocalAgent(
            lambda info: brain,
            FakeStt("hello"),
            tts,
            POOL,
            turn=TurnSettings(end_silence_ms=400, end_of_turn="silence"),
        ),
        greets=True,
        speak=voice,
        rescue=Rescue(reply_timeout_s=1.0, retries=0, apology="Sorry.", goodbye="Bye."),
    )
    carrier = RecordingCarrier()
    session = CallSession(
        CallInfo("c1", "+1", "+2", RATE), line, carrier, limits=CallLimits(settle_s=0.3)
    )
    session.answered()
    leg = ScriptedLeg()
    bridge = asyncio.create_task(session.run_media(leg))
    await leg.say(quiet(1500))  # the greeting plays
    await leg.say(speech(1500))
    spoke_until = time.monotonic()
    feeder = asyncio.create_task(leg.say(quiet(4000)))
    for _ in range(80):
        if session.ended:
            break
        await asyncio.sleep(0.05)
    feeder.cancel()
    assert [text for _, text in voice.said] == ["Sorry. Bye."]
    # The turn ends ~0.4 s after the speech; the apology comes 1 s after that.
    assert voice.said[0][0] - spoke_until < 2.0
    assert (
        session.end_reason == "agent failed: no reply within 1 s (the reply to the caller's turn)"
    )
    await leg.inbox.put(None)
    await asyncio.wait_for(bridge, 3)
    # Once the call is released: the hang-up runs just after the call is marked ended.
    assert len(carrier.hang_ups) == 1
