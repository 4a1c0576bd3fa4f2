"""How transfer / add-participant targets respond.

Today every target accepts right away. A later task adds simulated humans who decline or
don't pick up: implement :class:`TargetResponder` and pass it as
``AcsEmulator(target_responder=...)``; the call then emits the matching *Failed event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .events import ResultInfo

TargetAction = Literal["transfer", "add"]


@dataclass(frozen=True)
class TargetOutcome:
    accepted: bool
    # For failures: resultInformation of CallTransferFailed / AddParticipantFailed (§3.3),
    # e.g. ResultInfo(480, 560480, "...") for no answer, (486, 560486, ...) for busy.
    failure: ResultInfo | None = None


class TargetResponder(Protocol):
    async def __call__(
        self, target: dict[str, Any], action: TargetAction, call_connection_id: str
    ) -> TargetOutcome: ...


class AcceptImmediately:
    """Default: the target picks up after ``delay_s``."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s = delay_s

    async def __call__(
        self, target: dict[str, Any], action: TargetAction, call_connection_id: str
    ) -> TargetOutcome:
        await asyncio.sleep(self.delay_s)
        return TargetOutcome(accepted=True)
