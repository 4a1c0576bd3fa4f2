"""Bookkeeping of a realtime session: responses, their output items, what was handed to the
bridge under which playback id, and the conversation as the service holds it.

Why playbacks: the bridge counts the milliseconds a caller heard *per response id it is
given* (`Heard.ms` restarts when the id changes). Model responses can follow each other
while earlier audio is still queued in the bridge (a filler, then the tool's answer), so
the agent hands audio over under a *playback* id that only changes at caller speech onset —
when the bridge has flushed its queue anyway — and keeps the offset of every item inside
the playback. The heard milliseconds then map exactly onto items (docs/realtime.md,
"Barge-in", step 3).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from callbridge.agent.realtime.dialects import Dialect
from callbridge.agent.sentences import SentenceSplitter
from callbridge.core.heard import heard_part, heard_text

_playback_ids = itertools.count(1)


@dataclass(eq=False)
class ItemState:
    """One assistant message item of a response (audio, or text in custom-voice mode)."""

    item_id: str
    response: ResponseState
    text_mode: bool = False
    received_ms: float = 0.0  # model audio received for the item (the truncate clamp)
    emitted_ms: float = 0.0  # of it, handed to the bridge (at the call rate)
    transcript: str = ""  # audio transcript, or the text in custom-voice mode
    spoken: list[list[Any]] = field(default_factory=list)  # custom voice: [sentence, ms]
    heard_ms: float | None = None  # decided after a barge-in (None: all of it)
    settled: bool = False  # the truncate/delete/replace for heard_ms was sent

    def heard_transcript(self) -> str:
        """What the caller heard of the item, as text (for re-seeding and the record)."""
        if self.heard_ms is None:
            return self.transcript
        if self.text_mode:
            return heard_text([(str(s), float(ms)) for s, ms in self.spoken], self.heard_ms)
        if self.received_ms <= 0:
            return ""
        return heard_part(self.transcript, self.heard_ms / self.received_ms)


@dataclass
class PendingCall:
    call_id: str
    name: str
    arguments: str
    response_id: str
    output: str | None = None
    sent: bool = False


@dataclass(eq=False)
class ResponseState:
    id: str
    out_of_band: bool = False  # not in the conversation (tool filler)
    dropped: bool = False  # the caller spoke: output ignored from then on
    done: bool = False
    lost: bool = False  # the connection went down under it
    status: str = "in_progress"
    items: list[ItemState] = field(default_factory=list)
    calls: list[PendingCall] = field(default_factory=list)
    # Custom voice: the model's text, cut into sentences to speak (very short ones are
    # kept with the next: the model writes faster than we speak, and phrases sound better).
    splitter: SentenceSplitter = field(default_factory=lambda: SentenceSplitter(min_chars=12))

    def item(self, item_id: str, text_mode: bool) -> ItemState:
        for item in self.items:
            if item.item_id == item_id:
                return item
        item = ItemState(item_id, self, text_mode)
        self.items.append(item)
        return item


@dataclass
class Segment:
    start_ms: float  # where it starts in the playback
    ms: float
    item: ItemState | None  # None: callbridge's own words (apology, local greeting)
    item_offset_ms: float  # where it starts in the item


@dataclass
class BridgePlayback:
    """Audio handed to the bridge under one response id (a playback id), in order."""

    id: str = field(default_factory=lambda: f"rt-{next(_playback_ids)}")
    ms: float = 0.0
    segments: list[Segment] = field(default_factory=list)
    handled: bool = False  # interrupted() has accounted for it

    def add(self, ms: float, item: ItemState | None) -> None:
        last = self.segments[-1] if self.segments else None
        if last is not None and last.item is item:
            last.ms += ms
        else:
            offset = item.emitted_ms if item is not None else 0.0
            self.segments.append(Segment(self.ms, ms, item, offset))
        self.ms += ms
        if item is not None:
            item.emitted_ms += ms

    def heard_per_item(self, heard_ms: float) -> list[tuple[ItemState, float]]:
        """Each model item of the playback with how much of it (ms) the caller heard."""
        out: dict[int, tuple[ItemState, float]] = {}
        for seg in self.segments:
            if seg.item is None:
                continue
            heard = seg.item_offset_ms + min(max(0.0, heard_ms - seg.start_ms), seg.ms)
            key = id(seg.item)
            if key not in out or heard > out[key][1]:
                out[key] = (seg.item, heard)
        return list(out.values())


EntryKind = Literal["user", "assistant", "function_call", "function_call_output"]


@dataclass(eq=False)
class Entry:
    kind: EntryKind
    item_id: str | None = None  # the service's id (None until it echoes our own items)
    text: str = ""
    item: ItemState | None = None  # assistant output: its text follows the item
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    output: str = ""

    def content(self) -> str:
        return self.item.heard_transcript() if self.item is not None else self.text


class Conversation:
    """The conversation as the service holds it, rebuilt from its item events, so that a new
    session can be seeded with it after a lost connection (a session cannot be renewed:
    docs/realtime.md, "Session continuity")."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self._echo: list[Entry] = []  # items we created, waiting for the service's echo

    def expect(self, entry: Entry, after: str | None = None) -> None:
        """An item we are creating (its server id comes with conversation.item.created)."""
        self._insert(entry, after)
        self._echo.append(entry)

    def on_created(self, item: dict[str, Any], previous: str | None) -> Entry | None:
        item_id = str(item.get("id") or "")
        if any(e.item_id == item_id for e in self.entries):
            return None
        kind = _kind(item)
        if kind is None:
            return None
        for i, pending in enumerate(self._echo):
            if pending.kind == kind and (
                kind != "function_call_output" or pending.call_id == item.get("call_id")
            ):
                del self._echo[i]
                pending.item_id = item_id
                return pending
        entry = Entry(kind, item_id)
        if kind == "function_call":
            entry.call_id = str(item.get("call_id") or "")
            entry.name = str(item.get("name") or "")
            entry.arguments = str(item.get("arguments") or "")
        elif kind == "function_call_output":
            entry.call_id = str(item.get("call_id") or "")
            entry.output = str(item.get("output") or "")
        elif kind == "user":
            entry.text = _content_text(item)
        self._insert(entry, previous)
        return entry

    def _insert(self, entry: Entry, after: str | None) -> None:
        if after is not None:
            for i, e in enumerate(self.entries):
                if e.item_id == after:
                    self.entries.insert(i + 1, entry)
                    return
        self.entries.append(entry)

    def find(self, item_id: str) -> Entry | None:
        return next((e for e in self.entries if e.item_id == item_id), None)

    def previous_id(self, entry: Entry) -> str | None:
        i = self.entries.index(entry)
        return next((e.item_id for e in reversed(self.entries[:i]) if e.item_id), None)

    def remove(self, item_id: str) -> None:
        self.entries = [e for e in self.entries if e.item_id != item_id]

    def reset_for_reseed(self, limit: int) -> list[Entry]:
        """The entries to carry into a new session (the last `limit` that still make sense):
        empty texts go, and a function call only travels with its output or while its
        tool is still running (an output without its call would be refused)."""
        calls = {e.call_id for e in self.entries if e.kind == "function_call"}
        keep: list[Entry] = []
        for e in self.entries:
            if e.kind in ("user", "assistant") and not e.content().strip():
                continue
            if e.kind == "function_call_output" and e.call_id not in calls:
                continue
            keep.append(e)
        keep = keep[-limit:]
        while keep and keep[0].kind == "function_call_output":
            keep.pop(0)  # its call fell off the front
        fresh = [_copy(e) for e in keep]
        self.entries = []
        self._echo = []
        return fresh

    def reseed_item(self, entry: Entry, dialect: Dialect) -> dict[str, Any]:
        if entry.kind == "user":
            return dialect.user_text(entry.content())
        if entry.kind == "assistant":
            return dialect.assistant_text_item(entry.content())
        if entry.kind == "function_call":
            return {
                "type": "function_call",
                "call_id": entry.call_id,
                "name": entry.name,
                "arguments": entry.arguments or "{}",
            }
        return {"type": "function_call_output", "call_id": entry.call_id, "output": entry.output}


def _copy(e: Entry) -> Entry:
    """A re-seeded entry: plain text from now on (the old item is gone with its session)."""
    return Entry(
        e.kind,
        None,
        e.content(),
        None,
        e.call_id,
        e.name,
        e.arguments,
        e.output,
    )


def _kind(item: dict[str, Any]) -> EntryKind | None:
    kind = item.get("type")
    if kind == "message":
        role = item.get("role")
        if role == "user":
            return "user"
        if role == "assistant":
            return "assistant"
        return None
    if kind == "function_call":
        return "function_call"
    if kind == "function_call_output":
        return "function_call_output"
    return None


def _content_text(item: dict[str, Any]) -> str:
    parts = []
    for part in item.get("content") or []:
        if isinstance(part, dict):
            parts.append(str(part.get("text") or part.get("transcript") or ""))
    return " ".join(p for p in parts if p)
