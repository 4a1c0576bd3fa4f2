"""What each realtime service accepts of a profile's `realtime:` section.

The section itself is part of the profile schema (callbridge/profile/realtime.py, re-exported
here for the agent); which keys a *service* accepts is checked when a backend is built,
because the profile does not know the backend.
"""

from __future__ import annotations

from typing import Literal

from callbridge.profile.realtime import (
    AZURE_SEMANTIC,
    InputTranscription,
    RealtimeOptions,
    TurnDetection,
    VoiceOptions,
)

__all__ = [
    "AZURE_SEMANTIC",
    "InputTranscription",
    "RealtimeOptions",
    "TurnDetection",
    "VoiceOptions",
    "check_for_backend",
]


def check_for_backend(options: RealtimeOptions, backend: Literal["voicelive", "openai"]) -> None:
    """What the chosen service cannot do, as one ValueError naming the profile key."""
    problems: list[str] = []
    turn = options.turn_detection
    if backend == "openai":
        if turn.type in AZURE_SEMANTIC:
            problems.append(f"realtime.turn_detection.type {turn.type} is Voice Live only")
        for key in ("speech_duration_ms",):
            if getattr(turn, key) is not None:
                problems.append(f"realtime.turn_detection.{key} is Voice Live only")
        if turn.auto_truncate:
            problems.append("realtime.turn_detection.auto_truncate is Voice Live only")
        if options.echo_cancellation:
            problems.append("realtime.echo_cancellation is Voice Live only")
        if options.noise_suppression == "azure_deep_noise_suppression":
            problems.append("realtime.noise_suppression azure_deep_noise_suppression: Voice Live")
        if options.temperature is not None:
            problems.append("realtime.temperature does not exist in the OpenAI GA protocol")
        kind = options.voice_options().kind
        if kind != "openai" and not options.custom_voice:
            problems.append(f"realtime.voice: an {kind} voice needs Voice Live")
    else:
        if turn.idle_timeout_ms is not None:
            problems.append("realtime.turn_detection.idle_timeout_ms is OpenAI only")
        if turn.speech_duration_ms is not None and turn.type not in AZURE_SEMANTIC:
            # Voice Live documents it for Azure semantic VAD only: it would not be sent.
            problems.append(
                "realtime.turn_detection.speech_duration_ms is for the azure_semantic_vad "
                f"types, not {turn.type}"
            )
    if problems:
        raise ValueError("profile: " + "; ".join(problems))
