"""The browser phone side of the service: one CallSession per `/phone/ws` socket.

A browser call takes the same path as an ACS call: the configured agent runtime's factory
and tools, the same `CallSession`, and the same observers (records, live console, metrics),
so the console cannot tell the two apart except by the channel variable. What differs is
only the edge: the socket is the whole call (no Call Automation), the admin token is the
credential, and a socket that closes *is* the caller hanging up.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections import deque
from dataclasses import replace
from typing import Any

from starlette.websockets import WebSocket

from callbridge.call.carrier import CarrierError
from callbridge.call.line import Lines
from callbridge.call.observer import CallObserver, CallOutcome
from callbridge.call.registry import CallRegistry, record_rejected
from callbridge.call.session import CallSession
from callbridge.call.watchers import CallLimits
from callbridge.config import Settings
from callbridge.core.call_info import CallInfo
from callbridge.core.ending import EndCause, EndReason
from callbridge.core.tools import ToolRun
from callbridge.logs import call_id_var
from callbridge.telephony.browser import protocol
from callbridge.telephony.browser.leg import BrowserMediaLeg, receive_message
from callbridge.telephony.browser.protocol import (
    ClientMessage,
    Flushed,
    HangUp,
    Hello,
    Mute,
    ProtocolError,
)

log = logging.getLogger(__name__)

CALLEE = "browser phone"
HELLO_TIMEOUT_S = 10.0
# A page plays audio from a JavaScript event loop that may stall for tens of ms: a little
# more lead than ACS's default keeps its playback queue from running dry between chunks.
MIN_LEAD_MS = 100


class PageFeed:
    """Mirrors one call's transcript, tool runs and end onto the caller's page."""

    def __init__(self, call_id: str, leg: BrowserMediaLeg) -> None:
        self.call_id = call_id
        self.leg = leg

    def call_started(self, info: CallInfo) -> None:
        pass

    def transcript(self, call_id: str, role: str, text: str, at: float) -> None:
        self.leg.post(protocol.transcript(role, text, at))

    def tool_ran(self, call_id: str, run: ToolRun) -> None:
        self.leg.post(protocol.tool(run.name, run.ok))

    def event(self, call_id: str, name: str, detail: dict[str, Any]) -> None:
        pass

    def turn_latency(self, call_id: str, timings: dict[str, Any]) -> None:
        pass

    def call_ended(self, call_id: str, outcome: CallOutcome) -> None:
        self.leg.post(protocol.ended(outcome.reason, outcome.outcome))


class BrowserCarrier:
    """A browser call as the session's `Carrier`: the socket is the whole call."""

    can_add_participants = False  # a page cannot be conferenced with a phone

    def __init__(self, leg: BrowserMediaLeg, tasks: set[asyncio.Task[None]]) -> None:
        self.leg = leg
        self.session: CallSession | None = None
        self._tasks = tasks

    async def hang_up(self) -> None:
        await self.leg.close()

    async def transfer(self, target: str, context: dict[str, str]) -> None:
        """A page cannot be handed to a phone number: tell it, then end the call there.

        The call ends in a task of its own, after the session has marked it transferred.
        """
        self.leg.post(protocol.transfer(target))
        if self.session is not None:
            task = asyncio.create_task(self.session.disconnected(f"transferred to {target}"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def add_participant(
        self, target: str, context: dict[str, str], ring_timeout_s: int
    ) -> None:
        raise CarrierError("the browser phone cannot add a participant")

    async def leave(self) -> None:
        await self.leg.close()


class BrowserEdge:
    def __init__(
        self,
        settings: Settings,
        lines: Lines,
        registry: CallRegistry,
        *,
        admin_token: str | None,
        observers: list[CallObserver] | None = None,
    ) -> None:
        self.settings = settings
        self.lines = lines
        self.registry = registry
        # Pass the ACS edge's list to share its observers, including ones added later.
        self.observers: list[CallObserver] = observers if observers is not None else []
        self.calls: dict[str, CallSession] = {}
        self.legs: dict[str, BrowserMediaLeg] = {}
        self.finished: deque[CallSession] = deque(maxlen=200)  # recent ended calls (tests)
        self.counters: dict[str, int] = {"calls": 0, "unauthorised": 0, "rejected_busy": 0}
        self._admin_token = admin_token or ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._limits = CallLimits(
            media_connect_timeout_s=settings.media_connect_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
            max_duration_s=settings.max_call_duration_s,
            chunk_ms=settings.outbound_chunk_ms,
            lead_ms=max(settings.playout_lead_ms, MIN_LEAD_MS),
            max_lead_ms=max(settings.playout_lead_ms, MIN_LEAD_MS),  # a fixed lead
            # No CallDisconnected will follow a closed socket, and no new socket: the
            # socket is the call.
            disconnect_grace_s=0.0,
            media_reconnect_s=0.0,
        )

    @property
    def enabled(self) -> bool:
        return bool(self._admin_token)

    def authorised(self, token: str) -> bool:
        return self.enabled and hmac.compare_digest(
            token.encode("utf-8"), self._admin_token.encode("utf-8")
        )

    async def serve(self, ws: WebSocket) -> None:
        """Run one browser call on an unaccepted socket, from `hello` to hang-up."""
        await ws.accept()
        if not self.enabled:
            await _refuse(
                ws,
                protocol.CLOSE_DISABLED,
                "the browser phone is off: set CALLBRIDGE_ADMIN_TOKEN on the service",
            )
            return
        hello = await self._hello(ws)
        if hello is None:
            return
        if not self.authorised(hello.token or ws.query_params.get("token", "")):
            self.counters["unauthorised"] += 1
            log.warning("browser phone call with a missing or wrong token refused")
            await _refuse(ws, protocol.CLOSE_UNAUTHORISED, "missing or wrong admin token")
            return
        if self.registry.full():
            self.counters["rejected_busy"] += 1
            log.warning("at the cap of %d calls: browser call refused", self.registry.max_calls)
            info = CallInfo(
                call_id=uuid.uuid4().hex,
                caller=hello.caller,
                callee=CALLEE,
                sample_rate=self.settings.sample_rate,
                variables={"channel": "browser"},
                line=self.lines.for_number(CALLEE).name,
            )
            record_rejected(self.observers, info, "rejected: all lines busy")
            await _refuse(ws, protocol.CLOSE_BUSY, "all lines are busy, try again later")
            return
        await self._run_call(ws, hello)

    async def _hello(self, ws: WebSocket) -> Hello | None:
        try:
            data, _ = await asyncio.wait_for(receive_message(ws), HELLO_TIMEOUT_S)
        except TimeoutError:
            await _refuse(ws, protocol.CLOSE_HELLO_TIMEOUT, "no hello")
            return None
        if data is None:
            return None
        try:
            if isinstance(data, bytes):
                raise ProtocolError("the first message must be hello")
            msg = protocol.parse_client(data)
            if not isinstance(msg, Hello):
                raise ProtocolError("the first message must be hello")
        except ProtocolError as exc:
            await _refuse(ws, protocol.CLOSE_BAD_MESSAGE, str(exc))
            return None
        return msg

    async def _run_call(self, ws: WebSocket, hello: Hello) -> None:
        call_id = uuid.uuid4().hex
        call_id_var.set(call_id)
        leg = BrowserMediaLeg(ws, hello.rate, max_message_bytes=self.settings.max_ws_message_bytes)
        try:
            session = self._new_session(call_id, hello, leg)
            self.calls[call_id] = session
            self.legs[call_id] = leg
            self.counters["calls"] += 1
            log.info("browser call from %s at %d Hz", hello.caller, hello.rate)
            leg.post(protocol.ready(call_id, hello.rate))
            session.answered()
            session.connected()
            await session.run_media(leg)
        finally:
            await leg.close()  # run_media closes it too; this covers a failure before it

    def _new_session(self, call_id: str, hello: Hello, leg: BrowserMediaLeg) -> CallSession:
        info = CallInfo(
            call_id=call_id,
            caller=hello.caller,
            callee=CALLEE,
            sample_rate=self.settings.sample_rate,
            variables={"channel": "browser"},
        )
        line = self.lines.for_number(CALLEE)
        # ACS recording needs Call Automation: a browser call has only its local one.
        line = replace(line, policy=replace(line.policy, record_acs=False))
        carrier = BrowserCarrier(leg, self._tasks)
        session = CallSession(
            info,
            line,
            carrier,
            lines=self.lines,
            limits=self._limits,
            observers=[*self.observers, PageFeed(call_id, leg)],
            recordings_dir=self.settings.recordings_dir,
        )
        carrier.session = session
        session.on_closed.append(self._closed)
        self.registry.add(session)
        leg.on_control = lambda msg: _note_control(session, msg)
        return session

    def _closed(self, session: CallSession) -> None:
        self.legs.pop(session.call_id, None)
        if self.calls.pop(session.call_id, None) is not None:
            self.finished.append(session)

    async def shutdown(self) -> None:
        for session in list(self.calls.values()):
            await session.end(EndReason(EndCause.SHUTDOWN, "ended by shutdown"), hang_up=True)


def _note_control(session: CallSession, msg: ClientMessage) -> None:
    """Page actions that belong in the call's record of events."""
    if isinstance(msg, Mute):
        session.note_event("muted" if msg.muted else "unmuted")
    elif isinstance(msg, HangUp):
        session.note_event("caller_hung_up")
    elif isinstance(msg, Flushed):
        session.note_event("playback_flushed", dropped_ms=msg.dropped_ms)


async def _refuse(ws: WebSocket, code: int, message: str) -> None:
    try:
        await ws.send_text(protocol.error(message))
        await ws.close(code)
    except (RuntimeError, OSError):
        pass
