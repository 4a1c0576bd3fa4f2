"""The calls' metrics through the OpenTelemetry metrics API (beside Prometheus' /metrics,
which stays): what a dashboard of the contact centre needs, by line and outcome."""

from __future__ import annotations

from opentelemetry.metrics import Meter

# Voice-to-voice on a phone line: good under 1 s, poor past 2 s (ms).
_TURN_BUCKETS = [100.0, 200, 300, 400, 500, 600, 800, 1000, 1250, 1500, 2000, 3000, 5000]
_TOOL_BUCKETS = [10.0, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
_CALL_BUCKETS = [5.0, 15, 30, 60, 120, 300, 600, 1200, 3600]


class CallInstruments:
    def __init__(self, meter: Meter) -> None:
        self._started = meter.create_counter("callbridge.calls.started", "{call}", "Calls started")
        self._ended = meter.create_counter(
            "callbridge.calls.ended", "{call}", "Calls ended, by outcome"
        )
        self._active = meter.create_up_down_counter(
            "callbridge.calls.active", "{call}", "Calls in progress"
        )
        self._duration = meter.create_histogram(
            "callbridge.call.duration",
            "s",
            "Call duration, by outcome",
            explicit_bucket_boundaries_advisory=_CALL_BUCKETS,
        )
        self._v2v = meter.create_histogram(
            "callbridge.turn.voice_to_voice",
            "ms",
            "Caller stops speaking to the agent's first audio",
            explicit_bucket_boundaries_advisory=_TURN_BUCKETS,
        )
        self._tool = meter.create_histogram(
            "callbridge.tool.duration",
            "ms",
            "Tool run time",
            explicit_bucket_boundaries_advisory=_TOOL_BUCKETS,
        )
        self._barge_ins = meter.create_counter(
            "callbridge.barge_ins", "{interruption}", "Times a caller interrupted the agent"
        )

    def started(self, line: str) -> None:
        self._started.add(1, {"callbridge.line": line})
        self._active.add(1)

    def ended(self, line: str, outcome: str, seconds: float) -> None:
        attributes = {"callbridge.line": line, "callbridge.outcome": outcome}
        self._ended.add(1, attributes)
        self._active.add(-1)
        self._duration.record(seconds, attributes)

    def left(self) -> None:
        """A call went on at another replica: no longer in progress here, not ended."""
        self._active.add(-1)

    def voice_to_voice(self, line: str, value_ms: float) -> None:
        self._v2v.record(value_ms, {"callbridge.line": line})

    def tool(self, name: str, ok: bool, value_ms: float) -> None:
        self._tool.record(value_ms, {"callbridge.tool.name": name, "callbridge.tool.ok": ok})

    def barge_in(self, line: str) -> None:
        self._barge_ins.add(1, {"callbridge.line": line})
