"""A line's own voice (the profile's Piper voice): for menu prompts, for custom-voice
realtime replies and for the apology when a model is gone."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from callbridge.call.line import Speak
from callbridge.core.child import failure, start_module
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
        with tempfile.TemporaryDirectory(prefix="callbridge-phrases-") as folder:
            request = {
                "voice_path": voice.voice_path,
                "length_scale": voice.length_scale,
                "texts": texts,
                "rate": rate,
                "folder": folder,
            }
            await _run_phrase_maker(request)
            # Read straight into the bytes kept: an answer through a pipe would be a
            # second copy as large, freed but kept by malloc (~0.9 MB a replica).
            for i, text in enumerate(texts):
                self._keep(text, rate, (Path(folder) / f"{i}.pcm").read_bytes())


# Loading the voice and saying a few phrases takes a second or two; a child that has not
# finished in this long is stuck.
PHRASE_MAKER_TIMEOUT_S = 120.0


async def _run_phrase_maker(request: dict[str, Any]) -> None:
    """`python -m callbridge.lines.phrase_maker` (a fresh interpreter: the models load there
    and go with it); raises with its reason if it fails or gives no answer in time."""
    proc = await start_module("callbridge.lines.phrase_maker", stdin=True)
    try:
        _, err = await asyncio.wait_for(
            proc.communicate(json.dumps(request).encode()), PHRASE_MAKER_TIMEOUT_S
        )
    except BaseException as exc:  # stuck, or the service is stopping: the child goes too
        if proc.returncode is None:
            proc.kill()
            await asyncio.shield(proc.wait())
        if isinstance(exc, TimeoutError):
            raise RuntimeError(
                f"the phrase maker gave no answer in {PHRASE_MAKER_TIMEOUT_S:.0f} s"
            ) from None
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"the phrase maker failed: {failure(err, proc.returncode)}")


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
