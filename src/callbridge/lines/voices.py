"""A line's own voice (the profile's Piper voice): for menu prompts, for custom-voice
realtime replies and for the apology when a model is gone."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from callbridge.call.line import Speak
from callbridge.profile import Profile

if TYPE_CHECKING:
    from callbridge.agent.local.tts import PiperTts

T = TypeVar("T")


def profile_voice(profile: Profile) -> PiperTts:
    """The profile's Piper voice, loaded once per process and voice file (blocking)."""
    from callbridge.agent.local.models import get_tts

    tts = get_tts(profile.voice.voice_path)
    if profile.voice.length_scale != 1.0:
        tts = tts.with_options(length_scale=profile.voice.length_scale)
    return tts


class LazyPiper:
    """The profile's Piper voice as a `Speaker`, loaded off the event loop on first need."""

    def __init__(self, profile: Profile) -> None:
        self._profile = profile
        self._tts: PiperTts | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> PiperTts:
        async with self._lock:
            if self._tts is None:
                self._tts = await asyncio.to_thread(profile_voice, self._profile)
        return self._tts

    async def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]:
        tts = self._tts or await self.load()
        async for pcm in tts.stream(text, out_rate, executor):
            yield pcm


class LineVoice:
    """What the service says itself (menu prompts, apologies) in the line's own voice: a
    `Speak`. Fixed phrases are kept, so the second time they play from memory; `prepare`
    says them once at start, in a child process when nothing else here needs the voice, so
    a realtime line that never apologises never holds Piper and onnxruntime in memory."""

    def __init__(self, profile: Profile) -> None:
        self._profile = profile
        self._voice = LazyPiper(profile)
        self._said: dict[tuple[str, int], bytes] = {}

    async def __call__(self, text: str, rate: int) -> bytes:
        pcm = self._said.get((text, rate))
        if pcm is None:
            from callbridge.agent.local.models import voice_executor

            executor = voice_executor()
            pcm = b"".join([pcm async for pcm in self._voice.stream(text, rate, executor)])
            self._keep(text, rate, pcm)
        return pcm

    def _keep(self, text: str, rate: int, pcm: bytes) -> None:
        if len(self._said) < _KEEP_PHRASES:
            self._said[(text, rate)] = pcm

    async def prepare(self, texts: list[str], rate: int, *, in_child: bool) -> None:
        """Say `texts` once now, so they play from memory; raises what synthesis raised."""
        texts = [t for t in dict.fromkeys(texts) if (t, rate) not in self._said]
        if not texts:
            return
        if not in_child:
            for text in texts:
                await self(text, rate)
            return
        voice = self._profile.voice
        loop = asyncio.get_running_loop()
        # A fresh interpreter (spawn): the models load there and go with it.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            said = await loop.run_in_executor(
                pool, _say_all, voice.voice_path, voice.length_scale, texts, rate
            )
        for text, pcm in zip(texts, said, strict=True):
            self._keep(text, rate, pcm)


def _say_all(
    voice_path: str | None, length_scale: float, texts: list[str], rate: int
) -> list[bytes]:
    """In a child process: each text in the voice, as 16-bit mono PCM at `rate`."""
    from callbridge.agent.local.models import get_tts

    tts = get_tts(voice_path)
    if length_scale != 1.0:
        tts = tts.with_options(length_scale=length_scale)
    return [b"".join(tts.sentences(text, rate)) for text in texts]


class _SpeechPool(Executor):
    """The offline models' speech executor, created on first use: a line that never
    synthesises in this process never imports them."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        from callbridge.agent.local.models import speech_executor

        return speech_executor().submit(fn, *args, **kwargs)


SPEECH_POOL: Executor = _SpeechPool()


def line_speaker(profile: Profile) -> Speak:
    return LineVoice(profile)


_KEEP_PHRASES = 64
