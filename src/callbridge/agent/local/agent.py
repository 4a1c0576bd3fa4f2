"""The offline agent: Silero VAD → Whisper → a dialog brain → Piper, as one AgentSession.

Latency is won in three places: the end of the caller's turn is decided by the VAD after a
short silence tuned for phone speech; the utterance is transcribed speculatively during a
pause inside it, so the text is usually ready when the turn ends; and the reply is spoken
sentence by sentence, the first sentence playing while the next is synthesised.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

from callbridge.agent.base import (
    AgentAudio,
    AgentEvent,
    AgentFailed,
    AgentTranscript,
    CallerTranscript,
    CallInfo,
    EventStream,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
)
from callbridge.agent.local.brain.base import Brain
from callbridge.agent.local.vad import SegmenterConfig, SpeechSegmenter, VadEvent
from callbridge.audio.pcm import duration_ms
from callbridge.audio.resample import StreamResampler

log = logging.getLogger(__name__)

VAD_RATE = 16000
_ids = itertools.count(1)


class SpeechToText(Protocol):
    async def transcribe_async(self, pcm16k: bytes, executor: Executor) -> Any: ...


class TextToSpeech(Protocol):
    def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class TurnSettings:
    end_silence_ms: int = 400
    pause_ms: int = 200
    barge_in_min_ms: int = 120
    digit_timeout_s: float = 2.5
    tool_filler_after_s: float = 1.5
    tool_filler: str = "One moment please."


@dataclass(frozen=True)
class CallSetup:
    """What a call's profile gives the agent when it starts."""

    brain: Callable[[CallInfo], Brain]
    turn: TurnSettings
    notices: dict[str, str]
    tts: TextToSpeech


@dataclass
class TurnTimings:
    """Where the time of one turn went (ms), for the latency benchmark and the store."""

    speech_end_ms: int = 0  # on the VAD timeline
    stt_ms: float = 0.0
    stt_speculative: bool = False
    brain_first_ms: float = 0.0  # turn end → first sentence from the brain
    tts_first_ms: float = 0.0  # first sentence → its first audio
    first_audio_ms: float = 0.0  # turn end → first audio handed to the bridge
    text: str = ""


@dataclass
class _Reply:
    response_id: str
    task: asyncio.Task[None] | None = None
    # (text, ms of audio) of each sentence spoken so far, to tell the brain what was heard.
    spoken: list[tuple[str, float]] = field(default_factory=list)


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
        self._digits = ""
        self._digit_timer: asyncio.TimerHandle | None = None
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
        loop = asyncio.get_running_loop()
        if self._digit_timer is not None:
            self._digit_timer.cancel()
        if digit == "#":
            self._flush_digits(terminated=True)
            return
        self._digits += digit
        self._digit_timer = loop.call_later(self._turn.digit_timeout_s, self._flush_digits)

    async def tool_result(self, call_id: str, output: str) -> None:
        fut = self._pending_tools.pop(call_id, None)
        if fut is not None and not fut.done():
            fut.set_result(output)

    async def interrupted(self, heard_ms: int) -> None:
        # The reply may be fully generated and still playing: keep the last one's sentences.
        reply = self._reply or self._last_reply
        if reply is None:
            return
        self._brain.heard(_heard_text(reply.spoken, heard_ms))
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
        if self._digit_timer is not None:
            self._digit_timer.cancel()
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
            for sentence in _first_clause_split(text.strip()) if first else [text.strip()]:
                if sentence:
                    first = await self._speak_one(sentence, reply, timing, t0, first)

    async def _speak_one(
        self, sentence: str, reply: _Reply, timing: TurnTimings | None, t0: float, first: bool
    ) -> bool:
        """Synthesise and emit one sentence; returns whether nothing was spoken yet."""
        t_sentence = time.perf_counter()
        if timing is not None and first:
            timing.brain_first_ms = (t_sentence - t0) * 1000 - timing.stt_ms
        spoken_ms = 0.0
        async for pcm in self._tts.stream(sentence, self._rate, self._voice_executor):
            if timing is not None and first:
                now = time.perf_counter()
                timing.tts_first_ms = (now - t_sentence) * 1000
                timing.first_audio_ms = (now - t0) * 1000
            first = False
            spoken_ms += duration_ms(len(pcm), self._rate)
            self._emit(AgentAudio(pcm, reply.response_id))
        reply.spoken.append((sentence, spoken_ms))
        self._emit(AgentTranscript(sentence, reply.response_id))
        return first

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
        reply = _current_reply.get()
        async for pcm in self._tts.stream(self._turn.tool_filler, self._rate, self._voice_executor):
            self._emit(AgentAudio(pcm, reply.response_id))
        reply.spoken.append((self._turn.tool_filler, 0.0))

    def _flush_digits(self, terminated: bool = False) -> None:
        digits, self._digits = self._digits, ""
        self._digit_timer = None
        if not digits and not terminated:
            return
        text = digits + ("#" if terminated else "")
        log.info("caller keyed %s", text)
        self._start_reply(
            lambda: self._speak(self._brain.digits(text, self._run_tool), None, time.perf_counter())
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


_CLAUSE = re.compile(r"(?<=[,;:])\s+|\s+(?=(?:and|but|or) )")


_SOFT_BREAKS = frozenset(
    "from at in on for with and but or because so which that who when where".split()
)


def _first_clause_split(sentence: str, min_words: int = 4, long_words: int = 9) -> list[str]:
    """Split a long sentence at its clause punctuation into pieces of at least `min_words`."""
    if len(sentence.split()) < long_words:
        return [sentence]
    pieces: list[str] = []
    for part in _CLAUSE.split(sentence):
        if pieces and len(pieces[-1].split()) < min_words:
            pieces[-1] = f"{pieces[-1]} {part}"
        else:
            pieces.append(part)
    if len(pieces) > 1 and len(pieces[-1].split()) < min_words:
        last = pieces.pop()
        pieces[-1] = f"{pieces[-1]} {last}"
    # A first piece that is still long is cut before a preposition or conjunction early in
    # it: Piper makes a whole piece at once, so its length is the caller's wait.
    words = pieces[0].split()
    if len(words) > 7:
        for i in range(3, 7):
            if words[i].lower() in _SOFT_BREAKS:
                pieces[0:1] = [" ".join(words[:i]), " ".join(words[i:])]
                break
    return pieces


def _heard_text(spoken: list[tuple[str, float]], heard_ms: int) -> str:
    """The part of a reply the caller heard: whole sentences, then the words of the
    interrupted one in proportion to how much of it played."""
    out: list[str] = []
    left = float(heard_ms)
    for text, ms in spoken:
        if ms <= 0:
            continue
        if left >= ms:
            out.append(text)
            left -= ms
            continue
        words = text.split()
        n = int(len(words) * left / ms)
        if n:
            out.append(" ".join(words[:n]) + "…")
        break
    return " ".join(out)
