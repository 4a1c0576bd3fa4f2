"""The live socket of one realtime session, and how many times it may be lost.

`Link.serve` runs one session: an outbox drained by a writer task (so every sender —
caller audio, tool outputs, barge-in — is non-blocking and ordering is kept), a reader
that hands each event to the agent under its canonical name, and a close that always
happens. Client events carry ids, because the service's `error.event_id` names the event
that caused an error (the `error` server event of both APIs:
https://platform.openai.com/docs/api-reference/realtime-server-events and
https://learn.microsoft.com/azure/ai-services/speech-service/voice-live-api-reference).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from callbridge.agent.realtime.dialects import Dialect
from callbridge.agent.realtime.transport import Transport, TransportClosed

log = logging.getLogger(__name__)

EventHandler = Callable[[str, dict[str, Any]], None]


class Link:
    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._outbox: asyncio.Queue[dict[str, Any]] | None = None
        self._sent: dict[str, tuple[str, dict[str, Any]]] = {}  # event id -> (type, event)
        self._seq = itertools.count(1)
        self.ready = asyncio.Event()  # a session is set up and taking events

    @property
    def up(self) -> bool:
        return self._outbox is not None

    def send(self, event: dict[str, Any]) -> bool:
        """Queue a client event for the current session; False when there is none."""
        if self._outbox is None:
            return False
        event_id = f"cb_{next(self._seq)}"
        event["event_id"] = event_id
        kind = str(event["type"])
        if kind != "input_audio_buffer.append":  # audio errors need no context
            self._sent[event_id] = (kind, event)
            if len(self._sent) > 500:
                for key in list(self._sent)[:250]:
                    del self._sent[key]
        self._outbox.put_nowait(event)
        return True

    def origin(self, event_id: object) -> tuple[str, dict[str, Any]] | None:
        """The client event an error names (type and event), if it was ours."""
        return self._sent.pop(str(event_id or ""), None)

    async def serve(
        self, transport: Transport, on_open: Callable[[], None], on_event: EventHandler
    ) -> None:
        """Run one session until its socket ends; the transport is closed on the way out."""
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox = outbox
        self._sent.clear()
        writer = asyncio.ensure_future(self._write(transport, outbox))
        reader = asyncio.ensure_future(self._read(transport, on_event))
        try:
            on_open()  # session.update and what follows go first in the outbox
            self.ready.set()
            await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.ready.clear()
            self._outbox = None
            writer.cancel()
            reader.cancel()
            await asyncio.gather(writer, reader, return_exceptions=True)
            with contextlib.suppress(Exception):
                await transport.close()

    async def _write(self, transport: Transport, outbox: asyncio.Queue[dict[str, Any]]) -> None:
        try:
            while True:
                await transport.send(await outbox.get())
        except TransportClosed as exc:
            log.warning("realtime send failed: %s", exc)

    async def _read(self, transport: Transport, on_event: EventHandler) -> None:
        while True:
            try:
                event = await transport.recv()
            except TransportClosed as exc:
                log.warning("realtime socket closed: %s", exc)
                return
            kind = self._dialect.canonical(str(event.get("type")))
            if kind is None:
                log.debug("ignored %s (not a %s event)", event.get("type"), self._dialect.name)
                continue
            try:
                on_event(kind, event)
            except Exception:  # one bad event must not end the call
                log.exception("handling %s failed", kind)


def describe(exc: BaseException) -> str:
    """What failed, never empty: the exception's type, then its message if it has one
    (`TimeoutError()` from a connect timeout, a bare `ConnectionError()` have none)."""
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


class Failures:
    """Lost or refused sessions within a sliding window, and the pause before the next try."""

    def __init__(self, limit: int, window_s: float, delays: tuple[float, ...]) -> None:
        self._limit = limit
        self._window_s = window_s
        self._delays = delays
        self._times: collections.deque[float] = collections.deque()

    def add(self) -> float | None:
        """Count one; the delay before reconnecting, or None when there were too many."""
        now = time.monotonic()
        self._times.append(now)
        while self._times and now - self._times[0] > self._window_s:
            self._times.popleft()
        if len(self._times) >= self._limit:
            return None
        if not self._delays:
            return 0.0
        return self._delays[min(len(self._times) - 1, len(self._delays) - 1)]
