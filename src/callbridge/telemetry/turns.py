"""Where the time of one agent turn went, as intervals on the wall clock.

Agents report a turn's timings as durations (ms) once the call is over (the local agent's
`TurnTimings`: stt_ms, brain_first_ms, tts_first_ms, first_audio_ms; see
agent/local/setup.py), not as timestamps. The turn is placed on the wall clock by the
caller's transcript, which the bridge records (epoch time) as soon as STT has produced it:
the caller's turn ended `stt_ms` before that. The parts then follow one another from there:
STT, the brain up to its first sentence, TTS up to that sentence's first audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NS_PER_MS = 1_000_000

# The parts of a turn, in order, and the timing key each one's length is under. `model_ms`
# is for a realtime agent that keeps per-turn timings (none does yet: docs/telemetry.md).
PARTS: tuple[tuple[str, str], ...] = (
    ("stt", "stt_ms"),
    ("brain", "brain_first_ms"),
    ("tts", "tts_first_ms"),
    ("model", "model_ms"),
)
_V2V_KEYS = ("first_audio_ms", "voice_to_voice_ms", "voice_to_voice")


def ms(timings: dict[str, Any], key: str) -> float:
    value = timings.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return 0.0


def voice_to_voice_ms(timings: dict[str, Any]) -> float:
    """The caller's turn end to the agent's first audio, or 0 if not reported."""
    for key in _V2V_KEYS:
        if value := ms(timings, key):
            return value
    return 0.0


@dataclass(frozen=True)
class Interval:
    name: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class Turn:
    start_ns: int  # the caller's turn ended
    end_ns: int  # the agent's first audio (or the end of the last part)
    parts: list[Interval]
    attributes: dict[str, str | int | float | bool] = field(default_factory=dict)


def timed_turn(timings: dict[str, Any], turn_end_ns: int) -> Turn:
    """The turn and its parts, from the turn's end on the caller's side."""
    parts: list[Interval] = []
    at = turn_end_ns
    for name, key in PARTS:
        length = round(ms(timings, key) * NS_PER_MS)
        if length:
            parts.append(Interval(name, at, at + length))
            at += length
    v2v = voice_to_voice_ms(timings)
    end = max(at, turn_end_ns + round(v2v * NS_PER_MS))
    attributes: dict[str, str | int | float | bool] = {}
    if v2v:
        attributes["callbridge.turn.voice_to_voice_ms"] = round(v2v, 1)
    if isinstance(how := timings.get("end_of_turn"), str) and how:
        attributes["callbridge.turn.end_of_turn"] = how
    if isinstance(p := timings.get("turn_probability"), float):
        attributes["callbridge.turn.probability"] = round(p, 3)
    if timings.get("stt_speculative") is True:
        attributes["callbridge.turn.stt_speculative"] = True
    return Turn(turn_end_ns, end, parts, attributes)


class CallerWords:
    """The caller's transcripts of one call (text, epoch ns), taken in order by the turns
    whose STT produced them."""

    def __init__(self) -> None:
        self._said: list[tuple[str, int]] = []
        self._next = 0

    def add(self, text: str, at_ns: int) -> None:
        self._said.append((text, at_ns))

    def take(self, text: str) -> int | None:
        """When the caller's transcript `text` was recorded (the next one not yet taken
        with that text), or None."""
        if not text:
            return None
        for i in range(self._next, len(self._said)):
            said, at_ns = self._said[i]
            if said == text:
                self._next = i + 1
                return at_ns
        return None
