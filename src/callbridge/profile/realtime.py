"""The `realtime:` section of an agent profile: how a cloud speech-to-speech session runs.

Every key has a default, so a profile without the section stays valid. Which keys a
*service* accepts is checked when a backend is built (agent/realtime/options.py), because
the profile does not know the backend. Values and defaults follow the Voice Live API
(https://learn.microsoft.com/azure/ai-services/speech-service/voice-live-how-to) and the
OpenAI Realtime GA API (https://platform.openai.com/docs/api-reference/realtime).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from callbridge.profile.base import SECTION_CONFIG

OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}
)
# Azure neural voice names start with a locale: en-US-AvaNeural, en-US-Ava:DragonHDLatestNeural
_AZURE_VOICE = re.compile(r"^[a-z]{2,3}-[A-Za-z]{2,4}(-[A-Za-z]+)?-\w")

VoiceType = Literal[
    "openai", "azure-standard", "azure-custom", "azure-personal", "azure-realtime-native"
]
TurnType = Literal[
    "server_vad",
    "semantic_vad",
    "azure_semantic_vad",
    "azure_semantic_vad_en",
    "azure_semantic_vad_multilingual",
]
AZURE_SEMANTIC = ("azure_semantic_vad", "azure_semantic_vad_en", "azure_semantic_vad_multilingual")


class RealtimeModel(BaseModel):
    """A part of the `realtime:` section."""

    model_config = SECTION_CONFIG


class VoiceOptions(RealtimeModel):
    """A voice given as a mapping (Voice Live voice types); a plain name is enough for most."""

    name: str
    type: VoiceType | None = None  # None: told from the name
    endpoint_id: str | None = None  # azure-custom
    model: str | None = None  # azure-personal
    temperature: float | None = Field(default=None, ge=0, le=1)
    rate: str | None = None  # SSML prosody strings: "1.1", "+10%", "x-slow"
    pitch: str | None = None
    volume: str | None = None
    style: str | None = None
    locale: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> VoiceOptions:
        kind = self.kind
        if kind == "azure-custom" and not self.endpoint_id:
            raise ValueError("an azure-custom voice needs `endpoint_id`")
        if kind == "azure-personal" and not self.model:
            raise ValueError("an azure-personal voice needs `model`")
        return self

    @property
    def kind(self) -> VoiceType:
        return self.type or voice_kind(self.name)


def voice_kind(name: str) -> VoiceType:
    """OpenAI voices by name, Azure voices by their locale prefix."""
    if name in OPENAI_VOICES:
        return "openai"
    if _AZURE_VOICE.match(name):
        return "azure-standard"
    raise ValueError(
        f"unknown voice {name!r}: use an OpenAI voice ({', '.join(sorted(OPENAI_VOICES))}), "
        "an Azure voice such as en-US-AvaNeural, or a mapping with `type`"
    )


class EndOfUtterance(RealtimeModel):
    """Voice Live's semantic end-of-utterance detection (azure semantic VAD only)."""

    model: Literal[
        "semantic_detection_v1", "semantic_detection_v1_en", "semantic_detection_v1_multilingual"
    ] = "semantic_detection_v1"
    threshold_level: Literal["low", "medium", "high", "default"] = "default"
    timeout_ms: int = Field(default=1000, ge=0, le=10000)


class TurnDetection(RealtimeModel):
    """Server-side turn detection (both services). Unset fields: the service default."""

    type: TurnType = "server_vad"
    threshold: float | None = Field(default=None, ge=0, le=1)
    prefix_padding_ms: int | None = Field(default=None, ge=0, le=5000)
    silence_duration_ms: int | None = Field(default=None, ge=0, le=10000)
    speech_duration_ms: int | None = Field(default=None, ge=0, le=5000)  # Voice Live
    remove_filler_words: bool | None = None  # azure semantic VAD
    languages: list[str] | None = None  # azure semantic VAD
    end_of_utterance: EndOfUtterance | None = None  # azure semantic VAD
    eagerness: Literal["auto", "low", "medium", "high"] | None = None  # OpenAI semantic_vad
    idle_timeout_ms: int | None = Field(default=None, ge=0)  # OpenAI server_vad
    create_response: bool = True
    interrupt_response: bool = True
    # Voice Live can truncate on its own, assuming real-time playback; callbridge's
    # own truncation uses what the caller really heard, so this stays off unless asked for.
    auto_truncate: bool = False

    @model_validator(mode="after")
    def _fields_fit_the_type(self) -> TurnDetection:
        semantic_only = ("remove_filler_words", "languages", "end_of_utterance")
        if self.type not in AZURE_SEMANTIC:
            for key in semantic_only:
                if getattr(self, key) is not None:
                    raise ValueError(f"`{key}` is for the azure_semantic_vad types")
        if self.eagerness is not None and self.type != "semantic_vad":
            raise ValueError("`eagerness` is for type semantic_vad")
        if self.type == "semantic_vad":
            for key in ("threshold", "prefix_padding_ms", "silence_duration_ms"):
                if getattr(self, key) is not None:
                    raise ValueError(f"semantic_vad has no `{key}` (use `eagerness`)")
        if self.idle_timeout_ms is not None and self.type != "server_vad":
            raise ValueError("`idle_timeout_ms` is for type server_vad")
        if self.auto_truncate and not self.interrupt_response:
            raise ValueError("`auto_truncate` needs `interrupt_response: true`")
        return self


class InputTranscription(RealtimeModel):
    """Transcription of the caller (feeds transcripts and session continuity)."""

    model: str | None = None  # None: azure-speech (Voice Live), gpt-4o-mini-transcribe (OpenAI)
    language: str | None = None
    prompt: str | None = None


NoiseSuppression = Literal["azure_deep_noise_suppression", "near_field", "far_field"]


class RealtimeOptions(RealtimeModel):
    voice: str | VoiceOptions = "marin"
    turn_detection: TurnDetection = Field(default_factory=TurnDetection)
    # true: the service's recommended suppressor (Voice Live: azure_deep_noise_suppression,
    # OpenAI: near_field), or a type by name.
    noise_suppression: bool | NoiseSuppression = False
    echo_cancellation: bool = False  # Voice Live server echo cancellation
    input_transcription: InputTranscription | Literal["off"] = Field(
        default_factory=InputTranscription
    )
    temperature: float | None = Field(default=None, ge=0.6, le=1.2)  # Voice Live only
    greet_first: bool = True  # speak `greeting` (or let the model greet) when the call starts
    # Hybrid: the model answers in text, callbridge speaks it with its own voice (`voice:`
    # section of the profile, a Piper model), sentence by sentence.
    custom_voice: bool = False
    # fallback: offline — what the offline agent says after the profile's apology
    offline_handover: str = "Let's carry on. What can I do for you?"
    tool_filler: str = "One moment, please."  # said when a tool takes longer than:
    tool_filler_after_s: float = Field(default=1.5, ge=0.2, le=30)
    # Session continuity: this many lost connections within the window end the model's part
    # of the call (apology, then the profile's `fallback`).
    max_failures: int = Field(default=3, ge=1, le=20)
    failure_window_s: float = Field(default=60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _voice_known(self) -> RealtimeOptions:
        if isinstance(self.voice, str):
            voice_kind(self.voice)
        return self

    def voice_options(self) -> VoiceOptions:
        return self.voice if isinstance(self.voice, VoiceOptions) else VoiceOptions(name=self.voice)
