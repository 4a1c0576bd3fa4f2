"""What a fake model says: a `Script` of turns, one per response the model makes.

Each in-band response takes the next turn (the answer to a caller turn, the answer after a
tool output, the continuation after a reconnect). Responses that speak fixed words — Voice
Live's `pre_generated_assistant_message`, an instruction to say something "exactly", an
out-of-band filler — do not take a turn, as a real model would not need to "think" them.
One Script object is shared by every connection of a call, so after a dropped connection
the new session carries on with the next turn.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callbridge.testing.fake_realtime.session import FakeSession

MS_PER_CHAR = 65  # ~15 characters a second: an unhurried phone voice


@dataclass(frozen=True)
class Say:
    """An assistant message (audio with transcript, or text in text mode)."""

    text: str
    audio_ms: int | None = None  # default: from the length of the text
    drop_after_ms: int | None = None  # close the socket after this much of the audio
    drop_code: int = 1011

    @property
    def duration_ms(self) -> int:
        return (
            self.audio_ms if self.audio_ms is not None else max(300, len(self.text) * MS_PER_CHAR)
        )


@dataclass(frozen=True)
class CallTool:
    """A function call (optionally after a spoken preamble in the same response)."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    preamble: str = ""
    hold_done_ms: int = 0  # delay response.done after the call (tool-queueing tests)


@dataclass(frozen=True)
class Fail:
    """The response fails (response.done status failed)."""

    code: str = "server_error"


@dataclass(frozen=True)
class Expire:
    """The session hits its maximum duration: error session_expired, then close 1001."""


Turn = Say | CallTool | Fail | Expire


@dataclass
class Script:
    turns: list[Turn] = field(default_factory=list)
    caller_says: list[str] = field(default_factory=list)  # transcripts of caller turns, in order
    default: Turn = field(default_factory=lambda: Say("Okay.", audio_ms=600))
    ttfa_ms: int = 150  # first audio after the response starts
    chunk_ms: int = 100  # audio per delta
    speed: float = 4.0  # deltas are sent this many times faster than real time
    refuse_after_drop: bool = False  # connections after a drop are refused (HTTP 503)
    late_deltas: int = 0  # audio deltas still sent after a cancel, before response.done
    _next_turn: int = 0
    _next_caller: int = 0
    dropped: int = 0

    def next_turn(self) -> Turn:
        if self._next_turn < len(self.turns):
            turn = self.turns[self._next_turn]
            self._next_turn += 1
            return turn
        return self.default

    def next_caller_text(self) -> str:
        n = self._next_caller
        self._next_caller += 1
        return self.caller_says[n] if n < len(self.caller_says) else f"caller turn {n + 1}"

    @property
    def turns_used(self) -> int:
        return self._next_turn


ScriptChooser = Callable[["FakeSession"], Script]


def by_instructions(scripts: Mapping[str, Script], default: Script | None = None) -> ScriptChooser:
    """Choose a call's script by a key found in its session instructions (e.g. the caller's
    number, templated into the persona): concurrent calls on one fake each get theirs."""
    fallback = default or Script()

    def choose(session: FakeSession) -> Script:
        text = session.instructions
        for key, script in scripts.items():
            if key in text:
                return script
        return fallback

    return choose


_counter = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_counter):06d}"
