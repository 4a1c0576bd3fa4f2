"""LocalAgent's turn-taking with the real VAD and fake STT/TTS/brain (fast, no models)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from callbridge.agent.base import (
    AgentAudio,
    AgentEvent,
    AgentTranscript,
    CallerTranscript,
    ResponseDone,
    SpeechStarted,
    ToolCall,
)
from callbridge.agent.local.agent import LocalAgent, TurnSettings
from callbridge.agent.local.brain.base import BrainError, ToolRunner
from callbridge.agent.local.models import get_tts
from callbridge.core.call_info import CallInfo
from callbridge.core.heard import Heard, heard_text

RATE = 24000
POOL = ThreadPoolExecutor(2)


@dataclass
class Said:
    text: str


class FakeStt:
    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    async def transcribe_async(self, pcm16k: bytes, executor: Executor) -> Said:
        self.calls += 1
        return Said(self.text)


class FakeTts:
    """100 ms of a constant non-zero signal per word, a piece per word."""

    async def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]:
        for _ in text.split():
            yield b"\x10\x00" * (out_rate // 10)


class ScriptBrain:
    def __init__(self, replies: dict[str, list[str]], tool: str | None = None) -> None:
        self.replies = replies
        self.tool = tool
        self.heard_texts: list[str] = []
        self.turns: list[str] = []
        self.tool_outputs: list[str] = []
        self.fail = False

    def greeting(self) -> str:
        return "Hello there caller"

    async def turn(self, text: str, run_tool: ToolRunner) -> AsyncIterator[str]:
        self.turns.append(text)
        if self.fail:
            raise BrainError("backend down")
        if self.tool:
            self.tool_outputs.append(await run_tool(self.tool, {"n": 1}))
        for sentence in self.replies.get(text, ["Sorry?"]):
            yield sentence

    async def digits(self, digits: str, run_tool: ToolRunner) -> AsyncIterator[str]:
        yield f"You typed {digits}"

    def heard(self, text: str) -> None:
        self.heard_texts.append(text)

    def apology(self) -> str:
        return "I am sorry"

    @property
    def fallback(self) -> str:
        return "goodbye"


def speech(ms: int) -> bytes:
    """Real speech from the bundled voice, so the real Silero VAD sees speech."""
    pcm = get_tts().synthesize("Please check the status of my order number four five one two.")
    # The voice runs at 22.05 kHz: approximate by repeating/trimming at 24 kHz.
    from callbridge.audio.resample import StreamResampler

    out = StreamResampler(get_tts().sample_rate, RATE).process(pcm, last=True)
    return out[: RATE * ms // 1000 * 2]


def quiet(ms: int) -> bytes:
    return bytes(RATE * ms // 1000 * 2)


async def feed(agent: LocalAgent, pcm: bytes) -> None:
    step = RATE // 50 * 2
    for i in range(0, len(pcm), step):
        await agent.push_audio(pcm[i : i + step])
        await asyncio.sleep(0)


async def collect(agent: LocalAgent, seconds: float) -> list[AgentEvent]:
    out: list[AgentEvent] = []

    async def run() -> None:
        async for ev in agent.events():
            out.append(ev)

    task = asyncio.create_task(run())
    await asyncio.sleep(seconds)
    task.cancel()
    return out


def make(brain: ScriptBrain, stt: FakeStt, **turn: Any) -> LocalAgent:
    # These tests are about the fixed-silence mode (tests/agent/test_turn_taking.py: smart).
    settings = TurnSettings(**{"end_of_turn": "silence", **turn})
    return LocalAgent(lambda info: brain, stt, FakeTts(), POOL, turn=settings)


async def test_greets_then_answers_a_turn() -> None:
    brain = ScriptBrain({"check my order": ["Sure.", "What is the number?"]})
    agent = make(brain, FakeStt("check my order"), end_silence_ms=400)
    await agent.start(CallInfo("c", "+1", "+2", RATE))
    events = asyncio.create_task(collect(agent, 4.0))
    await feed(agent, quiet(300) + speech(2000) + quiet(800))
    got = await events
    await agent.close()
    texts = [e.text for e in got if isinstance(e, AgentTranscript)]
    assert texts == ["Hello there caller", "Sure.", "What is the number?"]
    assert any(isinstance(e, SpeechStarted) for e in got)
    assert [e.text for e in got if isinstance(e, CallerTranscript)] == ["check my order"]
    assert sum(isinstance(e, ResponseDone) for e in got) == 2
    timing = agent.timings[0]
    assert timing.text == "check my order" and timing.first_audio_ms > 0


def sentences_of(events: list[AgentEvent]) -> list[tuple[str, float]]:
    """(sentence, ms of audio) from the marks on AgentAudio, as the call session reads them."""
    out: list[tuple[str, float]] = []
    for e in events:
        if isinstance(e, AgentAudio):
            ms = len(e.pcm) / (RATE * 2 / 1000)
            if e.text or not out:
                out.append((e.text, ms))
            else:
                out[-1] = (out[-1][0], out[-1][1] + ms)
    return out


async def test_sentences_are_marked_where_their_audio_starts() -> None:
    brain = ScriptBrain({"hours": ["We open at nine.", "Closed on Sundays."]})
    agent = make(brain, FakeStt("hours"), end_silence_ms=300)
    await agent.start(CallInfo("c", "+1", "+2", RATE))
    events = asyncio.create_task(collect(agent, 3.0))
    await feed(agent, speech(1500) + quiet(700))
    got = await events
    await agent.close()
    marks = [e.text for e in got if isinstance(e, AgentAudio)]
    # the first piece of each sentence carries its words, the others none
    assert [m for m in marks if m] == [
        "Hello there caller",
        "We open at nine.",
        "Closed on Sundays.",
    ]
    assert len(marks) == 3 + 4 + 3  # a piece per word
    spoken = sentences_of(got)
    assert spoken == [
        ("Hello there caller", 300.0),
        ("We open at nine.", 400.0),
        ("Closed on Sundays.", 300.0),
    ]
    assert heard_text(spoken[1:], 500) == "We open at nine. Closed…"


async def test_barge_in_tells_the_brain_what_was_heard() -> None:
    brain = ScriptBrain({})
    agent = make(brain, FakeStt(""))
    await agent.start(CallInfo("c", "+1", "+2", RATE))
    got = await collect(agent, 0.05)
    spoken = sentences_of(got)
    assert spoken == [("Hello there caller", 300.0)]
    rid = next(e.response_id for e in got if isinstance(e, AgentAudio))
    # 1.5 of the 3 words of the greeting: the call session works out the words.
    await agent.interrupted(Heard(150, heard_text(spoken, 150), rid))
    assert brain.heard_texts == ["Hello…"]
    await agent.close()


async def test_digits_flush_on_pound() -> None:
    brain = ScriptBrain({})
    agent = make(brain, FakeStt(""))
    await agent.start(CallInfo("c", "+1", "+2", RATE))
    events = asyncio.create_task(collect(agent, 0.5))
    for d in "4512#":
        await agent.push_dtmf(d)
    got = await events
    await agent.close()
    assert "You typed 4512#" in [e.text for e in got if isinstance(e, AgentTranscript)]


async def test_slow_tool_gets_a_filler_and_failures_an_apology() -> None:
    brain = ScriptBrain({"x": ["Done."]}, tool="lookup")
    agent = make(brain, FakeStt("x"), end_silence_ms=300, tool_filler_after_s=0.2)
    await agent.start(CallInfo("c", "+1", "+2", RATE))
    got: list[AgentEvent] = []

    async def run() -> None:
        async for ev in agent.events():
            got.append(ev)
            if isinstance(ev, ToolCall):
                await asyncio.sleep(0.6)
                await agent.tool_result(ev.call_id, json.dumps({"ok": 1}))

    reader = asyncio.create_task(run())
    await feed(agent, speech(1500) + quiet(700))
    await asyncio.sleep(1.5)
    assert brain.tool_outputs == ['{"ok": 1}']
    audio_after_tool = [e for e in got if isinstance(e, AgentAudio)]
    assert len(audio_after_tool) >= 3  # greeting, filler, reply
    # Now the brain fails: an apology, then the fallback tool (end_call for "goodbye").
    brain.fail = True
    got.clear()
    await feed(agent, speech(1500) + quiet(700))
    await asyncio.sleep(1.0)
    reader.cancel()
    await agent.close()
    assert [e.name for e in got if isinstance(e, ToolCall)] == ["end_call"]


@pytest.fixture(autouse=True, scope="module")
def _models() -> None:
    get_tts()
