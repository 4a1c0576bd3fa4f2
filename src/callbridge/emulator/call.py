"""One emulated call: ring the webhook, connect, stream media in real time, end.

A call has one clock task (the caller's 20 ms frame timer, which also plays the agent
audio), one WebSocket reader task and one callback sender task. REST handlers only
mutate state synchronously and schedule follow-up work, so they never block the clock.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from . import events as ev
from .callbacks import CallbackSender
from .caller import CallEnded, CallerAudio, TickWaiters, TimedEvents
from .clock import run_clock
from .eventgrid import EventGridDelivery
from .events import DTMF_NAMES
from .ids import (
    acs_user_identifier,
    display_name,
    identifier_for,
    new_id,
    new_incoming_call_context,
    new_server_call_id,
    phone_identifier,
)
from .jwt_issuer import JwtIssuer
from .media import MediaConnectError, MediaSocket, Outbound, metadata_frame
from .playout import FRAME_S, HeardTracker, PlayoutBuffer, Timeline, Voices
from .recognize import RecognizeOutcome, Recognizer, RecognizeSettings
from .recording import CallRecording
from .report import CallReport, EndedBy, RecognizeRecord, TargetRecord
from .script import CallScript, load_pcm
from .targets import TargetAction, TargetOutcome, TargetResponder

log = logging.getLogger("callbridge.emulator")
CONNECT_DELAY_S = 0.05  # let the answer response reach the service before CallConnected
PLAY_S = 0.1  # a play's "duration": PlayCompleted this long after the 202 (no audio)
ABANDONED = "abandoned by the caller while ringing"
CallState = Literal["ringing", "connecting", "connected", "transferAccepted", "disconnected"]


@dataclass
class CallEnv:
    """What a call needs from the emulator."""

    session: aiohttp.ClientSession
    issuer: JwtIssuer
    eventgrid: EventGridDelivery
    webhook_url: str
    acs_number: str
    answer_timeout_s: float
    responder: TargetResponder


@dataclass
class EndRequest:
    ended_by: EndedBy
    reason: str
    result: ev.ResultInfo


@dataclass
class MediaConfig:
    """mediaStreamingOptions from the answer request (§4.1)."""

    transport_url: str
    audio_format: str
    rate: int
    start: bool
    bidirectional: bool
    dtmf: bool


class AnswerError(Exception):
    """Answering is not possible; message goes into the 400 body."""


class MediaBusyError(Exception):
    """A recognize is already running and the new one does not interrupt it."""


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


@dataclass
class PendingPlay:
    operation_context: str | None
    url: str | None
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class EmulatedCall:
    def __init__(self, env: CallEnv, script: CallScript, *, live: bool = False) -> None:
        self.env = env
        self.script = script
        self.live = live  # driven by a LiveCall scenario (start_call) rather than place_call
        self.tail_s = script.effective_tail_s(live)
        self.report = CallReport()
        self.t0 = time.monotonic()
        self.caller = phone_identifier(script.from_number)
        self.callee = identifier_for(script.to_number or env.acs_number)
        self.incoming_call_context = new_incoming_call_context()
        self.server_call_id = new_server_call_id()
        self.correlation_id = new_id()
        self.event_id = new_id()
        self.call_connection_id: str | None = None
        self.state: CallState = "ringing"
        # "answered" | "rejected (busy)" | "redirected to 4:+1..." | "not answered within 10 s"
        self.ring_outcome: str | None = None
        self._decided = asyncio.Event()
        self.api_version = ""
        self.callback_uri = ""
        self.operation_context: str | None = None
        self.media: MediaConfig | None = None
        self.subscription_id = new_id()
        self.media_state = "disabled"
        self.socket: MediaSocket | None = None
        self._media_started_event_sent = False
        self.participants = [self.caller]
        self.bot = acs_user_identifier(f"8:acs:{env.issuer.audience}_{new_id()}")
        self.sequence_number = 0
        self.continuous_dtmf = False
        self.continuous_dtmf_context: str | None = None
        self.dtmf_sequence = 0
        self.end_request: EndRequest | None = None
        self.invitations: dict[str, Invitation] = {}
        self.voices = Voices()  # simulated humans speaking, mixed in by the clock
        self.recordings: list[CallRecording] = []
        self.recognizer: Recognizer | None = None
        self.plays: list[PendingPlay] = []
        self._callbacks = CallbackSender(env.session, env.issuer, self.report.callbacks, self.t0)
        self._tasks: set[asyncio.Task[None]] = set()
        self.clock_t0: float | None = None
        self.tick = 0  # ticks played so far = the next tick's index
        self.playout = PlayoutBuffer(0)
        # Caller side, driven by the clock; LiveCall queues speech/DTMF and waits here.
        self.caller_audio = CallerAudio(640)
        self.timed = TimedEvents()
        self.waiters = TickWaiters()
        self.heard = HeardTracker()  # replaced with the real ones when the clock starts
        self.timeline = Timeline(640, record_caller=False)
        self.delivered = asyncio.Event()  # IncomingCall has been delivered to the webhook
        self.media_ready = asyncio.Event()  # media socket open and the clock running
        self.caller_closed = asyncio.Event()  # the caller's side is over (see close_caller)
        self.ended_error: CallEnded | None = None
        self._service_left = False
        self._report_seed()

    def _report_seed(self) -> None:
        r = self.report
        r.server_call_id = self.server_call_id
        r.correlation_id = self.correlation_id
        r.incoming_event_id = self.event_id
        r.recording_path = self.script.record_path

    def since_start(self) -> float:
        """Seconds since the call was placed (the time base of report records)."""
        return round(time.monotonic() - self.t0, 3)

    def media_time(self) -> float | None:
        """Seconds since media start (the clock's time base), None before it started."""
        if self.clock_t0 is None:
            return None
        return round(asyncio.get_running_loop().time() - self.clock_t0, 3)

    def clock_started(self) -> None:
        if self.socket is not None:
            self.media_ready.set()

    def close_caller(self) -> None:
        """The call is over for the caller: fail whatever a LiveCall is still waiting on."""
        if self.caller_closed.is_set():
            return
        end = self.end_request
        if end is not None:
            why = f"the call ended ({end.ended_by}: {end.reason})"
        elif self.report.ended_by is not None:
            why = f"the call ended ({self.report.ended_by}: {self.report.end_reason})"
        else:
            why = "the call ended (the emulator stopped during the call)"
        self.ended_error = exc = CallEnded(why)
        self.caller_audio.close(exc)
        self.timed.close(exc)
        self.waiters.close(exc)
        self.caller_closed.set()

    # ---------------------------------------------------------------- REST-side actions

    @property
    def active(self) -> bool:
        return self.state in ("connecting", "connected") and self.end_request is None

    def answer(self, body: dict[str, Any], api_version: str, media: MediaConfig | None) -> str:
        """Accept an answer request; returns the new callConnectionId."""
        self.report.answer_attempts += 1
        if self.ring_outcome is not None or self.state != "ringing":
            raise AnswerError(f"Call cannot be answered: {self._why_not_ringing()}.")
        self.ring_outcome = "answered"
        self.state = "connecting"
        self.call_connection_id = new_id()
        self.api_version = api_version
        self.callback_uri = str(body["callbackUri"])
        ctx = body.get("operationContext")
        self.operation_context = str(ctx) if ctx is not None else None
        self.media = media
        if media is not None:
            self.media_state = "inactive"
            self.playout = PlayoutBuffer(media.rate // 50 * 2)
            self.caller_audio = CallerAudio(media.rate // 50 * 2)
            self.report.audio_format = media.audio_format
            self.report.sample_rate = media.rate
            self.report.bidirectional = media.bidirectional
        self.report.answered = True
        self.report.answer_count += 1
        self.report.call_connection_id = self.call_connection_id
        self._decided.set()
        return self.call_connection_id

    def decline(self, outcome: str) -> None:
        """reject / redirect (§2.4: no callback events for either)."""
        if self.ring_outcome is not None or self.state != "ringing":
            raise AnswerError(f"Call cannot be {outcome.split()[0]}: {self._why_not_ringing()}.")
        self.ring_outcome = outcome
        self._decided.set()

    def _why_not_ringing(self) -> str:
        outcome = self.ring_outcome or "ended"
        if outcome.startswith(("answered", "rejected", "redirected")):
            return f"it was already {outcome}"
        return f"it stopped ringing ({outcome})"

    def properties(self) -> dict[str, Any]:
        """CallConnectionProperties JSON (§2.4)."""
        props: dict[str, Any] = {
            "callConnectionId": self.call_connection_id,
            "serverCallId": self.server_call_id,
            "targets": [self.callee],
            "callConnectionState": self.state,
            "callbackUri": self.callback_uri,
            "source": self.caller,
            "correlationId": self.correlation_id,
        }
        if "phoneNumber" in self.callee:
            props["answeredFor"] = {"value": self.callee["phoneNumber"]["value"]}
        if self.media is not None:
            props["mediaStreamingSubscription"] = {
                "id": self.subscription_id,
                "state": self.media_state,
                "subscribedContentTypes": ["audio"],
            }
        return props

    def humans_in_call(self) -> list[dict[str, Any]]:
        """Participants other than the caller (added humans), bot excluded."""
        return [p for p in self.participants if p["rawId"] != self.caller["rawId"]]

    def service_hung_up(self, for_everyone: bool) -> None:
        """DELETE (``hang_up(False)``: the bot leaves) or :terminate (for everyone).

        A DELETE in a 1:1 call ends it for the caller too (unless the script says
        ``hangup_when_agent_hangs_up=False``); with a human added (warm transfer) only the
        bot leaves and the caller stays on with the human.
        """
        if self.report.service_hung_up_s is None:
            self.report.service_hung_up_s = self.media_time()
        humans = self.humans_in_call()
        if for_everyone:
            self.request_end("service", "service terminated the call", ev.ENDED_BY_APP)
        elif self.script.hangup_when_agent_hangs_up and not humans:
            self.request_end("service", "service hung up (DELETE)", ev.ENDED_BY_APP)
        else:
            # The bot's leg ends (REST now 404s for it, the service gets CallDisconnected
            # and its socket closes); the caller stays on the line until they hang up.
            if humans:
                self.report.ended_with_human = display_name(humans[0])
            self.state = "disconnected"
            self._service_left = True
            self._drop_recognizer("call ended")
            self.spawn(self._bot_leaves())

    async def _bot_leaves(self) -> None:
        sock, self.socket = self.socket, None
        if sock is not None:
            await sock.close()
            self.report.media_closed_by = "emulator"
        self._media_stopped(self.operation_context, None, "subscriptionStopped")
        self.send_event(
            "CallDisconnected", operation_context=self.operation_context, result=ev.ENDED_BY_APP
        )

    def caller_hangs_up(self, reason: str) -> None:
        """The caller puts the phone down: while ringing that abandons the call."""
        if self.state == "ringing" and self.ring_outcome is None:
            self.ring_outcome = ABANDONED
            self._decided.set()
        else:
            self.request_end("caller", reason, ev.ENDED_BY_CALLER)

    def request_end(self, ended_by: EndedBy, reason: str, result: ev.ResultInfo) -> None:
        if self.end_request is None:
            self.end_request = EndRequest(ended_by, reason, result)
            self.state = "transferAccepted" if ended_by == "transfer" else "disconnected"

    def send_event(
        self,
        name: str,
        *,
        operation_context: str | None = None,
        result: ev.ResultInfo | None = None,
        extra: dict[str, Any] | None = None,
        url: str | None = None,
        source: str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        assert self.call_connection_id is not None
        event = ev.callback_event(
            name,
            call_connection_id=self.call_connection_id,
            server_call_id=self.server_call_id,
            correlation_id=self.correlation_id,
            api_version=self.api_version,
            operation_context=operation_context,
            result=result,
            extra=extra,
            source=source,
        )
        self._callbacks.send(url or self.callback_uri, event, delay_s)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def participants_updated(self) -> None:
        # §3.3 ParticipantsUpdated: sequenceNumber + participants, no operationContext.
        self.sequence_number += 1
        self.send_event(
            "ParticipantsUpdated",
            extra={
                "sequenceNumber": self.sequence_number,
                "participants": [
                    {"identifier": p, "isMuted": False, "isOnHold": False}
                    for p in [*self.participants, self.bot]
                ],
            },
        )

    # ------------------------------------------------------- transfers and humans

    def start_target_action(
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
        extra = extra or {}
        inv_id = new_id()
        transferee = extra.get("transferee")
        record = TargetRecord(
            action=action,
            target=str(target["rawId"]),
            requested_s=self.since_start(),
            invitation_id=inv_id if action == "add" else None,
            operation_context=operation_context,
            custom_calling_context=copy.deepcopy(custom_context),
            invitation_timeout_s=timeout_s,
            transferee=str(transferee["rawId"]) if transferee else None,
        )
        self.report.target_actions.append(record)
        inv = Invitation(inv_id, action, target, operation_context, url, extra, record, timeout_s)
        self.invitations[inv_id] = inv
        inv.task = self.spawn(self._ring_target(inv))
        return inv

    async def _ring_target(self, inv: Invitation) -> None:
        """After the 202 of transferToParticipant / participants:add (§3.2/§3.3)."""
        assert self.call_connection_id is not None
        outcome = await self.env.responder(
            inv.target, inv.action, self.call_connection_id, invitation_timeout_s=inv.timeout_s
        )
        inv.done = True
        rec = inv.record
        rec.resolved_s = self.since_start()
        if not self.active:
            rec.outcome = "abandoned"
            return
        rec.outcome = outcome.label
        target, ctx, url = inv.target, inv.operation_context, inv.url
        if not outcome.accepted:
            failure = outcome.failure or ev.NO_ANSWER
            rec.result = failure.to_dict()
            if inv.action == "transfer":
                self.send_event(
                    "CallTransferFailed", operation_context=ctx, result=failure, url=url
                )
            else:
                self.send_event(
                    "AddParticipantFailed",
                    operation_context=ctx,
                    result=failure,
                    extra={"participant": target},
                    url=url,
                )
            return
        if inv.action == "transfer":
            self.send_event(
                "CallTransferAccepted",
                operation_context=ctx,
                result=ev.OK,
                extra={"transferTarget": target, **inv.extra},
                url=url,
            )
            self.report.transfer_target = rec.target
            self.report.ended_with_human = display_name(target)
            self.request_end("transfer", f"transferred to {rec.target}", ev.ENDED_BY_TRANSFER)
            return
        self.participants.append(target)
        self.report.participants_added.append(rec.target)
        self.send_event(
            "AddParticipantSucceeded",
            operation_context=ctx,
            result=ev.OK,
            extra={"participant": target},
            url=url,
        )
        self.participants_updated()
        if outcome.says is not None:
            self.spawn(self._human_says(target, outcome))

    async def _human_says(self, target: dict[str, Any], outcome: TargetOutcome) -> None:
        """The added human's line, mixed into what the caller (and the service) hears."""
        assert outcome.says is not None
        rate = self.media.rate if self.media is not None else 16000
        pcm = await asyncio.to_thread(load_pcm, outcome.says, outcome.says_rate, rate)
        await asyncio.sleep(outcome.says_after_s)
        if any(p["rawId"] == target["rawId"] for p in self.participants):
            self.voices.add(str(target["rawId"]), pcm.tobytes())

    def cancel_invitation(
        self, invitation_id: str, operation_context: str | None, url: str | None
    ) -> None:
        """participants:cancelAddParticipant; LookupError for an unknown invitation."""
        inv = self.invitations.get(invitation_id)
        if inv is None or inv.action != "add":
            raise LookupError(invitation_id)
        extra = {"invitationId": invitation_id}
        if inv.done or inv.task is None or inv.task.done():
            self.send_event(
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
        rec.resolved_s = self.since_start()
        rec.result = ev.INVITATION_CANCELLED.to_dict()
        self.send_event(
            "CancelAddParticipantSucceeded",
            operation_context=operation_context,
            result=ev.OK,
            extra=extra,
            url=url,
        )
        # The pending add itself ends too, as a failure with 487 Request Terminated.
        self.send_event(
            "AddParticipantFailed",
            operation_context=inv.operation_context,
            result=ev.INVITATION_CANCELLED,
            extra={"participant": inv.target},
            url=inv.url,
        )

    def remove_participant(
        self, target: dict[str, Any], operation_context: str | None, url: str | None
    ) -> None:
        """participants:remove; LookupError when the target is not in the call."""
        match = [p for p in self.participants if p["rawId"] == target["rawId"]]
        if not match:
            raise LookupError(target["rawId"])
        raw_id = str(match[0]["rawId"])
        self.participants.remove(match[0])
        self.voices.remove(raw_id)
        for rec in self.report.target_actions:
            if rec.action == "add" and rec.target == raw_id and rec.outcome == "answered":
                rec.removed_s = rec.removed_s or self.since_start()
        self.send_event(
            "RemoveParticipantSucceeded",
            operation_context=operation_context,
            result=ev.OK,
            extra={"participant": match[0]},
            url=url,
        )
        self.participants_updated()

    # ------------------------------------------------------------ media operations

    def start_play(self, operation_context: str | None, url: str | None) -> None:
        """:play — no audio is played; PlayCompleted after PLAY_S unless cancelled."""
        play = PendingPlay(operation_context, url)
        self.plays.append(play)
        play.task = self.spawn(self._play(play))

    async def _play(self, play: PendingPlay) -> None:
        await asyncio.sleep(PLAY_S)
        self.plays.remove(play)
        if self.active:
            self.send_event(
                "PlayCompleted",
                operation_context=play.operation_context,
                result=ev.OK,
                url=play.url,
            )

    def start_recognize(
        self,
        settings: RecognizeSettings,
        body: dict[str, Any],
        operation_context: str | None,
        url: str | None,
    ) -> None:
        """:recognize; MediaBusyError if one runs and this one doesn't interrupt it."""
        if self.recognizer is not None:
            if not body.get("interruptCallMediaOperation"):
                raise MediaBusyError
            self._recognize_canceled()
        options = body.get("recognizeOptions")
        record = RecognizeRecord(
            input_type=settings.input_type,
            options=copy.deepcopy(options) if isinstance(options, dict) else {},
            started_s=round(self.tick * FRAME_S, 3),
            operation_context=operation_context,
        )
        self.report.recognitions.append(record)
        self.recognizer = Recognizer(settings, record, operation_context, url)

    def cancel_media_operations(self) -> None:
        """:cancelAllMediaOperations — PlayCanceled / RecognizeCanceled for what runs."""
        plays, self.plays = self.plays, []
        for play in plays:
            if play.task is not None:
                play.task.cancel()
            self.send_event("PlayCanceled", operation_context=play.operation_context, url=play.url)
        self._recognize_canceled()

    def _recognize_canceled(self) -> None:
        rz = self.recognizer
        if rz is None:
            return
        self._drop_recognizer("RecognizeCanceled")
        # §3.2: RecognizeCanceled has no extra fields (the SDK fixture has no
        # resultInformation either).
        self.send_event("RecognizeCanceled", operation_context=rz.operation_context, url=rz.url)

    def _drop_recognizer(self, outcome: str) -> None:
        rz, self.recognizer = self.recognizer, None
        if rz is not None:
            rz.record.outcome = outcome
            rz.record.ended_s = round(self.tick * FRAME_S, 3)

    def dtmf_pressed(self, now_s: float, digit: str) -> None:
        """The clock fired a caller DTMF tone: feed the running recognize, if any."""
        rz = self.recognizer
        if rz is not None and self.active:
            self._recognize_result(rz, rz.on_tone(DTMF_NAMES.get(digit, digit), now_s))

    def recognize_tick(self, now_s: float) -> None:
        rz = self.recognizer
        if rz is not None and self.active:
            self._recognize_result(rz, rz.on_tick(now_s))

    def _recognize_result(self, rz: Recognizer, outcome: RecognizeOutcome | None) -> None:
        if outcome is None:
            return
        self._drop_recognizer(outcome.event)
        rz.record.sub_code = outcome.result.sub_code
        self.send_event(
            outcome.event,
            operation_context=rz.operation_context,
            result=outcome.result,
            extra=outcome.extra,
            url=rz.url,
        )

    def start_media_later(self, operation_context: str | None, url: str | None) -> None:
        """:startMediaStreaming — open the socket now (the clock is already running)."""
        if self.socket is None or not self.socket.open:
            self.spawn(self._start_media_or_end(operation_context, url))

    async def _start_media_or_end(self, operation_context: str | None, url: str | None) -> None:
        if not await self._start_media(operation_context, url) and self.active:
            self.request_end("media_failed", "media WebSocket could not be opened", ev.MEDIA_FAILED)

    async def stop_media(self, operation_context: str | None, url: str | None) -> None:
        sock, self.socket = self.socket, None
        if sock is not None:
            await sock.close()
            self.report.media_closed_by = "emulator"
            self._media_stopped(operation_context, url, "subscriptionStopped")

    # ------------------------------------------------------------------------ runner

    async def run(self) -> CallReport:
        graceful = False
        try:
            if await self._ring():
                await asyncio.sleep(CONNECT_DELAY_S)
                await self._connected()
            graceful = True
        finally:
            await self._finish(graceful)
        return self.report

    async def _ring(self) -> bool:
        data: dict[str, Any] = {
            "to": self.callee,
            "from": self.caller,
            "serverCallId": self.server_call_id,
            "callerDisplayName": self.script.caller_display_name,
            "incomingCallContext": self.incoming_call_context,
            "correlationId": self.correlation_id,
        }
        if self.script.custom_context:
            # §1.3: header names and values exactly as the script gives them (X-MS-Custom-*,
            # UUI); both maps are always present, as in the spec example.
            context = copy.deepcopy(self.script.custom_context)
            context.setdefault("sipHeaders", {})
            context.setdefault("voipHeaders", {})
            data["customContext"] = context
        event = ev.incoming_call_event(
            data, schema=self.env.eventgrid.schema, event_id=self.event_id
        )
        timeout = self.script.answer_timeout_s or self.env.answer_timeout_s
        deadline = time.monotonic() + timeout
        for count in range(2 if self.script.duplicate_delivery else 1):
            delivery = await self.env.eventgrid.deliver(self.env.webhook_url, event, count)
            self.report.webhook.append(delivery)
        self.delivered.set()
        try:
            await asyncio.wait_for(self._decided.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pass
        if self.ring_outcome == "answered":
            return True
        if self.ring_outcome is None:
            self.ring_outcome = f"not answered within {timeout:g} s"
        self.state = "disconnected"
        self.report.ended_by = "caller" if self.ring_outcome == ABANDONED else "not_answered"
        self.report.end_reason = f"call {self.ring_outcome}"
        bad = [w for w in self.report.webhook if w.status is None or not 200 <= w.status <= 204]
        if bad:
            said = ", ".join(str(w.status) if w.status is not None else str(w.error) for w in bad)
            self.report.end_reason += f"; the webhook answered IncomingCall with {said}"
        return False

    async def _connected(self) -> None:
        if self.end_request is None:
            self.state = "connected"
            self.send_event(
                "CallConnected", operation_context=self.operation_context, result=ev.CONNECTED
            )
            self.participants_updated()
        media = self.media
        if media is not None and media.start and self.end_request is None:
            if not await self._start_media(self.operation_context, None):
                self.request_end(
                    "media_failed", "media WebSocket could not be opened", ev.MEDIA_FAILED
                )
        if self.end_request is None:
            await run_clock(self)
        await self._hang_up()

    async def _start_media(self, operation_context: str | None, url: str | None) -> bool:
        media = self.media
        assert media is not None and self.call_connection_id is not None
        headers = {  # §4.2 upgrade headers
            "Authorization": f"Bearer {self.env.issuer.media_token()}",
            "x-ms-call-connection-id": self.call_connection_id,
            "x-ms-call-correlation-id": self.correlation_id,
        }
        sock = MediaSocket(
            self.env.session,
            media.transport_url,
            headers,
            self._on_outbound,
            self._on_socket_closed,
        )
        try:
            await sock.connect()
        except MediaConnectError as exc:
            log.warning("media connect to %s failed: %s", media.transport_url, exc)
            self.report.end_reason = f"media WebSocket to {media.transport_url} failed: {exc}"
            self.send_event(
                "MediaStreamingFailed",
                operation_context=operation_context,
                result=ev.MEDIA_FAILED,
                extra=ev.media_streaming_update(
                    "mediaStreamingFailed", "initialWebSocketConnectionFailed"
                ),
                url=url,
            )
            return False
        await sock.send(metadata_frame(self.subscription_id, media.rate))
        if not self.active:
            await sock.close()
            return False
        self.socket = sock
        self.media_state = "active"
        if self.clock_t0 is not None:  # :startMediaStreaming while the clock already runs
            self.media_ready.set()
        self.report.media_connected = True
        if self.report.media_start_s is None:
            self.report.media_start_s = round(time.monotonic() - self.t0, 3)
        self._media_started_event_sent = True
        self.send_event(
            "MediaStreamingStarted",
            operation_context=operation_context,
            result=ev.OK,
            extra=ev.media_streaming_update("mediaStreamingStarted", "subscriptionStarted"),
            url=url,
        )
        return True

    def _media_stopped(self, operation_context: str | None, url: str | None, details: str) -> None:
        if self._media_started_event_sent:
            self._media_started_event_sent = False
            self.media_state = "inactive"
            self.send_event(
                "MediaStreamingStopped",
                operation_context=operation_context,
                result=ev.OK,
                extra=ev.media_streaming_update("mediaStreamingStopped", details),
                url=url,
            )

    def _on_socket_closed(self) -> None:
        log.info("call %s: service closed the media socket", self.call_connection_id)
        self.socket = None
        self.report.media_closed_by = "service"
        if self.active:
            self._media_stopped(self.operation_context, None, "streamConnectionInterrupted")

    def _on_outbound(self, out: Outbound, raw: str) -> None:
        r = self.report
        r.frames_received += 1
        if out.kind == "audio" and self.media is not None and self.media.bidirectional:
            r.outbound_bytes += len(out.pcm)
            self.playout.push(out.pcm, self.tick)
        elif out.kind == "stop":
            now = asyncio.get_running_loop().time()
            r.stop_audio_times.append(round(now - (self.clock_t0 or now), 3))
            self.playout.flush()
        else:
            reason = out.reason or "AudioData but enableBidirectional was not set"
            r.invalid_outbound_frames += 1
            if len(r.invalid_outbound_samples) < 5:
                r.invalid_outbound_samples.append(f"{reason}: {raw[:120]}")

    async def _hang_up(self) -> None:
        end = self.end_request or EndRequest("timeout", "call ended", ev.ENDED_BY_CALLER)
        sock, self.socket = self.socket, None
        if sock is not None:
            await sock.close()  # normal close, whoever ended the call
            if self.report.media_closed_by is None:
                self.report.media_closed_by = "emulator"
        self.state = "disconnected"
        self._drop_recognizer("call ended")
        for recording in self.recordings:
            recording.call_ended(notify=not self._service_left)
        if not self._service_left:  # else the service already got its CallDisconnected
            self._media_stopped(self.operation_context, None, "subscriptionStopped")
            self.send_event(
                "CallDisconnected", operation_context=self.operation_context, result=end.result
            )
        self.report.ended_by = end.ended_by
        if not (end.ended_by == "media_failed" and self.report.end_reason):
            self.report.end_reason = end.reason

    async def _finish(self, graceful: bool) -> None:
        """Release everything; when cancelled (emulator stopping) don't wait for callbacks."""
        self.state = "disconnected"
        self.delivered.set()  # start_call() must not wait for a delivery that never came
        if not graceful and self.report.ended_by is None:
            self.report.ended_by = "timeout"
            self.report.end_reason = "emulator stopped during the call"
        self.close_caller()  # before the awaits below, which a stopping emulator may cut
        for inv in self.invitations.values():
            if not inv.done:
                inv.done = True
                inv.record.outcome = "abandoned"
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.socket is not None:
            await self.socket.close()
            self.socket = None
        if graceful:
            await self._callbacks.drain()
        await self._callbacks.close()
        self.report.duration_s = round(time.monotonic() - self.t0, 3)
