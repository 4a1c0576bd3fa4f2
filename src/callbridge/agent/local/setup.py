"""What a LocalAgent is built from — the speech models it drives, its turn-taking settings,
what a call's profile gives it — and the timings it records of each turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from callbridge.agent.local.brain.base import Brain
from callbridge.core.call_info import CallInfo

if TYPE_CHECKING:
    from callbridge.profile.schema import TurnSection


class SpeechToText(Protocol):
    async def transcribe_async(self, pcm16k: bytes, executor: Executor) -> Any: ...


class TextToSpeech(Protocol):
    def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class TurnSettings:
    """How the agent takes turns (docs/turn-taking.md). The profile's ``turn:`` section
    sets the first group (`from_section`)."""

    end_silence_ms: int = 400
    """``end_of_turn: silence``: the silence that ends the caller's turn."""
    barge_in_min_ms: int = 120
    """Speech that interrupts the agent (and starts an utterance)."""
    end_of_turn: Literal["smart", "silence"] = "smart"
    """smart: after `check_after_ms` of silence Smart Turn decides from the audio whether
    the caller has finished; silence: `end_silence_ms` of silence ends every turn."""
    check_after_ms: int = 160
    """smart: silence before the end-of-turn model is asked."""
    transcribe_after_ms: int = 96
    """smart: silence before the words so far are transcribed (at most `check_after_ms`):
    Whisper takes longer than the model, so it starts first."""
    max_silence_ms: int = 1500
    """smart: a caller the model thinks has not finished gets this long to go on."""
    recheck_ms: int = 320
    """smart: while the caller stays quiet, the model is asked again this often."""
    complete_threshold: float = 0.5
    """smart: the model's probability of a complete turn at or over which the agent answers."""
    resume_after_noise: bool = True
    """A cough, a noise or an "mm-hm" over the agent (no words) resumes its reply."""
    noise_max_ms: int = 600
    """Speech over the agent longer than this is a real interruption without asking STT."""
    pause_ms: int = 200
    """silence mode: the pause inside an utterance that starts a speculative transcription."""
    digit_timeout_s: float = 2.5
    tool_filler_after_s: float = 1.5
    tool_filler: str = "One moment please."

    @property
    def smart(self) -> bool:
        return self.end_of_turn == "smart"

    @classmethod
    def from_section(cls, section: TurnSection, base: TurnSettings | None = None) -> TurnSettings:
        """The profile's ``turn:`` section, over `base`'s other settings (default: these
        defaults)."""
        return replace(
            base or cls(),
            end_silence_ms=section.end_silence_ms,
            barge_in_min_ms=section.barge_in_min_ms,
            end_of_turn=section.end_of_turn,
            check_after_ms=section.check_after_ms,
            transcribe_after_ms=section.transcribe_after_ms,
            max_silence_ms=section.max_silence_ms,
            recheck_ms=section.recheck_ms,
            complete_threshold=section.complete_threshold,
            resume_after_noise=section.resume_after_noise,
            noise_max_ms=section.noise_max_ms,
        )


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
    end_of_turn: str = ""  # what ended the turn: smart, silence, max_silence
    turn_probability: float | None = None  # Smart Turn's last decision on this utterance
    turn_ms: float = 0.0  # the pause → the decision (model and words, queueing included)
