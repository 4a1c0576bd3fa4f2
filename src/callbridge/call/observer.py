"""What a call tells the rest of the service as it happens (records, live console, metrics).

A CallSession calls every observer it was given; an observer must be quick and must not
raise (errors are logged and swallowed: a broken store never breaks a call).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from callbridge.core.call_info import CallInfo
from callbridge.core.ending import Outcome
from callbridge.core.tools import ToolRun

log = logging.getLogger(__name__)

# The `event` observers get when a call goes on at another replica (docs/scale-out.md):
# everything of the call held here is let go of, without an end (the replica that holds
# the call last reports that). Detail: {"to": the replica id}.
HANDED_OFF = "handed_off"


@dataclass(frozen=True)
class CallOutcome:
    """How a call ended, for the record; `line` is the line it ended on (a keypad menu
    may have moved it from the one it started on)."""

    outcome: Outcome
    reason: str
    transferred_to: str | None = None
    recording_path: str | None = None
    ended_at: float = field(default_factory=time.time)
    line: str = ""


class CallObserver(Protocol):
    def call_started(self, info: CallInfo) -> None: ...

    def transcript(self, call_id: str, role: str, text: str, at: float) -> None:
        """role: caller | agent. `at`: epoch seconds."""

    def tool_ran(self, call_id: str, run: ToolRun) -> None: ...

    def event(self, call_id: str, name: str, detail: dict[str, Any]) -> None:
        """Telephony and bridge events: answered, media started, barge-in, DTMF, ACS callbacks."""

    def turn_latency(self, call_id: str, timings: dict[str, Any]) -> None:
        """One agent turn's timings (ms): voice_to_voice, stt, brain, tts_first, ..."""

    def call_ended(self, call_id: str, outcome: CallOutcome) -> None: ...


class Observers:
    """Fans each notification out to every observer, logging (never raising) failures."""

    def __init__(self, observers: list[CallObserver] | None = None) -> None:
        self.items: list[CallObserver] = list(observers or [])

    def __getattr__(self, name: str) -> Any:
        def fan_out(*args: Any) -> None:
            for obs in self.items:
                try:
                    getattr(obs, name)(*args)
                except Exception:
                    log.exception("call observer %s.%s failed", type(obs).__name__, name)

        return fan_out
