"""The calls this replica carries, from every edge: one per-replica cap, and running
totals for /stats that count every call, not only the recent ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from callbridge.call.observer import CallObserver, CallOutcome, Observers
from callbridge.call.session import CallSession
from callbridge.core.call_info import CallInfo
from callbridge.core.ending import EndCause, EndReason, Outcome
from callbridge.core.histogram import Histogram

log = logging.getLogger(__name__)


@dataclass
class CallTotals:
    calls: int = 0
    frames_in: int = 0
    chunks_out: int = 0
    bytes_out: int = 0
    barge_ins: int = 0
    replies: int = 0
    lateness: Histogram = field(default_factory=Histogram)  # pacing lateness, every chunk

    def add(self, session: CallSession) -> None:
        stats = session.stats
        self.calls += 1
        self.frames_in += stats.frames_in
        self.chunks_out += stats.chunks_out
        self.bytes_out += stats.bytes_out
        self.barge_ins += stats.barge_ins
        self.replies += stats.replies
        self.lateness.merge(stats.lateness)

    def lateness_summary(self) -> dict[str, float]:
        return self.lateness.summary()


def record_rejected(observers: list[CallObserver], info: CallInfo, reason: str) -> None:
    """Tell the observers (records, live console, metrics) about a call turned away."""
    fan_out = Observers(observers)
    fan_out.call_started(info)
    fan_out.call_ended(info.call_id, CallOutcome(Outcome.REJECTED, reason, line=info.line))


class CallRegistry:
    def __init__(self, max_calls: int) -> None:
        self.max_calls = max_calls
        self.calls: dict[str, CallSession] = {}
        self.totals = CallTotals()
        self.draining = False  # the service is stopping: no new calls
        self._empty = asyncio.Event()

    def full(self) -> bool:
        """No room for another call (at the cap, or draining)."""
        return self.draining or len(self.calls) >= self.max_calls

    async def wait_empty(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for every call to be gone; whether they are."""
        if self.calls:
            self._empty.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), timeout_s)
        return not self.calls

    async def drain(self, timeout_s: float) -> int:
        """Stop taking calls, tell each caller and end each call once that has been heard;
        calls still there after `timeout_s` are ended at once. Returns how many were ended
        that way (0 when every call finished in time)."""
        self.draining = True
        sessions = list(self.calls.values())
        log.warning("draining: telling %d call(s) the service is stopping", len(sessions))
        for session in sessions:
            session.drain()
        await self.wait_empty(timeout_s)
        late = list(self.calls.values())
        for session in late:
            await session.end(EndReason(EndCause.SHUTDOWN, "ended by shutdown"), hang_up=True)
        return len(late)

    def add(self, session: CallSession) -> None:
        self.calls[session.call_id] = session
        session.on_closed.append(self._closed)

    def _closed(self, session: CallSession) -> None:
        # Only this session: a call handed away may have come back as a new one.
        if self.calls.get(session.call_id) is session:
            del self.calls[session.call_id]
        self.totals.add(session)
        if not self.calls:
            self._empty.set()
