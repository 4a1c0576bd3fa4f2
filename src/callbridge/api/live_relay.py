"""The live console across replicas (docs/scale-out.md): each replica puts the events of the
calls it holds into the service's live feed (a capped Redis Stream) and reads the other
replicas' events from it into its LiveHub, so the console of any replica shows every call.

The feed is a view, not a record (the records are written by each call's holder): an
event that cannot be published waits and is retried while Redis is away, and dropped only
when this replica's outbox is full. A replica that starts learns of the calls already in
progress from the call directory, and a mirrored call the directory no longer has (its
holder died and the call ended meanwhile) is taken off the console.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from callbridge.api.live import LiveHub
from callbridge.cancelling import cancel_and_wait
from callbridge.shared import SharedState, SharedStateError

log = logging.getLogger(__name__)

READ_BLOCK_MS = 500  # how long the reader blocks in Redis (and a stop may wait for it)
PRUNE_S = 5.0  # how often mirrored calls are checked against the directory
OUTBOX_MAX = 5000  # events waiting to be published (a Redis outage of ~a minute of calls)
RETRY_S = 0.5
STOP_S = 2.0  # the feed's tasks, cancelled at a stop
_EVENTS = frozenset({"call_started", "transcript", "tool", "call_moved", "call_ended"})
_LIVE_STATES = frozenset({"answering", "answered", "media", "reattach"})


class LiveRelay:
    def __init__(self, hub: LiveHub, shared: SharedState) -> None:
        self._hub = hub
        self._shared = shared
        self._outbox: asyncio.Queue[str] = asyncio.Queue(OUTBOX_MAX)
        self._tasks: list[asyncio.Task[None]] = []
        self._missing: set[str] = set()  # mirrored calls not in the directory at the last check
        self.dropped = 0

    def start(self) -> None:
        self._hub.replica_id = self._shared.replica_id
        self._hub.outbox = self._post
        self._tasks = [
            asyncio.create_task(self._send(), name="live-feed-send"),
            asyncio.create_task(self._read(), name="live-feed-read"),
        ]

    async def stop(self, flush_s: float = 2.0) -> None:
        """After the calls have ended: publish what is left (briefly), then stop."""
        self._hub.outbox = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._outbox.join(), flush_s)
        await cancel_and_wait(self._tasks, STOP_S)

    # --- this replica's calls, out -------------------------------------------------------
    def _post(self, name: str, data: dict[str, Any]) -> None:
        payload = json.dumps({"r": self._shared.replica_id, "n": name, "d": data})
        try:
            self._outbox.put_nowait(payload)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("live feed: %d event(s) dropped, Redis is away", self.dropped)

    async def _send(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < 200:
                batch.append(self._outbox.get_nowait())
            while True:  # in order: the same batch until Redis takes it
                try:
                    await self._shared.publish_live(batch)
                    break
                except SharedStateError as exc:
                    log.debug("live feed not published, retrying: %s", exc)
                    await asyncio.sleep(RETRY_S)
            for _ in batch:
                self._outbox.task_done()

    # --- the other replicas' calls, in ---------------------------------------------------
    async def _read(self) -> None:
        after: str | None = None
        next_prune = time.monotonic() + PRUNE_S
        while True:
            try:
                if after is None:
                    after = await self._shared.live_position()
                    await self._learn_calls_in_progress()
                for entry_id, payload in await self._shared.read_live(after, READ_BLOCK_MS):
                    after = entry_id
                    self._apply(payload)
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_S
                    await self._prune()
            except SharedStateError as exc:
                # The feed keeps its latest entries: carry on from the last one read.
                log.debug("live feed unreadable: %s", exc)
                await asyncio.sleep(RETRY_S)

    def _apply(self, payload: str) -> None:
        try:
            event = json.loads(payload)
            replica, name, data = str(event["r"]), str(event["n"]), event["d"]
            if replica == self._shared.replica_id or name not in _EVENTS:
                return
            self._hub.remote(replica, name, dict(data))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("live feed: unreadable event skipped (%s)", exc)

    async def _learn_calls_in_progress(self) -> None:
        me = self._shared.replica_id
        for call_id in await self._shared.call_ids():
            entry = await self._shared.get_call(call_id)
            if not entry or entry.get("owner") in (None, me):
                continue
            if entry.get("state") not in _LIVE_STATES:
                continue
            try:
                started = float(entry.get("started", ""))
            except ValueError:
                started = time.time()
            who = (entry.get("caller", ""), entry.get("callee", ""), entry.get("line", ""))
            lines = await self._shared.lines(call_id)
            self._hub.mirror(call_id, entry.get("owner", ""), (*who, started), lines)

    async def _prune(self) -> None:
        """A mirrored call the directory has not had twice running is over (its holder died
        or its end was lost); twice, because a call just started elsewhere is announced a
        moment before its directory entry is written."""
        missing: set[str] = set()
        for call_id in self._hub.mirrored():
            entry = await self._shared.get_call(call_id)
            if entry is None or entry.get("state") == "ended":
                missing.add(call_id)
        for call_id in missing & self._missing:
            self._hub.forget(call_id, "ended")
        self._missing = missing - self._missing
