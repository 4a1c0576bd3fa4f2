"""What the emulated caller does: the ``CallScript`` and loading its audio."""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import soxr

from .network import NetworkConditions

DEFAULT_TAIL_S = 2.0  # place_call: hang up 2 s after the conversation went quiet


@dataclass
class CallScript:
    """One emulated PSTN call.

    Times in ``dtmf``/``raw_frames``/``hangup_after_s`` are seconds since media start.
    With ``hangup_after_s=None`` the caller hangs up once their own audio has ended and
    nothing audible has played from the agent for ``tail_s`` seconds (so they wait for the
    agent to finish talking); ``tail_s=None`` means never — wait for the service to hang
    up. ``tail_s="auto"`` (the default) is 2 s for ``place_call`` and ``None`` for
    ``start_call``: a live call is driven by its scenario and never hangs up by itself
    unless ``hangup_after_s`` / ``max_duration_s`` say so. ``max_duration_s`` caps the
    call either way (ended_by "timeout").

    ``hangup_when_agent_hangs_up=False`` keeps the caller on the line when the service
    leaves with ``hang_up(is_for_everyone=False)`` (DELETE): the service gets its
    ``CallDisconnected`` and its media socket closes, but the caller's leg goes on
    (hearing silence) until the caller hangs up or ``max_duration_s``. ``terminate``
    (``is_for_everyone=True``) always ends the call.
    """

    audio: bytes | str | Path = b""  # PCM16 mono at ``audio_rate``, or a WAV path
    audio_rate: int = 16000
    start_delay_s: float = 0.5
    dtmf: list[tuple[float, str]] = field(default_factory=list)
    raw_frames: list[tuple[float, str]] = field(default_factory=list)
    hangup_after_s: float | None = None
    tail_s: float | Literal["auto"] | None = "auto"
    hangup_when_agent_hangs_up: bool = True
    max_duration_s: float = 60.0
    from_number: str = "+14255550123"
    to_number: str | None = None  # default: the emulator's ACS number
    caller_display_name: str = ""
    custom_context: dict[str, dict[str, str]] = field(default_factory=dict)
    duplicate_delivery: bool = False
    # With duplicate_delivery: the second delivery goes to this webhook (another replica)
    # at the same moment as the first, as Event Grid's retry through a balancer may.
    duplicate_webhook: str | None = None
    record_path: str | None = None
    answer_timeout_s: float | None = None  # default: the emulator's answer_timeout_s
    network: NetworkConditions | None = None  # delay, jitter, stalls, drops of the media socket

    def effective_tail_s(self, live: bool) -> float | None:
        if self.tail_s == "auto":
            return None if live else DEFAULT_TAIL_S
        return self.tail_s


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
    return load_pcm(script.audio, script.audio_rate, call_rate)


def load_pcm(source: bytes | str | Path, rate: int, call_rate: int) -> np.ndarray:
    """PCM16 mono bytes at ``rate`` or a 16-bit WAV, as int16 samples at ``call_rate``
    (blocking: run in a thread)."""
    if isinstance(source, bytes | bytearray):
        pcm = pcm_from_bytes(bytes(source))
    else:
        pcm, rate = _read_wav(Path(source))
    return pcm_at_rate(pcm, rate, call_rate)


def pcm_from_bytes(raw: bytes) -> np.ndarray:
    """PCM16 little-endian bytes as int16 samples (a trailing odd byte is dropped)."""
    return np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2")


def pcm_at_rate(pcm: np.ndarray, rate: int, call_rate: int) -> np.ndarray:
    """int16 samples resampled from ``rate`` to ``call_rate`` (blocking for long audio)."""
    if rate != call_rate and pcm.size:
        out = soxr.resample(pcm.astype(np.float32) / 32768.0, rate, call_rate)
        pcm = np.clip(np.round(out * 32768.0), -32768, 32767).astype("<i2")
    return pcm.astype("<i2", copy=False)
