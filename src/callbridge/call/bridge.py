"""The media bridge of one call: caller media into the agent, agent audio out, barge-in.

Interruption is handled here and only here: when the caller speaks (or presses a key, if
the line says so) over audible agent audio, the playout is flushed, the edge is told to
drop its queued audio (ACS: StopAudio), late audio of that reply is dropped, and the agent
is told what the caller heard, in milliseconds and in words (`core.heard`), once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from callbridge.agent.base import (
    AgentAudio,
    AgentFailed,
    AgentSession,
    AgentState,
    AgentTranscript,
    CallerTranscript,
    GaveUp,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
)
from callbridge.audio.playout import Playout
from callbridge.audio.recorder import StereoRecorder
from callbridge.audio.resample import StreamResampler
from callbridge.call.media_leg import CallerAudio, CallerDtmf, MediaLeg
from callbridge.call.watchers import CallLimits
from callbridge.core.heard import Heard, heard_text

if TYPE_CHECKING:
    from callbridge.call.session import CallSession

log = logging.getLogger(__name__)


class ReplyText:
    """Where each sentence of the reply being played starts in its audio, so played
    milliseconds can be turned into heard words."""

    def __init__(self) -> None:
        self.response_id: str | None = None
        self._marks: list[tuple[float, str]] = []  # (start ms in the reply, sentence)
        self._ms = 0.0  # audio of the reply enqueued so far

    def start(self, response_id: str) -> None:
        self.response_id = response_id
        self._marks = []
        self._ms = 0.0

    def add(self, ms: float, text: str) -> None:
        if text:
            self._marks.append((self._ms, text))
        self._ms += ms

    def heard(self, heard_ms: int) -> str:
        spoken: list[tuple[str, float]] = []
        starts = [start for start, _ in self._marks] + [self._ms]
        if starts[0] > 0:
            spoken.append(("", starts[0]))  # audio before the first marked sentence
        spoken += [(text, starts[i + 1] - start) for i, (start, text) in enumerate(self._marks)]
        return heard_text(spoken, heard_ms)


class MediaBridge:
    def __init__(
        self,
        session: CallSession,
        leg: MediaLeg,
        recorder: StereoRecorder | None,
        limits: CallLimits,
    ) -> None:
        self._s = session
        self._leg = leg
        self.recorder = recorder
        self.playout = Playout(
            self.send,
            leg.sample_rate,
            chunk_ms=limits.chunk_ms,
            lead_ms=limits.lead_ms,
            max_lead_ms=limits.max_lead_ms,
            clock=session.clock,
        )
        self._leg_gone: asyncio.Event | None = None  # set once a reopened leg is let go
        rate = session.info.sample_rate
        self._to_agent = StreamResampler(leg.sample_rate, rate)
        self._to_leg = StreamResampler(rate, leg.sample_rate)
        self._reply = ReplyText()
        self._cancelled: set[str] = set()  # replies the caller interrupted
        self._said = 0
        self.responding = False

    def caller_audio(self, pcm: bytes) -> None:
        if self.recorder is not None:
            self.recorder.caller(pcm)

    async def send(self, chunk: bytes) -> None:
        """Playout's sink: the recorder's agent channel and the leg."""
        if self.recorder is not None:
            self.recorder.agent(chunk)
        await self._leg.send_audio(chunk)

    def speaking(self) -> bool:
        return self.responding or self.playout.speaking

    @property
    def leg(self) -> MediaLeg:
        return self._leg

    async def let_go(self) -> None:
        """The call is over: close the leg in use, and free whoever holds a reopened one."""
        try:
            await self._leg.close()
        finally:
            if self._leg_gone is not None:
                self._leg_gone.set()

    def _switch(self, leg: MediaLeg, gone: asyncio.Event) -> None:
        """Carry on over a reopened leg (ACS reconnected its media socket)."""
        if self._leg_gone is not None:
            self._leg_gone.set()
        self._leg, self._leg_gone = leg, gone  # (the session checked its sample rate)
        self.playout.resume()

    # --- caller → agent ---------------------------------------------------------------
    async def pump_caller(self, agent: AgentSession) -> None:
        s = self._s
        while True:
            item = await self._leg.receive()
            if item is None:
                self.playout.hold()
                reopened = await s.media_lost(self._leg)
                if reopened is None:
                    return
                self._switch(*reopened)
                continue
            now = s.last_input = s.clock.now()
            if isinstance(item, CallerAudio):
                s.stats.frames_in += 1
                self.playout.arrivals.arrived(now, len(item.pcm) * 500 / self._leg.sample_rate)
                self.caller_audio(item.pcm)
                await agent.push_audio(self._to_agent.process(item.pcm))
            elif isinstance(item, CallerDtmf):
                s.stats.dtmf_in.append(item.digit)
                s.last_caller_activity = s.clock.now()
                s.note_event("dtmf", digit=item.digit)
                log.info("caller pressed %s", item.digit)
                if s.policy.dtmf_barge_in:
                    await self.barge_in(agent, "keypad")
                await agent.push_dtmf(item.digit)

    # --- agent → caller ---------------------------------------------------------------
    async def pump_agent(self, agent: AgentSession) -> None:
        s = self._s
        async for event in agent.events():
            if isinstance(event, AgentAudio):
                self._play(event)
            elif isinstance(event, SpeechStarted):
                s.last_caller_activity = s.clock.now()
                s.reply_started()  # nothing is due while the caller speaks
                await self.barge_in(agent, "speech")
            elif isinstance(event, SpeechStopped):
                s.last_caller_activity = s.last_input = s.clock.now()
                s.expect_reply("the reply to the caller's turn")
            elif isinstance(event, CallerTranscript):
                if event.final:
                    s.add_transcript("caller", event.text)
            elif isinstance(event, AgentTranscript):
                s.add_transcript("agent", event.text)
            elif isinstance(event, ToolCall):
                s.reply_started()  # a tool runs: its own timeout and filler apply
                s.spawn(s.run_tool(event, agent), "tool")
            elif isinstance(event, AgentState):
                s.keep_agent_state(event.state)
            elif isinstance(event, ResponseDone):
                self.responding = False
                log.debug("reply %s done (interrupted=%s)", event.response_id, event.interrupted)
            elif isinstance(event, AgentFailed | GaveUp):
                # (Only a FallbackAgent hands over on GaveUp: unwrapped, it is a failure.)
                await self._rescue(event.reason)
                return
        if not s.ended:
            await self._rescue("the agent's session ended")

    async def _rescue(self, reason: str) -> None:
        """The service speaks for the failed agent, then the line's fallback ends or hands
        on the call: this pump stays until then, so the media goes on meanwhile."""
        await self._s.rescuer.failed(reason)
        await self._s.wait_ended()

    def _play(self, event: AgentAudio) -> None:
        if event.response_id in self._cancelled or self._s.muted:
            return  # late audio of a reply the caller interrupted
        self.responding = True
        self._s.reply_started()
        self._s.rescuer.replied()
        if event.response_id != self._reply.response_id:
            self._reply.start(event.response_id)
            self._s.stats.replies += 1
            self.playout.start_reply()
        pcm = self._to_leg.process(event.pcm)
        self._reply.add(len(pcm) * 500 / self._leg.sample_rate, event.text)
        self.playout.enqueue(pcm)

    def say(self, pcm: bytes) -> None:
        """The service's own words (call/rescue.py): a reply of their own after whatever
        is queued, interruptible like any other."""
        self._said += 1
        self._reply.start(f"service-{self._said}")
        self.playout.start_reply()
        self.playout.enqueue(pcm)

    async def barge_in(self, agent: AgentSession, by: str) -> None:
        """The caller interrupts: StopAudio at once, drop the rest of the reply, and tell
        the agent what was heard of it."""
        if not self.playout.speaking:
            return
        heard_ms = self.playout.flush()
        await self._leg.stop_audio()
        self._s.stats.barge_ins += 1
        reply = self._reply.response_id
        if reply is not None:
            self._cancelled.add(reply)
        heard = Heard(heard_ms, self._reply.heard(heard_ms), reply)
        log.info("barge-in (%s) after %d ms of the reply", by, heard_ms)
        self._s.note_event("barge_in", heard_ms=heard_ms, by=by)
        await agent.interrupted(heard)
