"""Why a call ended, and what that means for the record, as types rather than strings.

Whatever ends a call names an `EndCause`; the text a person reads (logs, the console) is
`EndReason.text`. The outcome stored with the record follows from the cause and from what
happened on the call (`outcome_of`), never from matching the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EndCause(StrEnum):
    CALLER_HUNG_UP = "caller_hung_up"  # the telephony side says the call is over
    MEDIA_CLOSED = "media_closed"  # the media socket closed without a hang-up
    MEDIA_FAILED = "media_failed"  # malformed or oversized media, MediaStreamingFailed
    NO_MEDIA = "no_media"  # no media socket in time
    IDLE = "idle"  # no caller media for too long
    MAX_DURATION = "max_duration"
    CALLER_SILENT = "caller_silent"  # reprompted, then said goodbye
    AGENT_ENDED = "agent_ended"  # the agent's end_call tool
    AGENT_FAILED = "agent_failed"
    BRIDGE_ERROR = "bridge_error"
    ANSWER_FAILED = "answer_failed"
    TRANSFERRED = "transferred"  # a cold transfer or a warm one the agent left
    SHUTDOWN = "shutdown"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    TRANSFERRED = "transferred"
    ABANDONED = "abandoned"
    FAILED = "failed"
    REJECTED = "rejected"  # never answered: every line was busy (or the service draining)


OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)


_FAILED = frozenset(
    {EndCause.MEDIA_FAILED, EndCause.AGENT_FAILED, EndCause.BRIDGE_ERROR, EndCause.ANSWER_FAILED}
)


@dataclass(frozen=True, slots=True)
class EndReason:
    cause: EndCause
    text: str  # what a person reads: "no media from the caller for 30 s"

    def __str__(self) -> str:
        return self.text


def outcome_of(reason: EndReason, *, transferred: bool, caller_spoke: bool) -> Outcome:
    """resolved | transferred | abandoned | failed, for the record and the analytics."""
    if transferred:
        return Outcome.TRANSFERRED
    if reason.cause in _FAILED:
        return Outcome.FAILED
    if reason.cause is EndCause.AGENT_ENDED or caller_spoke:
        return Outcome.RESOLVED
    return Outcome.ABANDONED
