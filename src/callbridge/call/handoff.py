"""Handing a call on: the actions tools take (end the call, transfer it), cold and warm
transfer, and what happens when the human does not answer.

Each action waits for the agent's last words (`Watchers.after_speech`) and then asks the
edge through its `Carrier`; a failure leaves the caller with the agent, who says so.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from callbridge.call.carrier import Carrier
from callbridge.call.watchers import Watchers
from callbridge.core.ending import EndCause, EndReason
from callbridge.core.policy import CallPolicy

log = logging.getLogger(__name__)


class HandedCall(Protocol):
    call_id: str
    handing_on: bool
    transferred_to: str | None
    muted: bool  # warm transfer: the agent stays on as a silent listener

    @property
    def policy(self) -> CallPolicy: ...

    def spawn(self, coro: Awaitable[None], name: str) -> object: ...

    async def notify(self, notice: str, detail: dict[str, Any]) -> None: ...

    async def end(self, reason: EndReason, *, hang_up: bool) -> None: ...

    def note_event(self, name: str, **detail: Any) -> None: ...

    def disconnected_now(self) -> None:
        """The call goes on without us: no hang-up when it ends."""


class Handoff:
    """The session's `CallActions` (what tools may do) and the transfer state machine."""

    def __init__(self, call: HandedCall, carrier: Carrier, watchers: Watchers) -> None:
        self._call = call
        self._carrier = carrier
        self._watchers = watchers
        self._warm: tuple[str, str] | None = None  # (target, summary) being added

    # --- CallActions ----------------------------------------------------------------------
    async def hang_up(self) -> None:
        """End the call once the agent's goodbye has been heard."""
        self._once(self._end_by_agent, "end-call")

    async def transfer(self, target: str, summary: str) -> None:
        """Hand the caller to `target` once the agent's words have been heard."""
        warm = self._call.policy.transfer_mode == "warm" and self._carrier.can_add_participants
        action = self._warm_transfer if warm else self._cold_transfer
        self._once(lambda: action(target, summary), "transfer")

    def _once(self, then: Callable[[], Awaitable[None]], name: str) -> None:
        if not self._call.handing_on:
            self._call.handing_on = True
            self._call.spawn(self._watchers.after_speech(then), name)

    async def _end_by_agent(self) -> None:
        reason = EndReason(EndCause.AGENT_ENDED, "agent ended the call")
        await self._call.end(reason, hang_up=True)

    # --- transfers --------------------------------------------------------------------
    def _context(self, summary: str) -> dict[str, str]:
        context = {"CallbridgeCallId": self._call.call_id}
        if summary:
            context["Summary"] = summary
        return context

    async def _cold_transfer(self, target: str, summary: str) -> None:
        log.info("transferring to %s", target)
        try:
            await self._carrier.transfer(target, self._context(summary))
        except Exception as exc:
            log.error("transfer to %s failed: %s", target, exc)
            self.transfer_failed(str(exc))
            return
        self._call.transferred_to = target

    async def _warm_transfer(self, target: str, summary: str) -> None:
        log.info("adding %s to the call (warm transfer)", target)
        self._warm = (target, summary)
        ring = self._call.policy.transfer_ring_timeout_s
        try:
            await self._carrier.add_participant(target, self._context(summary), ring)
        except Exception as exc:
            log.error("adding %s failed: %s", target, exc)
            self.transfer_failed(str(exc))

    def participant_added(self, target: str) -> None:
        """The human answered a warm transfer: brief them, then leave (or stay muted)."""
        if self._warm is None:
            return
        self._call.spawn(self._brief_and_leave(target, self._warm[1]), "warm-transfer")

    async def _brief_and_leave(self, target: str, summary: str) -> None:
        await self._call.notify("briefing", {"summary": summary, "target": target})
        await self._watchers.after_speech(lambda: self._leave(target))

    async def _leave(self, target: str) -> None:
        call = self._call
        call.transferred_to = target
        if call.policy.transfer_stay_muted:
            log.info("warm transfer done: staying on as a muted listener")
            call.muted = True
            return
        try:
            await self._carrier.leave()
        except Exception as exc:
            log.error("leaving the call failed: %s", exc)
        call.disconnected_now()  # the call goes on between the caller and the human
        await call.end(EndReason(EndCause.TRANSFERRED, f"warm transfer to {target}"), hang_up=False)

    def transfer_failed(self, reason: str) -> None:
        """The transfer did not complete: the caller stays with the agent, who says so."""
        call = self._call
        log.warning("transfer failed: %s", reason)
        target = self._warm[0] if self._warm else (call.transferred_to or "")
        call.transferred_to = None
        self._warm = None
        call.handing_on = False
        call.note_event("transfer_failed", reason=reason)
        detail = {"reason": reason, "target": target}
        call.spawn(call.notify("transfer_failed", detail), "transfer-failed")
