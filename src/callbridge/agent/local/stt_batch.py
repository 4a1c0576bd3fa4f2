"""Transcriptions of several calls in batches, on every Whisper replica (more calls per core).

Calls that stop talking at the same moment all need Whisper at once. Rather than queue
them one by one, `SttBatcher` runs one drainer per CTranslate2 replica (`lanes`, the
model's ``num_workers``): a lone call is transcribed at once; a second one that stops while
the first is being transcribed goes at once on the other replica; the calls that arrive
while every replica is busy go together, split between the replicas as they free
(`WhisperStt.transcribe_many`). On this 2-core machine a batch costs about what its
transcriptions cost one by one (~120 ms each for tiny.en), so the replicas are what cut the
wait: six callers who stop together wait ~460 ms for the last words instead of ~880
(docs/turn-taking.md). A transcription cancelled before its batch starts is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any, Final, Protocol

log = logging.getLogger(__name__)

MAX_BATCH: Final = 6


class ManyStt(Protocol):
    def transcribe(self, pcm16k: bytes) -> Any: ...

    def transcribe_many(
        self, utterances: Sequence[bytes], prompts: Sequence[str] | None = None
    ) -> Sequence[Any]: ...


_Item = tuple[bytes, "asyncio.Future[Any]", asyncio.AbstractEventLoop, str]


class SttBatcher:
    def __init__(self, stt: ManyStt, max_batch: int = MAX_BATCH, lanes: int | None = None) -> None:
        self.stt = stt
        self._max = max_batch
        # Replicas that can transcribe at the same time; more drainers would only queue.
        options = getattr(stt, "options", None)
        self._lanes = max(1, lanes or getattr(options, "num_workers", 1))
        self._queue: list[_Item] = []
        self._lock = threading.Lock()
        self._active = 0  # drainers running
        self.batches: list[int] = []  # sizes of the last batches (for the benchmark)

    supports_prompts = True  # `transcribe_async(..., prompt=)` (stt.NUMBERS_PROMPT...)

    @property
    def busy(self) -> bool:
        """Every replica is transcribing: a transcription asked for now would queue."""
        return self._active >= self._lanes

    async def transcribe_async(self, pcm16k: bytes, executor: Executor, prompt: str = "") -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._queue.append((pcm16k, future, loop, prompt))
            start = self._active < self._lanes
            self._active += start
        if start:
            try:
                loop.run_in_executor(executor, self._drain)
            except RuntimeError:  # the executor is shut down: no drainer, no lane taken
                with self._lock:
                    self._active -= 1
                    self._queue = [item for item in self._queue if item[1] is not future]
                raise
        return await future

    def _drain(self) -> None:
        while True:
            with self._lock:
                # A fair share of what waits, so the other replica takes the rest.
                share = min(self._max, -(-len(self._queue) // self._lanes))
                batch, self._queue = self._queue[:share], self._queue[share:]
                if not batch:
                    self._active -= 1
                    return
            # Nothing may end this loop but an empty queue: a drainer that died would
            # leave its replica counted busy and the calls behind it waiting for ever.
            try:
                self._run(batch)
            except BaseException:
                log.exception("a transcription batch failed")

    def _run(self, batch: list[_Item]) -> None:
        live = [item for item in batch if not item[1].cancelled()]
        if not live:
            return
        self.batches = [*self.batches[-99:], len(live)]
        pcms, prompts = [item[0] for item in live], [item[3] for item in live]
        try:
            # (Without prompts the plain call: stand-ins in tests take no prompts.)
            if any(prompts):
                results = list(self.stt.transcribe_many(pcms, prompts))
            else:
                results = list(self.stt.transcribe_many(pcms))
            if len(results) != len(live):
                raise RuntimeError(f"{len(results)} transcriptions for {len(live)} utterances")
        except Exception as exc:  # every caller of this batch gets the error
            for _, future, loop, _ in live:
                _post(loop, future, None, exc)
            return
        for (_, future, loop, _), result in zip(live, results, strict=True):
            _post(loop, future, result, None)


def _post(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    """Hand a result to its caller's event loop; one that has closed has no caller left."""
    try:
        loop.call_soon_threadsafe(_settle, future, result, error)
    except RuntimeError:  # "Event loop is closed"
        pass


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


_batchers: dict[int, SttBatcher] = {}
_lock = threading.Lock()


def batched(stt: Any) -> Any:
    """The process's batcher for this Whisper model (one per model), or `stt` itself if it
    cannot transcribe in batches (fakes in tests)."""
    if not hasattr(stt, "transcribe_many"):
        return stt
    with _lock:
        batcher = _batchers.get(id(stt))
        if batcher is None or batcher.stt is not stt:
            batcher = _batchers[id(stt)] = SttBatcher(stt)
    return batcher
