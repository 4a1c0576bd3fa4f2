"""The session configuration a fake keeps, per dialect.

Voice Live takes the beta-style flat fields (``modalities``, ``turn_detection``,
``input_audio_transcription``, ...); OpenAI GA nests them under ``audio.input`` /
``audio.output`` and requires ``type: "realtime"``. Each dialect refuses the other's
fields. ``session.update`` changes only the fields present; nested objects merge.
"""

from __future__ import annotations

from typing import Any

from callbridge.testing.fake_realtime.wire import Dialect

BETA_ONLY = (
    "modalities",
    "input_audio_format",
    "output_audio_format",
    "voice",
    "turn_detection",
    "input_audio_transcription",
    "temperature",
)
GA_ONLY = ("type", "audio", "output_modalities", "max_output_tokens")


def default_config(dialect: Dialect, model: str) -> dict[str, Any]:
    if dialect == "ga":
        pcm = {"type": "audio/pcm", "rate": 24000}
        return {
            "type": "realtime",
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "",
            "audio": {
                "input": {
                    "format": pcm,
                    "turn_detection": {"type": "server_vad"},
                    "transcription": None,
                    "noise_reduction": None,
                },
                "output": {"format": pcm, "voice": "marin"},
            },
            "tools": [],
            "tool_choice": "auto",
        }
    return {
        "model": model,
        "modalities": ["text", "audio"],
        "instructions": "",
        "voice": {"type": "openai", "name": "alloy"},
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "turn_detection": {"type": "server_vad"},
        "tools": [],
        "tool_choice": "auto",
    }


def other_dialect_fields(dialect: Dialect, session: dict[str, Any]) -> list[str]:
    """Fields of a session.update that only the other dialect has."""
    return [k for k in (BETA_ONLY if dialect == "ga" else GA_ONLY) if k in session]


def merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    """Only the fields present change; nested objects merge (turn_detection is replaced)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and key != "turn_detection":
            merge(into[key], value)
        else:
            into[key] = value


def turn_detection(dialect: Dialect, config: dict[str, Any]) -> dict[str, Any] | None:
    if dialect == "ga":
        audio_in = (config.get("audio") or {}).get("input") or {}
        turn = audio_in.get("turn_detection", {"type": "server_vad"})
    else:
        turn = config.get("turn_detection", {"type": "server_vad"})
    return turn if isinstance(turn, dict) else None


def transcription(dialect: Dialect, config: dict[str, Any]) -> dict[str, Any] | None:
    if dialect == "ga":
        value = ((config.get("audio") or {}).get("input") or {}).get("transcription")
    else:
        value = config.get("input_audio_transcription")
    return value if isinstance(value, dict) else None


def text_only(dialect: Dialect, config: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether a response (``response.create`` params over the session) has no audio."""
    if dialect == "ga":
        modalities = params.get("output_modalities") or config.get("output_modalities")
        return bool(modalities == ["text"])
    modalities = params.get("modalities") or config.get("modalities") or []
    return "audio" not in modalities
