"""Audio helpers for the speech-model tests: deterministic Piper speech at 16 kHz, silence."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from callbridge.agent.local import models
from callbridge.agent.local.tts import TtsOptions

SR = 16_000

# Piper adds random noise to phoneme durations and to the waveform; with both scales at 0 its
# output is deterministic, which keeps the VAD/STT assertions stable.
DETERMINISTIC = TtsOptions(noise_scale=0.0, noise_w_scale=0.0)


@functools.lru_cache(maxsize=32)
def speech16k(text: str, length_scale: float | None = None, pitch: float = 1.0) -> bytes:
    """Deterministic Piper speech of ``text`` at 16 kHz (cached across tests)."""
    voice = models.get_tts().with_options(DETERMINISTIC, length_scale=length_scale, pitch=pitch)
    return b"".join(voice.sentences(text, SR))


def silence(ms: int) -> bytes:
    return bytes(SR * ms // 1000 * 2)


def samples(pcm: bytes) -> npt.NDArray[np.int16]:
    return np.frombuffer(pcm, dtype="<i2")


def to_pcm(x: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> bytes:
    return np.clip(np.asarray(x, dtype=np.float64), -32768, 32767).astype("<i2").tobytes()


def voiced_span_ms(pcm: bytes, floor: float = 300.0) -> tuple[int, int]:
    """Start of the first and end of the last 10 ms frame with mean |amplitude| > ``floor``."""
    x = np.abs(samples(pcm).astype(np.float32))
    frames = x[: len(x) // 160 * 160].reshape(-1, 160).mean(axis=1)
    loud = np.nonzero(frames > floor)[0]
    return int(loud[0]) * 10, int(loud[-1] + 1) * 10
