"""What the fake servers put on the wire, per dialect, with the reference they follow.

Public references: Voice Live (beta-style event names)
https://learn.microsoft.com/azure/ai-services/speech-service/voice-live-how-to and OpenAI
GA (GA names and shapes) https://platform.openai.com/docs/api-reference/realtime.
`REQUIRED` is the table of fields each server event must carry; the fakes are checked
against it in the tests, so a fake that drifts from the reference fails there rather than
silently passing a client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Dialect = Literal["voicelive", "ga"]

# Canonical (beta) name -> GA name (the GA renames). Voice Live sends the beta names.
GA_NAMES = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}


def wire_name(dialect: Dialect, canonical: str) -> str:
    return GA_NAMES.get(canonical, canonical) if dialect == "ga" else canonical


def part_type(dialect: Dialect, kind: Literal["audio", "text"]) -> str:
    """Assistant content part types: audio/text (beta), output_audio/output_text (GA)."""
    return f"output_{kind}" if dialect == "ga" else kind


_DELTA_KEYS = ("response_id", "item_id", "output_index", "content_index")

# Fields every event of a type carries (besides `type` and `event_id`).
_COMMON: dict[str, tuple[str, ...]] = {
    # session.created, session.updated: {session}
    "session.created": ("session",),
    "session.updated": ("session",),
    # error: {error:{type, code?, message, param?, event_id?}}
    "error": ("error",),
    # input_audio_buffer.speech_started: {audio_start_ms, item_id}
    "input_audio_buffer.speech_started": ("audio_start_ms", "item_id"),
    "input_audio_buffer.speech_stopped": ("audio_end_ms", "item_id"),
    "input_audio_buffer.cleared": (),
    # conversation.item.truncated {item_id, content_index, audio_end_ms}; .deleted
    "conversation.item.truncated": ("item_id", "content_index", "audio_end_ms"),
    "conversation.item.deleted": ("item_id",),
    "conversation.item.retrieved": ("item",),
    # response.created {response}; response.done {response:{...}}
    "response.created": ("response",),
    "response.done": ("response",),
    # response.output_item.added/.done {response_id, output_index, item}
    "response.output_item.added": ("response_id", "output_index", "item"),
    "response.output_item.done": ("response_id", "output_index", "item"),
    # content_part {response_id, item_id, output_index, content_index, part}
    "response.content_part.added": (*_DELTA_KEYS, "part"),
    "response.content_part.done": (*_DELTA_KEYS, "part"),
    # function call arguments {response_id, item_id, output_index, call_id, delta|arguments}
    "response.function_call_arguments.delta": (
        "response_id",
        "item_id",
        "output_index",
        "call_id",
        "delta",
    ),
}

REQUIRED: dict[Dialect, dict[str, tuple[str, ...]]] = {
    "voicelive": {
        **_COMMON,
        # committed {previous_item_id, item_id}; conversation.item.created
        "input_audio_buffer.committed": ("previous_item_id", "item_id"),
        "conversation.item.created": ("previous_item_id", "item"),
        # transcription .completed {item_id, content_index, transcript}
        "conversation.item.input_audio_transcription.completed": (
            "item_id",
            "content_index",
            "transcript",
        ),
        # response.audio.delta {response_id,item_id,output_index,content_index,delta}
        "response.audio.delta": (*_DELTA_KEYS, "delta"),
        "response.audio.done": _DELTA_KEYS,
        "response.audio_transcript.delta": (*_DELTA_KEYS, "delta"),
        "response.audio_transcript.done": (*_DELTA_KEYS, "transcript"),
        "response.text.delta": (*_DELTA_KEYS, "delta"),
        "response.text.done": (*_DELTA_KEYS, "text"),
        "response.function_call_arguments.done": (
            "response_id",
            "item_id",
            "output_index",
            "call_id",
            "arguments",
        ),
    },
    "ga": {
        **_COMMON,
        # committed {item_id, previous_item_id?}; conversation.item.added/.done (GA only)
        "input_audio_buffer.committed": ("item_id",),
        "conversation.item.added": ("item",),
        "conversation.item.done": ("item",),
        # transcription .completed {item_id, content_index, transcript, usage, ...}
        "conversation.item.input_audio_transcription.completed": (
            "item_id",
            "content_index",
            "transcript",
            "usage",
        ),
        # response.output_audio.delta {response_id,item_id,output_index,content_index,delta}
        "response.output_audio.delta": (*_DELTA_KEYS, "delta"),
        "response.output_audio.done": _DELTA_KEYS,
        "response.output_audio_transcript.delta": (*_DELTA_KEYS, "delta"),
        "response.output_audio_transcript.done": (*_DELTA_KEYS, "transcript"),
        "response.output_text.delta": (*_DELTA_KEYS, "delta"),
        "response.output_text.done": (*_DELTA_KEYS, "text"),
        # arguments .done {response_id, item_id, output_index, call_id, name, arguments}
        "response.function_call_arguments.done": (
            "response_id",
            "item_id",
            "output_index",
            "call_id",
            "name",
            "arguments",
        ),
    },
}

# Fields inside nested objects: the response object, the error object.
RESPONSE_FIELDS = ("id", "object", "status", "status_details", "output", "usage")
ERROR_FIELDS = ("type", "code", "message")
RESPONSE_STATUSES = ("in_progress", "completed", "cancelled", "incomplete", "failed")


def problems(dialect: Dialect, event: Mapping[str, Any]) -> list[str]:
    """What `event` lacks against the reference (empty when it conforms)."""
    kind = str(event.get("type"))
    table = REQUIRED[dialect]
    if kind not in table:
        return [f"{kind}: not an event of the {dialect} dialect"]
    out = [f"{kind}: no {key}" for key in ("event_id", *table[kind]) if key not in event]
    if kind in ("response.created", "response.done"):
        response = event.get("response") or {}
        out += [f"{kind}: response has no {k}" for k in RESPONSE_FIELDS if k not in response]
        if response.get("status") not in RESPONSE_STATUSES:
            out.append(f"{kind}: bad status {response.get('status')!r}")
    if kind == "error":
        error = event.get("error") or {}
        out += [f"error: no error.{k}" for k in ERROR_FIELDS if k not in error]
    if dialect == "ga" and kind in ("session.created", "session.updated"):
        if (event.get("session") or {}).get("type") != "realtime":
            out.append(f"{kind}: GA sessions carry type realtime")
    return out
