"""No dead air when the agent fails or stalls: the service apologises in the line's voice,
asks the caller to repeat once, then runs the line's fallback (fake clock)."""

from __future__ import annotations

import asyncio
from typing import Any

from callbridge.agent.base import (
    AgentAudio,
    AgentFailed,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
)
from callbridge.call.line import Line, Rescue
from callbridge.core.ending import EndCause, Outcome
from callbridge.core.tools import ToolRegistry, ToolSpec
from callbridge.testing.fake_clock import FakeClock
from tests.call_fakes import ScriptedAgent
from tests.unit.test_call_timing import RATE, finish, start_call

APOLOGY = "Sorry, something broke."


class Voice:
    """The line's voice: records what the service said; each phrase is 0.5 s of audio."""

    def __init__(self) -> None:
        self.said: list[str] = []

    async def __call__(self, text: str, rate: int) -> bytes:
        self.said.append(text)
        return bytes(rate)  # 0.5 s


def rescued_line(agent: ScriptedAgent, voice: Voice, **rescue: Any) -> Line:
    settings = {"reply_timeout_s": 2.5, "apology": APOLOGY, "goodbye": "Bye.", **rescue}
    slow = ToolSpec("slow", "", {"type": "object"}, slow_tool, timeout_s=60)
    return Line(
        "rescued",
        lambda: agent,
        tools=ToolRegistry([slow]),
        greets=True,
        speak=voice,
        rescue=Rescue(**settings),
    )


GATE = asyncio.Event()  # the slow tool answers when a test opens it


async def slow_tool(args: dict[str, Any], ctx: Any) -> str:
    await GATE.wait()
    return "done"


def reply(rid: str) -> list[Any]:
    return [AgentAudio(bytes(RATE // 5), rid, text="Hello."), ResponseDone(rid)]


async def test_a_model_that_never_answers_gets_an_apology_then_goodbye() -> None:
    clock = FakeClock()
    agent, voice = ScriptedAgent(reply("greeting")), Voice()
    session, leg, carrier, observed, bridge = await start_call(rescued_line(agent, voice), clock)
    await clock.advance(1.0)
    agent.emit(SpeechStopped())  # the caller's turn ends; the model says nothing
    await clock.advance(2.4)
    assert voice.said == []
    await clock.advance(0.2)
    assert voice.said == [f"{APOLOGY} Could you say that again, please?"]
    assert not session.ended  # the caller gets another go
    await clock.advance(1.0)
    agent.emit(SpeechStarted())
    agent.emit(SpeechStopped())
    await clock.advance(2.6)
    assert voice.said[-1] == f"{APOLOGY} Bye."
    await clock.advance(2.0)  # the goodbye plays, then the call ends
    assert session.ended and len(carrier.hang_ups) == 1
    assert session.ending is not None and session.ending.cause is EndCause.AGENT_FAILED
    assert (
        session.end_reason == "agent failed: no reply within 2.5 s (the reply to the caller's turn)"
    )
    assert observed.ended[0].outcome is Outcome.FAILED
    stalls = [d for name, d in observed.events if name == "agent_stalled"]
    assert [d["stalls"] for d in stalls] == [1, 2]
    await finish(session, bridge, leg)


async def test_a_reply_in_time_resets_the_count_and_a_tool_pauses_the_watch() -> None:
    clock = FakeClock()
    agent, voice = ScriptedAgent(reply("greeting")), Voice()
    session, leg, _, _, bridge = await start_call(rescued_line(agent, voice), clock)
    await clock.advance(1.0)
    agent.emit(SpeechStopped())
    await clock.advance(2.0)
    for event in reply("r1"):
        agent.emit(event)  # 2 s after the turn: in time
    await clock.advance(5.0)
    assert voice.said == []
    GATE.clear()
    agent.emit(SpeechStopped())
    agent.emit(ToolCall("t1", "slow", {}))  # a tool runs: no reply is due meanwhile
    await clock.advance(6.0)
    assert voice.said == [] and not agent.results
    GATE.set()
    await clock.advance(2.4)
    assert voice.said == [] and agent.results  # the result went back...
    await clock.advance(0.2)  # ...and the reply after it never came
    assert voice.said == [f"{APOLOGY} Could you say that again, please?"]
    await finish(session, bridge, leg)


async def test_a_missing_greeting_is_a_stall_too() -> None:
    clock = FakeClock()
    agent, voice = ScriptedAgent(), Voice()
    session, leg, _, observed, bridge = await start_call(rescued_line(agent, voice), clock)
    await clock.advance(2.6)
    assert voice.said == [f"{APOLOGY} Could you say that again, please?"]
    assert [d["waiting_for"] for n, d in observed.events if n == "agent_stalled"] == [
        "the greeting"
    ]
    await finish(session, bridge, leg)


async def test_a_failed_agent_is_apologised_for_and_the_caller_transferred() -> None:
    clock = FakeClock()
    agent, voice = ScriptedAgent(reply("greeting")), Voice()
    line = rescued_line(agent, voice, mode="transfer", transfer_target="+14255550100")
    session, leg, carrier, observed, bridge = await start_call(line, clock)
    await clock.advance(1.0)
    agent.emit(AgentFailed("the model refused three times"))
    await clock.advance(0.1)
    assert voice.said == [APOLOGY] and carrier.transfers == []  # not before it is heard
    await clock.advance(2.0)
    (_, target, context) = carrier.transfers[0]
    assert target == "+14255550100"
    assert context["Summary"] == "agent failed: the model refused three times"
    assert ("agent_failed", {"reason": "the model refused three times"}) in observed.events
    await session.disconnected("call disconnected (transfer)")
    assert observed.ended[0].outcome is Outcome.TRANSFERRED
    await finish(session, bridge, leg)


async def test_an_agent_whose_session_ends_is_not_left_silent() -> None:
    clock = FakeClock()
    agent, voice = ScriptedAgent(reply("greeting")), Voice()
    session, leg, carrier, _, bridge = await start_call(rescued_line(agent, voice), clock)
    await clock.advance(1.0)
    await agent.close()  # the event stream ends without a word
    await clock.advance(0.1)
    assert voice.said == [f"{APOLOGY} Bye."]
    await clock.advance(2.0)
    assert session.end_reason == "agent failed: the agent's session ended"
    assert len(carrier.hang_ups) == 1
    await finish(session, bridge, leg)


async def test_without_a_voice_the_fallback_still_runs() -> None:
    clock = FakeClock()
    agent = ScriptedAgent(reply("greeting"))
    line = Line("mute", lambda: agent, greets=True, rescue=Rescue(reply_timeout_s=2.5, retries=0))
    session, leg, carrier, _, bridge = await start_call(line, clock)
    await clock.advance(1.0)
    agent.emit(SpeechStopped())
    await clock.advance(3.5)
    assert session.ended and len(carrier.hang_ups) == 1
    await finish(session, bridge, leg)
