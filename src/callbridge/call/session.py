"""CallSession: one call from answer to end, whatever ends it.

The session owns the call's lifecycle (state, one `end` with a typed reason, the outcome
for the record) and puts the other jobs together: the media bridge (call/bridge.py), the
timed watchers (call/watchers.py), hand-off and the tools' actions (call/handoff.py) and
the keypad menu (call/menu.py). It knows the telephony edge only as a `Carrier`, and the
call's agent, tools and policy only through its `Line`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from callbridge.agent.base import AgentSession, ToolCall
from callbridge.audio.playout import Playout
from callbridge.audio.recorder import StereoRecorder
from callbridge.call.bridge import MediaBridge
from callbridge.call.carrier import Carrier
from callbridge.call.handoff import Handoff
from callbridge.call.line import Line, Lines
from callbridge.call.media_leg import MediaLeg
from callbridge.call.menu import MenuChoice, run_menu
from callbridge.call.observer import HANDED_OFF, CallObserver, CallOutcome, Observers
from callbridge.call.reply_watch import ReplyWatch
from callbridge.call.rescue import Rescuer
from callbridge.call.watchers import CallLimits, Watchers
from callbridge.cancelling import cancel_and_wait
from callbridge.core.call_info import CallInfo
from callbridge.core.clock import SYSTEM_CLOCK, Clock
from callbridge.core.ending import EndCause, EndReason, outcome_of
from callbridge.core.histogram import Histogram
from callbridge.core.policy import CallPolicy
from callbridge.core.tools import ToolContext, ToolRegistry, ToolRun
from callbridge.logs import call_id_var

log = logging.getLogger(__name__)

__all__ = ["CallLimits", "CallSession", "CallStats"]

HANG_UP_TIMEOUT_S = 10.0
TASKS_STOP_S = 5.0  # the call's tasks, cancelled at its end


@dataclass
class CallStats:
    frames_in: int = 0
    dtmf_in: list[str] = field(default_factory=list)
    barge_ins: int = 0
    replies: int = 0
    chunks_out: int = 0
    bytes_out: int = 0
    lateness: Histogram = field(default_factory=Histogram)  # pacing lateness, ms


class CallSession:
    def __init__(
        self,
        info: CallInfo,
        line: Line,
        carrier: Carrier,
        *,
        lines: Lines | None = None,
        limits: CallLimits | None = None,
        observers: list[CallObserver] | None = None,
        recordings_dir: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.line = line
        self.info = replace(info, line=line.name, tools=line.tools.schemas())
        self.call_id = info.call_id
        self.state = "answering"
        self.ending: EndReason | None = None
        self.recording_path: str | None = None  # a local recording of the call, if made
        self.leg_id = ""  # the edge's own id for the call (ACS: call connection id)
        self.stats = CallStats()
        self.transcript: list[tuple[str, str]] = []
        self.tool_runs: list[ToolRun] = []
        self.agent_timings: list[Any] = []  # per-turn timings, when the agent keeps them
        self.menu_choice: MenuChoice | None = None
        self.transferred_to: str | None = None
        self.started_at = time.monotonic()
        self.clock = clock
        self.observers = Observers(observers)
        # Told once the call has ended and its media is released (stats final).
        self.on_closed: list[Callable[[CallSession], None]] = []
        # Told where the agent's dialog stands after each turn (`AgentState`), so another
        # replica can carry the call on (telephony/acs/replicas).
        self.on_agent_state: list[Callable[[CallSession, str], None]] = []
        # read and written by the bridge, the watchers and the hand-off
        self.media_attached = False
        self._media_running = False
        # While a broken media leg may be reopened: resolved with the new leg.
        self._reopened: asyncio.Future[tuple[MediaLeg, asyncio.Event]] | None = None
        self.handing_on = False  # the call is being ended or handed on
        self.handed_over = False  # another replica holds the call now (telephony/acs/replicas)
        self.moving = False  # its media is being moved to another replica (a drain)
        self.muted = False
        self.last_caller_activity = clock.now()
        self.last_input = clock.now()
        self._lines = lines
        self._carrier = carrier
        self._limits = limits or CallLimits()
        self._recordings_dir = recordings_dir
        self._ended = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._agent: AgentSession | None = None
        self._bridge: MediaBridge | None = None
        self.watchers = Watchers(self, clock, self._limits)
        self.handoff = Handoff(self, carrier, self.watchers)
        self.rescuer = Rescuer(self)
        self.reply_watch: ReplyWatch | None = None
        self.observers.call_started(self.info)

    # --- what the call is on -------------------------------------------------------------
    @property
    def policy(self) -> CallPolicy:
        return self.line.policy

    @property
    def tools(self) -> ToolRegistry:
        return self.line.tools

    @property
    def end_reason(self) -> str | None:
        return self.ending.text if self.ending else None

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        call_id_var.set(self.call_id)
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(f"{name}:{self.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- lifecycle, driven by the edge ---------------------------------------------------
    def answered(self) -> None:
        """The call is answered: watch for media and cap the call's duration."""
        self.state = "answered"
        self.note_event("answered", leg_id=self.leg_id)
        self.spawn(self.watchers.media_connect(), "media-connect")
        self.spawn(self.watchers.max_duration(), "max-duration")

    def connected(self) -> None:
        if self.state == "answered":
            self.state = "connected"

    async def disconnected(self, reason: str) -> None:
        """The edge says the call is over (the caller hung up, a transfer completed, ...)."""
        self._disconnected.set()
        cause = EndCause.TRANSFERRED if self.transferred_to else EndCause.CALLER_HUNG_UP
        await self.end(EndReason(cause, reason), hang_up=False)

    async def hand_over(self, to: str) -> None:
        """Another replica holds the call now: let go of it here without ending it (no
        hang-up, no end in the record: the new holder writes that)."""
        if self.ending is not None:
            return
        self.handed_over = True
        self.ending = EndReason(EndCause.SHUTDOWN, f"handed over to replica {to}")
        self.state = "moved"
        self.note_event(HANDED_OFF, to=to)
        self._ended.set()
        self._stop_tasks()

    def disconnected_now(self) -> None:
        self._disconnected.set()

    async def end(self, reason: EndReason, *, hang_up: bool) -> None:
        """End the call once: record why, hang up if we are the ones ending it, release all."""
        if self.ending is not None:
            return
        self.ending = reason
        self.state = "ended"
        self._ended.set()
        log.info("call ending: %s", reason.text)
        caller_spoke = self.stats.replies > 0 and any(r == "caller" for r, _ in self.transcript)
        outcome = outcome_of(
            reason, transferred=self.transferred_to is not None, caller_spoke=caller_spoke
        )
        self.observers.call_ended(
            self.call_id,
            CallOutcome(
                outcome, reason.text, self.transferred_to, self.recording_path, line=self.line.name
            ),
        )
        cancelled = False
        if hang_up and not self._disconnected.is_set():
            # Shielded: whatever task ends the call may itself be cancelled as the call
            # winds down, and the hang-up must still reach the edge.
            hanging = asyncio.ensure_future(self._hang_up())
            try:
                await asyncio.shield(hanging)
            except asyncio.CancelledError:
                cancelled = True  # finish ending the call, then let the task go
        self._stop_tasks()
        if cancelled:
            raise asyncio.CancelledError

    def _stop_tasks(self) -> None:
        """Cancel the call's tasks (not the one ending it); release now if no media runs
        (else the media's own release does, once its tasks are done)."""
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if not self._media_running:
            self._closed()

    def _closed(self) -> None:
        """Everything of the call is released: tell whoever holds it (once)."""
        callbacks, self.on_closed = self.on_closed, []
        for closed in callbacks:
            closed(self)

    async def _hang_up(self) -> None:
        try:
            # Bounded: a telephony API that stalls must not hold the call (or a stop) open.
            await asyncio.wait_for(self._carrier.hang_up(), HANG_UP_TIMEOUT_S)
        except Exception as exc:
            log.warning("hang-up failed: %s", exc or type(exc).__name__)

    def note_event(self, name: str, **detail: Any) -> None:
        """An event for the record (the edge reports its callbacks here too)."""
        self.observers.event(self.call_id, name, detail)

    def keep_agent_state(self, state: str) -> None:
        for hook in self.on_agent_state:
            hook(self, state)

    def add_transcript(self, role: str, text: str) -> None:
        self.transcript.append((role, text))
        self.observers.transcript(self.call_id, role, text, time.time())

    # --- the media ------------------------------------------------------------------------
    @property
    def awaiting_media(self) -> bool:
        """Whether the call's media leg broke and a reopened one would be taken."""
        return self._reopened is not None and not self._reopened.done() and not self.ended

    async def run_media(self, leg: MediaLeg) -> None:
        """Bridge one media leg to the line's agent until the call ends; a leg reopened
        after the first one broke carries the call on, until the call ends or it breaks."""
        if self.awaiting_media and self._bridge is not None:
            await self._carry_on(leg, self._bridge)
            return
        if self.media_attached or self.ended:
            await leg.close(4409)
            return
        self.media_attached = self._media_running = True
        self.state = "media"
        bridge = MediaBridge(self, leg, self._recorder(leg.sample_rate), self._limits)
        self._bridge = bridge
        playout = bridge.playout
        self.last_caller_activity = self.last_input = self.clock.now()
        tasks: list[asyncio.Task[None]] = [self.spawn(playout.run(), "playout")]
        agent: AgentSession | None = None
        try:
            if self.line.menu is not None and not await self._menu(leg, bridge):
                await self._media_closed(leg, "media socket closed during the menu")
                return
            if bridge.recorder is None:  # the menu moved the call to a line that records
                bridge.recorder = self._recorder(leg.sample_rate)
            agent = self._agent = self.line.new_agent()
            self.rescuer.start(leg.sample_rate)
            self._watch_replies(tasks)
            await agent.start(self.info)
            caller = self.spawn(bridge.pump_caller(agent), "caller")
            tasks += [caller, self.spawn(bridge.pump_agent(agent), "agent")]
            tasks.append(self.spawn(self.watchers.idle(), "idle"))
            if self.policy.silence_reprompt_after_s:
                tasks.append(self.spawn(self.watchers.silence(), "silence"))
            ended = self.spawn(self._wait_ended(), "ended")
            await asyncio.wait([*tasks, ended], return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            if not self.ended and caller.done():
                # (The caller pump already waited for a hang-up or a reopened socket.)
                reason = bridge.leg.close_reason
                await self.end(
                    reason or EndReason(EndCause.MEDIA_CLOSED, "media socket closed"), hang_up=True
                )
            elif not self.ended:
                await self.end(
                    EndReason(EndCause.AGENT_FAILED, "agent session ended"), hang_up=True
                )
        except Exception:
            log.exception("bridge failed")
            await self.end(EndReason(EndCause.BRIDGE_ERROR, "bridge error"), hang_up=True)
        finally:
            # Shielded: the task running the media may itself be cancelled (the socket's
            # handler, at a server stop), and the call must still be released and counted.
            release = self._release(tasks, playout, agent, bridge, bridge.recorder)
            await asyncio.shield(asyncio.ensure_future(release))

    async def media_lost(self, leg: MediaLeg) -> tuple[MediaLeg, asyncio.Event] | None:
        """The media leg closed on its own. A caller hang-up closes it just before the edge
        says so, and a broken socket may be reopened by ACS: wait (up to the longer of the
        two bounds) for the one that comes. A reopened leg to carry on with, or None."""
        limits = self._limits
        if self.ended or self._disconnected.is_set():
            return None
        if self.moving:  # the drain closed it: the call goes on on another replica
            await self.hand_over("another replica")
            return None
        loop = asyncio.get_running_loop()
        reopened: asyncio.Future[tuple[MediaLeg, asyncio.Event]] = loop.create_future()
        # A leg this side closed (a protocol violation) is not one ACS would reopen.
        broken_here = leg.close_reason is not None and leg.close_reason.cause in (
            EndCause.MEDIA_FAILED,
        )
        reopenable = limits.media_reconnect_s > 0 and not broken_here
        if reopenable:
            self._reopened = reopened
            log.info("media socket lost (%s); waiting for ACS to reopen it", leg.close_reason)
            self.note_event("media_lost", reason=str(leg.close_reason or "closed"))
        waits: list[asyncio.Future[Any]] = [
            reopened,
            asyncio.ensure_future(self._disconnected.wait()),
            asyncio.ensure_future(self._ended.wait()),
        ]
        try:
            within = limits.disconnect_grace_s
            if reopenable:
                within = max(within, limits.media_reconnect_s)
            await self.clock.wait_for(
                asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED), within
            )
        except TimeoutError:
            pass
        finally:
            self._reopened = None
            for waiting in waits[1:]:
                waiting.cancel()
        if reopened.done() and not reopened.cancelled():
            if not self.ended:
                self.note_event("media_reopened")
                log.info("media socket reopened: the call carries on")
                return reopened.result()
            new_leg, gone = reopened.result()
            await new_leg.close()
            gone.set()
        reopened.cancel()
        return None

    async def _carry_on(self, leg: MediaLeg, bridge: MediaBridge) -> None:
        """Hand a reopened leg to the waiting bridge; return once the bridge lets it go."""
        assert self._reopened is not None
        if leg.sample_rate != bridge.leg.sample_rate:
            log.warning(
                "reopened media socket streams %d Hz, not %d: refused",
                leg.sample_rate,
                bridge.leg.sample_rate,
            )
            await leg.close(1003)
            return
        gone = asyncio.Event()
        self._reopened.set_result((leg, gone))
        await gone.wait()

    async def _release(
        self,
        tasks: list[asyncio.Task[None]],
        playout: Playout,
        agent: AgentSession | None,
        bridge: MediaBridge,
        recorder: StereoRecorder | None,
    ) -> None:
        # Again while any runs on: a task may lose a cancel (callbridge.cancelling), and
        # the call must still be released.
        if await cancel_and_wait(tasks, TASKS_STOP_S):
            log.error("a task of the call would not stop; releasing the call without it")
        self.stats.chunks_out = playout.chunks_sent
        self.stats.bytes_out = playout.bytes_sent
        self.stats.lateness = playout.lateness
        self.agent_timings = list(getattr(agent, "timings", []))
        for timing in self.agent_timings:
            self.observers.turn_latency(self.call_id, dict(getattr(timing, "__dict__", {})))
        if agent is not None:
            with contextlib.suppress(Exception):
                await agent.close()
        with contextlib.suppress(Exception):
            await bridge.let_go()
        if recorder is not None:
            try:
                await recorder.close()
            except OSError as exc:
                log.error("could not write the call recording: %s", exc)
        if not self.ended:
            await self.end(EndReason(EndCause.MEDIA_CLOSED, "media ended"), hang_up=True)
        # An ended session may be kept a while (the edges' recent calls, the registry's
        # totals): let go of what held the media, the agent and their buffers.
        self._agent = self._bridge = None
        self.reply_watch = None
        self._media_running = False
        self._closed()

    def _watch_replies(self, tasks: list[asyncio.Task[None]]) -> None:
        """Expect the line's agent to speak when a reply is due (call/reply_watch.py)."""
        rescue = self.line.rescue
        if rescue.reply_timeout_s is None:
            return
        self.reply_watch = ReplyWatch(self.clock, rescue.reply_timeout_s, self.rescuer.stalled)
        tasks.append(self.spawn(self.reply_watch.run(), "reply-watch"))
        if self.line.greets and not self.info.history:  # (a call taken over: no greeting)
            self.reply_watch.expect("the greeting")

    def expect_reply(self, why: str) -> None:
        if self.reply_watch is not None:
            self.reply_watch.expect(why)

    def reply_started(self) -> None:
        if self.reply_watch is not None:
            self.reply_watch.clear()

    def say(self, pcm: bytes) -> None:
        """Audio the service speaks itself (an apology), after whatever is playing."""
        if self._bridge is not None and pcm:
            self._bridge.say(pcm)

    async def wait_ended(self) -> None:
        await self._ended.wait()

    def _recorder(self, rate: int) -> StereoRecorder | None:
        if not (self.policy.record_local and self._recordings_dir):
            return None
        path = Path(self._recordings_dir) / f"{self.call_id}.wav"
        self.recording_path = str(path)
        return StereoRecorder(path, rate)

    async def _wait_ended(self) -> None:
        await self._ended.wait()

    async def _media_closed(self, leg: MediaLeg, default: str) -> None:
        """The leg closed on its own. A caller hang-up closes the socket just before the
        edge says so: give it a moment, so a call that is already over is not hung up."""
        if self.ended:
            return
        await self.watchers.grace(self._disconnected.wait())
        reason = leg.close_reason or EndReason(EndCause.MEDIA_CLOSED, default)
        await self.end(reason, hang_up=True)

    async def _menu(self, leg: MediaLeg, bridge: MediaBridge) -> bool:
        """Run the line's keypad menu and move the call to the line it routes to; False
        if the caller went away."""
        menu = self.line.menu
        assert menu is not None
        choice = await run_menu(leg, bridge.playout, menu, bridge.caller_audio, self.clock)
        if choice is None:
            return False
        self.menu_choice = choice
        variables = {**self.info.variables, menu.variable: choice.digits}
        if choice.route and self._lines is not None:
            try:
                self.line = self._lines.named(choice.route)
            except KeyError:
                log.error("menu routes to %r, which is not a line", choice.route)
        self.info = replace(
            self.info, variables=variables, line=self.line.name, tools=self.tools.schemas()
        )
        self.note_event("ivr", digits=choice.digits, profile=choice.route, line=self.line.name)
        return True

    # --- what the watchers and the hand-off ask of the call -------------------------------
    def agent_speaking(self) -> bool:
        return self._bridge is not None and self._bridge.speaking()

    async def notify(self, notice: str, detail: dict[str, Any]) -> None:
        if self._agent is not None:
            log.info("telling the agent: %s", notice)
            try:
                await self._agent.notify(notice, detail)
            except Exception:
                log.exception("agent notice %s failed", notice)

    # --- tools ------------------------------------------------------------------------------
    async def run_tool(self, call: ToolCall, agent: AgentSession) -> None:
        ctx = ToolContext(
            call_id=self.call_id,
            caller=self.info.caller,
            callee=self.info.callee,
            variables=self.info.variables,
            actions=self.handoff,
            transcript=self.transcript,
        )
        run = await self.tools.run(call.name, call.arguments, ctx)
        self.tool_runs.append(run)
        self.observers.tool_ran(self.call_id, run)
        await agent.tool_result(call.call_id, run.output)
        if not self.handing_on:
            self.expect_reply("the reply after a tool")

    def drain(self) -> None:
        """The service is stopping: say so and end the call once it has been heard (a call
        still being answered ends at once)."""
        if self.ended:
            return
        if not self.media_attached:
            reason = EndReason(EndCause.SHUTDOWN, "ended by shutdown")
            self.spawn(self.end(reason, hang_up=True), "drain")
        else:
            self.spawn(self.rescuer.shut_down(), "drain")

    # --- what the edge reports about a hand-over ------------------------------------------
    def participant_added(self, target: str) -> None:
        self.handoff.participant_added(target)

    def transfer_failed(self, reason: str) -> None:
        self.handoff.transfer_failed(reason)
