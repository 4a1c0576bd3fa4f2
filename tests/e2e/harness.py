"""Audio helpers for the end-to-end tests (the stack itself is callbridge.devstack)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from callbridge.devstack import Stack, running_stack

SAMPLES = Path(__file__).resolve().parents[2] / "samples"

__all__ = ["Stack", "hello_pcm16k", "rms", "running_stack", "silence16k", "speech_end_s"]


def hello_pcm16k() -> bytes:
    """A spoken sentence (4.35 s, 16 kHz mono) shipped with the repo."""
    with wave.open(str(SAMPLES / "hello.wav"), "rb") as wf:
        return wf.readframes(wf.getnframes())


def silence16k(seconds: float) -> bytes:
    return bytes(int(16000 * seconds) * 2)


def speech_end_s(pcm: bytes, rate: int = 16000) -> float:
    """Where the last loud 20 ms frame of `pcm` ends."""
    frame = rate // 50
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    loud = [
        i
        for i in range(0, x.size - frame + 1, frame)
        if np.sqrt(np.mean(x[i : i + frame] ** 2)) > 500
    ]
    return (loud[-1] + frame) / rate if loud else 0.0


def rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0
