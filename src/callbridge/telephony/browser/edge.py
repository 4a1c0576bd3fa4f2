"""The browser phone side of the service: one CallSession per `/phone/ws` socket.

A browser call takes the same path as an ACS call: the configured agent runtime's factory
and tools, the same `CallSession`, and the same observers (records, live console, metrics),
so the console cannot tell the two apart except by the channel variable. What differs is
only the edge: the socket is the whole call (no Call Automation), the admin token is the
credential, and a socket that closes *is* the caller hanging up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from starlette.websockets import WebSocket

from callbridge.agent.base import AgentFactory, CallInfo
from callbridge.call.observer import CallObserver, CallOutcome
from callbridge.call.policy import CallPolicy
from callbridge.call.session import CallLimits, CallSession
from callbridge.call.tools import ToolRegistry, ToolRun
from callbridge.config import Settings
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


class BrowserEdge:
    def __init__(
        self,
        settings: Settings,
        agent_factory: AgentFactory,
        *,
        admin_token: str | None,
        tools_for: Callable[[CallInfo], ToolRegistry] | None = None,
        observers: list[CallObserver] | None = None,
        active_elsewhere: Callable[[], int] = lambda: 0,
        policy_for: Callable[[CallInfo], CallPolicy] | None = None,
    ) -> None:
        self.settings = settings
        self.policy_for = policy_for or (lambda info: CallPolicy())
        self.agent_factory = agent_factory
        self.tools_for = tools_for or (lambda info: ToolRegistry())
        # Pass the ACS edge's list to share its observers, including ones added later.
        self.observers: list[CallObserver] = observers if observers is not None else []
        self.calls: dict[str, CallSession] = {}
        self.legs: dict[str, BrowserMediaLeg] = {}
        self.finished: list[CallSession] = []  # recent ended calls, for tests and stats
        self.counters: dict[str, int] = {"calls": 0, "unauthorised": 0, "rejected_busy": 0}
        self._admin_token = admin_token or ""
        self._active_elsewhere = active_elsewhere
        self._tasks: set[asyncio.Task[None]] = set()
        self._limits = CallLimits(
            media_connect_timeout_s=settings.media_connect_timeout_s,
            idle_timeout_s=settings.idle_timeout_s,
            max_duration_s=settings.max_call_duration_s,
            chunk_ms=settings.outbound_chunk_ms,
            lead_ms=max(settings.playout_lead_ms, MIN_LEAD_MS),
            # No CallDisconnected will follow a closed socket: the socket is the call.
            disconnect_grace_s=0.0,
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
        if len(self.calls) + self._active_elsewhere() >= self.settings.max_calls:
            self.counters["rejected_busy"] += 1
            log.warning("at the cap of %d calls: browser call refused", self.settings.max_calls)
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
        tools = self.tools_for(info)
        info = dataclasses.replace(info, tools=tools.schemas())
        session = CallSession(
            info,
            self.agent_factory,
            hang_up=leg.close,
            limits=self._limits,
            on_closed=self._closed,
            tools=tools,
            observers=[*self.observers, PageFeed(call_id, leg)],
            transfer=lambda target, context: self._transfer(session, leg, target),
            policy=replace(self.policy_for(info), transfer_mode="cold", record_acs=False),
            recordings_dir=self.settings.recordings_dir,
        )
        leg.on_control = lambda msg: _note_control(session, msg)
        return session

    async def _transfer(self, session: CallSession, leg: BrowserMediaLeg, target: str) -> None:
        """A page cannot be handed to a phone number: tell it, then end the call there.

        The call ends in a task of its own, after CallSession has marked it transferred.
        """
        leg.post(protocol.transfer(target))
        task = asyncio.create_task(session.disconnected(f"transferred to {target}"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _closed(self, session: CallSession) -> None:
        self.legs.pop(session.call_id, None)
        if self.calls.pop(session.call_id, None) is not None:
            self.finished.append(session)
            del self.finished[:-200]

    async def shutdown(self) -> None:
        for session in list(self.calls.values()):
            await session.end("service shutting down", hang_up=True)


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
