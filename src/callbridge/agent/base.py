"""The interface between a call and the agent that talks on it.

The call session pushes caller audio (16-bit mono PCM at the session rate) and keypad
digits in, and reads a stream of `AgentEvent`s out. Tools run in the call session, not in
a backend, so every backend gets the same tools and transfer/hang-up keep call control.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from callbridge.core.call_info import CallInfo
from callbridge.core.heard import Heard


@dataclass(frozen=True, slots=True)
class AgentAudio:
    """A piece of the agent's voice for the response `response_id`."""

    pcm: bytes
    response_id: str
    # The words whose speech starts with this audio (a sentence), when the agent knows
    # them: the call session turns played milliseconds into heard words with it.
    text: str = ""


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started speaking (the bridge stops agent audio if it is playing)."""


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """The caller stopped speaking."""


@dataclass(frozen=True, slots=True)
class CallerTranscript:
    text: str
    final: bool = True


@dataclass(frozen=True, slots=True)
class AgentTranscript:
    text: str
    response_id: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class AgentFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class GaveUp:
    """The agent cannot go on (its service is gone for good) and asks to be replaced: a
    `FallbackAgent` around it (agent/fallback.py) hands the call to its fallback agent.
    Only an agent set up with such a fallback says it; the call session ignores it."""

    reason: str


@dataclass(frozen=True, slots=True)
class AgentState:
    """Where the agent's dialog stands (after a turn), opaque JSON: the replica that takes
    the call on next starts the agent with it as `CallInfo.agent_state`, and the dialog
    goes on from there (docs/scale-out.md). Only agents with such state say it."""

    state: str


AgentEvent = (
    AgentAudio
    | SpeechStarted
    | SpeechStopped
    | CallerTranscript
    | AgentTranscript
    | ToolCall
    | ResponseDone
    | AgentFailed
    | GaveUp
    | AgentState
)


class AgentSession(Protocol):
    async def start(self, call: CallInfo) -> None:
        """Bring the session up; a greeting, if any, is queued."""

    async def push_audio(self, pcm: bytes) -> None:
        """Caller audio, 16-bit mono at the session rate, silence included."""

    async def push_dtmf(self, digit: str) -> None: ...

    async def tool_result(self, call_id: str, output: str) -> None: ...

    async def interrupted(self, heard: Heard) -> None:
        """The caller barged in after hearing `heard.ms` (`heard.text`) of the reply."""

    async def notify(self, notice: str, detail: dict[str, Any]) -> None:
        """Something happened on the call that the agent should speak to (see NOTICES).
        Returns once what the agent says about it is handed over (or there is nothing)."""

    def events(self) -> AsyncIterator[AgentEvent]:
        """The agent's events, ending when the session closes."""
        ...

    async def close(self) -> None: ...


AgentFactory = Callable[[], AgentSession]

# What `notify` may be told, and what the agent is expected to say.
NOTICES = {
    "caller_silent": "the caller has said nothing for a while: check they are still there",
    "silence_goodbye": "the caller stayed silent: say goodbye (the call then ends)",
    "ending_soon": "the call nears its maximum duration: tell the caller",
    "limit_goodbye": "the maximum duration is reached: say goodbye (the call then ends)",
    "transfer_failed": "the human did not answer or declined: say so, offer alternatives",
    "briefing": "warm transfer: the human has joined; brief them ({summary}), then leave",
}


class EventStream:
    """An agent's outgoing events: `put` from anywhere on the loop, `close` ends the
    stream, `__aiter__` is what `AgentSession.events()` returns."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[AgentEvent | None] = asyncio.Queue()
        self._closed = False

    def put(self, event: AgentEvent) -> None:
        if not self._closed:
            self._queue.put_nowait(event)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[AgentEvent]:
        while (event := await self._queue.get()) is not None:
            yield event
