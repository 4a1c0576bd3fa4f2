"""The ACS side of the service: incoming calls, callbacks and media sockets, per call.

Event Grid delivers at least once, so an incoming call is keyed by its event id and by its
incomingCallContext and answered once; the answer runs in the background so the webhook
returns at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from callbridge.agent.base import AgentFactory, CallInfo
from callbridge.call.ivr import IvrPlan
from callbridge.call.observer import CallObserver
from callbridge.call.policy import CallPolicy
from callbridge.call.session import CallLimits, CallSession
from callbridge.call.tools import ToolRegistry
from callbridge.config import Settings
from callbridge.logs import call_id_var
from callbridge.telephony.acs.call_tokens import CallTokens
from callbridge.telephony.acs.control import CallControl, CallControlError
from callbridge.telephony.acs.events import CallEvent, IncomingCall

log = logging.getLogger(__name__)


class SeenKeys:
    """Keys seen in the last `ttl_s` seconds (in memory; a Redis set across replicas)."""

    def __init__(self, ttl_s: float = 900.0) -> None:
        self._ttl = ttl_s
        self._keys: dict[str, float] = {}

    def add_if_new(self, *keys: str) -> bool:
        now = time.monotonic()
        if len(self._keys) > 4096:
            self._keys = {k: t for k, t in self._keys.items() if now - t < self._ttl}
        if any(now - self._keys.get(k, -1e18) < self._ttl for k in keys):
            return False
        for k in keys:
            self._keys[k] = now
        return True


class AcsEdge:
    def __init__(
        self,
        settings: Settings,
        control: CallControl,
        agent_factory: AgentFactory,
        tokens: CallTokens,
        tools_for: Callable[[CallInfo], ToolRegistry] | None = None,
        policy_for: Callable[[CallInfo], CallPolicy] | None = None,
        ivr_for: Callable[[CallInfo], IvrPlan | None] | None = None,
    ) -> None:
        self.settings = settings
        self.tools_for = tools_for or (lambda info: ToolRegistry())
        self.policy_for = policy_for or (lambda info: CallPolicy())
        self.ivr_for = ivr_for or (lambda info: None)
        # Told about every call (records, live console, metrics); the app adds them.
        self.observers: list[CallObserver] = []
        self.control = control
        self.tokens = tokens
        self.agent_factory = agent_factory
        self.calls: dict[str, CallSession] = {}
        self.counters: dict[str, int] = {
            "incoming": 0,
            "duplicates": 0,
            "rejected_busy": 0,
            "answer_failed": 0,
            "ended": 0,
        }
        self.finished: list[CallSession] = []  # recent ended calls, for tests and stats
        self._seen = SeenKeys()
        self._tasks: set[asyncio.Task[None]] = set()
        self._limits = CallLimits(
            media_connect_timeout_s=settings.media_connect_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
            max_duration_s=settings.max_call_duration_s,
            chunk_ms=settings.outbound_chunk_ms,
            lead_ms=settings.playout_lead_ms,
        )

    # --- URLs handed to ACS -----------------------------------------------------------
    def callback_url(self, call_id: str) -> str:
        ttl = self.settings.max_call_duration_s + 600
        token = self.tokens.mint(call_id, "callback", ttl)
        return f"{self.settings.public_url}/acs/callbacks/{call_id}?token={quote(token)}"

    def media_url(self, call_id: str) -> str:
        # The token rides in the path: ACS keeps path segments; query strings on the
        # transport URL are unconfirmed (acs-protocol.md §4.1).
        token = self.tokens.mint(call_id, "media", self.settings.media_token_ttl_s)
        url = urlsplit(self.settings.public_url)
        scheme = "wss" if url.scheme == "https" else "ws"
        path = f"{url.path}/acs/media/{call_id}/{token}"
        return urlunsplit((scheme, url.netloc, path, "", ""))

    # --- incoming calls ------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_incoming(self, ev: IncomingCall) -> str:
        """Take an IncomingCall delivery; returns what was done with it."""
        ctx_key = "ctx:" + hashlib.sha256(ev.incoming_call_context.encode()).hexdigest()
        if not self._seen.add_if_new("evt:" + ev.event_id, ctx_key):
            self.counters["duplicates"] += 1
            log.info("duplicate IncomingCall %s ignored", ev.event_id)
            return "duplicate"
        self.counters["incoming"] += 1
        if len(self.calls) >= self.settings.max_calls:
            self.counters["rejected_busy"] += 1
            log.warning(
                "at the cap of %d calls: rejecting call from %s as busy",
                self.settings.max_calls,
                ev.caller.display,
            )
            self._spawn(self._reject(ev))
            return "rejected"
        call_id = uuid.uuid4().hex
        token = call_id_var.set(call_id)
        try:
            info = CallInfo(
                call_id=call_id,
                caller=ev.caller.display,
                callee=ev.callee.display,
                sample_rate=self.settings.sample_rate,
                correlation_id=ev.correlation_id,
                variables={**ev.sip_headers, **ev.voip_headers},
            )
            tools = self.tools_for(info)
            info = dataclasses.replace(info, tools=tools.schemas())
            session = CallSession(
                info,
                self.agent_factory,
                hang_up=lambda: self._hang_up(session),
                limits=self._limits,
                on_closed=self._closed,
                tools=tools,
                observers=self.observers,
                policy=self.policy_for(info),
                add_participant=lambda target, context, ring: self._add(
                    session, target, context, ring
                ),
                leave=lambda: self._leave(session),
                recordings_dir=self.settings.recordings_dir,
                ivr=self.ivr_for(info),
                transfer=lambda target, context: self._transfer(session, target, context),
            )
            self.calls[call_id] = session
            log.info(
                "incoming call from %s to %s (correlation %s)",
                info.caller,
                info.callee,
                ev.correlation_id,
            )
            self._spawn(self._answer(session, ev))
        finally:
            call_id_var.reset(token)
        return "answering"

    async def _reject(self, ev: IncomingCall) -> None:
        try:
            await self.control.reject(ev.incoming_call_context, "busy")
        except CallControlError as exc:
            log.warning("could not reject call: %s", exc)

    async def _answer(self, session: CallSession, ev: IncomingCall) -> None:
        call_id_var.set(session.call_id)
        started = time.perf_counter()
        try:
            answered = await self.control.answer(
                ev.incoming_call_context,
                self.callback_url(session.call_id),
                self.media_url(session.call_id),
                self.settings.audio_format,
            )
        except (CallControlError, OSError) as exc:
            self.counters["answer_failed"] += 1
            log.error("could not answer: %s", exc)
            await session.end(f"answer failed: {exc}", hang_up=False)
            return
        except Exception as exc:
            self.counters["answer_failed"] += 1
            log.exception("could not answer")
            await session.end(f"answer failed: {type(exc).__name__}", hang_up=False)
            return
        session.leg_id = answered.call_connection_id
        log.info(
            "answered in %.0f ms: call connection %s",
            (time.perf_counter() - started) * 1000,
            answered.call_connection_id,
        )
        if not session.ended:
            session.answered()

    async def _transfer(self, session: CallSession, target: str, context: dict[str, str]) -> None:
        if not session.leg_id:
            raise CallControlError("the call is not answered yet")
        await self.control.transfer(session.leg_id, target, context)

    async def _add(
        self, session: CallSession, target: str, context: dict[str, str], ring_timeout_s: int
    ) -> None:
        if not session.leg_id:
            raise CallControlError("the call is not answered yet")
        await self.control.add_participant(
            session.leg_id, target, context, ring_timeout_s, session.info.callee or None
        )

    async def _leave(self, session: CallSession) -> None:
        if session.leg_id:
            await self.control.leave(session.leg_id)

    async def _start_recording(self, session: CallSession) -> None:
        try:
            rec = await self.control.start_recording(
                session.leg_id, self.callback_url(session.call_id)
            )
        except CallControlError as exc:
            log.error("ACS recording did not start: %s", exc)
            session.note_event("recording_failed", error=str(exc))
            return
        log.info("ACS recording %s started", rec)
        session.note_event("recording_started", recording_id=rec)

    async def _hang_up(self, session: CallSession) -> None:
        if session.leg_id:
            await self.control.hang_up(session.leg_id)

    def _closed(self, session: CallSession) -> None:
        if self.calls.pop(session.call_id, None) is not None:
            self.counters["ended"] += 1
            self.finished.append(session)
            del self.finished[:-200]

    # --- callbacks ------------------------------------------------------------------------
    async def on_callbacks(self, call_id: str, events: list[CallEvent]) -> None:
        session = self.calls.get(call_id)
        for ev in events:
            if session is None:
                log.info("%s for a call that has ended: acknowledged", ev.name)
                continue
            if not self._seen.add_if_new(f"cb:{ev.event_id}"):
                continue
            result = ""
            if ev.code is not None:
                result = f" ({ev.code}/{ev.sub_code}{' ' + ev.message if ev.message else ''})"
            log.info("ACS event %s%s", ev.name, result)
            session.note_event(ev.name, code=ev.code, sub_code=ev.sub_code, message=ev.message)
            if ev.name == "CallConnected":
                session.connected()
                if session.policy.record_acs:
                    self._spawn(self._start_recording(session))
            elif ev.name == "CallDisconnected":
                await session.disconnected(f"call disconnected{result}")
            elif ev.name == "CallTransferAccepted":
                log.info("transfer accepted by %s", session.transferred_to)
            elif ev.name in ("CallTransferFailed", "AddParticipantFailed"):
                session.transfer_failed(f"{ev.name}{result}")
            elif ev.name == "AddParticipantSucceeded":
                who = ev.data.get("participant") or {}
                session.participant_added(str(who.get("rawId", "")).removeprefix("4:"))
            elif ev.name == "RecordingStateChanged":
                log.info("ACS recording is %s", ev.data.get("state"))
            elif ev.name in ("MediaStreamingFailed", "AnswerFailed"):
                await session.end(f"{ev.name}{result}", hang_up=ev.name != "AnswerFailed")
            elif ev.name in (
                "ParticipantsUpdated",
                "MediaStreamingStarted",
                "MediaStreamingStopped",
                "PlayCompleted",
                "PlayFailed",
                "PlayCanceled",
            ):
                pass
            else:
                log.info("event %s not handled", ev.name)

    # --- shutdown -----------------------------------------------------------------------
    async def shutdown(self) -> None:
        for session in list(self.calls.values()):
            await session.end("service shutting down", hang_up=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.control.close()
