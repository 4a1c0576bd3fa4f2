"""What the store keeps of a call: the writes that build a record, and what reads return.

Writes are small frozen values so the observer can queue them without touching the
database on the event loop, and so a batch that could not be written can be spilled to a
file and replayed (`to_json` / `from_json`). Times are epoch seconds throughout.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

Status = Literal["active", "ended", "incomplete"]
# The reason an incomplete call gets: the service stopped (crash, kill) while it was active.
INCOMPLETE_REASON = "the service stopped during the call; marked incomplete at the next start"


# --- writes ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallStarted:
    call_id: str
    caller: str
    callee: str
    profile: str
    correlation_id: str
    started_at: float


@dataclass(frozen=True, slots=True)
class TranscriptAdded:
    call_id: str
    role: str
    text: str
    at: float
    key: str = ""  # unique per write: a replayed write is not added twice


@dataclass(frozen=True, slots=True)
class ToolRan:
    call_id: str
    name: str
    arguments: dict[str, Any]
    output: str
    ok: bool
    duration_ms: float
    at: float
    key: str = ""  # unique per write: a replayed write is not added twice


@dataclass(frozen=True, slots=True)
class EventAdded:
    call_id: str
    name: str
    detail: dict[str, Any]
    at: float
    key: str = ""  # unique per write: a replayed write is not added twice


@dataclass(frozen=True, slots=True)
class LatencyAdded:
    call_id: str
    timings: dict[str, Any]
    at: float
    key: str = ""  # unique per write: a replayed write is not added twice


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_id: str
    outcome: str
    reason: str
    ended_at: float
    transferred_to: str | None = None
    recording_path: str | None = None
    profile: str = ""  # the line the call ended on ("" in spill files of older versions)
    key: str = ""  # unique per write: a replayed end does not add its recording twice


@dataclass(frozen=True, slots=True)
class AnalyticsSaved:
    """The post-call analysis; with redaction on, also the redacted texts by row id."""

    call_id: str
    summary: str
    summary_source: str  # llm | extractive
    sentiment_compound: float
    sentiment_label: str
    redacted: bool
    analyzed_at: float
    transcript_texts: dict[int, str] = field(default_factory=dict)
    tool_texts: dict[int, tuple[dict[str, Any], str]] = field(default_factory=dict)


Write = (
    CallStarted | TranscriptAdded | ToolRan | EventAdded | LatencyAdded | CallEnded | AnalyticsSaved
)
W = TypeVar("W", bound=Write)
_WRITE_TYPES: dict[str, type[Write]] = {
    t.__name__: t
    for t in (CallStarted, TranscriptAdded, ToolRan, EventAdded, LatencyAdded, CallEnded)
}
_FIELDS: dict[type[Write], tuple[str, ...]] = {
    t: tuple(f.name for f in dataclasses.fields(t)) for t in _WRITE_TYPES.values()
}


def to_json(write: Write) -> dict[str, Any] | None:
    """A JSON-able form of a write, for the spill file; None for analytics (re-computable)."""
    if isinstance(write, AnalyticsSaved):
        return None
    # Shallow (no deep copy like dataclasses.asdict): the journal serialises every write.
    data: dict[str, Any] = {"type": type(write).__name__}
    for name in _FIELDS[type(write)]:
        data[name] = getattr(write, name)
    return data


def from_json(data: dict[str, Any]) -> Write:
    kind = _WRITE_TYPES[data.pop("type")]
    return kind(**data)


# The writes that add a row a replay could add twice (a child row, an end's recording):
# each carries a key unique to it, stored with the row under a unique index, so a write
# replayed from the journal or a spill file after it was committed is a no-op.
KEYED: tuple[type[Write], ...] = (TranscriptAdded, ToolRan, EventAdded, LatencyAdded, CallEnded)


def with_key(write: W, key: str) -> W:
    """`write` with `key`, when its kind has a key and it has none yet; else `write`."""
    if isinstance(write, KEYED) and not getattr(write, "key", ""):
        return dataclasses.replace(write, key=key)  # type: ignore[arg-type]
    return write


# --- text the database takes --------------------------------------------------------------
# Lone surrogates (JSON can spell one, "\ud800", but UTF-8 cannot encode it, so neither
# SQLite nor PostgreSQL takes it) and NUL (PostgreSQL's text refuses it) become U+FFFD.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """`text` with every character the databases cannot store replaced by U+FFFD."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub(REPLACEMENT, text)


def clean_value(value: Any) -> Any:
    """`value` with `clean_text` applied to every string in it, keys too (JSON-like data:
    dicts, lists, tuples, scalars)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_value(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(clean_value(v) for v in value)
    return value


def clean_write(write: W) -> W:
    """`write` with its text made storable (the same object when it already is): one odd
    character from a caller id, a display name or a transcript must not make the database
    refuse the whole write, and with it the call's record."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(write):
        value = getattr(write, f.name)
        cleaned = clean_value(value)
        if cleaned != value:
            changes[f.name] = cleaned
    return dataclasses.replace(write, **changes) if changes else write


# --- reads -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallQuery:
    outcome: str | None = None  # one of OUTCOMES, or "incomplete"
    q: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class CallRow:
    id: str
    caller: str
    callee: str
    profile: str
    correlation_id: str
    status: str
    started_at: float
    ended_at: float | None
    outcome: str | None
    reason: str | None
    transferred_to: str | None
    turns: int
    has_recording: bool
    summary: str | None
    summary_source: str | None
    sentiment_compound: float | None
    sentiment_label: str | None
    redacted: bool
    analyzed_at: float | None


@dataclass(frozen=True, slots=True)
class TurnRow:
    row_id: int
    role: str
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class ToolRow:
    row_id: int
    name: str
    arguments: dict[str, Any]
    output: str
    ok: bool
    duration_ms: float
    at: float


@dataclass(frozen=True, slots=True)
class EventRow:
    name: str
    detail: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class LatencyRow:
    timings: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class OrphanCall:
    """A call a stop of the service cut (no end recorded), marked incomplete at start:
    whoever can still hang it up needs its ACS call connection id."""

    call_id: str
    # The `answered` event's leg_id (ACS: the call connection id); None if never answered
    # (or answered by an edge without one, the browser phone).
    connection_id: str | None
    started_at: float
    profile: str


@dataclass(frozen=True, slots=True)
class CallDetailRow:
    call: CallRow
    transcript: list[TurnRow]
    tools: list[ToolRow]
    events: list[EventRow]
    latencies: list[LatencyRow]
    recordings: list[str]  # paths, oldest first
