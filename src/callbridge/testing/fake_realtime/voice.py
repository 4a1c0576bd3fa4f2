"""The fake model's voice: a steady, never-silent, speech-like signal (two harmonics with a
syllable-rate envelope), so a listener hears one continuous segment per reply."""

from __future__ import annotations

import numpy as np

RATE = 24000


def voice_pcm(duration_ms: int, offset_ms: int = 0) -> bytes:
    n = RATE * duration_ms // 1000
    t = (np.arange(n) + RATE * offset_ms // 1000) / RATE
    envelope = 0.55 + 0.45 * np.abs(np.sin(2 * np.pi * 2.0 * t))  # ~4 syllables a second
    wave = np.sin(2 * np.pi * 170 * t) + 0.5 * np.sin(2 * np.pi * 340 * t)
    return (5000 * envelope * wave / 1.5).astype("<i2").tobytes()
