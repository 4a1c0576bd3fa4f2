"""Calls in progress, from memory: `/api/live` and the `/api/live/events` SSE stream.

LiveHub is a call observer: it keeps the calls of this replica that are in progress with
their transcript so far, and fans each change out to the console's event streams. A
stream that cannot keep up is closed rather than let its backlog grow without bound (the
browser's EventSource reconnects and starts again from a fresh snapshot). With several
replicas, `LiveRelay` (live_relay.py) mirrors the other replicas' calls into the hub, so
any replica's console shows every call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from callbridge.analytics.pii import redact, redact_json_text, redact_object
from callbridge.api.auth import require_admin, require_admin_or_url_token
from callbridge.api.calls import ERRORS
from callbridge.api.schemas import LiveCall, LiveCalls, TurnOut, utc
from callbridge.call.observer import HANDED_OFF, CallOutcome
from callbridge.core.call_info import CallInfo
from callbridge.core.tools import ToolRun
from callbridge.store.records import clean_text, clean_value

KEEPALIVE_S = 15.0


def _iso(epoch: float) -> str:
    return utc(epoch).isoformat().replace("+00:00", "Z")


@dataclass
class _Call:
    call_id: str
    caller: str
    callee: str
    profile: str
    started_at: float
    transcript: list[tuple[str, str, float]] = field(default_factory=list)
    replica: str = ""  # the replica holding the call ("": this one)
    here: bool = True  # held by this replica (else mirrored from the live feed)


class Subscription:
    """One event stream's queue of (event name, data); None means: stop."""

    def __init__(self, max_backlog: int) -> None:
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self._max_backlog = max_backlog
        self.closed = False

    def push(self, item: tuple[str, dict[str, Any]] | None) -> None:
        if self.closed:
            return
        if item is None or self.queue.qsize() >= self._max_backlog:
            self.closed = True
            item = None
        self.queue.put_nowait(item)


class LiveHub:
    """A CallObserver holding the calls in progress and feeding the live event streams."""

    def __init__(
        self,
        profile: str = "",
        *,
        redaction: bool = False,
        max_turns: int = 500,
        max_backlog: int = 1000,
    ) -> None:
        self._profile = profile
        # With redaction on, the console never shows PII either (per line: a number
        # spoken across two lines may slip through here; the stored record is redacted
        # again as a whole after the call).
        self._redaction = redaction
        self._max_turns = max_turns
        self._max_backlog = max_backlog
        self.calls: dict[str, _Call] = {}  # this replica's and, mirrored, the others'
        self._subscribers: set[Subscription] = set()
        self.replica_id = ""
        # Where this replica's own events go besides its streams (the relay, if any).
        self.outbox: Callable[[str, dict[str, Any]], None] | None = None

    # --- the streams -----------------------------------------------------------------------
    def subscribe(self) -> Subscription:
        sub = Subscription(self._max_backlog)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def close(self) -> None:
        """End every stream (service shutdown)."""
        for sub in list(self._subscribers):
            sub.push(None)
        self._subscribers.clear()

    def _publish(self, name: str, data: dict[str, Any]) -> None:
        for sub in list(self._subscribers):
            sub.push((name, data))
            if sub.closed:
                self._subscribers.discard(sub)

    def _own(self, name: str, data: dict[str, Any]) -> None:
        """An event of a call held here: to this replica's streams and the other replicas."""
        self._publish(name, data)
        if self.outbox is not None:
            self.outbox(name, data)

    def restart_streams(self) -> None:
        """Close every stream: their browsers reconnect and start from a fresh snapshot
        (after the relay lost events it cannot get back)."""
        for sub in list(self._subscribers):
            sub.push(None)
        self._subscribers.clear()

    def snapshot(self) -> LiveCalls:
        return LiveCalls(
            calls=[
                LiveCall(
                    id=c.call_id,
                    caller=c.caller,
                    callee=c.callee,
                    profile=c.profile,
                    started_at=utc(c.started_at),
                    transcript=[TurnOut(role=r, text=t, at=utc(at)) for r, t, at in c.transcript],
                    replica=(self.replica_id if c.here else c.replica) or None,
                )
                for c in sorted(self.calls.values(), key=lambda c: c.started_at)
            ]
        )

    # --- CallObserver ----------------------------------------------------------------------
    def call_started(self, info: CallInfo) -> None:
        now = time.time()
        line = info.line or self._profile
        # A lone surrogate in a caller id cannot be encoded into a response: it would
        # break /api/live and every event stream for as long as the call lasts.
        caller, callee = clean_text(info.caller), clean_text(info.callee)
        call = self.calls.get(info.call_id)
        if call is not None:  # taken on from another replica: the same call goes on
            call.here, call.replica, call.profile = True, "", line
        else:
            call = _Call(info.call_id, caller, callee, line, now)
            # Taken on from a replica this one did not hear of: the conversation so far.
            call.transcript = [(r, self._text(t), now) for r, t in info.history]
            self.calls[info.call_id] = call
        self._own(
            "call_started",
            {
                "call_id": info.call_id,
                "caller": call.caller,
                "callee": call.callee,
                "profile": line,
                "started_at": _iso(call.started_at),
                "replica": self.replica_id or None,
            },
        )

    def _text(self, text: str) -> str:
        text = clean_text(text)
        return redact(text) if self._redaction else text

    def transcript(self, call_id: str, role: str, text: str, at: float) -> None:
        text = self._text(text)
        call = self.calls.get(call_id)
        if call is not None:
            call.transcript.append((role, text, at))
            del call.transcript[: -self._max_turns]
        self._own("transcript", {"call_id": call_id, "role": role, "text": text, "at": _iso(at)})

    def tool_ran(self, call_id: str, run: ToolRun) -> None:
        arguments: dict[str, Any] = clean_value(json.loads(json.dumps(run.arguments, default=str)))
        output = clean_text(run.output)
        if self._redaction:
            arguments, output = redact_object(arguments), redact_json_text(output)
        self._own(
            "tool",
            {
                "call_id": call_id,
                "name": run.name,
                "arguments": arguments,
                "output": output,
                "ok": run.ok,
                "duration_ms": run.duration_ms,
                "at": _iso(time.time() - run.duration_ms / 1000),
            },
        )

    def event(self, call_id: str, name: str, detail: dict[str, Any]) -> None:
        call = self.calls.get(call_id)
        line = detail.get("line")
        if name == "ivr" and call is not None and isinstance(line, str) and line != call.profile:
            call.profile = line  # the keypad menu moved the call to another line
            self._own("call_moved", {"call_id": call_id, "profile": line})
        elif name == HANDED_OFF and call is not None and call.here:
            if self.outbox is None:  # no feed brings it back: it is gone from here
                del self.calls[call_id]
                return
            # It goes on at another replica, whose events the relay brings from now on.
            call.here, call.replica = False, str(detail.get("to", ""))

    def turn_latency(self, call_id: str, timings: dict[str, Any]) -> None:
        pass

    def call_ended(self, call_id: str, outcome: CallOutcome) -> None:
        if self.calls.pop(call_id, None) is None:
            return
        self._own(
            "call_ended",
            {
                "call_id": call_id,
                "outcome": outcome.outcome,
                "reason": outcome.reason,
                "ended_at": _iso(outcome.ended_at),
            },
        )

    # --- the other replicas' calls (fed by the relay) -------------------------------------
    def mirror(
        self,
        call_id: str,
        replica: str,
        call: tuple[str, str, str, float],
        transcript: list[tuple[str, str]],
    ) -> None:
        """A call another replica holds, as the shared directory has it (a replica that
        starts learns of the calls already in progress): (caller, callee, line, started)."""
        if call_id in self.calls:
            return
        caller, callee, line, started = call
        mirrored = _Call(call_id, caller, callee, line, started, replica=replica, here=False)
        mirrored.transcript = [(r, t, started) for r, t in transcript][-self._max_turns :]
        self.calls[call_id] = mirrored

    def mirrored(self) -> list[str]:
        """The calls held by other replicas."""
        return [c.call_id for c in self.calls.values() if not c.here]

    def forget(self, call_id: str, reason: str) -> None:
        """A mirrored call the directory no longer has (its end was not heard)."""
        call = self.calls.get(call_id)
        if call is None or call.here:
            return
        del self.calls[call_id]
        now = _iso(time.time())
        self._publish(
            "call_ended", {"call_id": call_id, "outcome": None, "reason": reason, "ended_at": now}
        )

    def remote(self, replica: str, name: str, data: dict[str, Any]) -> None:
        """An event of a call another replica holds; raises (KeyError, TypeError,
        ValueError) for one that does not have the fields its kind has."""
        call_id = str(data["call_id"])
        call = self.calls.get(call_id)
        if name == "call_started":
            if call is None:
                started = _epoch(str(data["started_at"]))
                line = str(data["profile"])
                call = _Call(call_id, str(data["caller"]), str(data["callee"]), line, started)
                self.calls[call_id] = call
            else:  # moved there from here (or from a third replica): the same call
                data = {**data, "started_at": _iso(call.started_at)}
            call.here, call.replica = False, replica
        elif call is not None and call.here:
            return  # a late event of the replica that held it before this one
        elif name == "transcript" and call is not None:
            call.transcript.append((str(data["role"]), str(data["text"]), _epoch(data["at"])))
            del call.transcript[: -self._max_turns]
        elif name == "call_moved" and call is not None:
            call.profile = str(data["profile"])
        elif name == "call_ended":
            self.calls.pop(call_id, None)
        self._publish(name, data)


def _epoch(iso: object) -> float:
    return dt.datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp()


def sse(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def live_router(hub: LiveHub, *, keepalive_s: float = KEEPALIVE_S) -> APIRouter:
    # /api/live takes the token in the header only; the event stream, which EventSource
    # opens without headers, also as ?token=.
    router = APIRouter(dependencies=[Depends(require_admin)])
    stream_router = APIRouter(dependencies=[Depends(require_admin_or_url_token)])

    @router.get("/live", response_model=LiveCalls)
    async def live() -> LiveCalls:
        """Calls in progress, with their transcript so far (every replica's, with shared
        state on Redis)."""
        return hub.snapshot()

    @stream_router.get(
        "/live/events",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "events snapshot, call_started, transcript, tool, call_ended",
            }
        },
    )
    async def live_events() -> StreamingResponse:
        """Server-Sent Events of the calls in progress (see docs/api.md). Takes the token
        as `?token=` too, for `EventSource`."""

        async def stream() -> AsyncIterator[str]:
            # Subscribe and snapshot with no await between: no event is missed or doubled.
            sub = hub.subscribe()
            snapshot = hub.snapshot().model_dump(mode="json")
            try:
                yield "retry: 2000\n" + sse("snapshot", snapshot)
                while True:
                    try:
                        item = await asyncio.wait_for(sub.queue.get(), keepalive_s)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if item is None:
                        return
                    yield sse(*item)
            finally:
                hub.unsubscribe(sub)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            # No proxy buffering (nginx) and no caching: events must arrive as they happen.
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    api = APIRouter(prefix="/api", tags=["live"], responses=ERRORS)
    api.include_router(router)
    api.include_router(stream_router)
    return api
