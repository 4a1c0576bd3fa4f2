"""How transfer / add-participant targets respond.

The call asks its :class:`TargetResponder` once per ``transferToParticipant`` /
``participants:add``; the default responder is the emulator's :class:`~.humans.Humans`
(simulated people who answer, decline, are busy or don't pick up). The call turns the
outcome into CallTransferAccepted / CallTransferFailed or AddParticipantSucceeded /
AddParticipantFailed. A ringing add can be cancelled (``cancelAddParticipant``): the
responder's task is then cancelled while it awaits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from .events import ResultInfo

TargetAction = Literal["transfer", "add"]


@dataclass(frozen=True)
class TargetOutcome:
    accepted: bool
    # For failures: resultInformation of CallTransferFailed / AddParticipantFailed,
    # e.g. events.NO_ANSWER (480/560480), events.BUSY (486/560486), events.DECLINED.
    failure: ResultInfo | None = None
    # For the report: "answered" | "declined" | "busy" | "no_answer" (None: derived from
    # ``accepted``: "answered" / "failed").
    outcome: str | None = None
    # What the human says once connected by an add (PCM16 mono at ``says_rate``, or a
    # 16-bit WAV path), ``says_after_s`` after AddParticipantSucceeded.
    says: bytes | str | Path | None = None
    says_rate: int = 16000
    says_after_s: float = 0.3

    @property
    def label(self) -> str:
        return self.outcome or ("answered" if self.accepted else "failed")


class TargetResponder(Protocol):
    async def __call__(
        self,
        target: dict[str, Any],
        action: TargetAction,
        call_connection_id: str,
        *,
        invitation_timeout_s: float | None = None,
    ) -> TargetOutcome: ...


class AcceptImmediately:
    """Every target picks up after ``delay_s``."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s = delay_s

    async def __call__(
        self,
        target: dict[str, Any],
        action: TargetAction,
        call_connection_id: str,
        *,
        invitation_timeout_s: float | None = None,
    ) -> TargetOutcome:
        await asyncio.sleep(self.delay_s)
        return TargetOutcome(accepted=True, outcome="answered")
