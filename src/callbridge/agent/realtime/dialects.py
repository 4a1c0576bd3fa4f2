"""The two wire dialects: Voice Live's beta-style events and OpenAI Realtime GA.

Everything else in the package speaks one *canonical* vocabulary — the beta event names —
and this module translates at the edge. Names are mapped strictly per dialect: a GA name
arriving on a Voice Live socket is *not* treated as audio (both SDKs accept the wrong
dialect silently, so a lenient mapping would hide a bug). The two vocabularies are the
services' own: https://learn.microsoft.com/azure/ai-services/speech-service/voice-live-api-reference
(Voice Live) and https://platform.openai.com/docs/api-reference/realtime (OpenAI GA).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from callbridge.agent.realtime.options import (
    AZURE_SEMANTIC,
    InputTranscription,
    RealtimeOptions,
    TurnDetection,
    VoiceOptions,
)

MODEL_RATE = 24000  # pcm16 / audio/pcm: 24 kHz mono both ways (docs/realtime.md, "One call")

DialectName = Literal["voicelive", "ga"]

# Canonical (beta) name -> the name each dialect sends it under (the API references above).
_GA_RENAMES = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}
_SHARED = (
    "session.created",
    "session.updated",
    "error",
    "warning",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "input_audio_buffer.cleared",
    "input_audio_buffer.timeout_triggered",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.input_audio_transcription.failed",
    "conversation.item.truncated",
    "conversation.item.deleted",
    "conversation.item.retrieved",
    "response.created",
    "response.done",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.content_part.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "rate_limits.updated",
)


@dataclass(frozen=True)
class SessionConfig:
    """What a session is set up with, before it is spelled in a dialect."""

    instructions: str | None  # None: not sent (Voice Live agent mode)
    options: RealtimeOptions
    tools: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text_only(self) -> bool:
        return self.options.custom_voice


@dataclass(frozen=True)
class Dialect:
    name: DialectName
    incoming: Mapping[str, str]  # wire name -> canonical name
    assistant_text: str  # content type of assistant text: "text" (beta) / "output_text" (GA)

    def canonical(self, wire_type: str) -> str | None:
        """The canonical name of a server event, None for one this dialect does not send."""
        return self.incoming.get(wire_type)

    # --- client events ------------------------------------------------------------------
    def session_update(self, cfg: SessionConfig) -> dict[str, Any]:
        session = _voicelive_session(cfg) if self.name == "voicelive" else _ga_session(cfg)
        return {"type": "session.update", "session": session}

    def user_text(self, text: str) -> dict[str, Any]:
        return {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }

    def assistant_text_item(self, text: str) -> dict[str, Any]:
        return {
            "type": "message",
            "role": "assistant",
            "content": [{"type": self.assistant_text, "text": text}],
        }

    def say_exactly(
        self, text: str, instructions: str | None, lead: str = "Start the call by saying"
    ) -> dict[str, Any]:
        """A response that speaks fixed words (greeting, call notices). Voice Live has
        `pre_generated_assistant_message`; GA has no such thing, so the model is
        told to say them."""
        if self.name == "voicelive":
            return {"pre_generated_assistant_message": self.assistant_text_item(text)}
        return {"instructions": _with(instructions, f'{lead} exactly: "{text}"')}

    def filler(self, text: str, cfg: SessionConfig) -> dict[str, Any]:
        """A short line while a tool runs, kept out of the model's history so its context
        stays clean. Each service says so its own way: OpenAI with an out-of-band response
        (`conversation: "none"`), Voice Live with `commit: false` (its response.create has
        no `conversation`: the azure-ai-voicelive SDK's ResponseCreateParams)."""
        body: dict[str, Any] = {
            "instructions": f'Say exactly: "{text}"',
            "metadata": {"callbridge": "filler"},
        }
        if self.name == "voicelive":
            body["commit"] = False
            body["modalities"] = ["text", "audio"]
        else:
            body["conversation"] = "none"
            body["output_modalities"] = ["audio"]
        return body


def _with(instructions: str | None, extra: str) -> str:
    return f"{instructions}\n\n{extra}" if instructions else extra


# --- Voice Live (flat session) ---------------------------------------------------------------
def _voicelive_session(cfg: SessionConfig) -> dict[str, Any]:
    opts = cfg.options
    session: dict[str, Any] = {
        "modalities": ["text"] if cfg.text_only else ["text", "audio"],
        "input_audio_format": "pcm16",
        "input_audio_sampling_rate": MODEL_RATE,
        "turn_detection": _voicelive_turn(opts.turn_detection),
        "tools": cfg.tools,
        "tool_choice": "auto",
    }
    if cfg.instructions is not None:
        session["instructions"] = cfg.instructions
    if not cfg.text_only:
        session["output_audio_format"] = "pcm16"
        session["voice"] = _voicelive_voice(opts.voice_options())
    noise = opts.noise_suppression
    if noise:
        session["input_audio_noise_reduction"] = {
            "type": "azure_deep_noise_suppression" if noise is True else noise
        }
    if opts.echo_cancellation:
        session["input_audio_echo_cancellation"] = {"type": "server_echo_cancellation"}
    transcription = _transcription(opts.input_transcription, "azure-speech")
    if transcription is not None:
        session["input_audio_transcription"] = transcription
    if opts.temperature is not None:
        session["temperature"] = opts.temperature
    return session


def _voicelive_voice(voice: VoiceOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"type": voice.kind, "name": voice.name}
    for key in ("endpoint_id", "model", "temperature", "rate", "pitch", "volume", "style"):
        value = getattr(voice, key)
        if value is not None:
            out[key] = value
    if voice.locale:
        out["locale"] = voice.locale
    return out


def _voicelive_turn(turn: TurnDetection) -> dict[str, Any]:
    out: dict[str, Any] = {"type": turn.type}
    keys = ["threshold", "prefix_padding_ms", "silence_duration_ms"]
    if turn.type in AZURE_SEMANTIC:
        # speech_duration_ms exists for Azure semantic VAD only (the how-to; the SDK's
        # AzureSemanticVad* models have it, its ServerVad has not).
        keys += ["speech_duration_ms", "remove_filler_words", "languages"]
    if turn.type == "semantic_vad":
        keys = ["eagerness"]
    for key in keys:
        value = getattr(turn, key)
        if value is not None:
            out[key] = value
    if turn.end_of_utterance is not None:
        out["end_of_utterance_detection"] = turn.end_of_utterance.model_dump()
    out["create_response"] = turn.create_response
    out["interrupt_response"] = turn.interrupt_response
    if turn.type != "semantic_vad":
        out["auto_truncate"] = turn.auto_truncate
    return out


# --- OpenAI GA (nested session) ---------------------------------------------------------------
def _ga_session(cfg: SessionConfig) -> dict[str, Any]:
    opts = cfg.options
    pcm = {"type": "audio/pcm", "rate": MODEL_RATE}
    audio_in: dict[str, Any] = {"format": pcm, "turn_detection": _ga_turn(opts.turn_detection)}
    transcription = _transcription(opts.input_transcription, "gpt-4o-mini-transcribe")
    if transcription is not None:
        audio_in["transcription"] = transcription
    noise = opts.noise_suppression
    if noise:
        audio_in["noise_reduction"] = {"type": "near_field" if noise is True else noise}
    audio_out: dict[str, Any] = {"format": pcm}
    if not cfg.text_only:
        audio_out["voice"] = opts.voice_options().name
    session: dict[str, Any] = {
        "type": "realtime",
        "output_modalities": ["text"] if cfg.text_only else ["audio"],
        "audio": {"input": audio_in, "output": audio_out},
        "tools": cfg.tools,
        "tool_choice": "auto",
    }
    if cfg.instructions is not None:
        session["instructions"] = cfg.instructions
    return session


def _ga_turn(turn: TurnDetection) -> dict[str, Any]:
    out: dict[str, Any] = {"type": turn.type}
    keys = (
        ["eagerness"]
        if turn.type == "semantic_vad"
        else ["threshold", "prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"]
    )
    for key in keys:
        value = getattr(turn, key)
        if value is not None:
            out[key] = value
    out["create_response"] = turn.create_response
    out["interrupt_response"] = turn.interrupt_response
    return out


def _transcription(
    value: InputTranscription | Literal["off"], default_model: str
) -> dict[str, Any] | None:
    if value == "off":
        return None
    out: dict[str, Any] = {"model": value.model or default_model}
    if value.language:
        out["language"] = value.language
    if value.prompt:
        out["prompt"] = value.prompt
    return out


VOICELIVE = Dialect(
    "voicelive",
    {name: name for name in (*_SHARED, *_GA_RENAMES)},
    "text",
)
GA = Dialect(
    "ga",
    {
        **{name: name for name in _SHARED},
        **{ga: canonical for canonical, ga in _GA_RENAMES.items()},
        "conversation.item.done": "conversation.item.done",
    },
    "output_text",
)
