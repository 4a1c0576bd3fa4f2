"""One emulated call: ring the webhook, connect, stream media in real time, end.

A call has one clock task (the caller's 20 ms frame timer, which also plays the agent
audio), one WebSocket reader task and one callback sender task. REST handlers only
mutate state synchronously and schedule follow-up work, so they never block the clock.

This module holds the call's life (ringing, answer, connect, hang-up) and its callback
events; its parts live beside it: the media socket (``media_stream.py``), the media
actions (``media_operations.py``), the participants (``participants.py``), the
recordings (``recording.py``) and the clock (``clock.py``).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from . import events as ev
from .callbacks import CallbackSender
from .caller import CallEndedError, CallerSpeechQueue, TickWaiters, TimedEvents
from .clock import run_clock
from .eventgrid import EventGridDelivery
from .ids import (
    display_name,
    identifier_for,
    new_id,
    new_incoming_call_context,
    new_server_call_id,
    phone_identifier,
)
from .jwt_issuer import JwtIssuer
from .media_operations import MediaOperations
from .media_stream import MediaConfig, MediaStream
from .participants import CallParticipants
from .playout import HeardTracker, PlayoutBuffer, Timeline, Voices
from .recording import CallRecording
from .report import CallReport, EndedBy
from .script import CallScript
from .targets import TargetResponder

log = logging.getLogger("callbridge.emulator")
CONNECT_DELAY_S = 0.05  # let the answer response reach the service before CallConnected
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


class AnswerError(Exception):
    """Answering is not possible; message goes into the 400 body."""


class EmulatedCall:
    def __init__(self, env: CallEnv, script: CallScript, *, live: bool = False) -> None:
        self.env = env
        self.script = script
        self.live = live  # driven by a LiveCaller (start_call) rather than place_call
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
        self.stream = MediaStream(self)
        self.media_ops = MediaOperations(self)
        self.participants = CallParticipants(self)
        self.end_request: EndRequest | None = None
        self.voices = Voices()  # simulated humans speaking, mixed in by the clock
        self.recordings: list[CallRecording] = []
        self._callbacks = CallbackSender(env.session, env.issuer, self.report.callbacks, self.t0)
        self._tasks: set[asyncio.Task[None]] = set()
        self.clock_t0: float | None = None
        self.tick = 0  # ticks played so far = the next tick's index
        self.playout = PlayoutBuffer(0)
        # Caller side, driven by the clock; a LiveCaller queues speech/DTMF and waits here.
        self.caller_speech = CallerSpeechQueue(640)
        self.timed = TimedEvents()
        self.waiters = TickWaiters()
        self.heard = HeardTracker()  # replaced with the real ones when the clock starts
        self.timeline = Timeline(640, record_caller=False)
        self.delivered = asyncio.Event()  # IncomingCall has been delivered to the webhook
        self.media_ready = asyncio.Event()  # media socket open and the clock running
        self.caller_closed = asyncio.Event()  # the caller's side is over (see close_caller)
        self.ended_error: CallEndedError | None = None
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
        if self.stream.socket is not None:
            self.media_ready.set()

    def close_caller(self) -> None:
        """The call is over for the caller: fail whatever a LiveCaller is still waiting on."""
        if self.caller_closed.is_set():
            return
        end = self.end_request
        if end is not None:
            why = f"the call ended ({end.ended_by}: {end.reason})"
        elif self.report.ended_by is not None:
            why = f"the call ended ({self.report.ended_by}: {self.report.end_reason})"
        else:
            why = "the call ended (the emulator stopped during the call)"
        self.ended_error = exc = CallEndedError(why)
        self.caller_speech.close(exc)
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
            self.stream.state = "inactive"
            self.playout = PlayoutBuffer(media.rate // 50 * 2)
            self.caller_speech = CallerSpeechQueue(media.rate // 50 * 2)
            self.report.audio_format = media.audio_format
            self.report.sample_rate = media.rate
            self.report.bidirectional = media.bidirectional
        self.report.answered = True
        self.report.answer_count += 1
        self.report.call_connection_id = self.call_connection_id
        self._decided.set()
        return self.call_connection_id

    def decline(self, outcome: str) -> None:
        """reject / redirect (neither sends the service a callback event)."""
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
        """CallConnectionProperties JSON."""
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
            props["mediaStreamingSubscription"] = self.stream.subscription()
        return props

    def service_hung_up(self, for_everyone: bool) -> None:
        """DELETE (``hang_up(False)``: the bot leaves) or :terminate (for everyone).

        A DELETE in a 1:1 call ends it for the caller too (unless the script says
        ``hangup_when_agent_hangs_up=False``); with a human added (warm transfer) only the
        bot leaves and the caller stays on with the human.
        """
        if self.report.service_hung_up_s is None:
            self.report.service_hung_up_s = self.media_time()
        humans = self.participants.humans()
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
            self.media_ops.drop_recognizer("call ended")
            self.spawn(self._bot_leaves())

    async def _bot_leaves(self) -> None:
        await self.stream.bot_left()
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
            # Header names and values exactly as the script gives them (X-MS-Custom-*,
            # UUI); both maps are always present, as in the public IncomingCall example.
            context = copy.deepcopy(self.script.custom_context)
            context.setdefault("sipHeaders", {})
            context.setdefault("voipHeaders", {})
            data["customContext"] = context
        event = ev.incoming_call_event(
            data, schema=self.env.eventgrid.schema, event_id=self.event_id
        )
        timeout = self.script.answer_timeout_s or self.env.answer_timeout_s
        deadline = time.monotonic() + timeout
        other = self.script.duplicate_webhook if self.script.duplicate_delivery else None
        if other:  # to two replicas at once
            both = await asyncio.gather(
                self.env.eventgrid.deliver(self.env.webhook_url, event, 0),
                self.env.eventgrid.deliver(other, event, 1),
            )
            self.report.webhook.extend(both)
        else:
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
            self.participants.announce()
        media = self.media
        if media is not None and media.start and self.end_request is None:
            if not await self.stream.start(self.operation_context, None):
                self.request_end(
                    "media_failed", "media WebSocket could not be opened", ev.MEDIA_FAILED
                )
        if self.end_request is None:
            await run_clock(self)
        await self._hang_up()

    async def _hang_up(self) -> None:
        end = self.end_request or EndRequest("timeout", "call ended", ev.ENDED_BY_CALLER)
        await self.stream.hang_up()
        self.state = "disconnected"
        self.media_ops.drop_recognizer("call ended")
        for recording in self.recordings:
            recording.call_ended(notify=not self._service_left)
        if not self._service_left:  # else the service already got its CallDisconnected
            self.stream.stopped(self.operation_context, None, "subscriptionStopped")
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
        self.participants.abandon_ringing()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.stream.close_socket()
        if graceful:
            await self._callbacks.drain()
        await self._callbacks.close()
        self.report.duration_s = round(time.monotonic() - self.t0, 3)
