"""PostCallAnalyzer: summary, sentiment and PII redaction of each call once it has ended.

It runs when the call's end is committed to the store (and a short delay later, so the
agent's last words, spoken while the call is hanging up, are in the record too). The CPU
work (VADER, the redaction regexes, the extractive summary) runs on a worker thread of its
own, never on the event loop; an LLM summary is an HTTP call awaited on the loop. The
result goes back through the RecordWriter like any other write. Calls that ended while
the service was stopping are analysed at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from callbridge.analytics.pii import redact, redact_json_text, redact_object
from callbridge.analytics.sentiment import Sentiment, call_sentiment
from callbridge.analytics.summary import Summarizer, Turn, extractive_summary
from callbridge.store.base import CallStore
from callbridge.store.records import AnalyticsSaved, CallDetailRow, CallEnded, Write
from callbridge.store.writer import RecordWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OfflineAnalysis:
    """What needs no network: computed on the analytics thread."""

    sentiment: Sentiment
    summary: str  # extractive, from the redacted text when redaction is on
    turns: list[Turn]  # what a summarizer may see (redacted when redaction is on)
    transcript_texts: dict[int, str] = field(default_factory=dict)  # changed rows only
    tool_texts: dict[int, tuple[dict[str, Any], str]] = field(default_factory=dict)


def analyze_offline(detail: CallDetailRow, redaction: bool) -> OfflineAnalysis:
    original = [(t.role, t.text) for t in detail.transcript]
    transcript_texts: dict[int, str] = {}
    tool_texts: dict[int, tuple[dict[str, Any], str]] = {}
    turns = original
    if redaction:
        turns = []
        for t in detail.transcript:
            text = redact(t.text)
            turns.append((t.role, text))
            if text != t.text:
                transcript_texts[t.row_id] = text
        for tool in detail.tools:
            arguments, output = redact_object(tool.arguments), redact_json_text(tool.output)
            if (arguments, output) != (tool.arguments, tool.output):
                tool_texts[tool.row_id] = (arguments, output)
    call = detail.call
    return OfflineAnalysis(
        sentiment=call_sentiment(original),
        summary=extractive_summary(turns, call.outcome, call.reason),
        turns=turns,
        transcript_texts=transcript_texts,
        tool_texts=tool_texts,
    )


class PostCallAnalyzer:
    def __init__(
        self,
        store: CallStore,
        writer: RecordWriter,
        *,
        redaction: bool = False,
        summarizer: Summarizer | None = None,
        delay_s: float = 2.0,
        concurrency: int = 2,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._writer = writer
        self.redaction = redaction
        self._summarizer = summarizer
        self.delay_s = delay_s
        self._on_error = on_error
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analytics")
        self._slots = asyncio.Semaphore(concurrency)  # LLM requests in flight at most
        self._hurry = asyncio.Event()  # set at shutdown: skip the waits
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        writer.add_listener(self._committed)

    async def start(self) -> None:
        """Analyse the calls that ended (or were cut) while the service was not running."""
        for call_id in await self._store.unanalyzed_calls():
            self.schedule(call_id, delay_s=0.0)

    def schedule(self, call_id: str, delay_s: float | None = None) -> None:
        if self._closing or call_id in self._jobs:
            return
        delay = self.delay_s if delay_s is None else delay_s
        task = asyncio.create_task(self._job(call_id, delay), name=f"analytics:{call_id}")
        self._jobs[call_id] = task
        task.add_done_callback(lambda _: self._jobs.pop(call_id, None))

    async def drain(self) -> None:
        """Wait for every analysis scheduled so far to finish (tests, benchmarks)."""
        while self._jobs:
            await asyncio.gather(*self._jobs.values(), return_exceptions=True)

    async def close(self, grace_s: float = 5.0) -> None:
        """Run what is pending now (within `grace_s`); the rest waits for the next start."""
        self._closing = True
        self._hurry.set()
        jobs = list(self._jobs.values())
        if jobs:
            _, late = await asyncio.wait(jobs, timeout=grace_s)
            for task in late:
                task.cancel()
            if late:
                log.warning("%d call analyses left for the next start", len(late))
                await asyncio.gather(*late, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
        close = getattr(self._summarizer, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()

    def _committed(self, batch: Sequence[Write]) -> None:
        for write in batch:
            if isinstance(write, CallEnded):
                self.schedule(write.call_id)

    async def _job(self, call_id: str, delay_s: float) -> None:
        if delay_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), delay_s)
        async with self._slots:
            try:
                await self.analyze(call_id)
            except Exception:
                self._on_error()
                log.exception("analysis of call %s failed", call_id)

    async def analyze(self, call_id: str) -> AnalyticsSaved | None:
        """Analyse one call and queue the result; None when the call is unknown."""
        detail = await self._store.get_call(call_id)
        if detail is None:
            return None
        loop = asyncio.get_running_loop()
        offline = await loop.run_in_executor(
            self._executor, analyze_offline, detail, self.redaction
        )
        summary, source = offline.summary, "extractive"
        if self._summarizer is not None and offline.turns:
            try:
                summary = await self._summarizer.summarize(
                    offline.turns, detail.call.outcome, detail.call.reason
                )
                source = "llm"
            except Exception as exc:
                self._on_error()
                log.warning("LLM summary failed, keeping the extractive one: %s", exc)
        saved = AnalyticsSaved(
            call_id=call_id,
            summary=summary,
            summary_source=source,
            sentiment_compound=offline.sentiment.compound,
            sentiment_label=offline.sentiment.label,
            redacted=self.redaction,
            analyzed_at=time.time(),
            transcript_texts=offline.transcript_texts,
            tool_texts=offline.tool_texts,
        )
        self._writer.put(saved)
        return saved
