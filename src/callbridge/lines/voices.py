"""A line's own voice (the profile's Piper voice): for menu prompts, for custom-voice
realtime replies and for the apology when a model is gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from callbridge.call.line import Speak
from callbridge.profile import Profile

if TYPE_CHECKING:
    from callbridge.agent.local.tts import PiperTts


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


def line_speaker(profile: Profile) -> Speak:
    """What the service says itself (menu prompts, apologies) in the line's own voice,
    synthesised off the event loop. Fixed phrases are kept: the second time they play from
    memory (the switchboard says them once at start)."""
    voice = LazyPiper(profile)
    said: dict[tuple[str, int], bytes] = {}

    async def speak(text: str, rate: int) -> bytes:
        from callbridge.agent.local.models import voice_executor

        pcm = said.get((text, rate))
        if pcm is None:
            pcm = b"".join([pcm async for pcm in voice.stream(text, rate, voice_executor())])
            if len(said) < _KEEP_PHRASES:
                said[(text, rate)] = pcm
        return pcm

    return speak


_KEEP_PHRASES = 64
