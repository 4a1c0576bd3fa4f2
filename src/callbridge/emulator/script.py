"""What the emulated caller does: the ``CallScript`` and loading its audio."""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr


@dataclass
class CallScript:
    """One emulated PSTN call.

    Times in ``dtmf``/``raw_frames``/``hangup_after_s`` are seconds since media start.
    With ``hangup_after_s=None`` the caller hangs up once their own audio has ended and
    nothing audible has played from the agent for ``tail_s`` seconds (so they wait for the
    agent to finish talking); ``tail_s=None`` means never — wait for the service to hang
    up. ``max_duration_s`` caps the call either way (ended_by "timeout").
    """

    audio: bytes | str | Path = b""  # PCM16 mono at ``audio_rate``, or a WAV path
    audio_rate: int = 16000
    start_delay_s: float = 0.5
    dtmf: list[tuple[float, str]] = field(default_factory=list)
    raw_frames: list[tuple[float, str]] = field(default_factory=list)
    hangup_after_s: float | None = None
    tail_s: float | None = 2.0
    max_duration_s: float = 60.0
    from_number: str = "+14255550123"
    to_number: str | None = None  # default: the emulator's ACS number
    caller_display_name: str = ""
    custom_context: dict[str, dict[str, str]] = field(default_factory=dict)
    duplicate_delivery: bool = False
    record_path: str | None = None
    answer_timeout_s: float | None = None  # default: the emulator's answer_timeout_s


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wf:
        if wf.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        rate = wf.getframerate()
        channels = wf.getnchannels()
        pcm = np.frombuffer(wf.readframes(wf.getnframes()), dtype="<i2")
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype("<i2")
    return pcm, rate


def load_caller_audio(script: CallScript, call_rate: int) -> np.ndarray:
    """Caller audio as int16 samples at the call rate (blocking: run in a thread)."""
    if isinstance(script.audio, bytes | bytearray):
        raw = bytes(script.audio)
        pcm = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2")
        rate = script.audio_rate
    else:
        pcm, rate = _read_wav(Path(script.audio))
    if rate != call_rate and pcm.size:
        out = soxr.resample(pcm.astype(np.float32) / 32768.0, rate, call_rate)
        pcm = np.clip(np.round(out * 32768.0), -32768, 32767).astype("<i2")
    return pcm.astype("<i2", copy=False)
