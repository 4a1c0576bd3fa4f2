"""Speaking with callbridge's own voice inside a realtime session, one sentence at a time.

Used for custom-voice replies (the model writes, we speak), for the tool filler in that mode,
and for the apology when the model has gone. Sentences queue up and are spoken in order;
a barge-in clears the queue and cuts the sentence being spoken (`cut`), returning what was
still to say so the agent can tell the model what the caller did not hear.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from callbridge.agent.realtime.ledger import ItemState
from callbridge.agent.realtime.speech import Speaker

log = logging.getLogger(__name__)


@dataclass(eq=False)
class SpeechJob:
    text: str
    item: ItemState | None  # the model's text item it speaks (None: our own words)
    finish: str | None = None  # after this job: the response of this id is fully spoken
    spoken: asyncio.Future[None] | None = field(default=None, repr=False)


class LocalVoice:
    def __init__(
        self,
        speaker: Speaker,
        executor: Executor,
        rate: int,
        *,
        on_audio: Callable[[bytes, ItemState | None, str], None],
        on_sentence: Callable[[SpeechJob], None],
    ) -> None:
        self._speaker = speaker
        self._executor = executor
        self._rate = rate
        self._on_audio = on_audio  # (pcm, item, the sentence it starts or "")
        self._on_sentence = on_sentence  # a job is over (spoken, or only a finish marker)
        self._jobs: asyncio.Queue[SpeechJob] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._current: SpeechJob | None = None

    def say(self, job: SpeechJob) -> None:
        self._jobs.put_nowait(job)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    @property
    def busy(self) -> bool:
        return self._current is not None or not self._jobs.empty()

    def cut(self) -> list[SpeechJob]:
        """Stop speaking now; returns the cut job (if any) and the unspoken ones."""
        dropped: list[SpeechJob] = []
        if self._current is not None:
            dropped.append(self._current)
            self._current = None
        while not self._jobs.empty():
            dropped.append(self._jobs.get_nowait())
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for job in dropped:
            if job.spoken is not None and not job.spoken.done():
                job.spoken.set_result(None)
        return dropped

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        while not self._jobs.empty():
            job = self._jobs.get_nowait()
            self._current = job
            try:
                if job.text:
                    spoken: list[Any] | None = None
                    if job.item is not None:
                        spoken = [job.text, 0.0]
                        job.item.spoken.append(spoken)
                    stream = self._speaker.stream(job.text, self._rate, self._executor)
                    mark = job.text  # the first piece of a sentence carries its words
                    async for pcm in stream:
                        self._on_audio(pcm, job.item, mark)
                        mark = ""
                        if spoken is not None:
                            spoken[1] = float(spoken[1]) + len(pcm) / (self._rate * 2 / 1000)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("speaking %r failed", job.text[:60])
            self._current = None
            self._on_sentence(job)
            if job.spoken is not None and not job.spoken.done():
                job.spoken.set_result(None)
