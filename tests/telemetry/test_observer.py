"""The trace the observer builds from what a call reports, fed as a CallSession feeds it
(the local agent's per-turn timings are those of agent/local/setup.py's TurnTimings)."""

from __future__ import annotations

import time
from dataclasses import asdict

from opentelemetry.trace import SpanKind, StatusCode

from callbridge.agent.local.setup import TurnTimings
from callbridge.call.observer import HANDED_OFF, CallOutcome
from callbridge.core.call_info import CallInfo
from callbridge.core.ending import Outcome
from callbridge.core.tools import ToolRun
from callbridge.telemetry.observer import mask
from tests.telemetry.spans import Recorded, by_name, parent_name

INFO = CallInfo("c1", "+14255550123", "+18005550100", 24000, "corr-1", line="contoso")


def near(ns: int, expected: int) -> bool:
    """Span times come from float epoch seconds: equal to within a microsecond."""
    return abs(ns - expected) < 1_000


def test_a_local_agent_turn_is_placed_by_the_caller_transcript() -> None:
    rec = Recorded()
    obs = rec.observer
    obs.call_started(INFO)
    obs.event("c1", "answered", {"leg_id": "leg"})
    obs.event("c1", "MediaStreamingStarted", {"code": None})
    heard_at = time.time()
    obs.transcript("c1", "caller", "where is my order", heard_at)
    obs.event("c1", "dtmf", {"digit": "4"})
    obs.tool_ran("c1", ToolRun("order_status", {}, "{}", True, 120.0))
    obs.tool_ran("c1", ToolRun("end_call", {}, "{}", True, 1.0))
    obs.call_ended("c1", CallOutcome(Outcome.RESOLVED, "agent ended the call", line="contoso"))
    # The session reports the turns when it releases the media: after the end here.
    timing = TurnTimings(
        speech_end_ms=2500,
        stt_ms=180.0,
        brain_first_ms=40.0,
        tts_first_ms=90.0,
        first_audio_ms=315.0,
        text="where is my order",
        end_of_turn="smart",
        turn_probability=0.93,
    )
    obs.turn_latency("c1", asdict(timing))

    spans = rec.trace_of("c1")
    (root,) = by_name(spans, "call")
    assert root.kind is SpanKind.SERVER and root.parent is None
    assert root.attributes["callbridge.line"] == "contoso"
    assert root.attributes["callbridge.caller"] == mask("+14255550123") == "+1********23"
    assert root.attributes["callbridge.outcome"] == "resolved"
    names = sorted(s.name for s in spans)
    expected = ["call", "answer", "media connected", "turn", "stt", "brain", "tts"]
    expected += ["tool order_status", "tool end_call", "hang-up"]
    assert names == sorted(expected)
    (turn,) = by_name(spans, "turn")
    (stt,) = by_name(spans, "stt")
    (brain,) = by_name(spans, "brain")
    (tts,) = by_name(spans, "tts")
    assert all(parent_name(s, spans) == "turn" for s in (stt, brain, tts))
    assert parent_name(turn, spans) == "call"
    assert turn.start_time is not None and turn.end_time is not None
    # The transcript was recorded when STT finished: the turn ended stt_ms before it.
    assert turn.start_time == stt.start_time
    assert near(stt.start_time, int(heard_at * 1e9) - 180_000_000)
    assert stt.end_time == brain.start_time and brain.end_time == tts.start_time
    assert near(tts.end_time - turn.start_time, 310_000_000)
    assert near(turn.end_time - turn.start_time, 315_000_000)  # voice to voice
    assert turn.attributes["callbridge.turn.anchor"] == "transcript"
    assert turn.attributes["callbridge.turn.end_of_turn"] == "smart"
    (hang_up,) = by_name(spans, "hang-up")
    assert hang_up.attributes["callbridge.ended_by"] == "agent"
    # What the caller typed is not exported.
    events = {e.name: e for e in root.events}
    assert "dtmf" in events and "callbridge.digit" not in (events["dtmf"].attributes or {})
    points = rec.metric_points()
    assert {"callbridge.calls.started", "callbridge.calls.ended"} <= set(points)
    assert "callbridge.turn.voice_to_voice" in points and "callbridge.tool.duration" in points


def test_a_transfer_and_a_failed_tool() -> None:
    rec = Recorded(turns_from_transcripts=True)
    obs = rec.observer
    obs.call_started(INFO)
    obs.event("c1", "answered", {})
    now = time.time()
    obs.transcript("c1", "caller", "a person please", now)
    obs.transcript("c1", "agent", "Putting you through.", now + 0.8)
    obs.tool_ran("c1", ToolRun("find_restaurants", {}, "{}", False, 5.0))
    obs.tool_ran("c1", ToolRun("transfer_to_human", {}, "{}", True, 2.0))
    obs.event("c1", "CallTransferAccepted", {"code": 200})
    obs.event("c1", "CallDisconnected", {"code": 200})
    obs.call_ended("c1", CallOutcome(Outcome.TRANSFERRED, "transferred", "+14255550100"))
    obs.call_ended("c1", CallOutcome(Outcome.TRANSFERRED, "again"))  # reported once

    spans = rec.trace_of("c1")
    (transfer,) = by_name(spans, "transfer")
    assert transfer.attributes["callbridge.transfer.result"] == "accepted"
    (failed,) = by_name(spans, "tool find_restaurants")
    assert failed.status.status_code is StatusCode.ERROR
    (turn,) = by_name(spans, "turn")
    (model,) = by_name(spans, "model")
    assert parent_name(model, spans) == "turn"
    assert near(turn.end_time - turn.start_time, 800_000_000)
    (hang_up,) = by_name(spans, "hang-up")
    assert hang_up.attributes["callbridge.ended_by"] == "transfer"
    assert len(by_name(rec.spans(), "call")) == 1


def test_a_rejected_call_is_one_span() -> None:
    rec = Recorded()
    rec.observer.call_started(INFO)
    rec.observer.call_ended("c1", CallOutcome(Outcome.REJECTED, "rejected: all lines busy"))
    (root,) = rec.spans()
    assert root.attributes["callbridge.outcome"] == "rejected"


def test_a_call_handed_to_another_replica_ends_its_part_here() -> None:
    """The replica that let the call go ends its span of it, with no outcome, and no
    longer counts it as active (the new holder traces the rest)."""
    rec = Recorded()
    rec.observer.call_started(INFO)
    rec.observer.event("c1", HANDED_OFF, {"to": "replica-2"})
    (root,) = rec.spans()
    assert root.attributes["callbridge.handed_off_to"] == "replica-2"
    assert "callbridge.outcome" not in root.attributes
    (active,) = rec.metric_points()["callbridge.calls.active"]
    assert active.value == 0  # type: ignore[attr-defined]
    assert "callbridge.calls.ended" not in rec.metric_points()
    # A late end report changes nothing.
    rec.observer.call_ended("c1", CallOutcome(Outcome.RESOLVED, "caller hung up"))
    assert len(rec.spans()) == 1
