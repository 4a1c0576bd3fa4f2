"""CallSession: the bridge loop of one call.

It owns the agent session of the call, paces agent audio out, turns caller speech onset
into barge-in (StopAudio at once, agent told how much of its reply was heard), enforces
the call's timeouts, and releases everything when the call ends, however it ends.
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

from callbridge.agent.base import (
    AgentAudio,
    AgentFactory,
    AgentFailed,
    AgentSession,
    AgentTranscript,
    CallerTranscript,
    CallInfo,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
)
from callbridge.audio.playout import Playout
from callbridge.audio.recorder import StereoRecorder
from callbridge.audio.resample import StreamResampler
from callbridge.call.ivr import IvrPlan, IvrResult, collect_digits
from callbridge.call.media_leg import CallerAudio, CallerDtmf, MediaLeg
from callbridge.call.observer import CallObserver, CallOutcome, Observers
from callbridge.call.policy import CallPolicy
from callbridge.call.tools import ToolContext, ToolRegistry, ToolRun
from callbridge.logs import call_id_var

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallLimits:
    media_connect_timeout_s: float = 15.0
    idle_timeout_s: float = 30.0
    max_duration_s: float = 3600.0
    chunk_ms: int = 20
    lead_ms: int = 60
    disconnect_grace_s: float = 2.0
    # After end_call or a transfer, the agent's last words are let finish: the agent must
    # have been quiet this long (reply done, audio played) before the call is handed on.
    settle_s: float = 0.8
    settle_max_s: float = 20.0


@dataclass
class CallStats:
    frames_in: int = 0
    dtmf_in: list[str] = field(default_factory=list)
    barge_ins: int = 0
    replies: int = 0
    chunks_out: int = 0
    bytes_out: int = 0
    lateness_ms: list[float] = field(default_factory=list)


class CallSession:
    def __init__(
        self,
        info: CallInfo,
        agent_factory: AgentFactory,
        hang_up: Callable[[], Awaitable[None]],
        limits: CallLimits,
        on_closed: Callable[[CallSession], None] = lambda s: None,
        *,
        tools: ToolRegistry | None = None,
        transfer: Callable[[str, dict[str, str]], Awaitable[None]] | None = None,
        observers: list[CallObserver] | None = None,
        policy: CallPolicy | None = None,
        add_participant: Callable[[str, dict[str, str], int], Awaitable[None]] | None = None,
        leave: Callable[[], Awaitable[None]] | None = None,
        recordings_dir: str | None = None,
        ivr: IvrPlan | None = None,
    ) -> None:
        self.info = info
        self.call_id = info.call_id
        self.state = "answering"
        self.end_reason: str | None = None
        self.recording_path: str | None = None  # a local recording of the call, if made
        self.leg_id = ""  # the telephony edge's id for the call (ACS: call connection id)
        self.stats = CallStats()
        self.transcript: list[tuple[str, str]] = []
        self.started_at = time.monotonic()
        self._agent_factory = agent_factory
        self._hang_up = hang_up
        self._limits = limits
        self._on_closed = on_closed
        self._ended = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._media_attached = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._ending = False
        self._hangup_task: asyncio.Future[None] | None = None
        self.tools = tools or ToolRegistry()
        self.tool_runs: list[ToolRun] = []
        self.agent_timings: list[Any] = []  # per-turn timings, when the agent keeps them
        self.transferred_to: str | None = None
        self._transfer = transfer
        self._playout: Playout | None = None
        self._responding = False
        self._handing_on = False
        self.observers = Observers(observers)
        self.policy = policy or CallPolicy()
        self._add_participant = add_participant
        self._leave = leave
        self._recordings_dir = recordings_dir
        self._ivr = ivr
        self.ivr_result: IvrResult | None = None
        self._agent: AgentSession | None = None
        self._current: str | None = None  # the response being played
        self._cancelled: set[str] = set()  # responses the caller interrupted
        self._last_caller_activity = time.monotonic()
        self._warm: tuple[str, str] | None = None  # (target, summary) being added
        self._muted = False  # warm transfer, agent staying on as a silent listener
        self.observers.call_started(info)

    # --- lifecycle driven by the telephony edge ------------------------------------
    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def _spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        call_id_var.set(self.call_id)
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(f"{name}:{self.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def answered(self) -> None:
        """The call is answered: watch for media and cap the call's duration."""
        self.state = "answered"
        self.observers.event(self.call_id, "answered", {"leg_id": self.leg_id})
        self._spawn(self._watch_media_connect(), "media-connect")
        self._spawn(self._watch_max_duration(), "max-duration")

    def connected(self) -> None:
        if self.state == "answered":
            self.state = "connected"

    async def disconnected(self, reason: str) -> None:
        """ACS says the call is over (caller hung up, transfer, ...)."""
        self._disconnected.set()
        await self.end(reason, hang_up=False)

    async def _watch_media_connect(self) -> None:
        await asyncio.sleep(self._limits.media_connect_timeout_s)
        if not self._media_attached:
            await self.end("no media connection", hang_up=True)

    async def _watch_max_duration(self) -> None:
        notice = min(self.policy.limit_notice_before_s, self._limits.max_duration_s)
        await asyncio.sleep(self._limits.max_duration_s - notice)
        if notice > 0:
            await self._notify("ending_soon", {"seconds_left": round(notice)})
            await asyncio.sleep(notice)
        await self._notify("limit_goodbye", {})
        self._handing_on = True
        await self._after_speech(lambda: self._end("maximum call duration reached"))

    async def _end(self, reason: str) -> None:
        await self.end(reason, hang_up=True)

    async def _notify(self, notice: str, detail: dict[str, Any]) -> None:
        if self._agent is not None:
            log.info("telling the agent: %s", notice)
            try:
                await self._agent.notify(notice, detail)
            except Exception:
                log.exception("agent notice %s failed", notice)

    async def end(self, reason: str, *, hang_up: bool) -> None:
        """End the call once: record why, hang up if we are the ones ending it, release all."""
        if self._ending:
            return
        self._ending = True
        self.end_reason = reason
        self.state = "ended"
        self._ended.set()
        log.info("call ending: %s", reason)
        self.observers.call_ended(self.call_id, self._outcome(reason))
        if hang_up and not self._disconnected.is_set():
            # Shielded: whatever task ends the call may itself be cancelled as the call
            # winds down, and the hang-up must still reach ACS.
            self._hangup_task = asyncio.ensure_future(self._hang_up_logged())
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._hangup_task)
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        self._on_closed(self)

    def _outcome(self, reason: str) -> CallOutcome:
        if self.transferred_to:
            outcome = "transferred"
        elif reason.startswith(("agent failed", "bridge error", "answer failed")) or (
            "malformed" in reason or "oversized" in reason or "MediaStreamingFailed" in reason
        ):
            outcome = "failed"
        elif reason == "agent ended the call":
            outcome = "resolved"
        elif self.stats.replies == 0 or not any(r == "caller" for r, _ in self.transcript):
            outcome = "abandoned"
        else:
            outcome = "resolved"
        return CallOutcome(outcome, reason, self.transferred_to, self.recording_path)

    def note_event(self, name: str, **detail: Any) -> None:
        """A telephony event for the record (the edge reports ACS callbacks here)."""
        self.observers.event(self.call_id, name, detail)

    # --- the media bridge -------------------------------------------------------------
    async def _hang_up_logged(self) -> None:
        try:
            await self._hang_up()
        except Exception as exc:
            log.warning("hang-up failed: %s", exc)

    async def run_media(self, leg: MediaLeg) -> None:
        """Bridge one media leg to a fresh agent session until the call ends."""
        if self._media_attached or self.ended:
            await leg.close(4409)
            return
        self._media_attached = True
        self.state = "media"
        rate = self.info.sample_rate
        to_agent = StreamResampler(leg.sample_rate, rate)
        to_leg = StreamResampler(rate, leg.sample_rate)
        recorder = self._recorder(leg.sample_rate)

        async def send(chunk: bytes) -> None:
            if recorder is not None:
                recorder.agent(chunk)
            await leg.send_audio(chunk)

        playout = Playout(
            send,
            leg.sample_rate,
            chunk_ms=self._limits.chunk_ms,
            lead_ms=self._limits.lead_ms,
        )
        self._playout = playout
        self._last_caller_activity = time.monotonic()
        last_input = [time.monotonic()]
        tasks: list[asyncio.Task[None]] = [self._spawn(playout.run(), "playout")]
        agent: AgentSession | None = None
        try:
            if self._ivr is not None and not await self._run_ivr(leg, playout, recorder):
                await self._media_finished_ivr(leg)
                return
            agent = self._agent_factory()
            self._agent = agent
            await agent.start(self.info)
            tasks += [
                self._spawn(
                    self._pump_caller(leg, agent, to_agent, last_input, recorder), "caller"
                ),
                self._spawn(self._pump_agent(leg, agent, playout, to_leg, last_input), "agent"),
                self._spawn(self._watch_idle(last_input), "idle"),
            ]
            if self.policy.silence_reprompt_after_s:
                tasks.append(self._spawn(self._watch_silence(), "silence"))
            ended = self._spawn(self._wait_ended(), "ended")
            await asyncio.wait([*tasks, ended], return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            if not self.ended:
                await self._media_finished(tasks[1], leg)
        except Exception:
            log.exception("bridge failed")
            await self.end("bridge error", hang_up=True)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._collect(playout)
            self.agent_timings = list(getattr(agent, "timings", []))
            for timing in self.agent_timings:
                self.observers.turn_latency(self.call_id, dict(getattr(timing, "__dict__", {})))
            if agent is not None:
                with contextlib.suppress(Exception):
                    await agent.close()
            with contextlib.suppress(Exception):
                await leg.close()
            if recorder is not None:
                try:
                    await recorder.close()
                except OSError as exc:
                    log.error("could not write the call recording: %s", exc)
            if not self.ended:
                await self.end("media ended", hang_up=True)

    def _recorder(self, rate: int) -> StereoRecorder | None:
        if not (self.policy.record_local and self._recordings_dir):
            return None
        path = Path(self._recordings_dir) / f"{self.call_id}.wav"
        self.recording_path = str(path)
        return StereoRecorder(path, rate)

    async def _wait_ended(self) -> None:
        await self._ended.wait()

    async def _media_finished_ivr(self, leg: MediaLeg) -> None:
        if not self.ended:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._disconnected.wait(), self._limits.disconnect_grace_s)
            await self.end(leg.close_reason or "media socket closed during the menu", hang_up=True)

    async def _run_ivr(
        self, leg: MediaLeg, playout: Playout, recorder: StereoRecorder | None
    ) -> bool:
        """Play the menu, collect the choice, route; False if the caller went away."""
        plan = self._ivr
        assert plan is not None

        def heard(pcm: bytes) -> None:
            if recorder is not None:
                recorder.caller(pcm)

        text = plan.prompt
        digits = ""
        for _attempt in range(plan.attempts):
            playout.start_reply()
            prompt = await plan.speak(text, leg.sample_rate)
            playout.enqueue(prompt)
            # The caller has `timeout_s` once the prompt has played (keys may come sooner).
            got = await collect_digits(leg, plan, heard, prompt_s=playout.buffered_ms() / 1000.0)
            if playout.speaking:  # keys pressed over the prompt stop it
                playout.flush()
                await leg.stop_audio()
            if got is None:
                return False
            digits = got
            if digits and (not plan.routes or digits in plan.routes):
                break
            text = f"{plan.invalid} {plan.prompt}"
        route = plan.routes.get(digits)
        self.ivr_result = IvrResult(digits, route)
        log.info("menu: caller keyed %r -> %s", digits, route or "this profile")
        self.observers.event(self.call_id, "ivr", {"digits": digits, "profile": route})
        variables = {**self.info.variables, plan.variable: digits}
        if route:
            variables["profile"] = route
        self.info = replace(self.info, variables=variables)
        if route and plan.reroute is not None:
            self.tools, self.policy = plan.reroute(self.info)
            self.info = replace(self.info, tools=self.tools.schemas())
        return True

    async def _media_finished(self, caller_task: asyncio.Task[None], leg: MediaLeg) -> None:
        if caller_task.done():
            reason = leg.close_reason or "media socket closed"
            # A caller hang-up closes the socket just before CallDisconnected arrives:
            # give ACS a moment so we do not hang up a call that is already over.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._disconnected.wait(), self._limits.disconnect_grace_s)
            await self.end(reason, hang_up=True)
        else:
            await self.end("agent session ended", hang_up=True)

    def _collect(self, playout: Playout) -> None:
        self.stats.chunks_out = playout.chunks_sent
        self.stats.bytes_out = playout.bytes_sent
        self.stats.lateness_ms = playout.lateness_ms

    async def _pump_caller(
        self,
        leg: MediaLeg,
        agent: AgentSession,
        to_agent: StreamResampler,
        last_input: list[float],
        recorder: StereoRecorder | None,
    ) -> None:
        while True:
            item = await leg.receive()
            if item is None:
                return
            last_input[0] = time.monotonic()
            if isinstance(item, CallerAudio):
                self.stats.frames_in += 1
                if recorder is not None:
                    recorder.caller(item.pcm)
                await agent.push_audio(to_agent.process(item.pcm))
            elif isinstance(item, CallerDtmf):
                self.stats.dtmf_in.append(item.digit)
                self._last_caller_activity = time.monotonic()
                self.observers.event(self.call_id, "dtmf", {"digit": item.digit})
                log.info("caller pressed %s", item.digit)
                if self.policy.dtmf_barge_in:
                    await self._barge_in(leg, agent, "keypad")
                await agent.push_dtmf(item.digit)

    async def _pump_agent(
        self,
        leg: MediaLeg,
        agent: AgentSession,
        playout: Playout,
        to_leg: StreamResampler,
        last_input: list[float],
    ) -> None:
        async for event in agent.events():
            if isinstance(event, AgentAudio):
                if event.response_id in self._cancelled or self._muted:
                    continue  # late audio of a reply the caller interrupted
                self._responding = True
                if event.response_id != self._current:
                    self._current = event.response_id
                    self.stats.replies += 1
                    playout.start_reply()
                playout.enqueue(to_leg.process(event.pcm))
            elif isinstance(event, SpeechStarted):
                self._last_caller_activity = time.monotonic()
                await self._barge_in(leg, agent, "speech")
            elif isinstance(event, SpeechStopped):
                self._last_caller_activity = last_input[0] = time.monotonic()
            elif isinstance(event, CallerTranscript):
                if event.final:
                    self.transcript.append(("caller", event.text))
                    self.observers.transcript(self.call_id, "caller", event.text, time.time())
            elif isinstance(event, AgentTranscript):
                self.transcript.append(("agent", event.text))
                self.observers.transcript(self.call_id, "agent", event.text, time.time())
            elif isinstance(event, ToolCall):
                self._spawn(self._run_tool(event, agent), "tool")
            elif isinstance(event, ResponseDone):
                self._responding = False
                log.debug("reply %s done (interrupted=%s)", event.response_id, event.interrupted)
            elif isinstance(event, AgentFailed):
                log.error("agent failed: %s", event.reason)
                await self.end(f"agent failed: {event.reason}", hang_up=True)
                return

    async def _barge_in(self, leg: MediaLeg, agent: AgentSession, by: str) -> None:
        """The caller interrupts: StopAudio at once, drop the rest of the reply, and tell
        the agent how much of it was heard."""
        playout = self._playout
        if playout is None or not playout.speaking:
            return
        heard = playout.flush()
        await leg.stop_audio()
        self.stats.barge_ins += 1
        if self._current is not None:
            self._cancelled.add(self._current)
        log.info("barge-in (%s) after %d ms of the reply", by, heard)
        self.observers.event(self.call_id, "barge_in", {"heard_ms": heard, "by": by})
        await agent.interrupted(heard)

    def _agent_speaking(self) -> bool:
        return self._responding or (self._playout is not None and self._playout.speaking)

    async def _watch_silence(self) -> None:
        """Reprompt a silent caller, then say goodbye and hang up (profile settings):
        `reprompt_after_s` of quiet gets a reprompt; once reprompted, the call ends when the
        caller has stayed silent for `hangup_after_s` in all."""
        reprompt_after = self.policy.silence_reprompt_after_s or 0.0
        hangup_after = self.policy.silence_hangup_after_s
        quiet_since = time.monotonic()
        silent_since = quiet_since  # quiet since the last caller activity or agent reply
        reprompts = 0
        seen_activity = self._last_caller_activity
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            if self._last_caller_activity != seen_activity:
                seen_activity = self._last_caller_activity
                reprompts = 0
            if self._agent_speaking() or self._handing_on:
                quiet_since = now
                if reprompts == 0:
                    silent_since = now
                continue
            quiet = now - max(quiet_since, self._last_caller_activity)
            silent = now - max(silent_since, self._last_caller_activity)
            if hangup_after is not None and reprompts and silent >= hangup_after:
                log.info("caller silent for %.0f s: ending the call", silent)
                await self._notify("silence_goodbye", {})
                self._handing_on = True
                await self._after_speech(lambda: self._end("caller silent"))
                return
            room = hangup_after is None or silent + reprompt_after <= hangup_after
            if quiet >= reprompt_after and (room or not reprompts):
                reprompts += 1
                quiet_since = now
                self.observers.event(self.call_id, "caller_silent", {"seconds": round(silent)})
                await self._notify("caller_silent", {"seconds": round(silent)})

    # --- tools and the actions they take on the call --------------------------------------
    async def _run_tool(self, call: ToolCall, agent: AgentSession) -> None:
        ctx = ToolContext(
            call_id=self.call_id,
            caller=self.info.caller,
            callee=self.info.callee,
            variables=self.info.variables,
            actions=self,
            transcript=self.transcript,
        )
        run = await self.tools.run(call.name, call.arguments, ctx)
        self.tool_runs.append(run)
        self.observers.tool_ran(self.call_id, run)
        await agent.tool_result(call.call_id, run.output)

    async def hang_up(self) -> None:
        """CallActions: end the call once the agent's goodbye has been heard."""
        if not self._handing_on:
            self._handing_on = True
            self._spawn(self._after_speech(self._end_by_agent), "end-call")

    async def transfer(self, target: str, summary: str) -> None:
        """CallActions: hand the caller to `target` once the agent's words have been heard."""
        if self._transfer is None:
            raise RuntimeError("this call cannot be transferred")
        if not self._handing_on:
            self._handing_on = True
            warm = self.policy.transfer_mode == "warm" and self._add_participant is not None
            action = self._do_warm_transfer if warm else self._do_transfer
            self._spawn(self._after_speech(lambda: action(target, summary)), "transfer")

    async def _after_speech(self, then: Callable[[], Awaitable[None]]) -> None:
        deadline = time.monotonic() + self._limits.settle_max_s
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            speaking = self._responding or (self._playout is not None and self._playout.speaking)
            now = time.monotonic()
            if speaking:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= self._limits.settle_s:
                break
            await asyncio.sleep(0.05)
        await then()

    async def _end_by_agent(self) -> None:
        await self.end("agent ended the call", hang_up=True)

    async def _do_transfer(self, target: str, summary: str) -> None:
        assert self._transfer is not None
        context = self._transfer_context(summary)
        log.info("transferring to %s", target)
        try:
            await self._transfer(target, context)
        except Exception as exc:
            log.error("transfer to %s failed: %s", target, exc)
            self.transfer_failed(str(exc))
            return
        self.transferred_to = target

    def _transfer_context(self, summary: str) -> dict[str, str]:
        context = {"CallbridgeCallId": self.call_id}
        if summary:
            context["Summary"] = summary
        return context

    async def _do_warm_transfer(self, target: str, summary: str) -> None:
        assert self._add_participant is not None
        log.info("adding %s to the call (warm transfer)", target)
        self._warm = (target, summary)
        try:
            await self._add_participant(
                target, self._transfer_context(summary), self.policy.transfer_ring_timeout_s
            )
        except Exception as exc:
            log.error("adding %s failed: %s", target, exc)
            self.transfer_failed(str(exc))

    def participant_added(self, target: str) -> None:
        """The human answered a warm transfer: brief them, then leave (or stay muted)."""
        if self._warm is None:
            return
        summary = self._warm[1]
        self._spawn(self._brief_and_leave(target, summary), "warm-transfer")

    async def _brief_and_leave(self, target: str, summary: str) -> None:
        await self._notify("briefing", {"summary": summary, "target": target})
        await self._after_speech(lambda: self._leave_call(target))

    async def _leave_call(self, target: str) -> None:
        self.transferred_to = target
        if self.policy.transfer_stay_muted:
            log.info("warm transfer done: staying on as a muted listener")
            self._muted = True
            return
        if self._leave is not None:
            try:
                await self._leave()
            except Exception as exc:
                log.error("leaving the call failed: %s", exc)
        self._disconnected.set()  # the call goes on between the caller and the human
        await self.end(f"warm transfer to {target}", hang_up=False)

    def transfer_failed(self, reason: str) -> None:
        """ACS could not complete the transfer: the caller stays with the agent, who says so."""
        log.warning("transfer failed: %s", reason)
        target = self._warm[0] if self._warm else (self.transferred_to or "")
        self.transferred_to = None
        self._warm = None
        self._handing_on = False
        self.observers.event(self.call_id, "transfer_failed", {"reason": reason})
        self._spawn(self._notify("transfer_failed", {"reason": reason, "target": target}), "n")

    async def _watch_idle(self, last_input: list[float]) -> None:
        limit = self._limits.idle_timeout_s
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            if time.monotonic() - last_input[0] > limit:
                await self.end(f"no media from the caller for {limit:g} s", hang_up=True)
                return
