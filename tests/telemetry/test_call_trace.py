"""A real emulated call makes one trace: the ACS emulator calls callbridge, whose agent is
the Voice Live backend against the fake Voice Live server; a tool runs, the caller is
transferred. The spans are taken with an in-memory exporter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callbridge.devstack import running_stack
from callbridge.emulator import CallScript
from callbridge.testing.fake_realtime import CallTool, FakeRealtimeServer, Say, Script
from tests.e2e.harness import hello_pcm16k
from tests.telemetry.spans import Recorded, by_name

pytestmark = pytest.mark.e2e

CALLER = "+14255550177"
PROFILE = """
name: telemetry line
persona: You are the test line's assistant. The caller is {caller}.
greeting: Hello, test line.
fallback: goodbye
tools: [opening_hours]
transfer:
  target: "+14255550100"
flow:
  intents:
    hi: {examples: [hello], reply: Hi}
realtime:
  voice: marin
  turn_detection: {type: server_vad, silence_duration_ms: 300}
"""


def speech(seconds: float) -> bytes:
    return hello_pcm16k()[: int(16000 * seconds) * 2]


async def test_a_real_call_is_one_trace_with_its_spans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = tmp_path / "line.yaml"
    profile.write_text(PROFILE)
    script = Script(
        [
            CallTool("opening_hours", {}),
            Say("We are open from eight to eight.", audio_ms=1500),
            CallTool("transfer_to_human", {"summary": "wants a person"}),
            Say("Putting you through.", audio_ms=900),
        ],
        caller_says=["When are you open?", "A person, please."],
    )
    rec = Recorded(turns_from_transcripts=True)
    async with FakeRealtimeServer("voicelive", script) as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        async with running_stack(agent="voicelive", profile=str(profile)) as stack:
            stack.edge.observers.append(rec.observer)
            call = await stack.emulator.start_call(
                CallScript(from_number=CALLER, max_duration_s=40)
            )
            await call.wait_media()
            await call.wait_agent_quiet(since=0.0, quiet_s=0.4, timeout_s=10)  # greeting
            said = await call.say(speech(1.2))
            await call.wait_agent_quiet(since=said.start_s, quiet_s=0.4, timeout_s=10)
            await call.say(speech(1.0))
            await call.ended(timeout_s=20)  # the transfer takes the caller away
            for _ in range(100):
                if not stack.edge.calls:
                    break
                await asyncio.sleep(0.05)
            session = stack.edge.finished[-1]
    assert session.transferred_to == "+14255550100", session.end_reason

    spans = rec.trace_of(session.call_id)
    assert len(by_name(rec.spans(), "call")) == 1  # one trace for the call
    (root,) = by_name(spans, "call")
    assert root.attributes["callbridge.call.id"] == session.call_id
    assert root.attributes["callbridge.line"] == "telemetry line"
    assert root.attributes["callbridge.outcome"] == "transferred"
    assert root.attributes["callbridge.caller"] == "+1********77"
    names = {s.name for s in spans}
    expected = {"call", "answer", "media connected", "turn", "model", "hang-up", "transfer"}
    assert expected | {"tool opening_hours", "tool transfer_to_human"} <= names, names
    # Every span but the call's hangs under a span of the same trace, inside the call.
    ids = {s.context.span_id: s for s in spans}
    assert root.start_time is not None and root.end_time is not None
    for span in spans:
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time <= span.end_time
        assert root.start_time <= span.start_time and span.end_time <= root.end_time + 10**9
        if span is not root:
            assert span.parent is not None and span.parent.span_id in ids, span.name
    (answer,) = by_name(spans, "answer")
    (media,) = by_name(spans, "media connected")
    assert answer.end_time is not None and media.start_time == answer.end_time
    assert len(by_name(spans, "turn")) >= 2
    (transfer,) = by_name(spans, "transfer")
    assert transfer.attributes["callbridge.transfer.result"] == "accepted"
    (hang_up,) = by_name(spans, "hang-up")
    assert hang_up.attributes["callbridge.ended_by"] == "transfer"
    events = {e.name for e in root.events}
    assert {"answered", "CallConnected", "MediaStreamingStarted"} <= events
