"""Prometheus metrics of the calls, fed by a call observer, served at `/metrics`.

Each app gets its own registry (not prometheus-client's global one), so several apps in one
process (tests, `callbridge dev`) do not collide, and the exposition holds callbridge's
metrics only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest

from callbridge.call.observer import HANDED_OFF, CallOutcome
from callbridge.core.call_info import CallInfo
from callbridge.core.ending import OUTCOMES
from callbridge.core.tools import ToolRun

# Voice-to-voice on a phone line: good under 1 s, poor past 2 s.
_LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0)
_BARGE_IN_BUCKETS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0)
_TOOL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The keys a turn's timings may carry the voice-to-voice figure under: the observer's
# documented name first, then the local agent's (turn end → first audio to the bridge).
_V2V_KEYS = ("voice_to_voice_ms", "voice_to_voice", "first_audio_ms")
_BARGE_IN_KEYS = ("latency_ms", "stop_ms", "barge_in_ms")


def _ms(values: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = values.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return None


class CallMetrics:
    """The metrics, and the CallObserver that updates them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.active_calls = Gauge("callbridge_active_calls", "Calls in progress", registry=r)
        self.calls = Counter("callbridge_calls", "Calls ended, by outcome", ["outcome"], registry=r)
        self.voice_to_voice = Histogram(
            "callbridge_voice_to_voice_seconds",
            "Caller stops speaking to the agent's first audio",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.barge_in = Histogram(
            "callbridge_barge_in_seconds",
            "Caller starts speaking to the agent's audio stopped",
            buckets=_BARGE_IN_BUCKETS,
            registry=r,
        )
        self.barge_ins = Counter("callbridge_barge_ins", "Times a caller interrupted", registry=r)
        self.tool_seconds = Histogram(
            "callbridge_tool_seconds",
            "Tool run time",
            ["tool", "ok"],
            buckets=_TOOL_BUCKETS,
            registry=r,
        )
        self.errors = Counter("callbridge_errors", "Errors, by kind", ["kind"], registry=r)
        for outcome in OUTCOMES:
            self.calls.labels(outcome)  # present at 0, so rate() works from the start
        for kind in ("call_failed", "tool_failed", "store_write", "analytics"):
            self.errors.labels(kind)
        self._active: set[str] = set()

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def exposition(self) -> bytes:
        return _generate_latest(self.registry)

    # --- CallObserver ------------------------------------------------------------------
    def call_started(self, info: CallInfo) -> None:
        self._active.add(info.call_id)
        self.active_calls.set(len(self._active))

    def transcript(self, call_id: str, role: str, text: str, at: float) -> None:
        pass

    def tool_ran(self, call_id: str, run: ToolRun) -> None:
        self.tool_seconds.labels(run.name, "true" if run.ok else "false").observe(
            run.duration_ms / 1000
        )
        if not run.ok:
            self.error("tool_failed")

    def event(self, call_id: str, name: str, detail: dict[str, Any]) -> None:
        if name == HANDED_OFF:  # in progress at another replica now, not ended
            self._active.discard(call_id)
            self.active_calls.set(len(self._active))
        elif name == "barge_in":
            self.barge_ins.inc()
            ms = _ms(detail, _BARGE_IN_KEYS)
            if ms is not None:
                self.barge_in.observe(ms / 1000)

    def turn_latency(self, call_id: str, timings: dict[str, Any]) -> None:
        ms = _ms(timings, _V2V_KEYS)
        if ms is not None:
            self.voice_to_voice.observe(ms / 1000)
        barge_ms = _ms(timings, ("barge_in_ms",))
        if barge_ms is not None:
            self.barge_in.observe(barge_ms / 1000)

    def call_ended(self, call_id: str, outcome: CallOutcome) -> None:
        if call_id not in self._active:
            return  # counted once, however many times an end is reported
        self._active.discard(call_id)
        self.active_calls.set(len(self._active))
        self.calls.labels(outcome.outcome).inc()
        if outcome.outcome == "failed":
            self.error("call_failed")


def metrics_router(metrics: CallMetrics) -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router
