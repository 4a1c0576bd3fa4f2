"""A CallObserver that turns what a call reports into one OpenTelemetry trace per call.

The call path already tells its observers everything (call/observer.py); this observer
builds the spans from that afterwards, with explicit start and end timestamps
(https://opentelemetry.io/docs/specs/otel/trace/api/#span-creation), so nothing on the
media path changes or waits. The trace of a call:

    call                    call_started → call_ended (id, line, masked caller, outcome)
    ├─ answer               call_started → answered (the Answer Call request)
    ├─ media connected      answered → ACS's MediaStreamingStarted
    ├─ turn                 the caller's turn end → the agent's first audio
    │  └─ stt, brain, tts   (local agent) or model (realtime): turns.py
    ├─ tool <name>          each tool run (its duration, ending when it was reported)
    ├─ transfer             the transfer tool → accepted / failed (or the call's end)
    └─ hang-up              who ended it: the caller's CallDisconnected or the agent's
                            end_call → the call's end

Every event (ACS callbacks, barge-in, ...) is also a span event on `call`. Turn timings
are reported when the media is released, which may be just after `call_ended`: an ended
call is kept a while (bounded) so its turns still join its trace.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import Meter
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode, Tracer

from callbridge.call.observer import HANDED_OFF, CallOutcome
from callbridge.core.call_info import CallInfo
from callbridge.core.tools import ToolRun
from callbridge.telemetry.instruments import CallInstruments
from callbridge.telemetry.turns import NS_PER_MS, CallerWords, Interval, Turn, ms, timed_turn

# Ended calls kept for their late turn timings (they come within milliseconds).
RECENT_CALLS = 256
# Event details that may carry what the caller typed (card numbers, PINs): never exported.
_PRIVATE_DETAIL = frozenset({"digit", "digits", "text"})
_TRANSFER_DONE = {
    "CallTransferAccepted": "accepted",
    "AddParticipantSucceeded": "accepted",
    "CallTransferFailed": "failed",
    "AddParticipantFailed": "failed",
    "transfer_failed": "failed",
}

Attr = str | int | float | bool


def mask(number: str) -> str:
    """A caller's number with all but its first and last two characters hidden."""
    if len(number) <= 4:
        return "*" * len(number)
    return number[:2] + "*" * (len(number) - 4) + number[-2:]


def _ns(epoch_s: float) -> int:
    return int(epoch_s * 1e9)


@dataclass
class _Call:
    root: Span
    ctx: Context
    line: str
    started_ns: int
    answered_ns: int | None = None
    media_ns: int | None = None
    caller_words: CallerWords = field(default_factory=CallerWords)
    pending_turn_ns: int | None = None  # a caller transcript awaiting the agent's words
    transfer_ns: int | None = None  # the transfer was asked for (tool end)
    transfers: int = 0  # transfer spans made
    hang_up: tuple[int, str] | None = None  # (since, by whom)
    turns: int = 0
    ended: bool = False


class OtelObserver:
    """`turns_from_transcripts`: the agent keeps no per-turn timings (the realtime
    backends): a turn is then the caller's transcript → the agent's next words."""

    def __init__(
        self, tracer: Tracer, meter: Meter, *, turns_from_transcripts: bool = False
    ) -> None:
        self._tracer = tracer
        self._metrics = CallInstruments(meter)
        self._from_transcripts = turns_from_transcripts
        self._calls: dict[str, _Call] = {}
        self._recent: OrderedDict[str, _Call] = OrderedDict()

    def span_context(self, call_id: str) -> SpanContext | None:
        """The call's root span (for log records of the call)."""
        call = self._calls.get(call_id) or self._recent.get(call_id)
        return call.root.get_span_context() if call is not None else None

    def _call(self, call_id: str) -> _Call | None:
        return self._calls.get(call_id) or self._recent.get(call_id)

    def _child(
        self,
        call: _Call,
        name: str,
        start_ns: int,
        end_ns: int,
        attributes: dict[str, Attr] | None = None,
        *,
        error: bool = False,
    ) -> None:
        span = self._tracer.start_span(
            name, context=call.ctx, start_time=start_ns, attributes=attributes or None
        )
        if error:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=max(start_ns, end_ns))

    # --- CallObserver ------------------------------------------------------------------
    def call_started(self, info: CallInfo) -> None:
        now = time.time_ns()
        attributes: dict[str, Attr] = {
            "callbridge.call.id": info.call_id,
            "callbridge.line": info.line,
            "callbridge.caller": mask(info.caller),
            "callbridge.callee": info.callee,
        }
        if info.correlation_id:
            attributes["callbridge.acs.correlation_id"] = info.correlation_id
        # An empty context: each call is a trace of its own, whatever request started it.
        root = self._tracer.start_span(
            "call", context=Context(), kind=SpanKind.SERVER, start_time=now, attributes=attributes
        )
        ctx = trace.set_span_in_context(root, Context())
        self._calls[info.call_id] = _Call(root, ctx, info.line, now)
        self._metrics.started(info.line)

    def event(self, call_id: str, name: str, detail: dict[str, Any]) -> None:
        call = self._call(call_id)
        if call is None:
            return
        now = time.time_ns()
        if not call.ended:
            call.root.add_event(name, _attributes(detail), timestamp=now)
        if name == HANDED_OFF and not call.ended:
            self._let_go(call_id, call, now, str(detail.get("to", "")))
            return
        if name == "answered" and call.answered_ns is None:
            call.answered_ns = now
            self._child(call, "answer", call.started_ns, now)
        elif name == "MediaStreamingStarted" and call.media_ns is None:
            call.media_ns = now
            self._child(call, "media connected", call.answered_ns or call.started_ns, now)
        elif name == "ivr" and isinstance(line := detail.get("line"), str) and line:
            call.line = line
        elif name == "barge_in":
            self._metrics.barge_in(call.line)
        elif name in _TRANSFER_DONE:
            self._transfer(call, now, _TRANSFER_DONE[name])
        elif name in ("CallDisconnected", "caller_hung_up") and call.hang_up is None:
            call.hang_up = (now, "caller")

    def transcript(self, call_id: str, role: str, text: str, at: float) -> None:
        call = self._call(call_id)
        if call is None:
            return
        at_ns = _ns(at)
        if role == "caller":
            call.caller_words.add(text, at_ns)
            if self._from_transcripts and call.pending_turn_ns is None:
                call.pending_turn_ns = at_ns
        elif role == "agent" and call.pending_turn_ns is not None:
            start, call.pending_turn_ns = call.pending_turn_ns, None
            attributes: dict[str, Attr] = {"callbridge.turn.timing": "transcripts"}
            self._turn(call, Turn(start, at_ns, [], attributes), model=True)

    def tool_ran(self, call_id: str, run: ToolRun) -> None:
        self._metrics.tool(run.name, run.ok, run.duration_ms)
        call = self._call(call_id)
        if call is None:
            return
        now = time.time_ns()
        self._child(
            call,
            f"tool {run.name}",
            now - round(run.duration_ms * NS_PER_MS),
            now,
            {"callbridge.tool.name": run.name, "callbridge.tool.ok": run.ok},
            error=not run.ok,
        )
        if "transfer" in run.name and run.ok:
            call.transfer_ns = now
        elif run.name == "end_call" and run.ok:
            call.hang_up = (now, "agent")

    def turn_latency(self, call_id: str, timings: dict[str, Any]) -> None:
        call = self._call(call_id)
        if call is None:
            return
        heard_at = call.caller_words.take(str(timings.get("text") or ""))
        if heard_at is not None:  # the transcript came right after STT
            turn_end, anchor = heard_at - round(ms(timings, "stt_ms") * NS_PER_MS), "transcript"
        else:  # no words: the VAD's timeline, from when the media started
            since = call.media_ns or call.answered_ns or call.started_ns
            turn_end = since + round(ms(timings, "speech_end_ms") * NS_PER_MS)
            anchor = "media_start"
        turn = timed_turn(timings, turn_end)
        turn.attributes["callbridge.turn.anchor"] = anchor
        self._turn(call, turn)
        if v2v := turn.attributes.get("callbridge.turn.voice_to_voice_ms"):
            self._metrics.voice_to_voice(call.line, float(v2v))

    def call_ended(self, call_id: str, outcome: CallOutcome) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return  # reported once, however many times an end is reported
        end = max(call.started_ns, _ns(outcome.ended_at))
        line = outcome.line or call.line
        if call.transfer_ns is not None or (outcome.transferred_to and not call.transfers):
            self._transfer(call, end, "accepted" if outcome.transferred_to else "ended")
        if call.answered_ns is not None:
            since, by = call.hang_up or (end, "service")
            if outcome.transferred_to:
                by = "transfer"
            self._child(call, "hang-up", min(since, end), end, {"callbridge.ended_by": by})
        root = call.root
        root.set_attributes(
            {
                "callbridge.line": line,
                "callbridge.outcome": str(outcome.outcome),
                "callbridge.end_reason": outcome.reason,
                "callbridge.turns": call.turns,
            }
        )
        if outcome.transferred_to:
            root.set_attribute("callbridge.transferred_to", outcome.transferred_to)
        if outcome.outcome == "failed":
            root.set_status(Status(StatusCode.ERROR, outcome.reason))
        root.end(end_time=end)
        self._retire(call_id, call)
        self._metrics.ended(line, str(outcome.outcome), (end - call.started_ns) / 1e9)

    def _let_go(self, call_id: str, call: _Call, now: int, to: str) -> None:
        """The call goes on at another replica, which starts a trace of its own for it:
        this replica's part of the call ends here, with no outcome."""
        self._calls.pop(call_id, None)
        call.root.set_attributes({"callbridge.handed_off_to": to, "callbridge.turns": call.turns})
        call.root.end(end_time=now)
        self._retire(call_id, call)
        self._metrics.left()

    def _retire(self, call_id: str, call: _Call) -> None:
        """Kept a while after its end: late turn timings still find their trace."""
        call.ended = True
        self._recent[call_id] = call
        while len(self._recent) > RECENT_CALLS:
            self._recent.popitem(last=False)

    # --- the parts ---------------------------------------------------------------------
    def _turn(self, call: _Call, turn: Turn, *, model: bool = False) -> None:
        call.turns += 1
        turn.attributes["callbridge.turn.index"] = call.turns
        span = self._tracer.start_span(
            "turn", context=call.ctx, start_time=turn.start_ns, attributes=turn.attributes
        )
        ctx = trace.set_span_in_context(span, Context())
        parts = turn.parts or ([Interval("model", turn.start_ns, turn.end_ns)] if model else [])
        for part in parts:
            child = self._tracer.start_span(part.name, context=ctx, start_time=part.start_ns)
            child.end(end_time=part.end_ns)
        span.end(end_time=max(turn.start_ns, turn.end_ns))

    def _transfer(self, call: _Call, now: int, result: str) -> None:
        since, call.transfer_ns = call.transfer_ns, None
        call.transfers += 1
        start = since if since is not None else now
        attributes: dict[str, Attr] = {"callbridge.transfer.result": result}
        self._child(call, "transfer", start, now, attributes, error=result == "failed")


def _attributes(detail: dict[str, Any]) -> dict[str, Attr]:
    out: dict[str, Attr] = {}
    for key, value in detail.items():
        if key in _PRIVATE_DETAIL or value is None:
            continue
        out[f"callbridge.{key}"] = (
            value if isinstance(value, str | int | float | bool) else str(value)
        )
    return out
