"""Whisper tiny.en through faster-whisper/CTranslate2, fed with Piper speech."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest
import soxr

from callbridge.agent.local import models
from callbridge.agent.local.stt import (
    SttModelNotFound,
    SttOptions,
    WhisperStt,
    _repeats_at_end,
    bundled_model_path,
    resolve_model_path,
)
from tests.local_models.audio import SR, samples, silence, speech16k, to_pcm

ORDER = "Please check the status of order one two three four five."
NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}


def digits_and_words(text: str) -> tuple[str, list[str]]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    spelled = "".join(NUMBER_WORDS.get(w, w) for w in words)
    return "".join(ch for ch in spelled if ch.isdigit()), words


def phone_band(pcm: bytes) -> bytes:
    """Through an 8 kHz phone line and back to 16 kHz."""
    narrow = soxr.resample(samples(pcm).astype(np.float32), SR, 8000)
    return to_pcm(soxr.resample(narrow, 8000, SR))


def assert_order_text(text: str) -> None:
    digits, words = digits_and_words(text)
    assert "order" in words, text
    assert "status" in words, text
    assert "12345" in digits, text


def test_transcribes_the_order_request(stt: WhisperStt) -> None:
    result = stt.transcribe(silence(200) + speech16k(ORDER) + silence(300))
    assert_order_text(result.text)
    assert result.rejected is None
    assert result.raw_text == result.text
    assert result.avg_logprob > -0.8 and 0.4 < result.confidence <= 1.0
    assert result.no_speech_prob < 0.5
    assert 3000 < result.duration_ms < 5000
    assert result.elapsed_ms > 0


def test_transcribes_a_different_voice_over_a_phone_line(stt: WhisperStt) -> None:
    caller = speech16k(ORDER, length_scale=0.9, pitch=1.2)
    assert caller != speech16k(ORDER)
    assert_order_text(stt.transcribe(phone_band(silence(200) + caller + silence(300))).text)


def test_a_short_answer(stt: WhisperStt) -> None:
    result = stt.transcribe(silence(200) + speech16k("Yes.") + silence(300))
    assert "yes" in result.text.lower()


@pytest.mark.parametrize("kind", ["silence", "noise", "click"])
def test_no_speech_gives_empty_text(stt: WhisperStt, kind: str) -> None:
    rng = np.random.default_rng(3)
    if kind == "silence":
        pcm = silence(1500)
    elif kind == "noise":
        pcm = to_pcm(rng.normal(0, 0.05, SR * 2) * 32767)
    else:
        burst = rng.normal(0, 0.5, 640) * 32767
        pcm = silence(500) + to_pcm(burst) + silence(500)
    result = stt.transcribe(pcm)
    assert result.text == ""
    assert result.rejected in {"no_words", "no_speech", "low_confidence", "repetitive"}


def test_empty_audio(stt: WhisperStt) -> None:
    result = stt.transcribe(b"")
    assert result.text == "" and result.rejected == "empty_audio" and result.duration_ms == 0
    assert stt.transcribe(b"\x01").rejected == "empty_audio"  # half a sample


def test_audio_longer_than_whisper_window(stt: WhisperStt) -> None:
    part = speech16k(ORDER) + silence(1000)
    pcm = part * (31 * SR * 2 // len(part) + 1)
    result = stt.transcribe(pcm)
    assert result.duration_ms > 30_000
    assert result.text.lower().count("order") >= 5


def test_standard_30s_window_gives_the_same_words() -> None:
    full = WhisperStt(options=SttOptions(fast_window_s=30.0))
    assert_order_text(full.transcribe(silence(200) + speech16k(ORDER) + silence(300)).text)


async def test_transcribe_async_runs_off_the_event_loop(stt: WhisperStt) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        result = await stt.transcribe_async(speech16k(ORDER), models.speech_executor())
        default = await stt.transcribe_async(speech16k("Yes."))  # default executor
    finally:
        task.cancel()
    assert_order_text(result.text)
    assert "yes" in default.text.lower()
    assert ticks >= 5  # the loop kept running while Whisper worked


def test_repetition_detector() -> None:
    assert _repeats_at_end([5, 7, 5, 7, 5, 7])  # 2-token block x3
    assert _repeats_at_end([1, 2, 3, 4, 1, 2, 3, 4])  # 4-token block x2
    assert _repeats_at_end([9, 9, 9])
    assert not _repeats_at_end([9, 9])  # "no no" is plausible
    assert not _repeats_at_end([5, 7, 5, 7])
    assert not _repeats_at_end([1, 2, 3, 4, 5, 6])
    assert not _repeats_at_end([])


def test_model_resolution(tmp_path: Path) -> None:
    assert resolve_model_path(None) == bundled_model_path()
    assert resolve_model_path("tiny.en") == bundled_model_path()
    assert resolve_model_path(str(bundled_model_path())) == bundled_model_path()
    with pytest.raises(SttModelNotFound, match="not available offline"):
        resolve_model_path("large-v3")  # a real name, not on this machine: no download
    with pytest.raises(SttModelNotFound, match="not available offline"):
        resolve_model_path("no-such-model")
    with pytest.raises(SttModelNotFound, match="does not exist"):
        resolve_model_path(tmp_path / "missing")
    with pytest.raises(SttModelNotFound, match=r"no model\.bin"):
        resolve_model_path(tmp_path)
