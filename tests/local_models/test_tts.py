"""Piper (joe, 22.05 kHz): blocking synthesis, sentence streaming, options."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from callbridge.agent.local import models
from callbridge.agent.local.tts import PiperTts, TtsOptions, TtsVoiceNotFound, resolve_voice_path
from tests.local_models.audio import samples

T = TypeVar("T")
THREE = "Good morning, this is the order desk. Your order has shipped. Anything else?"


def seconds(pcm: bytes, rate: int) -> float:
    return len(pcm) / 2 / rate


def rms(pcm: bytes) -> float:
    return float(np.sqrt(np.mean(samples(pcm).astype(np.float64) ** 2)))


class CountingExecutor(ThreadPoolExecutor):
    """Counts the jobs submitted to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_synthesize_has_plausible_duration(tts: PiperTts) -> None:
    assert tts.sample_rate == 22050
    pcm = tts.synthesize("Hello there, how are you today?")
    assert len(pcm) % 2 == 0
    assert 1.0 < seconds(pcm, tts.sample_rate) < 3.5  # six words
    assert rms(pcm) > 1000  # not silence (Piper normalises each sentence to full scale)


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "...", "?!"])
async def test_empty_text_gives_no_audio(tts: PiperTts, text: str) -> None:
    assert tts.synthesize(text) == b""
    assert [c async for c in tts.stream(text, 24000)] == []


async def test_stream_yields_each_sentence_resampled(tts: PiperTts) -> None:
    native = list(tts.sentences(THREE))
    assert len(native) == 3
    for rate in (24000, 16000):
        chunks = [c async for c in tts.stream(THREE, rate)]
        assert len(chunks) == 3
        for got, ref in zip(chunks, native, strict=True):
            expected = len(ref) / 2 * rate / tts.sample_rate
            assert abs(len(got) / 2 - expected) <= 2  # deterministic voice: same audio
            assert rms(got) > 500


async def test_first_sentence_comes_before_the_rest_is_made(tts: PiperTts) -> None:
    executor = CountingExecutor()
    try:
        stream = tts.stream(THREE, 24000, executor)
        started = time.perf_counter()
        first = await anext(stream)
        first_s = time.perf_counter() - started
        # Only the first sentence had been handed to the executor when it was yielded.
        assert executor.submitted == 1
        assert first
        rest = [c async for c in stream]
        total_s = time.perf_counter() - started
        assert len(rest) == 2
        assert executor.submitted == 4  # 3 sentences + the final "no more"
        assert first_s < total_s
    finally:
        executor.shutdown()


async def test_stopping_early_stops_synthesis(tts: PiperTts) -> None:
    executor = CountingExecutor()
    try:
        stream = tts.stream(THREE, 16000, executor)
        async for _ in stream:
            break
        await stream.aclose()
        assert executor.submitted == 1
    finally:
        executor.shutdown()


async def test_stream_runs_off_the_event_loop(tts: PiperTts) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        chunks = [c async for c in tts.stream(THREE, 24000)]  # default: speech executor
    finally:
        task.cancel()
    assert len(chunks) == 3
    assert ticks >= 5


def test_length_scale_and_pitch(tts: PiperTts) -> None:
    text = "Please hold while I look that up."
    base = tts.synthesize(text)
    slow = tts.with_options(length_scale=1.5).synthesize(text)
    ratio = len(slow) / len(base)
    assert 1.2 < ratio < 1.7  # not exactly 1.5: pauses and edges do not all stretch

    caller = tts.with_options(pitch=1.25)
    high = caller.synthesize(text)
    assert 0.8 < len(high) / len(base) < 1.15  # pitch roughly keeps the duration
    assert high != base

    def zero_crossings(pcm: bytes) -> float:
        x = samples(pcm).astype(np.int32)
        loud = np.abs(x) > 1000
        return float(np.mean(np.diff(np.sign(x))[loud[1:]] != 0))

    assert zero_crossings(high) > zero_crossings(base)


def test_with_options_shares_the_loaded_voice(tts: PiperTts) -> None:
    other = tts.with_options(TtsOptions(length_scale=0.9))
    assert other.voice is tts.voice
    assert other.options.length_scale == 0.9 and tts.options.length_scale is None
    assert models.get_tts().voice is tts.voice
    with pytest.raises(ValueError):
        tts.with_options(pitch=0)
    with pytest.raises(ValueError, match="no speaker"):
        tts.with_options(speaker="alice")


def test_voice_path_errors(tmp_path: Path) -> None:
    with pytest.raises(TtsVoiceNotFound):
        resolve_voice_path(tmp_path / "missing.onnx")
    model = tmp_path / "voice.onnx"
    model.write_bytes(b"")
    with pytest.raises(TtsVoiceNotFound, match=r"\.json"):
        resolve_voice_path(model)
    assert resolve_voice_path(None).name == "en_US-joe-medium.onnx"
