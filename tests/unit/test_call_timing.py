"""The call's timed behaviour on a fake clock: silence, the time limit, warm transfer and
the keypad menu run here in milliseconds (the scenarios prove the same in real time)."""

from __future__ import annotations

import asyncio
from typing import Any

from callbridge.agent.base import AgentAudio, ResponseDone, SpeechStarted, ToolCall
from callbridge.call.line import KeypadMenu, Line, OneLine
from callbridge.call.media_leg import CallerDtmf, CallerInput
from callbridge.call.session import CallLimits, CallSession
from callbridge.core.call_info import CallInfo
from callbridge.core.ending import EndCause, Outcome
from callbridge.core.policy import CallPolicy
from callbridge.core.tools import ToolRegistry, builtin_tools
from callbridge.testing.fake_clock import FakeClock
from tests.call_fakes import RecordingCarrier, ScriptedAgent

RATE = 16000


class QueueLeg:
    """A media leg fed by the test; what the session sends is only counted."""

    sample_rate = RATE

    def __init__(self) -> None:
        self.close_reason = None
        self.inbox: asyncio.Queue[CallerInput | None] = asyncio.Queue()
        self.bytes_sent = 0
        self.stops = 0
        self.closed = False

    async def receive(self) -> CallerInput | None:
        return await self.inbox.get()

    async def send_audio(self, pcm: bytes) -> None:
        self.bytes_sent += len(pcm)

    async def stop_audio(self) -> None:
        self.stops += 1

    async def close(self, code: int = 1000) -> None:
        self.closed = True


class Observed:
    def __init__(self) -> None:
        self.ended: list[Any] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def call_started(self, info: CallInfo) -> None:
        pass

    def transcript(self, call_id: str, role: str, text: str, at: float) -> None:
        pass

    def tool_ran(self, call_id: str, run: Any) -> None:
        pass

    def event(self, call_id: str, name: str, detail: dict[str, Any]) -> None:
        self.events.append((name, detail))

    def turn_latency(self, call_id: str, timings: dict[str, Any]) -> None:
        pass

    def call_ended(self, call_id: str, outcome: Any) -> None:
        self.ended.append(outcome)


LIMITS = CallLimits(idle_timeout_s=1e6, max_duration_s=1e6, settle_s=0.8)


async def start_call(
    line: Line,
    clock: FakeClock,
    *,
    lines: Any = None,
    limits: CallLimits = LIMITS,
    carrier: RecordingCarrier | None = None,
) -> tuple[CallSession, QueueLeg, RecordingCarrier, Observed, asyncio.Task[None]]:
    carrier = carrier or RecordingCarrier(now=clock.now)
    observed = Observed()
    session = CallSession(
        CallInfo("c1", "+15550001", "+18005550199", RATE),
        line,
        carrier,
        lines=lines,
        limits=limits,
        observers=[observed],  # type: ignore[list-item]
        clock=clock,
    )
    session.answered()
    leg = QueueLeg()
    bridge = asyncio.create_task(session.run_media(leg))
    await clock.settle()
    return session, leg, carrier, observed, bridge


async def finish(session: CallSession, bridge: asyncio.Task[None], leg: QueueLeg) -> None:
    if not session.ended:
        await session.disconnected("test over")
    await leg.inbox.put(None)
    await asyncio.wait_for(bridge, 2)


SILENCE = CallPolicy(silence_reprompt_after_s=8.0, silence_hangup_after_s=25.0)


async def test_a_silent_caller_is_reprompted_then_told_goodbye_and_hung_up() -> None:
    clock = FakeClock()
    agent = ScriptedAgent()
    line = Line("silence", lambda: agent, policy=SILENCE)
    session, leg, carrier, observed, bridge = await start_call(line, clock)
    await clock.advance(7.5)
    assert agent.notices == []
    await clock.advance(1.0)
    assert [n for n, _ in agent.notices] == ["caller_silent"]
    await clock.advance(8.5)
    assert [n for n, _ in agent.notices] == ["caller_silent", "caller_silent"]
    await clock.advance(8.5)  # 25.5 s of silence in all
    assert [n for n, _ in agent.notices][-1] == "silence_goodbye"
    assert not session.ended  # the goodbye is let finish first
    await clock.advance(1.0)
    assert session.ended and session.ending is not None
    assert session.ending.cause is EndCause.CALLER_SILENT
    assert len(carrier.hang_ups) == 1
    assert observed.ended[0].outcome is Outcome.ABANDONED
    await finish(session, bridge, leg)


async def test_caller_speech_resets_the_silence_count() -> None:
    clock = FakeClock()
    agent = ScriptedAgent()
    line = Line("silence", lambda: agent, policy=SILENCE)
    session, leg, _, _, bridge = await start_call(line, clock)
    for _ in range(5):  # the caller says something every 6 s: never reprompted
        await clock.advance(6.0)
        agent.emit(SpeechStarted())
    await clock.advance(1.0)
    assert agent.notices == [] and not session.ended
    await clock.advance(8.0)
    assert [n for n, _ in agent.notices] == ["caller_silent"]
    await finish(session, bridge, leg)


async def test_the_time_limit_gives_notice_then_says_goodbye_and_hangs_up() -> None:
    clock = FakeClock()
    agent = ScriptedAgent()
    policy = CallPolicy(limit_notice_before_s=10.0)
    limits = CallLimits(idle_timeout_s=1e6, max_duration_s=60.0)
    line = Line("limited", lambda: agent, policy=policy)
    session, leg, carrier, _, bridge = await start_call(line, clock, limits=limits)
    await clock.advance(49.9)
    assert agent.notices == []
    await clock.advance(0.2)
    assert agent.notices == [("ending_soon", {"seconds_left": 10})]
    await clock.advance(10.0)
    assert agent.notices[-1] == ("limit_goodbye", {})
    await clock.advance(1.0)
    assert session.end_reason == "maximum call duration reached"
    assert session.ending is not None and session.ending.cause is EndCause.MAX_DURATION
    assert len(carrier.hang_ups) == 1
    await finish(session, bridge, leg)


def warm_line(agent: ScriptedAgent, stay_muted: bool = False) -> Line:
    policy = CallPolicy(
        transfer_mode="warm", transfer_ring_timeout_s=25, transfer_stay_muted=stay_muted
    )
    tools = ToolRegistry(builtin_tools("+14255550100"))
    return Line("warm", lambda: agent, tools=tools, policy=policy)


def goodbye(ms: int) -> list[Any]:
    pcm = bytes(RATE * 2 * ms // 1000)
    return [AgentAudio(pcm, "r1", text="Let me get a colleague."), ResponseDone("r1")]


async def test_warm_transfer_waits_for_the_words_briefs_the_human_and_leaves() -> None:
    clock = FakeClock()
    agent = ScriptedAgent(
        [ToolCall("t1", "transfer_to_human", {"summary": "refund"}), *goodbye(1000)]
    )
    session, leg, carrier, observed, bridge = await start_call(warm_line(agent), clock)
    await clock.advance(1.5)  # 1 s of words still playing, then 0.8 s of quiet needed
    assert carrier.added == []
    await clock.advance(0.5)
    assert carrier.added == [("+14255550100", {"CallbridgeCallId": "c1", "Summary": "refund"}, 25)]
    session.participant_added("+14255550100")
    await clock.advance(0.1)
    assert agent.notices[-1] == ("briefing", {"summary": "refund", "target": "+14255550100"})
    await clock.advance(1.0)
    assert carrier.left == 1 and carrier.hang_ups == []
    assert session.end_reason == "warm transfer to +14255550100"
    assert observed.ended[0].outcome is Outcome.TRANSFERRED
    await finish(session, bridge, leg)


async def test_a_declined_warm_transfer_leaves_the_caller_with_the_agent() -> None:
    clock = FakeClock()
    agent = ScriptedAgent([ToolCall("t1", "transfer_to_human", {}), *goodbye(200)])
    session, leg, carrier, _, bridge = await start_call(warm_line(agent), clock)
    await clock.advance(1.5)
    assert len(carrier.added) == 1
    session.transfer_failed("AddParticipantFailed (408/10004)")
    await clock.advance(0.1)
    assert agent.notices[-1] == (
        "transfer_failed",
        {"reason": "AddParticipantFailed (408/10004)", "target": "+14255550100"},
    )
    assert not session.ended and session.transferred_to is None
    # The agent may try again: the hand-over is not stuck.
    await session.handoff.transfer("+14255550100", "second try")
    await clock.advance(1.0)
    assert len(carrier.added) == 2
    await finish(session, bridge, leg)


class MenuLines:
    def __init__(self, *lines: Line) -> None:
        self.lines = {line.name: line for line in lines}

    def for_number(self, callee: str) -> Line:
        return self.lines["main"]

    def named(self, name: str) -> Line:
        return self.lines[name]


def menu_lines(spoken: list[str]) -> tuple[MenuLines, dict[str, ScriptedAgent]]:
    async def speak(text: str, rate: int) -> bytes:
        spoken.append(text)
        return bytes(rate * 2)  # one second of prompt

    agents = {"main": ScriptedAgent(), "dining": ScriptedAgent()}
    menu = KeypadMenu(
        prompt="For orders press 1, for restaurants press 2.",
        speak=speak,
        variable="department",
        timeout_s=5.0,
        invalid="Sorry, that's not an option.",
        routes={"2": "dining"},
    )
    dining_tools = ToolRegistry(builtin_tools(None))
    main = Line("main", lambda: agents["main"], menu=menu)
    dining = Line("dining", lambda: agents["dining"], tools=dining_tools)
    return MenuLines(main, dining), agents


async def test_the_keypad_menu_moves_the_call_to_the_line_it_routes_to() -> None:
    clock = FakeClock()
    spoken: list[str] = []
    lines, agents = menu_lines(spoken)
    session, leg, _, observed, bridge = await start_call(lines.named("main"), clock, lines=lines)
    await clock.advance(0.5)
    await leg.inbox.put(CallerDtmf("2"))  # over the prompt: it stops
    await clock.advance(0.1)
    assert leg.stops == 1
    dining = agents["dining"]
    assert dining.started is not None and agents["main"].started is None
    assert dining.started.line == "dining" and dining.started.variables["department"] == "2"
    assert [t["name"] for t in dining.started.tools] == ["end_call"]
    assert session.line.name == "dining" and session.menu_choice is not None
    assert ("ivr", {"digits": "2", "profile": "dining", "line": "dining"}) in observed.events
    await session.disconnected("caller hung up")
    assert observed.ended[0].line == "dining"
    await finish(session, bridge, leg)


async def test_the_menu_asks_again_after_a_silence_then_stays_on_its_line() -> None:
    clock = FakeClock()
    spoken: list[str] = []
    lines, agents = menu_lines(spoken)
    session, leg, _, _, bridge = await start_call(lines.named("main"), clock, lines=lines)
    await clock.advance(5.9)  # 1 s of prompt + 5 s to key
    assert len(spoken) == 1
    await clock.advance(0.2)
    assert spoken[1].startswith("Sorry, that's not an option. For orders")
    await clock.advance(6.2)
    main = agents["main"]
    assert main.started is not None and main.started.line == "main"
    assert main.started.variables["department"] == ""
    await finish(session, bridge, leg)


async def test_one_line_names_only_itself() -> None:
    line = Line("only", ScriptedAgent)
    lines = OneLine(line)
    assert lines.for_number("+1") is line and lines.named("only") is line
    try:
        lines.named("other")
    except KeyError:
        pass
    else:
        raise AssertionError("an unknown line must raise KeyError")
