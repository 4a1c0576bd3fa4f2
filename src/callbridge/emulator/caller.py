"""The caller's live state, shared by the call clock and ``LiveCaller``.

Everything here is driven by the call's single 20 ms clock task: the clock *pulls* the
caller's next frame from :class:`CallerSpeechQueue`, fires due :class:`TimedEvents` and, after
each tick, re-checks the few :class:`TickWaiters` a scenario is blocked on. Nothing polls
on its own timer, so a live call costs the same one task as a scripted one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .playout import FRAME_S, SILENCE_PEAK


class CallEndedError(Exception):
    """The call ended (either side, or the emulator stopped) while a caller was waiting."""


@dataclass(frozen=True)
class SaidSpan:
    """Where an utterance landed on the media timeline (seconds since media start)."""

    start_s: float  # its first frame was sent in the tick starting here
    end_s: float  # end of its last frame
    speech_end_s: float  # end of its last non-silent frame (start_s if it was all silence)


class Utterance:
    """Queued caller audio (whole 20 ms frames), sent one frame per tick."""

    __slots__ = (
        "_start_tick",
        "data",
        "frame_bytes",
        "future",
        "last_audible",
        "live",
        "n_frames",
        "pos",
    )

    def __init__(
        self,
        data: bytes,
        frame_bytes: int,
        last_audible: int | None,
        live: bool,
        future: asyncio.Future[SaidSpan] | None,
    ) -> None:
        self.data = data
        self.frame_bytes = frame_bytes
        self.n_frames = len(data) // frame_bytes
        self.last_audible = last_audible  # index of the last non-silent frame
        self.live = live  # said during the call (vs. the script's audio)
        self.future = future
        self.pos = 0
        self._start_tick = 0

    @property
    def finished(self) -> bool:
        return self.pos >= self.n_frames

    def next_frame(self, tick: int) -> bytes:
        if self.pos == 0:
            self._start_tick = tick
        i = self.pos * self.frame_bytes
        self.pos += 1
        return self.data[i : i + self.frame_bytes]

    def sent(self) -> None:
        """The last frame went out: resolve ``say()`` with the span it covered."""
        if self.future is None or self.future.done():
            return
        start = self._start_tick
        speech = start + (self.last_audible + 1 if self.last_audible is not None else 0)
        self.future.set_result(
            SaidSpan(
                round(start * FRAME_S, 3),
                round((start + self.n_frames) * FRAME_S, 3),
                round(speech * FRAME_S, 3),
            )
        )


class CallerSpeechQueue:
    """The caller's outgoing audio as a queue the clock pulls 20 ms frames from.

    An empty queue means the caller is quiet: the clock then sends a silent frame, so
    frames keep flowing at 50/s whatever the caller does, as ACS media streaming does.
    """

    def __init__(self, frame_bytes: int) -> None:
        self.frame_bytes = frame_bytes
        self._queue: deque[Utterance] = deque()
        self._sending: Utterance | None = None  # its last frame was pulled, not yet sent
        self._closed: BaseException | None = None

    @property
    def empty(self) -> bool:
        return not self._queue

    def make(self, pcm: np.ndarray, *, live: bool, want_future: bool) -> Utterance | None:
        """An utterance of int16 samples at the call rate, zero-padded to whole frames."""
        per = self.frame_bytes // 2
        n = -(-pcm.size // per)
        if n == 0:
            return None
        frames = np.zeros(n * per, dtype="<i2")
        frames[: pcm.size] = pcm
        # Which frames are audible is decided once here (vectorised), not per tick.
        peaks = np.abs(frames.reshape(n, per).astype(np.int32)).max(axis=1)
        audible = np.flatnonzero(peaks > SILENCE_PEAK)
        future: asyncio.Future[SaidSpan] | None = None
        if want_future:
            future = asyncio.get_running_loop().create_future()
            if self._closed is not None:
                future.set_exception(self._closed)
        last = int(audible[-1]) if audible.size else None
        return Utterance(frames.tobytes(), self.frame_bytes, last, live, future)

    def append(self, utterance: Utterance) -> None:
        if self._closed is None:
            self._queue.append(utterance)

    def prepend(self, utterance: Utterance) -> None:
        if self._closed is None:
            self._queue.appendleft(utterance)

    def pull(self, tick: int) -> tuple[bytes, Utterance] | None:
        """The frame to send at ``tick`` and the utterance it belongs to (None: silence)."""
        if not self._queue:
            return None
        utt = self._queue[0]
        frame = utt.next_frame(tick)
        if utt.finished:
            self._sending = self._queue.popleft()
        return frame, utt

    def frame_sent(self) -> None:
        """The pulled frame went out; completes its utterance if that was the last one."""
        utt, self._sending = self._sending, None
        if utt is not None:
            utt.sent()

    def close(self, exc: BaseException) -> None:
        self._closed = exc
        pending = [*self._queue, *([self._sending] if self._sending else [])]
        self._queue.clear()
        self._sending = None
        for utt in pending:
            if utt.future is not None and not utt.future.done():
                utt.future.set_exception(exc)


@dataclass(order=True)
class TimedEvent:
    t: float  # seconds since media start
    seq: int  # keeps insertion order among events due at the same time
    kind: str = field(compare=False)  # "dtmf" | "raw"
    payload: str = field(compare=False)
    # resolved with the send time
    future: asyncio.Future[float] | None = field(default=None, compare=False)


class TimedEvents:
    """Scripted and ``press()``-ed DTMF / raw frames, fired by the clock when due."""

    def __init__(self) -> None:
        self._heap: list[TimedEvent] = []
        self._firing: list[TimedEvent] = []  # handed to the clock by due(), being sent
        self._seq = itertools.count()
        self._closed: BaseException | None = None

    def add(self, t: float, kind: str, payload: str, *, want_future: bool = False) -> TimedEvent:
        event = TimedEvent(t, next(self._seq), kind, payload)
        if want_future:
            event.future = asyncio.get_running_loop().create_future()
        if self._closed is not None:
            if event.future is not None:
                event.future.set_exception(self._closed)
            return event
        heapq.heappush(self._heap, event)
        return event

    def due(self, now_s: float) -> list[TimedEvent]:
        self._firing = []
        while self._heap and self._heap[0].t <= now_s + 1e-9:
            self._firing.append(heapq.heappop(self._heap))
        return self._firing

    def close(self, exc: BaseException) -> None:
        self._closed = exc
        for event in [*self._heap, *self._firing]:
            if event.future is not None and not event.future.done():
                event.future.set_exception(exc)
        self._heap.clear()
        self._firing = []


class TickWaiters:
    """Futures resolved by the clock on the first tick their condition holds."""

    def __init__(self) -> None:
        self._items: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._closed: BaseException | None = None

    def add(self, condition: Callable[[], bool]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._closed is not None:
            fut.set_exception(self._closed)
        elif condition():
            fut.set_result(None)
        else:
            self._items.append((condition, fut))
        return fut

    def check(self) -> None:
        if not self._items:
            return
        keep: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        for condition, fut in self._items:
            if fut.done():  # the waiter timed out or was cancelled
                continue
            if condition():
                fut.set_result(None)
            else:
                keep.append((condition, fut))
        self._items = keep

    def close(self, exc: BaseException) -> None:
        self._closed = exc
        for _, fut in self._items:
            if not fut.done():
                fut.set_exception(exc)
        self._items.clear()
