"""What a LocalAgent is built from — the speech models it drives, its turn-taking settings,
what a call's profile gives it — and the timings it records of each turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

from callbridge.agent.local.brain.base import Brain
from callbridge.core.call_info import CallInfo


class SpeechToText(Protocol):
    async def transcribe_async(self, pcm16k: bytes, executor: Executor) -> Any: ...


class TextToSpeech(Protocol):
    def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class TurnSettings:
    end_silence_ms: int = 400
    pause_ms: int = 200
    barge_in_min_ms: int = 120
    digit_timeout_s: float = 2.5
    tool_filler_after_s: float = 1.5
    tool_filler: str = "One moment please."


@dataclass(frozen=True)
class CallSetup:
    """What a call's profile gives the agent when it starts."""

    brain: Callable[[CallInfo], Brain]
    turn: TurnSettings
    notices: dict[str, str]
    tts: TextToSpeech


@dataclass
class TurnTimings:
    """Where the time of one turn went (ms), for the latency benchmark and the store."""

    speech_end_ms: int = 0  # on the VAD timeline
    stt_ms: float = 0.0
    stt_speculative: bool = False
    brain_first_ms: float = 0.0  # turn end → first sentence from the brain
    tts_first_ms: float = 0.0  # first sentence → its first audio
    first_audio_ms: float = 0.0  # turn end → first audio handed to the bridge
    text: str = ""
