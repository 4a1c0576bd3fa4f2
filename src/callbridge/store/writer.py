"""RecordWriter: the call observer that records calls, without ever waiting on the database.

Observer callbacks run on the event loop in the middle of a call, so they only put a small
frozen write on a queue; one background task takes what has accumulated and applies it in
one transaction. Nothing is dropped when the database is slow or down: transient failures
(locks, lost connections) are retried with backoff while the queue grows; only a write
the database rejects outright (a constraint, bad data) is logged whole and skipped, so it
cannot block the writes behind it. At shutdown everything queued is written; if the
database is unreachable then, the rest is spilled to a JSON-lines file and replayed at the
next start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from callbridge.call.observer import CallOutcome
from callbridge.core.call_info import CallInfo
from callbridge.core.tools import ToolRun
from callbridge.store.base import CallStore
from callbridge.store.records import (
    CallEnded,
    CallStarted,
    EventAdded,
    LatencyAdded,
    ToolRan,
    TranscriptAdded,
    Write,
    from_json,
    to_json,
)

log = logging.getLogger(__name__)

Redactor = Callable[[str], str]
JsonRedactor = Callable[[dict[str, Any]], dict[str, Any]]
CommitListener = Callable[[Sequence[Write]], None]


def json_safe(value: dict[str, Any]) -> dict[str, Any]:
    """A detached, JSON-serialisable copy (the caller may mutate its dict later)."""
    out = json.loads(json.dumps(value, default=str))
    return out if isinstance(out, dict) else {}


def _first_line(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0]


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the database is busy, restarting or unreachable, not refusing the data."""
    if isinstance(exc, sa.exc.DBAPIError):
        return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or bool(
            exc.connection_invalidated
        )
    return isinstance(exc, OSError | TimeoutError | sa.exc.DisconnectionError)


class RecordWriter:
    """A CallObserver that writes each call's record through `store` in the background."""

    def __init__(
        self,
        store: CallStore,
        *,
        profile: str = "",
        spill_path: Path | None = None,
        batch_max: int = 500,
        retry_max_s: float = 5.0,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._profile = profile
        self._spill_path = spill_path
        self._batch_max = batch_max
        self._retry_max_s = retry_max_s
        self._on_error = on_error
        self._queue: asyncio.Queue[Write] = asyncio.Queue()
        self._inflight: list[Write] = []
        self._task: asyncio.Task[None] | None = None
        self._replay_left = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._listeners: list[CommitListener] = []
        # Calls whose end was seen (bounded): a transcript line that arrives after the end
        # (the agent's last words while hanging up) is redacted on the way in, because
        # the post-call redaction may already have run.
        self._ended: OrderedDict[str, None] = OrderedDict()
        self.redact_text: Redactor | None = None
        self.redact_json: JsonRedactor | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        replayed = await asyncio.to_thread(self._take_spill)
        for write in replayed:
            self._queue.put_nowait(write)
        # Once as many writes as are queued now are committed, the replayed ones are in.
        self._replay_left = self._queue.qsize() if replayed else 0
        if replayed:
            log.warning("replaying %d record writes spilled at the last stop", len(replayed))
        self._task = asyncio.create_task(self._run(), name="record-writer")

    async def flush(self) -> None:
        """Wait until everything queued so far is in the database."""
        await self._queue.join()

    async def close(self, timeout_s: float = 10.0) -> None:
        """Write everything queued (within `timeout_s`), then stop; spill what is left."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            log.error("the records database did not take the last writes within %g s", timeout_s)
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
        left = list(self._inflight)
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
            self._queue.task_done()
        self._inflight = []
        if left:
            await asyncio.to_thread(self._spill, left)
        # Replayed writes not yet written are in `left`, now in the spill file again.
        await asyncio.to_thread(self._replaying_path().unlink, missing_ok=True)

    def add_listener(self, listener: CommitListener) -> None:
        """Called (on the loop) with every batch once it is committed."""
        self._listeners.append(listener)

    def put(self, write: Write) -> None:
        """Queue a write; safe from any thread, never blocks."""
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self._queue.put_nowait, write)
        else:
            self._queue.put_nowait(write)

    # --- CallObserver ----------------------------------------------------------------------
    def call_started(self, info: CallInfo) -> None:
        self.put(
            CallStarted(
                info.call_id,
                info.caller,
                info.callee,
                info.line or self._profile,
                info.correlation_id,
                time.time(),
            )
        )

    def transcript(self, call_id: str, role: str, text: str, at: float) -> None:
        if call_id in self._ended and self.redact_text is not None:
            text = self.redact_text(text)
        self.put(TranscriptAdded(call_id, role, text, at))

    def tool_ran(self, call_id: str, run: ToolRun) -> None:
        arguments, output = json_safe(run.arguments), run.output
        if call_id in self._ended and self.redact_text and self.redact_json:
            arguments, output = self.redact_json(arguments), self.redact_text(output)
        at = time.time() - run.duration_ms / 1000  # when it started, for the timeline
        self.put(ToolRan(call_id, run.name, arguments, output, run.ok, run.duration_ms, at))

    def event(self, call_id: str, name: str, detail: dict[str, Any]) -> None:
        self.put(EventAdded(call_id, name, json_safe(detail), time.time()))

    def turn_latency(self, call_id: str, timings: dict[str, Any]) -> None:
        self.put(LatencyAdded(call_id, json_safe(timings), time.time()))

    def call_ended(self, call_id: str, outcome: CallOutcome) -> None:
        self._ended[call_id] = None
        while len(self._ended) > 10_000:
            self._ended.popitem(last=False)
        self.put(
            CallEnded(
                call_id,
                outcome.outcome,
                outcome.reason,
                outcome.ended_at,
                outcome.transferred_to,
                outcome.recording_path,
                outcome.line,
            )
        )

    # --- the background task ---------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._inflight = batch
            await self._write(batch)
            self._inflight = []
            if self._replay_left > 0:
                self._replay_left -= len(batch)
                if self._replay_left <= 0:
                    await asyncio.to_thread(self._replaying_path().unlink, missing_ok=True)
            for _ in batch:
                self._queue.task_done()
            for listener in self._listeners:
                try:
                    listener(batch)
                except Exception:
                    log.exception("record listener failed")

    async def _write(self, batch: list[Write]) -> None:
        delay = 0.1
        while True:
            try:
                await self._store.write(batch)
                return
            except Exception as exc:
                self._on_error()
                if is_transient(exc):
                    log.warning(
                        "records database unavailable (%s); retrying in %.1f s",
                        _first_line(exc),
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._retry_max_s)
                    continue
                if len(batch) > 1:
                    # Find the write the database refuses; keep all the others.
                    for write in batch:
                        await self._write([write])
                    return
                log.error(
                    "the records database refused a write, skipped: %r (%s)",
                    batch[0],
                    _first_line(exc),
                )
                return

    # --- the spill file --------------------------------------------------------------------
    def _spill(self, writes: list[Write]) -> None:
        lines = [json.dumps(d) for d in map(to_json, writes) if d is not None]
        if not lines:
            return
        if self._spill_path is None:
            log.error("%d record writes could not be saved (no spill file set)", len(lines))
            return
        path = self._spill_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            log.warning(
                "%d record writes kept in %s for the next start", len(lines), self._spill_path
            )
        except OSError as exc:
            log.error(
                "%d record writes lost: cannot write %s: %s", len(lines), self._spill_path, exc
            )

    def _replaying_path(self) -> Path:
        path = self._spill_path or Path("unwritten-records.jsonl")
        return path.with_name(path.name + ".replaying")

    def _take_spill(self) -> list[Write]:
        """The spilled writes, moved aside to `.replaying` until they are written (a crash
        while replaying replays them again rather than losing them)."""
        if self._spill_path is None:
            return []
        replaying = self._replaying_path()
        lines: list[str] = []
        for path in (replaying, self._spill_path):
            if path.exists():
                lines += path.read_text(encoding="utf-8").splitlines()
        if not lines:
            return []
        replaying.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._spill_path.unlink(missing_ok=True)
        writes: list[Write] = []
        for line in lines:
            try:
                writes.append(from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("unreadable line in %s skipped: %s", replaying, exc)
        return writes
