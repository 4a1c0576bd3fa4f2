"""Who is in one call, and the actions that change it: ``:transferToParticipant``,
``participants:add`` / ``:remove`` / ``:cancelAddParticipant``.

The targets are simulated people (``humans.py``, or any ``TargetResponder``): they ring,
then answer, decline, are busy or don't answer, and an added human may say a line that
is mixed into the call. Event sequences and result codes are listed in docs/emulator.md.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import events as ev
from .ids import acs_user_identifier, display_name, new_id
from .report import TargetRecord
from .script import load_pcm
from .targets import TargetAction, TargetOutcome

if TYPE_CHECKING:
    from .call import EmulatedCall


@dataclass
class Invitation:
    """A transferToParticipant / participants:add while its target rings."""

    id: str
    action: TargetAction
    target: dict[str, Any]
    operation_context: str | None
    url: str | None
    extra: dict[str, Any]  # extra event fields (transferee)
    record: TargetRecord
    timeout_s: float | None
    task: asyncio.Task[None] | None = None
    done: bool = False


class CallParticipants:
    """The caller, the humans added to the call, and the bot (the service's leg)."""

    def __init__(self, call: EmulatedCall) -> None:
        self.call = call
        self.members: list[dict[str, Any]] = [call.caller]  # everyone but the bot
        self.bot = acs_user_identifier(f"8:acs:{call.env.issuer.audience}_{new_id()}")
        self.invitations: dict[str, Invitation] = {}
        self.sequence_number = 0

    def everyone(self) -> list[dict[str, Any]]:
        return [*self.members, self.bot]

    def humans(self) -> list[dict[str, Any]]:
        """Participants other than the caller (added humans), bot excluded."""
        caller = self.call.caller["rawId"]
        return [p for p in self.members if p["rawId"] != caller]

    def announce(self) -> None:
        """ParticipantsUpdated: sequenceNumber and participants, no operationContext."""
        self.sequence_number += 1
        self.call.send_event(
            "ParticipantsUpdated",
            extra={
                "sequenceNumber": self.sequence_number,
                "participants": [
                    {"identifier": p, "isMuted": False, "isOnHold": False} for p in self.everyone()
                ],
            },
        )

    def abandon_ringing(self) -> None:
        """The call is over: invitations still ringing are abandoned."""
        for inv in self.invitations.values():
            if not inv.done:
                inv.done = True
                inv.record.outcome = "abandoned"

    # ------------------------------------------------------- transfers and adds

    def invite(
        self,
        action: TargetAction,
        target: dict[str, Any],
        *,
        operation_context: str | None,
        url: str | None,
        custom_context: dict[str, Any] | None,
        timeout_s: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Invitation:
        """transferToParticipant / participants:add accepted (202): ring the target."""
        call = self.call
        extra = extra or {}
        inv_id = new_id()
        transferee = extra.get("transferee")
        record = TargetRecord(
            action=action,
            target=str(target["rawId"]),
            requested_s=call.since_start(),
            invitation_id=inv_id if action == "add" else None,
            operation_context=operation_context,
            custom_calling_context=copy.deepcopy(custom_context),
            invitation_timeout_s=timeout_s,
            transferee=str(transferee["rawId"]) if transferee else None,
        )
        call.report.target_actions.append(record)
        inv = Invitation(inv_id, action, target, operation_context, url, extra, record, timeout_s)
        self.invitations[inv_id] = inv
        inv.task = call.spawn(self._ring_target(inv))
        return inv

    async def _ring_target(self, inv: Invitation) -> None:
        """After the 202: the target's answer decides the events the service gets."""
        call = self.call
        assert call.call_connection_id is not None
        outcome = await call.env.responder(
            inv.target, inv.action, call.call_connection_id, invitation_timeout_s=inv.timeout_s
        )
        inv.done = True
        rec = inv.record
        rec.resolved_s = call.since_start()
        if not call.active:
            rec.outcome = "abandoned"
            return
        rec.outcome = outcome.label
        target, ctx, url = inv.target, inv.operation_context, inv.url
        if not outcome.accepted:
            failure = outcome.failure or ev.NO_ANSWER
            rec.result = failure.to_dict()
            if inv.action == "transfer":
                call.send_event(
                    "CallTransferFailed", operation_context=ctx, result=failure, url=url
                )
            else:
                call.send_event(
                    "AddParticipantFailed",
                    operation_context=ctx,
                    result=failure,
                    extra={"participant": target},
                    url=url,
                )
            return
        if inv.action == "transfer":
            call.send_event(
                "CallTransferAccepted",
                operation_context=ctx,
                result=ev.OK,
                extra={"transferTarget": target, **inv.extra},
                url=url,
            )
            call.report.transfer_target = rec.target
            call.report.ended_with_human = display_name(target)
            call.request_end("transfer", f"transferred to {rec.target}", ev.ENDED_BY_TRANSFER)
            return
        self.members.append(target)
        call.report.participants_added.append(rec.target)
        call.send_event(
            "AddParticipantSucceeded",
            operation_context=ctx,
            result=ev.OK,
            extra={"participant": target},
            url=url,
        )
        self.announce()
        if outcome.says is not None:
            call.spawn(self._human_says(target, outcome))

    async def _human_says(self, target: dict[str, Any], outcome: TargetOutcome) -> None:
        """The added human's line, mixed into what the caller (and the service) hears."""
        assert outcome.says is not None
        call = self.call
        rate = call.media.rate if call.media is not None else 16000
        pcm = await asyncio.to_thread(load_pcm, outcome.says, outcome.says_rate, rate)
        await asyncio.sleep(outcome.says_after_s)
        if any(p["rawId"] == target["rawId"] for p in self.members):
            call.voices.add(str(target["rawId"]), pcm.tobytes())

    def cancel_invitation(
        self, invitation_id: str, operation_context: str | None, url: str | None
    ) -> None:
        """participants:cancelAddParticipant; LookupError for an unknown invitation."""
        call = self.call
        inv = self.invitations.get(invitation_id)
        if inv is None or inv.action != "add":
            raise LookupError(invitation_id)
        extra = {"invitationId": invitation_id}
        if inv.done or inv.task is None or inv.task.done():
            call.send_event(
                "CancelAddParticipantFailed",
                operation_context=operation_context,
                result=ev.INVALID_STATE,
                extra=extra,
                url=url,
            )
            return
        inv.task.cancel()
        inv.done = True
        rec = inv.record
        rec.outcome = "cancelled"
        rec.resolved_s = call.since_start()
        rec.result = ev.INVITATION_CANCELLED.to_dict()
        call.send_event(
            "CancelAddParticipantSucceeded",
            operation_context=operation_context,
            result=ev.OK,
            extra=extra,
            url=url,
        )
        # The pending add itself ends too, as a failure with 487 Request Terminated.
        call.send_event(
            "AddParticipantFailed",
            operation_context=inv.operation_context,
            result=ev.INVITATION_CANCELLED,
            extra={"participant": inv.target},
            url=inv.url,
        )

    def remove(
        self, target: dict[str, Any], operation_context: str | None, url: str | None
    ) -> None:
        """participants:remove; LookupError when the target is not in the call."""
        call = self.call
        match = [p for p in self.members if p["rawId"] == target["rawId"]]
        if not match:
            raise LookupError(target["rawId"])
        raw_id = str(match[0]["rawId"])
        self.members.remove(match[0])
        call.voices.remove(raw_id)
        for rec in call.report.target_actions:
            if rec.action == "add" and rec.target == raw_id and rec.outcome == "answered":
                rec.removed_s = rec.removed_s or call.since_start()
        call.send_event(
            "RemoveParticipantSucceeded",
            operation_context=operation_context,
            result=ev.OK,
            extra={"participant": match[0]},
            url=url,
        )
        self.announce()
