"""RecordWriter: the call observer that records calls, without ever waiting on the database.

Observer callbacks run on the event loop in the middle of a call, so they only put a small
frozen write on a queue. A journal thread of the writer's own appends each write to the
journal (store/journal.py: JSON lines on local disk, handed to the OS at once, fsync'd at
most every `sync_interval_s`) and only then queues it for the database; one background
task takes what has accumulated and applies it in one transaction, and the journal forgets
writes once they are committed. So a crash (even SIGKILL) while the database is down loses
nothing the observers reported: the next start replays what the journal holds (`recover`,
then `CallStore.open(replay=...)`; every write is idempotent). A journal that cannot be
written (disk full) is logged and the writes go on in memory only.

Nothing is dropped when the database is slow or down: transient failures (locks, lost
connections) are retried with backoff while the queue grows; only a write the database
rejects outright (a constraint, bad data) is logged whole and skipped, so it cannot block
the writes behind it. At shutdown everything queued is written; if the database is
unreachable then, the rest is spilled to a JSON-lines file (and the journal emptied), which
is replayed at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from callbridge.call.observer import CallOutcome
from callbridge.core.call_info import CallInfo
from callbridge.core.tools import ToolRun
from callbridge.store.base import CallStore
from callbridge.store.journal import MAX_BYTES, SEGMENT_BYTES, Journal
from callbridge.store.records import (
    CallEnded,
    CallStarted,
    EventAdded,
    LatencyAdded,
    ToolRan,
    TranscriptAdded,
    Write,
    to_json,
    with_key,
)
from callbridge.store.sql import first_line as _first_line
from callbridge.store.sql import is_transient

log = logging.getLogger(__name__)

Redactor = Callable[[str], str]
JsonRedactor = Callable[[dict[str, Any]], dict[str, Any]]
CommitListener = Callable[[Sequence[Write]], None]


def json_safe(value: dict[str, Any]) -> dict[str, Any]:
    """A detached, JSON-serialisable copy (the caller may mutate its dict later)."""
    out = json.loads(json.dumps(value, default=str))
    return out if isinstance(out, dict) else {}


__all__ = ["CommitListener", "RecordWriter", "is_transient", "json_safe"]

_Entry = tuple[int, Write]  # a write and its sequence number in this run


@dataclass(frozen=True, slots=True)
class _Mark:
    """Put behind writes: resolved once every write before it is journaled and queued."""

    future: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class _Committed:
    seq: int  # every write up to this one is in the database


_STOP = object()


class RecordWriter:
    """A CallObserver that writes each call's record through `store` in the background.

    `journal_dir` (default: beside `spill_path`, `<spill>.journal`) is where writes wait on
    disk for the database; without either, writes wait in memory only."""

    def __init__(
        self,
        store: CallStore,
        *,
        profile: str = "",
        spill_path: Path | None = None,
        journal_dir: Path | None = None,
        batch_max: int = 500,
        retry_max_s: float = 5.0,
        sync_interval_s: float = 0.05,
        journal_max_bytes: int = MAX_BYTES,
        journal_segment_bytes: int = SEGMENT_BYTES,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._profile = profile
        self._spill_path = spill_path
        self._batch_max = batch_max
        self._retry_max_s = retry_max_s
        self._sync_interval_s = sync_interval_s
        self._on_error = on_error
        if journal_dir is None and spill_path is not None:
            journal_dir = spill_path.with_suffix(".journal")
        self.journal = (
            Journal(journal_dir, segment_bytes=journal_segment_bytes, max_bytes=journal_max_bytes)
            if journal_dir is not None
            else None
        )
        # put() -> the journal thread (writes, flush marks, commit marks) -> the queue.
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._queue: asyncio.Queue[_Entry] = asyncio.Queue()
        self._inflight: list[_Entry] = []
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._recovered: list[Write] | None = None
        self._stopped = False
        self._epoch = secrets.token_hex(8)  # write keys: "<epoch>:<sequence number>"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[CommitListener] = []
        # Calls whose end was seen (bounded): a transcript line that arrives after the end
        # (the agent's last words while hanging up) is redacted on the way in, because
        # the post-call redaction may already have run.
        self._ended: OrderedDict[str, None] = OrderedDict()
        self.redact_text: Redactor | None = None
        self.redact_json: JsonRedactor | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def recover(self) -> list[Write]:
        """The writes an earlier run left unwritten (its journal, a spill file), oldest
        first; read once, before `start`. Hand them to `CallStore.open(replay=...)`, then
        call `start(recovered_written=True)`; or let `start` queue them."""
        if self._recovered is None:
            self._recovered = await asyncio.to_thread(self._recover)
        return self._recovered

    async def start(self, *, recovered_written: bool = False) -> None:
        """Start journaling and writing. The recovered writes (`recover`) are forgotten when
        `recovered_written` (the store has applied them), else written first."""
        self._loop = asyncio.get_running_loop()
        recovered = await self.recover()
        if recovered and not recovered_written:
            log.warning("replaying %d record writes an earlier run left", len(recovered))
        self._thread = threading.Thread(
            target=self._journal_main,
            args=(recovered, recovered_written),
            name="record-journal",
            daemon=True,
        )
        self._thread.start()
        self._task = asyncio.create_task(self._run(), name="record-writer")

    async def journaled(self) -> None:
        """Wait until every write put so far is in the journal (handed to the OS; in
        memory only if the journal cannot be written) and queued for the database."""
        if self._thread is None or not self._thread.is_alive() or self._loop is None:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        self._inbox.put(_Mark(future))
        await future

    async def flush(self) -> None:
        """Wait until everything put so far is in the database."""
        await self.journaled()
        await self._queue.join()

    async def close(self, timeout_s: float = 10.0) -> None:
        """Write everything queued (within `timeout_s`), then stop; spill what is left
        (it also stays in the journal, should the spill file fail)."""
        if self._task is None:
            if not self._stopped and self.journal is not None:
                # Recovered but never started (the store did not open): keep every file.
                await asyncio.to_thread(self.journal.close, discard=False)
            self._stopped = True
            return
        try:
            await asyncio.wait_for(self.flush(), timeout_s)
        except TimeoutError:
            log.error("the records database did not take the last writes within %g s", timeout_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._stopped = True
        self._inbox.put(_STOP)
        if self._thread is not None:
            # Its last hand-overs run on the loop before this await returns.
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        left = list(self._inflight)
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
            self._queue.task_done()
        self._inflight = []
        spilled = await asyncio.to_thread(self._spill, [w for _, w in left]) if left else True
        if self.journal is not None:
            await asyncio.to_thread(self.journal.close, discard=spilled)

    def add_listener(self, listener: CommitListener) -> None:
        """Called (on the loop) with every batch once it is committed."""
        self._listeners.append(listener)

    def put(self, write: Write) -> None:
        """Queue a write; safe from any thread, never blocks (the journal thread takes it)."""
        if self._stopped:
            log.warning("record write after the writer stopped, dropped: %r", write)
            return
        self._inbox.put(write)

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

    # --- the journal thread ------------------------------------------------------------------
    def _journal_main(self, recovered: list[Write], recovered_written: bool) -> None:
        journal = self.journal
        seq = 0
        try:
            if journal is not None:
                if recovered_written:
                    journal.drop_recovered()
                else:
                    journal.adopt_recovered(len(recovered))
        except Exception:
            log.exception("the records journal failed")
        if recovered and not recovered_written:
            seq = len(recovered)
            self._hand_over(list(enumerate(recovered, 1)))
        last_sync = time.monotonic()
        dirty = False
        while True:
            timeout = None
            if dirty:
                timeout = max(0.0, last_sync + self._sync_interval_s - time.monotonic())
            items: list[object] = []
            with contextlib.suppress(queue.Empty):
                items.append(self._inbox.get(timeout=timeout))
                while len(items) < self._batch_max:
                    items.append(self._inbox.get_nowait())
            stop = False
            group: list[_Entry] = []
            for item in items:
                if isinstance(item, _Mark | _Committed) or item is _STOP:
                    if group:
                        dirty |= self._journal_group(group)
                        group = []
                    if isinstance(item, _Mark):
                        self._call_soon(_resolve, item.future)
                    elif isinstance(item, _Committed):
                        if journal is not None:
                            self._guarded(journal.committed, item.seq)
                    else:
                        stop = True
                else:
                    seq += 1
                    write = cast(Write, item)
                    try:
                        write = with_key(write, f"{self._epoch}:{seq}")
                    except Exception:  # not a write of ours: the database task says so
                        log.exception("cannot key a record write: %r", write)
                    group.append((seq, write))
            if group:
                dirty |= self._journal_group(group)
            if dirty and (stop or time.monotonic() - last_sync >= self._sync_interval_s):
                if journal is not None:
                    self._guarded(journal.sync)
                last_sync, dirty = time.monotonic(), False
            if stop:
                return

    def _journal_group(self, group: list[_Entry]) -> bool:
        """Append the writes to the journal, then queue them for the database (whatever
        became of the journal). True when they wait for an fsync."""
        journal, appended = self.journal, False
        try:
            if journal is not None and journal.enabled:
                lines = []
                for seq, write in group:
                    data = to_json(write)
                    if data is None:
                        continue  # analytics: computed again if lost
                    try:
                        lines.append((seq, (json.dumps(data, default=str) + "\n").encode()))
                    except ValueError as exc:
                        log.error("record write not journaled (%s): %r", exc, write)
                appended = journal.append(lines) > 0
                if appended and self._sync_interval_s <= 0:
                    journal.sync()
                    appended = False
        except Exception:
            log.exception("the records journal failed")
        finally:
            self._hand_over(group)
        return appended

    def _hand_over(self, entries: list[_Entry]) -> None:
        self._call_soon(self._accept, entries)

    def _accept(self, entries: list[_Entry]) -> None:
        for entry in entries:
            self._queue.put_nowait(entry)

    def _call_soon(self, callback: Callable[[Any], None], arg: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(callback, arg)
        except RuntimeError:  # the loop is closed: the process is ending; the journal has it
            pass

    @staticmethod
    def _guarded(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("the records journal failed")

    # --- the background task ---------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._inflight = batch
            writes = [w for _, w in batch]
            await self._write(writes)
            self._inflight = []
            self._inbox.put(_Committed(batch[-1][0]))
            for _ in batch:
                self._queue.task_done()
            for listener in self._listeners:
                try:
                    listener(writes)
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

    # --- recovery and the spill file -------------------------------------------------------
    def _recover(self) -> list[Write]:
        if self.journal is None:
            return []
        spills: list[Path] = []
        if self._spill_path is not None:
            # `.replaying`: where versions before the journal kept a spill file while they
            # replayed it (older than the spill file itself).
            replaying = self._spill_path.with_name(self._spill_path.name + ".replaying")
            spills = [replaying, self._spill_path]
        return self.journal.recover(spills)

    def _spill(self, writes: list[Write]) -> bool:
        """Keep `writes` in the spill file for the next start; False if they could not be
        (they stay in the journal then)."""
        lines = [json.dumps(d, default=str) for d in map(to_json, writes) if d is not None]
        if not lines:
            return True
        if self._spill_path is None:
            log.error(
                "%d record writes could not be written (no spill file set)%s",
                len(lines),
                "; what the journal holds of them is replayed at the next start"
                if self.journal
                else "",
            )
            return False
        path = self._spill_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
                f.flush()
                os.fsync(f.fileno())
            log.warning("%d record writes kept in %s for the next start", len(lines), path)
            return True
        except OSError as exc:
            log.error(
                "%d record writes could not be spilled to %s (%s)%s",
                len(lines),
                path,
                exc,
                "; what the journal holds of them is replayed at the next start"
                if self.journal
                else ": lost",
            )
            return False


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
