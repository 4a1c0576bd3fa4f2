"""``LiveCaller``: a caller that reacts to the agent, for conversational scenario tests.

``AcsEmulator.start_call()`` returns one. Every time it takes or returns is on one clock:
seconds since media start, counted in the call's 20 ms ticks — the clock of
``CallReport.heard_segments``, ``stop_audio_times`` and ``dtmf_sent`` — so a response
latency is simply ``turn.first_audio_s - said.speech_end_s``.

Waits are resolved by the call's own clock task after each tick (see ``caller.py``), so
a scenario costs no extra polling task. Any wait raises :class:`CallEndedError` when the call
ends under it, and ``TimeoutError`` with what was (not) heard when it times out.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .caller import CallEndedError, SaidSpan
from .playout import FRAME_S
from .report import CallReport
from .script import pcm_at_rate, pcm_from_bytes

if TYPE_CHECKING:
    from .call import EmulatedCall

DTMF_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True)
class AgentTurn:
    """What the caller heard from the agent in one ``wait_agent_quiet`` window."""

    first_audio_s: float | None  # start of the first audible tick after ``since``
    last_audio_s: float | None  # end of the last audible tick
    pcm: bytes = field(repr=False)  # agent channel first..last, PCM16 mono at ``rate``
    rate: int
    stop_audio_times: list[float]  # StopAudio frames received in the window

    @property
    def duration_s(self) -> float:
        if self.first_audio_s is None or self.last_audio_s is None:
            return 0.0
        return round(self.last_audio_s - self.first_audio_s, 3)


class LiveCaller:
    """A placed call driven step by step (see the module docstring for the time base)."""

    def __init__(self, call: EmulatedCall, task: asyncio.Task[CallReport]) -> None:
        self._call = call
        self._task = task
        self.ended_event = asyncio.Event()  # set once the call has fully ended
        task.add_done_callback(self._on_done)

    def _on_done(self, task: asyncio.Task[CallReport]) -> None:
        self._call.close_caller()
        self.ended_event.set()

    # ------------------------------------------------------------------ state

    @property
    def report(self) -> CallReport:
        """The report so far (heard audio refreshed on each access while the call runs)."""
        call, r = self._call, self._call.report
        if call.clock_t0 is not None and not call.caller_closed.is_set():
            r.heard_segments = call.heard.segments()
            r.heard_pcm = bytes(call.timeline.agent)
            r.underruns = call.playout.underruns
            r.underrun_times = [round(t * FRAME_S, 2) for t in call.playout.underrun_ticks]
        return r

    @property
    def is_active(self) -> bool:
        """The caller is still on the line (no side has hung up yet)."""
        call = self._call
        return (
            not self._task.done() and call.end_request is None and not call.caller_closed.is_set()
        )

    @property
    def call_connection_id(self) -> str | None:
        return self._call.call_connection_id

    @property
    def rate(self) -> int | None:
        """The call's media sample rate once answered with media."""
        return self._call.media.rate if self._call.media is not None else None

    @property
    def agent_audible(self) -> bool:
        """Whether the last tick played audible agent audio to the caller."""
        last = self._call.heard.last_tick
        return last is not None and last == self._call.tick - 1

    def mark(self) -> float:
        """Now on the media timeline: the start of the next 20 ms tick."""
        return round(self._call.tick * FRAME_S, 3)

    # ------------------------------------------------------------------ waiting

    async def wait_media(self, timeout_s: float = 10.0) -> None:
        """Until the call is answered and its media socket open (and the clock running)."""
        call = self._call
        if not call.media_ready.is_set() and not call.caller_closed.is_set():
            waits = {
                asyncio.ensure_future(call.media_ready.wait()),
                asyncio.ensure_future(call.caller_closed.wait()),
            }
            try:
                await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
        if call.caller_closed.is_set() or call.end_request is not None:
            raise self._ended()
        if not call.media_ready.is_set():
            raise TimeoutError(f"no media within {timeout_s:g} s: {self._describe_state()}")

    async def wait_agent_speaking(
        self, since: float | None = None, timeout_s: float = 10.0
    ) -> float:
        """Start (media time) of the first audible agent audio at or after ``since``."""
        call = self._call
        start = self._tick_at(since)

        def started() -> bool:
            return call.heard.ticks.find(1, start) >= 0

        await self._until(
            started,
            timeout_s,
            lambda: (
                f"the agent did not start speaking within {timeout_s:g} s after "
                f"{start * FRAME_S:.2f} s (heard: {self._heard_text()})"
            ),
        )
        return round(call.heard.ticks.find(1, start) * FRAME_S, 3)

    async def wait_agent_quiet(
        self,
        since: float | None = None,
        quiet_s: float = 1.0,
        timeout_s: float = 15.0,
        require_speech: bool = True,
    ) -> AgentTurn:
        """Until the agent has spoken after ``since`` and then been quiet for ``quiet_s``.

        Quiet means no audible agent audio played *and* none still queued in the playout
        buffer. With ``require_speech=False`` an agent that says nothing also counts: the
        wait then ends ``quiet_s`` after ``since`` with ``first_audio_s`` None.
        """
        call = self._call
        start = self._tick_at(since)
        quiet_ticks = max(1, round(quiet_s / FRAME_S))

        def quiet() -> bool:
            last = call.heard.ticks.rfind(1, start)
            if last < 0:
                return not require_speech and call.tick - start >= quiet_ticks
            # The buffer check is only reached once the ticks were quiet long enough.
            return call.tick - (last + 1) >= quiet_ticks and not call.playout.has_audible()

        def why() -> str:
            last = call.heard.ticks.rfind(1, start)
            if last < 0:
                state = "the agent did not speak"
            else:
                state = f"the agent was still speaking (last audio at {(last + 1) * FRAME_S:.2f} s)"
            return (
                f"{state} within {timeout_s:g} s after {start * FRAME_S:.2f} s "
                f"(quiet_s={quiet_s:g}; heard: {self._heard_text()})"
            )

        await self._until(quiet, timeout_s, why)
        ticks = call.heard.ticks
        first, last = ticks.find(1, start), ticks.rfind(1, start)
        since_s = start * FRAME_S
        stops = [t for t in call.report.stop_audio_times if t >= since_s - 1e-9]
        rate = self.rate or 16000
        if first < 0:
            return AgentTurn(None, None, b"", rate, stops)
        fb = call.timeline.frame_bytes
        return AgentTurn(
            round(first * FRAME_S, 3),
            round((last + 1) * FRAME_S, 3),
            bytes(call.timeline.agent[first * fb : (last + 1) * fb]),
            rate,
            stops,
        )

    async def silence(self, seconds: float) -> None:
        """The caller stays quiet for ``seconds`` of call clock (silent frames keep flowing)."""
        call = self._call
        target = call.tick + max(0, round(seconds / FRAME_S))
        await self._until(
            lambda: call.tick >= target,
            seconds + 10.0,
            lambda: f"the call clock did not advance {seconds:g} s ({self._describe_state()})",
        )

    async def ended(self, timeout_s: float | None = 30.0) -> CallReport:
        """Until the call has ended (either side) and its report is final."""
        done, _ = await asyncio.wait({self._task}, timeout=timeout_s)
        if not done:
            raise TimeoutError(
                f"the call did not end within {timeout_s:g} s ({self._describe_state()})"
            )
        if self._task.cancelled():
            return self._call.report  # the emulator was stopped under this call
        return self._task.result()

    # ------------------------------------------------------------------ acting

    async def say(self, pcm: bytes, rate: int = 16000) -> SaidSpan:
        """Queue caller speech (PCM16 mono at ``rate``) after anything already queued.

        Returns once its last frame has been sent, with where it landed on the timeline.
        """
        call = self._call
        media = call.media
        if media is None:
            if call.caller_closed.is_set():
                raise self._ended()
            raise RuntimeError("say() needs the call answered with media: await wait_media()")
        samples = pcm_from_bytes(pcm)
        if rate != media.rate and samples.size:
            samples = await asyncio.to_thread(pcm_at_rate, samples, rate, media.rate)
        utt = call.caller_speech.make(samples, live=True, want_future=True)
        if utt is None:
            now = self.mark()
            return SaidSpan(now, now, now)
        call.caller_speech.append(utt)
        assert utt.future is not None
        return await utt.future

    async def press(self, digits: str, gap_s: float = 0.15) -> list[tuple[float, str]]:
        """Press keys: one DtmfData frame per digit, ``gap_s`` apart, starting next tick.

        Returns (media time, digit) as pressed; ``report.dtmf_sent`` shows which went out on
        the socket (only with enableDtmfTones).
        """
        bad = sorted(set(digits) - DTMF_DIGITS)
        if bad:
            raise ValueError(f"not DTMF digits: {''.join(bad)!r}")
        call = self._call
        start = call.tick * FRAME_S
        events = [
            call.timed.add(start + i * gap_s, "dtmf", d, want_future=True)
            for i, d in enumerate(digits)
        ]
        times = await asyncio.gather(*(e.future for e in events if e.future is not None))
        return list(zip(times, digits, strict=True))

    async def hang_up(self, timeout_s: float = 10.0) -> CallReport:
        """The caller hangs up (while ringing: abandons the call); returns the final report."""
        call = self._call
        if not self._task.done():
            call.caller_hangs_up(f"caller hung up at {self.mark():.2f} s")
        return await self.ended(timeout_s)

    # ------------------------------------------------------------------ helpers

    def _tick_at(self, since: float | None) -> int:
        if since is None:
            return self._call.tick
        return max(0, math.ceil(since / FRAME_S - 1e-6))

    async def _until(
        self, condition: Callable[[], bool], timeout_s: float, why: Callable[[], str]
    ) -> None:
        fut = self._call.waiters.add(condition)
        try:
            await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise TimeoutError(why()) from None

    def _ended(self) -> CallEndedError:
        call = self._call
        if call.ended_error is not None:
            return call.ended_error
        end = call.end_request
        why = f"{end.ended_by}: {end.reason}" if end else self._describe_state()
        return CallEndedError(f"the call ended ({why})")

    def _heard_text(self) -> str:
        segs = self._call.heard.segments()
        return ", ".join(f"{a:.2f}-{b:.2f}s" for a, b in segs) or "nothing"

    def _describe_state(self) -> str:
        call = self._call
        hooks = ", ".join(
            str(w.status) if w.status is not None else str(w.error) for w in call.report.webhook
        )
        return (
            f"state {call.state}, ring outcome {call.ring_outcome or '-'}, media "
            f"{call.stream.state}, webhook {hooks or 'not delivered yet'}"
        )
