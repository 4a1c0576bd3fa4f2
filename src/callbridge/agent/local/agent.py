"""The offline agent: Silero VAD → Whisper → a dialog brain → Piper, as one AgentSession.

Latency is won in three places: the end of the caller's turn is decided by the VAD after a
short silence tuned for phone speech; the utterance is transcribed speculatively during a
pause inside it, so the text is usually ready when the turn ends; and the reply is spoken
sentence by sentence, the first sentence playing while the next is synthesised.

The first audio of each sentence carries its words (`AgentAudio.text`): after a barge-in
the call session works out the words the caller heard, which the brain then keeps.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from callbridge.agent.base import (
    AgentAudio,
    AgentEvent,
    AgentFailed,
    AgentTranscript,
    CallerTranscript,
    EventStream,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
)
from callbridge.agent.keypad import DigitCollector
from callbridge.agent.local.brain.base import Brain
from callbridge.agent.local.setup import (
    CallSetup,
    SpeechToText,
    TextToSpeech,
    TurnSettings,
    TurnTimings,
)
from callbridge.agent.local.vad import SegmenterConfig, SpeechSegmenter, VadEvent
from callbridge.agent.sentences import first_clauses
from callbridge.audio.resample import StreamResampler
from callbridge.core.call_info import CallInfo
from callbridge.core.heard import Heard

__all__ = ["CallSetup", "LocalAgent", "SpeechToText", "TextToSpeech", "TurnSettings", "TurnTimings"]

log = logging.getLogger(__name__)

VAD_RATE = 16000
_ids = itertools.count(1)


@dataclass
class _Reply:
    response_id: str
    task: asyncio.Task[None] | None = None
    spoken: list[str] = field(default_factory=list)  # the sentences handed over so far


# The reply a task belongs to, so helpers deep in a reply know where their audio goes.
_current_reply: contextvars.ContextVar[_Reply] = contextvars.ContextVar("local_agent_reply")


class LocalAgent:
    def __init__(
        self,
        brain: Callable[[CallInfo], Brain],
        stt: SpeechToText,
        tts: TextToSpeech,
        executor: Executor,
        *,
        turn: TurnSettings | None = None,
        segmenter: SpeechSegmenter | None = None,
        notices: dict[str, str] | None = None,
        setup: Callable[[CallInfo], CallSetup] | None = None,
        voice_executor: Executor | None = None,
    ) -> None:
        self._voice_executor = voice_executor or executor
        self._setup = setup
        self._notices = dict(notices or {})
        self._make_brain = brain
        self._brain: Brain = _NoBrain()
        self._stt = stt
        self._tts = tts
        self._executor = executor
        self._turn = turn or TurnSettings()
        self._segmenter = segmenter or self._new_segmenter()
        self._events = EventStream()
        self._rate = 24000
        self._to_vad = StreamResampler(24000, VAD_RATE)
        self._reply: _Reply | None = None  # the reply being generated
        self._last_reply: _Reply | None = None  # the latest reply, generated or not
        self._speculative: tuple[int, asyncio.Task[str]] | None = None
        self._pending_tools: dict[str, asyncio.Future[str]] = {}
        self._keypad = DigitCollector(self._on_digits, self._turn.digit_timeout_s)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.timings: list[TurnTimings] = []

    # --- AgentSession -------------------------------------------------------------------
    def _new_segmenter(self) -> SpeechSegmenter:
        return SpeechSegmenter(
            SegmenterConfig(
                end_silence_ms=self._turn.end_silence_ms,
                pause_ms=self._turn.pause_ms,
                min_speech_ms=self._turn.barge_in_min_ms,
            )
        )

    async def start(self, call: CallInfo) -> None:
        if self._setup is not None:
            # The call's profile (picked by number or by the keypad menu) decides the rest.
            setup = self._setup(call)
            self._make_brain = setup.brain
            self._turn, self._notices, self._tts = setup.turn, setup.notices, setup.tts
            self._segmenter = self._new_segmenter()
            self._keypad.timeout_s = self._turn.digit_timeout_s
        self._brain = self._make_brain(call)
        self._rate = call.sample_rate
        self._to_vad = StreamResampler(call.sample_rate, VAD_RATE)
        greeting = self._brain.greeting()
        if greeting:
            self._start_reply(lambda: self._say_all([greeting]))

    async def push_audio(self, pcm: bytes) -> None:
        if self._closed:
            return
        for event in self._segmenter.push(self._to_vad.process(pcm)):
            self._on_vad(event)

    async def push_dtmf(self, digit: str) -> None:
        self._keypad.push(digit)

    async def tool_result(self, call_id: str, output: str) -> None:
        fut = self._pending_tools.pop(call_id, None)
        if fut is not None and not fut.done():
            fut.set_result(output)

    async def interrupted(self, heard: Heard) -> None:
        # The reply may be fully generated and still playing: the last one is the one cut.
        reply = self._reply or self._last_reply
        if reply is None:
            return
        self._brain.heard(heard.text)
        self._last_reply = None
        self._cancel_reply()

    async def notify(self, notice: str, detail: dict[str, Any]) -> None:
        """Speak the profile's line for a call event (silence, time limit, transfer)."""
        text = self._notices.get(notice, "")
        log.info("notice %s: %r (reply busy: %s)", notice, text[:40], self._reply is not None)
        if notice == "transfer_failed":
            # The brain thought the call was handed on: it is the agent's again.
            resume = getattr(self._brain, "resume", None)
            if resume is not None:
                resume()
        if not text:
            return
        try:
            text = text.format_map(_Blank(detail))
        except (ValueError, IndexError):
            pass
        if self._reply is not None and self._reply.task is not None:
            # Let the current reply finish first: a notice never cuts the agent off.
            await asyncio.wait({self._reply.task}, timeout=15)
        self._start_reply(lambda: self._say_all([text]))
        # Return once the words are handed to the bridge, so a caller that ends the call
        # after the notice (goodbye) waits for them to be heard.
        if self._reply is not None and self._reply.task is not None:
            await asyncio.wait({self._reply.task}, timeout=15)

    def events(self) -> AsyncIterator[AgentEvent]:
        return aiter(self._events)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._keypad.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        aclose = getattr(self._brain, "aclose", None)
        if aclose is not None:
            await aclose()
        self._events.close()

    # --- turn taking ----------------------------------------------------------------------
    def _emit(self, event: AgentEvent) -> None:
        if not self._closed:
            self._events.put(event)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_vad(self, event: VadEvent) -> None:
        if event.kind == "speech_start":
            # The bridge turns this into StopAudio if the agent is audible; a reply still
            # being prepared for the previous utterance is dropped: the caller goes on.
            self._emit(SpeechStarted())
            if self._reply is not None and not self._reply.spoken:
                self._cancel_reply()
        elif event.kind == "pause" and event.audio:
            self._cancel_speculative()
            task = self._spawn(self._transcribe(event.audio))
            self._speculative = (len(event.audio), task)
        elif event.kind == "resume":
            self._cancel_speculative()
        elif event.kind == "speech_end" and event.audio is not None:
            self._emit(SpeechStopped())
            ended_at = time.perf_counter()
            audio, end_ms = event.audio, event.speech_end_ms or 0
            self._start_reply(lambda: self._answer(audio, end_ms, ended_at))

    def _cancel_speculative(self) -> None:
        if self._speculative is not None:
            self._speculative[1].cancel()
            self._speculative = None

    async def _transcribe(self, pcm16k: bytes) -> str:
        result = await self._stt.transcribe_async(pcm16k, self._executor)
        return str(getattr(result, "text", result) or "").strip()

    async def _utterance_text(self, audio: bytes, timing: TurnTimings) -> str:
        started = time.perf_counter()
        spec, self._speculative = self._speculative, None
        text: str | None = None
        # The speculative result stands if no speech came after the pause it was taken at
        # (the utterance then only grew by trailing silence).
        if spec is not None and not spec[1].cancelled():
            try:
                text = await spec[1]
                timing.stt_speculative = True
            except Exception:
                text = None
        if text is None:
            text = await self._transcribe(audio)
        timing.stt_ms = (time.perf_counter() - started) * 1000
        return text

    def _start_reply(self, work: Callable[[], Awaitable[None]]) -> None:
        self._cancel_reply()
        reply = _Reply(response_id=f"local-{next(_ids)}")
        self._reply = self._last_reply = reply
        reply.task = self._spawn(self._run_reply(reply, work))

    def _cancel_reply(self) -> None:
        reply, self._reply = self._reply, None
        if reply is not None and reply.task is not None and not reply.task.done():
            reply.task.cancel()

    async def _run_reply(self, reply: _Reply, work: Callable[[], Awaitable[None]]) -> None:
        token = _current_reply.set(reply)
        try:
            await work()
        except asyncio.CancelledError:
            self._emit(ResponseDone(reply.response_id, interrupted=True))
            raise
        except Exception as exc:
            log.exception("the offline agent failed a turn")
            await self._recover(reply, exc)
        else:
            self._emit(ResponseDone(reply.response_id))
        finally:
            _current_reply.reset(token)
            if self._reply is reply:
                self._reply = None

    async def _recover(self, reply: _Reply, exc: Exception) -> None:
        """Apologise, then the profile's fallback: never leave the caller in silence."""
        try:
            await self._say_all([self._brain.apology()])
            tool = "transfer_to_human" if self._brain.fallback == "transfer" else "end_call"
            await self._run_tool(tool, {"summary": f"the agent failed: {exc}"})
        except Exception as again:
            self._emit(AgentFailed(f"{type(exc).__name__}: {exc}; then {again}"))
            return
        self._emit(ResponseDone(reply.response_id))

    # --- one reply --------------------------------------------------------------------------
    async def _answer(self, audio: bytes, speech_end_ms: int, ended_at: float) -> None:
        timing = TurnTimings(speech_end_ms=speech_end_ms)
        text = await self._utterance_text(audio, timing)
        timing.text = text
        log.info("caller said: %r (stt %.0f ms)", text, timing.stt_ms)
        if text:
            self._emit(CallerTranscript(text))
        self.timings.append(timing)
        await self._speak(self._brain.turn(text, self._run_tool), timing, ended_at)

    async def _say_all(self, sentences: list[str]) -> None:
        async def gen() -> AsyncIterator[str]:
            for s in sentences:
                yield s

        await self._speak(gen(), None, time.perf_counter())

    async def _speak(
        self, sentences: AsyncIterator[str], timing: TurnTimings | None, t0: float
    ) -> None:
        reply = _current_reply.get()
        first = True
        async for text in sentences:
            # A long first sentence is spoken clause by clause: its first clause is ready
            # sooner, and the first audio is what the caller waits for.
            for sentence in first_clauses(text.strip()) if first else [text.strip()]:
                if sentence:
                    first = await self._speak_one(sentence, reply, timing, t0, first)

    async def _speak_one(
        self, sentence: str, reply: _Reply, timing: TurnTimings | None, t0: float, first: bool
    ) -> bool:
        """Synthesise and emit one sentence; returns whether nothing was spoken yet."""
        t_sentence = time.perf_counter()
        if timing is not None and first:
            timing.brain_first_ms = (t_sentence - t0) * 1000 - timing.stt_ms
        spoke = await self._voice(sentence, reply, timing if first else None, t0, t_sentence)
        self._emit(AgentTranscript(sentence, reply.response_id))
        return first and not spoke

    async def _voice(
        self, text: str, reply: _Reply, timing: TurnTimings | None, t0: float, t_text: float
    ) -> bool:
        """Emit `text` as speech, its first piece marked with the words (so the call
        session can tell which words a barge-in let the caller hear); False if the voice
        made no audio of it."""
        mark = text
        spoke = False
        async for pcm in self._tts.stream(text, self._rate, self._voice_executor):
            if timing is not None and mark:
                now = time.perf_counter()
                timing.tts_first_ms = (now - t_text) * 1000
                timing.first_audio_ms = (now - t0) * 1000
            self._emit(AgentAudio(pcm, reply.response_id, mark))
            mark, spoke = "", True
        reply.spoken.append(text)
        return spoke

    async def _run_tool(self, name: str, arguments: dict[str, Any]) -> str:
        call_id = f"tool-{next(_ids)}"
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending_tools[call_id] = fut
        self._emit(ToolCall(call_id, name, arguments))
        try:
            # A slow tool gets a short spoken filler rather than silence.
            done, _ = await asyncio.wait({fut}, timeout=self._turn.tool_filler_after_s)
            if not done and self._turn.tool_filler:
                await self._say_filler()
            return await fut
        finally:
            self._pending_tools.pop(call_id, None)

    async def _say_filler(self) -> None:
        now = time.perf_counter()
        await self._voice(self._turn.tool_filler, _current_reply.get(), None, now, now)

    def _on_digits(self, digits: str) -> None:
        """A keypad entry is complete ("4512#", or digits then a pause)."""
        log.info("caller keyed %s", digits)
        self._start_reply(
            lambda: self._speak(
                self._brain.digits(digits, self._run_tool), None, time.perf_counter()
            )
        )


class _Blank(dict[str, Any]):
    """format_map helper: unknown fields come out empty."""

    def __missing__(self, key: str) -> str:
        return ""


class _NoBrain:
    """Stands in until `start` makes the call's brain."""

    def greeting(self) -> str:
        return ""

    async def turn(self, text: str, run_tool: Any) -> AsyncIterator[str]:
        return
        yield

    async def digits(self, digits: str, run_tool: Any) -> AsyncIterator[str]:
        return
        yield

    def heard(self, text: str) -> None:
        return None

    def apology(self) -> str:
        return ""

    @property
    def fallback(self) -> str:
        return "goodbye"
