"""Whole calls: the ACS emulator calls callbridge, which talks to a fake Voice Live or OpenAI
Realtime server through the official SDK. Two independent calls run at once per backend:

- A: greeting heard; a tool call (`opening_hours`) whose output reaches the fake; a
  barge-in mid-reply whose truncate `audio_end_ms` matches what the caller heard;
- B: the model's socket drops mid-reply; the call recovers (the caller hears the agent
  again) and the new session was seeded with the transcript so far.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest

from callbridge.devstack import Stack, running_stack
from callbridge.emulator import CallScript, LiveCaller
from callbridge.testing.fake_realtime import (
    CallTool,
    FakeRealtimeServer,
    FakeSession,
    Say,
    Script,
    by_instructions,
    problems,
)
from callbridge.testing.fake_realtime.wire import Dialect
from tests.e2e.harness import hello_pcm16k

pytestmark = pytest.mark.e2e

CALLER_A = "+14255550101"
CALLER_B = "+14255550102"
GREETING = "Hello, test line."
PROFILE = """
name: realtime test line
persona: You are the test line's assistant. The caller is {caller}.
greeting: Hello, test line.
fallback: goodbye
tools: [opening_hours]
flow:
  intents:
    hi: {examples: [hello], reply: Hi}
realtime:
  voice: marin
  turn_detection: {type: server_vad, silence_duration_ms: 300}
"""
CHUNK_MS = 100  # the fakes' audio per delta


def speech(seconds: float) -> bytes:
    return hello_pcm16k()[: int(16000 * seconds) * 2]


def sessions_of(fake: FakeRealtimeServer, caller: str) -> list[FakeSession]:
    return [s for s in fake.sessions if caller in s.instructions]


async def call_a(stack: Stack, fake: FakeRealtimeServer) -> None:
    call: LiveCaller = await stack.emulator.start_call(
        CallScript(from_number=CALLER_A, max_duration_s=40)
    )
    await call.wait_media()
    greeting = await call.wait_agent_quiet(since=0.0, quiet_s=0.4, timeout_s=10)
    assert greeting.first_audio_s is not None and greeting.first_audio_s < 2.0
    assert greeting.duration_s > 0.8  # "Hello, test line." at ~65 ms a character

    # A question answered with a tool: the output reaches the model, then its answer.
    said = await call.say(speech(1.2))
    answer = await call.wait_agent_quiet(since=said.start_s, quiet_s=0.4, timeout_s=10)
    assert answer.first_audio_s is not None and answer.duration_s > 1.5
    (session,) = sessions_of(fake, CALLER_A)
    outputs = [e["item"] for e in session.client_events("conversation.item.create")]
    assert [o["type"] for o in outputs] == ["function_call_output"]
    assert "open" in json.loads(outputs[0]["output"])["summary"]

    # A long reply, interrupted after about a second and a half.
    said = await call.say(speech(1.0))
    reply_start = await call.wait_agent_speaking(since=said.end_s, timeout_s=10)
    await call.silence(1.5)
    await call.say(speech(0.8))
    await fake.wait_for(lambda: session.client_events("conversation.item.truncate"), 5, "trunc")
    stops = [t for t in call.report.stop_audio_times if t > reply_start]
    assert stops, call.report.summary()
    heard_ms = (stops[0] - reply_start) * 1000
    (truncate,) = session.client_events("conversation.item.truncate")
    (long_item,) = [
        e["item"]["id"]
        for e in session.server_events("response.output_item.done")
        if "long history" in str(e["item"].get("content"))
    ]
    assert truncate["item_id"] == long_item
    # What the model keeps is what the caller heard, within one chunk of audio.
    assert abs(truncate["audio_end_ms"] - heard_ms) <= CHUNK_MS, (truncate, heard_ms)
    await call.wait_agent_quiet(quiet_s=0.4, timeout_s=10)  # "Sure." after the barge-in
    await call.hang_up()
    errors = [e["error"]["code"] for e in session.server_events("error")]
    assert set(errors) <= {"response_cancel_not_active"}, errors


async def call_b(stack: Stack, fake: FakeRealtimeServer) -> None:
    call = await stack.emulator.start_call(CallScript(from_number=CALLER_B, max_duration_s=40))
    await call.wait_media()
    await call.wait_agent_quiet(since=0.0, quiet_s=0.4, timeout_s=10)
    said = await call.say(speech(1.0))
    first = await call.wait_agent_speaking(since=said.end_s, timeout_s=10)
    await fake.wait_for(lambda: len(sessions_of(fake, CALLER_B)) == 2, 8, "reconnect")
    old, new = sessions_of(fake, CALLER_B)
    turn = await call.wait_agent_quiet(since=first, quiet_s=0.6, timeout_s=15)
    # The start of the answer (1.5 s, then the drop), a short pause, then the rest (2 s).
    assert turn.duration_s >= 3.4, call.report.summary()
    segments = [s for s in call.report.heard_segments if s[0] >= first - 0.01]
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(segments)]
    assert all(gap < 1.0 for gap in gaps), segments
    assert old.closed_code == 1011
    seeded = [e["item"] for e in new.client_events("conversation.item.create")]
    texts = [(i["role"], i["content"][0]["text"]) for i in seeded]
    assert texts[0] == ("assistant", GREETING)
    assert texts[1] == ("user", "When are you open?")
    assert texts[2][0] == "assistant" and texts[2][1].startswith("We are open")
    (resume,) = new.client_events("response.create")
    assert "Continue from there" in resume["response"]["instructions"]
    await call.hang_up()


@pytest.mark.parametrize("backend", ["voicelive", "openai"])
async def test_calls_through_a_fake_realtime_service(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = {
        CALLER_A: Script(
            [
                CallTool("opening_hours", {}),
                Say("We are open from eight to eight on weekdays.", audio_ms=2000),
                Say("Let me tell you all about our long history. " * 3, audio_ms=6000),
                Say("Sure.", audio_ms=500),
            ]
        ),
        CALLER_B: Script(
            [
                Say(
                    "We are open from eight in the morning until eight at night on weekdays, "
                    "and on Saturdays from nine.",
                    audio_ms=4000,
                    drop_after_ms=1500,
                ),
                Say("and on Sundays we are closed.", audio_ms=2000),
            ],
            caller_says=["When are you open?"],
        ),
    }
    profile = tmp_path / "realtime.yaml"
    profile.write_text(PROFILE)
    dialect: Dialect = "voicelive" if backend == "voicelive" else "ga"
    async with FakeRealtimeServer(dialect, by_instructions(scripts)) as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        async with running_stack(agent=backend, profile=str(profile)) as stack:
            await asyncio.gather(call_a(stack, fake), call_b(stack, fake))
            for _ in range(100):
                if not stack.edge.calls:
                    break
                await asyncio.sleep(0.05)
            assert stack.edge.calls == {}
            reasons = [s.end_reason or "" for s in stack.edge.finished]
            assert all("5010" in r for r in reasons), reasons  # both ended by the caller
        await asyncio.sleep(0.1)
        assert all(s.closed.is_set() for s in fake.sessions)  # every model socket closed
        for session in fake.sessions:
            for event in session.sent:
                assert not problems(dialect, event), event
