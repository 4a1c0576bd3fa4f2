"""The ACS side of the service: incoming calls, callbacks and media sockets, per call.

Event Grid delivers at least once, so an incoming call is keyed by its event id and by its
incomingCallContext and answered once; the answer runs in the background so the webhook
returns at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Coroutine
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from callbridge.call.line import Lines
from callbridge.call.observer import CallObserver
from callbridge.call.registry import CallRegistry, record_rejected
from callbridge.call.session import CallSession
from callbridge.call.watchers import CallLimits
from callbridge.cancelling import cancel_and_wait
from callbridge.config import Settings
from callbridge.core.call_info import CallInfo
from callbridge.core.ending import EndCause, EndReason
from callbridge.core.spacing import Spacing
from callbridge.logs import call_id_var
from callbridge.shared import SharedState, SharedStateError
from callbridge.shared.state import MemoryState
from callbridge.telephony.acs.call_tokens import CallTokens, TokenClaims, TokenError
from callbridge.telephony.acs.control import CallControl, CallControlError
from callbridge.telephony.acs.events import CallEvent, IncomingCall
from callbridge.telephony.acs.replicas import Replicas, TranscriptKeeper, snapshot

log = logging.getLogger(__name__)

SEEN_TTL_S = 900.0  # Event Grid retries a delivery for up to 24 h, but answers in seconds
TASKS_STOP_S = 3.0  # the edge's background tasks, cancelled at a stop
HEARTBEAT_S = 0.5  # how often a replica says it is alive...
HEARTBEAT_TTL_S = 1.5  # ...and how long after its last word it counts as dead


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


class AcsCarrier:
    """One ACS call as the session's `Carrier`: Call Automation on its call connection."""

    can_add_participants = True

    def __init__(self, control: CallControl, callee: str) -> None:
        self._control = control
        self._callee = callee
        self.connection_id = ""  # known once the call is answered

    def _connection(self) -> str:
        if not self.connection_id:
            raise CallControlError("the call is not answered yet")
        return self.connection_id

    async def hang_up(self) -> None:
        if self.connection_id:
            await self._control.hang_up(self.connection_id)

    async def transfer(self, target: str, context: dict[str, str]) -> None:
        await self._control.transfer(self._connection(), target, context)

    async def add_participant(
        self, target: str, context: dict[str, str], ring_timeout_s: int
    ) -> None:
        await self._control.add_participant(
            self._connection(), target, context, ring_timeout_s, self._callee or None
        )

    async def leave(self) -> None:
        if self.connection_id:
            await self._control.leave(self.connection_id)


class AcsEdge:
    def __init__(
        self,
        settings: Settings,
        control: CallControl,
        lines: Lines,
        tokens: CallTokens,
        registry: CallRegistry,
        shared: SharedState | None = None,
    ) -> None:
        self.settings = settings
        # What the replicas agree on (callbridge/shared): memory for one, Redis for many.
        self.shared: SharedState = shared or MemoryState(settings.replica_id)
        self.lines = lines
        self.registry = registry
        # Told about every call (records, live console, metrics); the app adds them.
        self.observers: list[CallObserver] = []
        self.control = control
        self.tokens = tokens
        self.calls: dict[str, CallSession] = {}
        self._carriers: dict[str, AcsCarrier] = {}
        self.counters: dict[str, int] = {
            "incoming": 0,
            "duplicates": 0,
            "rejected_busy": 0,
            "answer_failed": 0,
            "ended": 0,
        }
        self.finished: deque[CallSession] = deque(maxlen=200)  # recent ended calls (tests)
        self._seen = SeenKeys()
        self._tasks: set[asyncio.Task[None]] = set()
        # Other replicas may hold calls: the directory, the event logs, adoption, failover.
        self.replicas = Replicas(self, self.shared) if self.shared.distributed else None
        self.heartbeat_stopped = False  # the replica has handed its calls over and is going
        if self.replicas is not None:
            self.observers.append(TranscriptKeeper(self.shared, self.spawn))
        # A burst of incoming calls is answered a few milliseconds apart, not all at once
        # (core/spacing.py, docs/architecture.md "A burst of calls").
        self.answers = Spacing(settings.answer_spacing_ms / 1000.0)
        self._limits = CallLimits(
            media_connect_timeout_s=settings.media_connect_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
            max_duration_s=settings.max_call_duration_s,
            chunk_ms=settings.outbound_chunk_ms,
            lead_ms=settings.playout_lead_ms,
            max_lead_ms=settings.playout_max_lead_ms,
            media_reconnect_s=settings.media_reconnect_s,
        )

    # --- URLs handed to ACS -----------------------------------------------------------
    def callback_url(self, call_id: str) -> str:
        ttl = self.settings.max_call_duration_s + 600
        token = self.tokens.mint(call_id, "callback", ttl)
        return f"{self.settings.public_url}/acs/callbacks/{call_id}?token={quote(token)}"

    def media_url(self, call_id: str) -> str:
        # The token rides in the path: ACS keeps path segments; query strings on the
        # transport URL are unconfirmed (docs/emulator.md).
        token = self.tokens.mint(call_id, "media", self.settings.media_token_ttl_s)
        url = urlsplit(self.settings.public_url)
        scheme = "wss" if url.scheme == "https" else "ws"
        path = f"{url.path}/acs/media/{call_id}/{token}"
        return urlunsplit((scheme, url.netloc, path, "", ""))

    async def may_reopen_media(self, call_id: str, connection_id: str | None) -> bool:
        """Whether a media upgrade, its token already spent, is ACS reopening the broken
        media socket of a live call: the call waits for one here (call/session.py), or a
        survivor restarted its media after its owner died (telephony/acs/replicas.py); and
        the upgrade names the call's own call connection (the JWT, when configured, has
        been checked before this)."""
        session = self.calls.get(call_id)
        if session is None:
            return self.replicas is not None and await self.replicas.may_reattach(
                call_id, connection_id
            )
        return (
            session.awaiting_media
            and bool(connection_id)
            and bool(session.leg_id)
            and hmac.compare_digest(str(connection_id).encode(), session.leg_id.encode())
        )

    async def session_for_media(self, call_id: str) -> CallSession | None:
        """The session a media socket for `call_id` runs: held here, or adopted from the
        replica that answered it (or died holding it)."""
        session = self.calls.get(call_id)
        if session is None and self.replicas is not None:
            session = await self.replicas.adopt(call_id)
        return session

    def media_started(self, session: CallSession) -> None:
        if self.replicas is not None and session.leg_id:
            self._directory(session, "media")

    def resume_session(
        self, call_id: str, entry: dict[str, str], history: list[tuple[str, str]]
    ) -> CallSession:
        """A session for a call another replica answered, from its directory entry."""
        try:
            variables = json.loads(entry.get("variables", "{}"))
        except ValueError:
            variables = {}
        callee = entry.get("callee", "")
        info = CallInfo(
            call_id=call_id,
            caller=entry.get("caller", ""),
            callee=callee,
            sample_rate=self.settings.sample_rate,
            correlation_id=entry.get("correlation", ""),
            variables={str(k): str(v) for k, v in dict(variables).items()},
            history=tuple(history),
            agent_state=entry.get("agent_state", ""),
        )
        try:
            line = self.lines.named(entry.get("line", ""))
        except KeyError:
            line = self.lines.for_number(callee)
        carrier = AcsCarrier(self.control, callee)
        carrier.connection_id = entry.get("connection", "")
        session = CallSession(
            info,
            line,
            carrier,
            lines=self.lines,
            limits=self._limits,
            observers=self.observers,
            recordings_dir=self.settings.recordings_dir,
        )
        session.leg_id = carrier.connection_id
        session.transcript.extend(history)
        self._hold(session, carrier)
        session.answered()
        return session

    # --- incoming calls ------------------------------------------------------------------
    def _hold(self, session: CallSession, carrier: AcsCarrier) -> None:
        """A call held here from now on (answered here or adopted from another replica)."""
        self.calls[session.call_id] = session
        self._carriers[session.call_id] = carrier
        session.on_closed.append(self._closed)
        if self.replicas is not None:
            session.on_agent_state.append(self.replicas.keep_agent_state)
        self.registry.add(session)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` in the background for as long as the edge runs."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_incoming(self, ev: IncomingCall) -> str:
        """Take an IncomingCall delivery; returns what was done with it."""
        ctx_key = "ctx:" + hashlib.sha256(ev.incoming_call_context.encode()).hexdigest()
        keys = ["evt:" + ev.event_id, ctx_key]
        if not self._seen.add_if_new(*keys) or not await self._first_anywhere(keys):
            self.counters["duplicates"] += 1
            log.info("duplicate IncomingCall %s ignored", ev.event_id)
            return "duplicate"
        self.counters["incoming"] += 1
        if self.registry.full() or await self._service_full():
            self.counters["rejected_busy"] += 1
            log.warning(
                "at the cap of %d calls: rejecting call from %s as busy",
                self.registry.max_calls,
                ev.caller.display,
            )
            self.spawn(self._reject(ev))
            self._record_rejected(ev)
            return "rejected"
        call_id = uuid.uuid4().hex
        token = call_id_var.set(call_id)
        try:
            callee = ev.callee.display
            info = CallInfo(
                call_id=call_id,
                caller=ev.caller.display,
                callee=callee,
                sample_rate=self.settings.sample_rate,
                correlation_id=ev.correlation_id,
                variables={**ev.sip_headers, **ev.voip_headers},
            )
            carrier = AcsCarrier(self.control, callee)
            session = CallSession(
                info,
                self.lines.for_number(callee),
                carrier,
                lines=self.lines,
                limits=self._limits,
                observers=self.observers,
                recordings_dir=self.settings.recordings_dir,
            )
            self._hold(session, carrier)
            log.info(
                "incoming call from %s to %s on line %s (correlation %s)",
                info.caller,
                info.callee,
                session.line.name,
                ev.correlation_id,
            )
            self.spawn(self._answer(session, ev))
        finally:
            call_id_var.reset(token)
        return "answering"

    async def _first_anywhere(self, keys: list[str]) -> bool:
        """Whether no replica has seen `keys` (this one has just claimed them locally).
        Shared state unreachable: answer anyway, logged. ACS takes one answer per incoming
        call, so a second replica's answer to the same call fails and ends its attempt;
        refusing instead would leave every caller unanswered while Redis is away."""
        try:
            return await self.shared.claim(keys, SEEN_TTL_S)
        except SharedStateError as exc:
            log.warning("shared state unreachable, answering without the check: %s", exc)
            return True

    async def _service_full(self) -> bool:
        total = self.settings.max_calls_total
        if total is None:
            return False
        try:
            return await self.shared.active_calls() >= total
        except SharedStateError as exc:
            log.warning("shared state unreachable, service-wide cap not checked: %s", exc)
            return False

    async def spend_media_token(self, claims: TokenClaims) -> None:
        """Use a media token up, once across the service (TokenError if it was used): in
        this replica's memory, then in the shared state (with that away, the memory
        alone decides)."""
        self.tokens.spend(claims)
        try:
            first = await self.shared.first_use(claims.nonce, claims.expires_at)
        except SharedStateError as exc:
            log.warning("shared state unreachable, media token checked locally: %s", exc)
            return
        if not first:
            raise TokenError("token already used")

    # --- the call directory -------------------------------------------------------------
    def _directory(self, session: CallSession, state: str) -> None:
        fields = snapshot(session, state)
        ttl = self.settings.max_call_duration_s + 600
        self.spawn(self._shared_op(self.shared.put_call(session.call_id, fields, ttl)))

    async def _leave_directory(self, call_id: str) -> None:
        """The call ended here: out of the directory, unless another replica holds it."""
        try:
            entry = await self.shared.get_call(call_id)
            if entry is None or entry.get("owner") in (None, self.shared.replica_id):
                await self.shared.drop_call(call_id)
        except SharedStateError as exc:
            log.warning("call directory not updated: %s", exc)

    async def _shared_op(self, op: Coroutine[Any, Any, None]) -> None:
        try:
            await op
        except SharedStateError as exc:
            log.warning("call directory not updated: %s", exc)

    async def _heartbeat(self) -> None:
        """Say this replica is alive, every second, for as long as it runs."""
        warned = False
        while True:
            try:
                if not self.heartbeat_stopped:
                    state = "draining" if self.registry.draining else "ready"
                    await self.shared.heartbeat(HEARTBEAT_TTL_S, state)
                warned = False
            except SharedStateError as exc:
                if not warned:
                    log.warning("heartbeat not written: %s", exc)
                warned = True
            await asyncio.sleep(HEARTBEAT_S)

    def start(self) -> None:
        """Begin the replica's background work (its heartbeat; with other replicas, the
        watch for calls that moved away or lost their owner)."""
        self.spawn(self._heartbeat())
        if self.replicas is not None:
            self.spawn(self.replicas.watch())
            self.spawn(self.replicas.pump())

    def _record_rejected(self, ev: IncomingCall) -> None:
        """A call turned away still gets a record: the history and the analytics must show
        the callers who found every line busy."""
        info = CallInfo(
            call_id=uuid.uuid4().hex,
            caller=ev.caller.display,
            callee=ev.callee.display,
            sample_rate=self.settings.sample_rate,
            correlation_id=ev.correlation_id,
            line=self.lines.for_number(ev.callee.display).name,
        )
        reason = (
            "rejected: the service is stopping"
            if self.registry.draining
            else ("rejected: all lines busy")
        )
        record_rejected(self.observers, info, reason)

    async def _reject(self, ev: IncomingCall) -> None:
        try:
            await self.control.reject(ev.incoming_call_context, "busy")
        except CallControlError as exc:
            log.warning("could not reject call: %s", exc)

    async def _answer(self, session: CallSession, ev: IncomingCall) -> None:
        call_id_var.set(session.call_id)
        waited = await self.answers.turn()
        if waited >= 1.0:
            log.warning("answering a burst of calls: this one waited %.1f s", waited)
        if session.ended:
            return  # ended while it waited (the service is stopping)
        if self.replicas is not None:
            # In the directory before ACS hears of the call: its media socket may land on
            # another replica the moment the call connects.
            fields = snapshot(session, "answering")
            ttl = self.settings.max_call_duration_s + 600
            await self._shared_op(self.shared.put_call(session.call_id, fields, ttl))
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
            await session.end(
                EndReason(EndCause.ANSWER_FAILED, f"answer failed: {exc}"), hang_up=False
            )
            return
        except Exception as exc:
            self.counters["answer_failed"] += 1
            log.exception("could not answer")
            text = f"answer failed: {type(exc).__name__}"
            await session.end(EndReason(EndCause.ANSWER_FAILED, text), hang_up=False)
            return
        session.leg_id = answered.call_connection_id
        carrier = self._carriers.get(session.call_id)
        if carrier is not None:
            carrier.connection_id = answered.call_connection_id
        log.info(
            "answered in %.0f ms: call connection %s",
            (time.perf_counter() - started) * 1000,
            answered.call_connection_id,
        )
        if not session.ended:
            session.answered()
            if self.replicas is not None:
                fields = snapshot(session, "answered")
                await self._shared_op(self.shared.set_fields(session.call_id, fields))
                self.replicas.read_events(session)

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

    def _closed(self, session: CallSession) -> None:
        if session.leg_id and not session.handed_over:
            self.spawn(self._leave_directory(session.call_id))
        # Only this session: a call handed away may have come back as a new one.
        if self.calls.get(session.call_id) is session:
            del self.calls[session.call_id]
            self._carriers.pop(session.call_id, None)
        self.counters["ended"] += 1
        self.finished.append(session)

    # --- callbacks ------------------------------------------------------------------------
    async def on_callbacks(self, call_id: str, events: list[CallEvent]) -> bool:
        """Take a delivery of callbacks; False if they could not be taken (a call held by
        another replica while the shared log is unreachable: ACS should retry)."""
        session = self.calls.get(call_id)
        fresh: list[CallEvent] = []
        for ev in events:
            key = f"cb:{ev.event_id}"
            if self._seen.add_if_new(key) and await self._first_anywhere([key]):
                fresh.append(ev)
        if self.replicas is not None and fresh:
            # Whoever holds the call applies them, in order, from its log.
            if await self.replicas.log_events(call_id, fresh):
                return True
            if session is None:
                return False
        for ev in fresh:
            if session is None:
                log.info("%s for a call that has ended: acknowledged", ev.name)
                continue
            await self.apply_callback(session, ev)
        return True

    async def apply_callback(self, session: CallSession, ev: CallEvent) -> None:
        """One callback event, applied to the call it is for."""
        if session.ended:
            return
        result = ""
        if ev.code is not None:
            result = f" ({ev.code}/{ev.sub_code}{' ' + ev.message if ev.message else ''})"
        log.info("ACS event %s%s", ev.name, result)
        session.note_event(ev.name, code=ev.code, sub_code=ev.sub_code, message=ev.message)
        if ev.name == "CallConnected":
            session.connected()
            if session.policy.record_acs:
                self.spawn(self._start_recording(session))
        elif ev.name == "CallDisconnected":
            await session.disconnected(f"call disconnected{result}")
        elif ev.name == "CallTransferAccepted":
            log.info("transfer accepted by %s", session.transferred_to)
        elif ev.name in ("CallTransferFailed", "AddParticipantFailed"):
            session.transfer_failed(f"{ev.name}{result}")
        elif ev.name == "AddParticipantSucceeded":
            who = ev.data.get("participant")
            raw = who.get("rawId", "") if isinstance(who, dict) else ""
            session.participant_added(str(raw).removeprefix("4:"))
        elif ev.name == "RecordingStateChanged":
            log.info("ACS recording is %s", ev.data.get("state"))
        elif ev.name in ("MediaStreamingFailed", "AnswerFailed"):
            cause = EndCause.MEDIA_FAILED if ev.name == "MediaStreamingFailed" else None
            reason = EndReason(cause or EndCause.ANSWER_FAILED, f"{ev.name}{result}")
            await session.end(reason, hang_up=ev.name != "AnswerFailed")
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

    # --- calls an earlier run left behind ----------------------------------------------
    def hang_up_left_behind(self, calls: list[tuple[str, str]]) -> None:
        """Hang up, in the background, calls (call id, call connection id) a crashed run of
        the service answered and never ended: their callers would otherwise sit in dead air
        until ACS gives up. With several replicas, a call whose owner is alive is its own."""
        if calls:
            self.spawn(self._hang_up_orphans(calls))

    async def held_elsewhere(self, call_ids: list[str]) -> set[str]:
        """Of these unfinished calls, the ones another live replica holds (the directory
        says so); a call whose owner cannot be looked up is not."""
        held: set[str] = set()
        alive: dict[str, bool] = {}  # a draining replica is alive: its calls are its own
        try:
            for call_id in call_ids:
                entry = await self.shared.get_call(call_id)
                owner = entry.get("owner") if entry else None
                if not owner or owner == self.shared.replica_id:
                    continue
                if owner not in alive:
                    alive[owner] = await self.shared.is_alive(owner)
                if alive[owner]:
                    held.add(call_id)
        except SharedStateError as exc:
            log.warning("calls left behind: owners unknown (%s): taken as orphans", exc)
        return held

    async def _hang_up_orphans(self, calls: list[tuple[str, str]]) -> None:
        held = await self.held_elsewhere([call_id for call_id, _ in calls])
        left = [connection_id for call_id, connection_id in calls if call_id not in held]
        if left:
            await self._hang_up_all(left)

    async def _hang_up_all(self, connection_ids: list[str]) -> None:
        async def one(connection_id: str) -> None:
            try:
                await asyncio.wait_for(self.control.hang_up(connection_id), 5.0)
            except (CallControlError, OSError, TimeoutError) as exc:
                log.info("call %s left behind is already over: %s", connection_id, exc)
            else:
                log.warning("hung up call %s, left live by an earlier run", connection_id)

        await asyncio.gather(*(one(c) for c in connection_ids))

    # --- shutdown -----------------------------------------------------------------------
    async def shutdown(self) -> None:
        reason = EndReason(EndCause.SHUTDOWN, "ended by shutdown")
        await asyncio.gather(*(s.end(reason, hang_up=True) for s in list(self.calls.values())))
        left = await cancel_and_wait(list(self._tasks), TASKS_STOP_S)
        if left:
            log.error("stopping: %d background task(s) would not stop", len(left))
        await self.control.close()
