"""What the fake servers put on the wire, per dialect, with the reference they follow.

Sections cited are in /work/shared/reference/realtime-protocols.md. `REQUIRED` is the table
of fields each server event must carry; the fakes are checked against it in the tests, so
a fake that drifts from the reference fails there rather than silently passing a client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Dialect = Literal["voicelive", "ga"]

# Canonical (beta) name -> GA name (§2.7 renames). Voice Live sends the beta names (§1.7).
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
    """Assistant content part types: audio/text (beta, §1.8), output_audio/output_text (§2.7)."""
    return f"output_{kind}" if dialect == "ga" else kind


_DELTA_KEYS = ("response_id", "item_id", "output_index", "content_index")

# Fields every event of a type carries (besides `type` and `event_id`).
_COMMON: dict[str, tuple[str, ...]] = {
    # §1.7 / §2.6 session.created, session.updated: {session}
    "session.created": ("session",),
    "session.updated": ("session",),
    # §1.7 / §2.6 error: {error:{type, code?, message, param?, event_id?}}
    "error": ("error",),
    # §1.7 / §2.6 input_audio_buffer.speech_started: {audio_start_ms, item_id}
    "input_audio_buffer.speech_started": ("audio_start_ms", "item_id"),
    "input_audio_buffer.speech_stopped": ("audio_end_ms", "item_id"),
    "input_audio_buffer.cleared": (),
    # §1.7 conversation.item.truncated {item_id, content_index, audio_end_ms}; .deleted
    "conversation.item.truncated": ("item_id", "content_index", "audio_end_ms"),
    "conversation.item.deleted": ("item_id",),
    "conversation.item.retrieved": ("item",),
    # §1.7 / §2.6 response.created {response}; response.done {response:{...}}
    "response.created": ("response",),
    "response.done": ("response",),
    # §1.7 response.output_item.added/.done {response_id, output_index, item}
    "response.output_item.added": ("response_id", "output_index", "item"),
    "response.output_item.done": ("response_id", "output_index", "item"),
    # §1.7 content_part {response_id, item_id, output_index, content_index, part}
    "response.content_part.added": (*_DELTA_KEYS, "part"),
    "response.content_part.done": (*_DELTA_KEYS, "part"),
    # §1.7 function call arguments {response_id, item_id, output_index, call_id, delta|arguments}
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
        # §1.7 committed {previous_item_id, item_id}; conversation.item.created
        "input_audio_buffer.committed": ("previous_item_id", "item_id"),
        "conversation.item.created": ("previous_item_id", "item"),
        # §1.7 transcription .completed {item_id, content_index, transcript}
        "conversation.item.input_audio_transcription.completed": (
            "item_id",
            "content_index",
            "transcript",
        ),
        # §1.7 response.audio.delta {response_id,item_id,output_index,content_index,delta}
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
        # §2.6 committed {item_id, previous_item_id?}; conversation.item.added/.done (GA only)
        "input_audio_buffer.committed": ("item_id",),
        "conversation.item.added": ("item",),
        "conversation.item.done": ("item",),
        # §2.6 .completed {item_id, content_index, transcript, usage, ...}
        "conversation.item.input_audio_transcription.completed": (
            "item_id",
            "content_index",
            "transcript",
            "usage",
        ),
        # §2.6 response.output_audio.delta {response_id,item_id,output_index,content_index,delta}
        "response.output_audio.delta": (*_DELTA_KEYS, "delta"),
        "response.output_audio.done": _DELTA_KEYS,
        "response.output_audio_transcript.delta": (*_DELTA_KEYS, "delta"),
        "response.output_audio_transcript.done": (*_DELTA_KEYS, "transcript"),
        "response.output_text.delta": (*_DELTA_KEYS, "delta"),
        "response.output_text.done": (*_DELTA_KEYS, "text"),
        # §2.6 .done {response_id, item_id, output_index, call_id, name, arguments}
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

# Fields inside nested objects: §1.7/§2.6 response object, §1.7 error object.
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
            out.append(f"{kind}: GA sessions carry type realtime (§2.3)")
    return out
