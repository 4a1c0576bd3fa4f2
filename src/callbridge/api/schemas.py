"""The API's JSON shapes (they are the OpenAPI schema the console is built against)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from callbridge.store.records import CallDetailRow, CallRow


def utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def utc_or_none(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else utc(epoch)


class ErrorOut(BaseModel):
    detail: str = Field(description="what is wrong, in one sentence")


class SentimentOut(BaseModel):
    compound: float = Field(description="VADER compound score of the caller's turns, -1..1")
    label: Literal["positive", "neutral", "negative"]


class CallSummary(BaseModel):
    id: str
    caller: str
    callee: str
    profile: str
    status: Literal["active", "ended", "incomplete"]
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_s: float | None
    # Not a Literal: a record must stay readable if a newer service adds an outcome.
    outcome: str | None = Field(description="resolved | transferred | abandoned | failed")
    reason: str | None
    turns: int
    has_recording: bool
    sentiment: SentimentOut | None
    summary: str | None


class TurnOut(BaseModel):
    role: str = Field(description="caller | agent")
    text: str
    at: dt.datetime


class ToolOut(BaseModel):
    name: str
    arguments: dict[str, Any]
    output: str = Field(description="the JSON text handed back to the agent")
    ok: bool
    duration_ms: float
    at: dt.datetime


class EventOut(BaseModel):
    name: str
    detail: dict[str, Any]
    at: dt.datetime


class AnalyticsOut(BaseModel):
    summary: str | None
    summary_source: Literal["llm", "extractive"] | None
    sentiment: SentimentOut | None
    redacted: bool
    analyzed_at: dt.datetime | None


class CallDetail(CallSummary):
    correlation_id: str
    transferred_to: str | None
    recording_url: str | None
    transcript: list[TurnOut]
    tools: list[ToolOut]
    events: list[EventOut]
    latencies: list[dict[str, Any]] = Field(description="one agent turn's timings (ms) each")
    analytics: AnalyticsOut


class CallList(BaseModel):
    calls: list[CallSummary]
    total: int = Field(description="all matches, ignoring limit and offset")


class LiveCall(BaseModel):
    id: str
    caller: str
    callee: str
    profile: str
    started_at: dt.datetime
    transcript: list[TurnOut]
    replica: str | None = None  # the replica holding the call (with several replicas)


class LiveCalls(BaseModel):
    calls: list[LiveCall]


def _sentiment(row: CallRow) -> SentimentOut | None:
    if row.sentiment_compound is None or row.sentiment_label not in (
        "positive",
        "neutral",
        "negative",
    ):
        return None
    return SentimentOut.model_validate(
        {"compound": row.sentiment_compound, "label": row.sentiment_label}
    )


def _summary_fields(row: CallRow) -> dict[str, Any]:
    ended = row.status == "ended" and row.ended_at is not None
    return {
        "id": row.id,
        "caller": row.caller,
        "callee": row.callee,
        "profile": row.profile,
        "status": row.status,
        "started_at": utc(row.started_at),
        "ended_at": utc_or_none(row.ended_at),
        "duration_s": round(row.ended_at - row.started_at, 3)
        if ended and row.ended_at is not None
        else None,
        "outcome": row.outcome if row.status == "ended" else None,
        "reason": row.reason,
        "turns": row.turns,
        "has_recording": row.has_recording,
        "sentiment": _sentiment(row),
        "summary": row.summary,
    }


def call_summary(row: CallRow) -> CallSummary:
    return CallSummary.model_validate(_summary_fields(row))


def call_detail(d: CallDetailRow) -> CallDetail:
    row = d.call
    return CallDetail.model_validate(
        {
            **_summary_fields(row),
            "correlation_id": row.correlation_id,
            "transferred_to": row.transferred_to,
            "recording_url": f"/api/calls/{row.id}/recording" if row.has_recording else None,
            "transcript": [TurnOut(role=t.role, text=t.text, at=utc(t.at)) for t in d.transcript],
            "tools": [
                ToolOut(
                    name=t.name,
                    arguments=t.arguments,
                    output=t.output,
                    ok=t.ok,
                    duration_ms=t.duration_ms,
                    at=utc(t.at),
                )
                for t in d.tools
            ],
            "events": [EventOut(name=e.name, detail=e.detail, at=utc(e.at)) for e in d.events],
            "latencies": [lat.timings for lat in d.latencies],
            "analytics": {
                "summary": row.summary,
                "summary_source": row.summary_source,
                "sentiment": _sentiment(row),
                "redacted": row.redacted,
                "analyzed_at": utc_or_none(row.analyzed_at),
            },
        }
    )
