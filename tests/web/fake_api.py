"""A stand-in for the records API (docs/api.md), to test the console pages on their own.

It keeps calls in memory and speaks the documented shapes: admin token by header or
`?token=`, ISO times, `/api/live/events` as Server-Sent Events starting with a snapshot.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse

T0 = datetime(2025, 11, 23, 16, 0, 0, tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class FakeRecords:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: dict[str, dict[str, Any]] = {}
        self.live: dict[str, dict[str, Any]] = {}
        self.recordings: dict[str, Path] = {}
        self._subscribers: list[asyncio.Queue[tuple[str, dict[str, Any]]]] = []

    def publish(self, event: str, data: dict[str, Any]) -> None:
        for queue in self._subscribers:
            queue.put_nowait((event, data))

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def check(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        offered = auth[7:] if auth.lower().startswith("bearer ") else ""
        offered = offered or request.query_params.get("token", "")
        if not hmac.compare_digest(offered.encode(), self.token.encode()):
            raise HTTPException(401, "missing or wrong admin token")

    def summary(self, call: dict[str, Any]) -> dict[str, Any]:
        keep = (
            "id caller callee profile status started_at ended_at duration_s outcome reason "
            "turns has_recording sentiment summary"
        ).split()
        return {k: call.get(k) for k in keep}

    async def events(self) -> AsyncIterator[str]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            yield _sse("snapshot", {"calls": list(self.live.values())})
            while True:
                event, data = await queue.get()
                yield _sse(event, data)
        finally:
            self._subscribers.remove(queue)


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def fake_api_router(records: FakeRecords) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/calls")
    async def calls(
        request: Request, outcome: str = "", q: str = "", limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        records.check(request)
        found = [
            c
            for c in sorted(records.calls.values(), key=lambda c: c["started_at"], reverse=True)
            if (not outcome or c["outcome"] == outcome)
            and (not q or q.lower() in json.dumps(c).lower())
        ]
        page = found[offset : offset + limit]
        return {"calls": [records.summary(c) for c in page], "total": len(found)}

    @router.get("/calls/{call_id}")
    async def call(request: Request, call_id: str) -> dict[str, Any]:
        records.check(request)
        if call_id not in records.calls:
            raise HTTPException(404, f"no call with id {call_id!r}")
        return records.calls[call_id]

    @router.get("/calls/{call_id}/recording")
    async def recording(request: Request, call_id: str) -> FileResponse:
        records.check(request)
        if call_id not in records.recordings:
            raise HTTPException(404, "no recording")
        return FileResponse(records.recordings[call_id], media_type="audio/wav")

    @router.get("/live")
    async def live(request: Request) -> dict[str, Any]:
        records.check(request)
        return {"calls": list(records.live.values())}

    @router.get("/live/events")
    async def live_events(request: Request) -> StreamingResponse:
        records.check(request)
        return StreamingResponse(records.events(), media_type="text/event-stream")

    return router


def make_call(n: int, **over: Any) -> dict[str, Any]:
    """A finished call record, the n-th of the day; `over` replaces fields."""
    started = T0 + timedelta(minutes=7 * n)
    outcome = ["resolved", "resolved", "transferred", "abandoned", "failed"][n % 5]
    call: dict[str, Any] = {
        "id": f"call{n:04d}" + "0" * 24,
        "caller": f"+1425555{n:04d}",
        "callee": "+18005550100",
        "profile": "Contoso support line",
        "status": "ended",
        "started_at": iso(started),
        "ended_at": iso(started + timedelta(seconds=40 + n)),
        "duration_s": 40.0 + n,
        "outcome": outcome,
        "reason": "agent ended the call" if outcome == "resolved" else f"{outcome} call",
        "turns": 4,
        "has_recording": False,
        "sentiment": {"compound": 0.3, "label": "positive"},
        "summary": f"Caller {n} asked about an order.",
        "correlation_id": "",
        "transferred_to": "+14255550100" if outcome == "transferred" else None,
        "recording_url": None,
        "transcript": [],
        "tools": [],
        "events": [],
        "latencies": [],
        "analytics": {
            "summary": f"Caller {n} asked about an order.",
            "summary_source": "extractive",
            "sentiment": {"compound": 0.3, "label": "positive"},
            "redacted": False,
            "analyzed_at": iso(started + timedelta(seconds=45 + n)),
        },
    }
    call.update(over)
    return call


def rich_call(n: int) -> dict[str, Any]:
    """A call with everything the call page draws: transcript, tools, events, latencies."""
    started = T0 + timedelta(minutes=7 * n)

    def at(s: float) -> str:
        return iso(started + timedelta(seconds=s))

    hours = "We're open Monday to Friday from 8 AM to 8 PM."
    return make_call(
        n,
        outcome="resolved",
        has_recording=True,
        summary="Caller asked for the opening hours; the agent told them.",
        turns=5,
        transcript=[
            {"role": "agent", "text": "Thank you for calling Contoso.", "at": at(0.4)},
            {"role": "agent", "text": "How can I help?", "at": at(1.8)},
            {"role": "caller", "text": "What are your opening hours?", "at": at(4.0)},
            {"role": "agent", "text": hours, "at": at(5.1)},
            {"role": "caller", "text": "<b>Thanks</b>, bye.", "at": at(9.0)},
        ],
        tools=[
            {
                "name": "opening_hours",
                "arguments": {},
                "output": json.dumps({"summary": hours}),
                "ok": True,
                "duration_ms": 1.4,
                "at": at(4.9),
            },
            {
                "name": "end_call",
                "arguments": {},
                "output": '{"ok": true}',
                "ok": True,
                "duration_ms": 0.2,
                "at": at(9.8),
            },
        ],
        events=[
            {"name": "answered", "detail": {"leg_id": "conn-1"}, "at": at(0.0)},
            {"name": "barge_in", "detail": {"heard_ms": 840}, "at": at(3.9)},
        ],
        latencies=[
            {
                "stt_ms": 120 + 40 * i,
                "brain_first_ms": 30 + 10 * i,
                "tts_first_ms": 90,
                "first_audio_ms": 260 + 50 * i,
                "voice_to_voice_ms": 700 + 60 * i,
                "text": f"turn {i + 1}",
            }
            for i in range(5)
        ],
    )
