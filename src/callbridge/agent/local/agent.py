"""The offline agent: Silero VAD → Whisper → a dialog brain → Piper, as one AgentSession.

Latency is won in three places: the end of the caller's turn is decided a moment after
they go quiet, by Smart Turn from the audio (`end_of_turn`; or by a fixed silence); the
utterance is transcribed speculatively at that same pause, so the text is ready when the
turn ends; and the reply is spoken clause by clause, the first playing while the next is
synthesised. A caller who pauses mid-sentence is not cut off: the model says "not finished"
and they get `max_silence_ms`; a caller who goes on after the agent decided, before it
spoke, has both parts answered as one utterance.

A cough or a noise over the agent stops its audio at once (the bridge cannot know yet) but
does not cost the reply: it is held and resumes once the sound turns out to have no words
(`interruption`).

The first audio of each sentence carries its words (`AgentAudio.text`): after a barge-in
the call session works out the words the caller heard, which the brain then keeps.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any

from callbridge.agent.base import (
    AgentAudio,
    AgentEvent,
    AgentFailed,
    AgentState,
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
from callbridge.agent.local.end_of_turn import (
    Decision,
    EndOfTurnModel,
    dangles,
    decide,
    shared_end_of_turn,
)
from callbridge.agent.local.interruption import Held, Piece, is_noise, rest_of_reply
from callbridge.agent.local.phrases import cached, trim_lead
from callbridge.agent.local.setup import (
    CallSetup,
    SpeechToText,
    TextToSpeech,
    TurnSettings,
    TurnTimings,
)
from callbridge.agent.local.stt import NUMBERS_PROMPT, SOUNDS_PROMPT
from callbridge.agent.local.stt_batch import batched
from callbridge.agent.local.vad import SegmenterConfig, SpeechSegmenter, VadEvent
from callbridge.agent.sentences import first_clauses
from callbridge.audio.resample import StreamResampler
from callbridge.core.call_info import CallInfo
from callbridge.core.heard import Heard

__all__ = ["CallSetup", "LocalAgent", "SpeechToText", "TextToSpeech", "TurnSettings", "TurnTimings"]

log = logging.getLogger(__name__)

VAD_RATE = 16000
MAX_GAP_MS = 320  # pauses inside an utterance, as Whisper and Smart Turn get them
# Words before a pause that say a number comes next ("my order number is …", "check order
# …", "… four five …"): the rest of the utterance is transcribed with `NUMBERS_PROMPT`.
_NUMBER_CUE = re.compile(r"\b(?:number|order|code|reference|account|pin)\b|\d", re.IGNORECASE)
_ids = itertools.count(1)


@dataclass
class _Reply:
    response_id: str
    task: asyncio.Task[None] | None = None
    spoken: list[str] = field(default_factory=list)  # the sentences handed over so far
    utterance: bytes = b""  # the caller's audio this reply answers
    pieces: list[Piece] = field(default_factory=list)  # its audio as handed over
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # cleared while held
    closed_id: str = ""  # the response id already reported done (held replies)

    def __post_init__(self) -> None:
        self.gate.set()


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
        end_of_turn: EndOfTurnModel | None = None,
    ) -> None:
        self._voice_executor = voice_executor or executor
        self._end_of_turn = end_of_turn
        self._setup = setup
        self._notices = dict(notices or {})
        self._make_brain = brain
        self._brain: Brain = _NoBrain()
        self._stt = batched(stt)  # several calls' transcriptions share a batch
        self._tts = cached(tts)
        self._executor = executor
        self._turn = turn or TurnSettings()
        self._segmenter = segmenter or self._new_segmenter()
        self._events = EventStream()
        self._rate = 24000
        self._to_vad = StreamResampler(24000, VAD_RATE)
        self._reply: _Reply | None = None  # the reply being generated
        self._last_reply: _Reply | None = None  # the latest reply, generated or not
        self._speculative: tuple[int, asyncio.Task[str]] | None = None
        self._said = ""  # the words of the current utterance before its last pause
        self._decision: asyncio.Task[None] | None = None  # end of turn, being decided
        self._carry = b""  # an utterance whose reply the caller talked over before it began
        self._held: Held | None = None  # a reply stopped by speech that may be a cough
        self._pending_tools: dict[str, asyncio.Future[str]] = {}
        self._keypad = DigitCollector(self._on_digits, self._turn.digit_timeout_s)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.timings: list[TurnTimings] = []

    # --- AgentSession -------------------------------------------------------------------
    def _new_segmenter(self) -> SpeechSegmenter:
        turn = self._turn
        if turn.smart and self._end_of_turn is None:
            self._end_of_turn = shared_end_of_turn()
            if self._end_of_turn is None:
                log.warning("Smart Turn is not installed: turns end on silence alone")
        smart = turn.smart and self._end_of_turn is not None
        return SpeechSegmenter(
            SegmenterConfig(
                # smart: ask the model at the first pause; the end is the longest wait.
                end_silence_ms=turn.max_silence_ms if smart else turn.end_silence_ms,
                pause_ms=turn.check_after_ms if smart else turn.pause_ms,
                min_speech_ms=turn.barge_in_min_ms,
                max_gap_ms=MAX_GAP_MS,
                repause_ms=turn.recheck_ms if smart else None,
                quiet_ms=turn.transcribe_after_ms if smart else None,
            )
        )

    @property
    def _smart(self) -> bool:
        return self._turn.smart and self._end_of_turn is not None

    async def start(self, call: CallInfo) -> None:
        if self._setup is not None:
            # The call's profile (picked by number or by the keypad menu) decides the rest.
            setup = self._setup(call)
            self._make_brain = setup.brain
            self._turn, self._notices, self._tts = setup.turn, setup.notices, cached(setup.tts)
            self._segmenter = self._new_segmenter()
            self._keypad.timeout_s = self._turn.digit_timeout_s
        self._brain = self._make_brain(call)
        section = getattr(self._brain, "turn_section", None)
        if section is not None:
            # The profile's turn section, through the brain made from it: the lines pass
            # it already (`TurnSettings.from_section`); an agent made without it gets it.
            self._turn = TurnSettings.from_section(section, self._turn)
            self._segmenter = self._new_segmenter()
        self._rate = call.sample_rate
        self._to_vad = StreamResampler(call.sample_rate, VAD_RATE)
        restore = getattr(self._brain, "restore", None)
        if call.agent_state and restore is not None:
            try:  # taken over from another replica: the dialog goes on where it stood
                restore(json.loads(call.agent_state))
            except ValueError as exc:
                log.warning("the dialog starts afresh: its state did not carry over (%s)", exc)
        # A call taken over from another replica (docs/scale-out.md) was greeted there.
        greeting = self._brain.greeting() if not call.history else ""
        if greeting:
            self._start_reply(lambda: self._say_all([greeting]))

    async def push_audio(self, pcm: bytes) -> None:
        if self._closed:
            return
        for event in self._segmenter.push(self._to_vad.process(pcm)):
            self._on_vad(event)

    async def push_dtmf(self, digit: str) -> None:
        self._settle_held(real=True)  # a key over the agent always interrupts it
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
        if self._turn.resume_after_noise and self._segmenter.in_speech and reply.pieces:
            # Maybe a cough: hold the reply until the caller's sound has been judged.
            self._settle_held(real=True)
            reply.gate.clear()
            self._held = Held(heard)
            reply.closed_id = reply.response_id
            self._emit(ResponseDone(reply.response_id, interrupted=True))
            return
        self._brain.heard(heard.text)
        self._last_reply = None
        self._cancel_reply()
        self._emit_state()  # what the caller heard of the reply is in the dialog now

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
            # being prepared for the previous utterance is dropped: the caller goes on,
            # and what they said before is answered with what they say now.
            self._emit(SpeechStarted())
            reply = self._reply
            if reply is not None and not reply.pieces and self._held is None:
                self._carry = reply.utterance
                self._cancel_reply()
            if not self._carry:
                self._said = ""  # (a carried utterance keeps its words: they go on)
        elif event.kind == "quiet" and event.audio:
            # Whisper is the slowest part of a decision: start it a little before the
            # model is asked; a caller who goes on cancels it ("resume"). Not while other
            # calls' transcriptions keep Whisper busy: one that turns out unneeded would
            # delay theirs, and this one would queue anyway.
            if not getattr(self._stt, "busy", False):
                self._start_speculative(self._carry + event.audio)
        elif event.kind == "pause" and event.audio:
            audio = self._carry + event.audio
            if self._speculative is None:  # none started at a "quiet" since the last speech
                self._start_speculative(audio)
            self._cancel_decision()
            if self._held is not None:
                self._decision = self._spawn(self._judge(event, at_end=False))
            elif self._smart:
                self._decision = self._spawn(self._decide(audio))
        elif event.kind == "still_paused" and event.audio and self._smart:
            # Not finished a moment ago; with more silence the model may now think so.
            if self._held is None and (self._decision is None or self._decision.done()):
                self._decision = self._spawn(self._decide(self._carry + event.audio))
        elif event.kind == "resume":
            self._cancel_speculative()
            self._cancel_decision()  # the caller went on: ask again at the next pause
        elif event.kind == "speech_end" and event.audio is not None:
            self._cancel_decision()
            if self._held is not None:
                self._decision = self._spawn(self._judge(event, at_end=True))
                return
            self._end_turn(event, "max_silence" if self._smart else "silence")

    def _end_turn(self, event: VadEvent, how: str, decision: Decision | None = None) -> None:
        self._cancel_decision()
        self._emit(SpeechStopped())
        ended_at = time.perf_counter()
        audio, end_ms = self._carry + (event.audio or b""), event.speech_end_ms or 0
        self._carry = b""
        timing = TurnTimings(speech_end_ms=end_ms, end_of_turn=how)
        if decision is not None:
            timing.turn_probability, timing.turn_ms = decision.probability, decision.ms
        self._start_reply(lambda: self._answer(audio, timing, ended_at), utterance=audio)

    def _cancel_decision(self) -> None:
        task, self._decision = self._decision, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _decide(self, audio: bytes) -> None:
        """At a pause: has the caller finished? Yes → end the turn now; no → they get up
        to max_silence_ms to go on. Smart Turn hears the audio; the words (transcribed at
        this pause anyway) can overrule it: the brain knows a number it waits for is still
        short, and no finished sentence ends on "…my order number is"."""
        assert self._end_of_turn is not None
        started = time.perf_counter()
        decision, text = await asyncio.gather(
            decide(self._end_of_turn, audio, self._turn.complete_threshold),
            self._speculative_text(audio),
        )
        hint = self._completes(text)
        complete = hint if hint is not None else decision.complete and not dangles(text)
        log.debug(
            "end of turn: p=%.2f (%.0f ms), words %s → %s",
            decision.probability,
            decision.ms,
            hint,
            "complete" if complete else "go on",
        )
        if not complete:
            return
        event = self._segmenter.end_now()
        if event is not None:
            elapsed = (time.perf_counter() - started) * 1000
            self._end_turn(event, "smart", replace(decision, ms=elapsed))

    def _completes(self, text: str) -> bool | None:
        completes = getattr(self._brain, "completes", None)
        if completes is None or not text:
            return None
        result = completes(text)
        return result if isinstance(result, bool) else None

    async def _speculative_text(self, audio: bytes = b"") -> str:
        """The transcription started at this pause (it goes on if this task is cancelled)."""
        spec = self._speculative
        try:
            if spec is not None:
                return await asyncio.shield(spec[1])
            return await self._transcribe(audio) if audio else ""
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("speculative transcription failed")
            return ""

    async def _judge(self, event: VadEvent, *, at_end: bool) -> None:
        """The caller made a sound over the agent: a cough (resume) or words (stop)?"""
        held = self._held
        if held is None:
            return
        speech_ms = (event.speech_end_ms or event.time_ms) - event.speech_start_ms
        noise = False
        if speech_ms <= self._turn.noise_max_ms:
            audio = event.audio or b""
            text = await self._speculative_text(audio)
            # Words: asked again (only then, it costs a transcription) if they were sounds.
            noise = is_noise(text) or await self._sounds_only(audio)
            log.info("over the agent: %r in %d ms of speech (noise: %s)", text, speech_ms, noise)
        if self._held is not held:
            return
        if noise:
            self._segmenter.drop()
            self._cancel_speculative()
            self._settle_held(real=False)
            return
        self._settle_held(real=True)
        if at_end:
            self._end_turn(event, "max_silence" if self._smart else "silence")
        elif self._smart and event.audio:
            await self._decide(self._carry + event.audio)

    def _settle_held(self, *, real: bool) -> None:
        """The held reply: dropped (the caller interrupted it) or resumed (a cough)."""
        held, self._held = self._held, None
        reply = self._reply or self._last_reply
        if held is None or reply is None:
            return
        if real:
            self._brain.heard(held.heard.text)
            self._last_reply = None
            if reply is self._reply:
                self._cancel_reply()
            return
        rest = rest_of_reply(reply.pieces, held.heard.ms, self._rate)
        reply.response_id = f"local-{next(_ids)}"
        reply.pieces = []
        for piece in rest:
            self._emit_audio(reply, piece)
        log.info("false interruption: the reply goes on (%d pieces left)", len(rest))
        if reply.task is None or reply.task.done():
            self._emit(ResponseDone(reply.response_id))
        reply.gate.set()

    def _start_speculative(self, audio: bytes) -> None:
        self._cancel_speculative()
        task = self._spawn(self._transcribe(audio, self._prompt()))
        task.add_done_callback(self._note_said)
        self._speculative = (len(audio), task)

    def _cancel_speculative(self) -> None:
        if self._speculative is not None:
            self._speculative[1].cancel()
            self._speculative = None

    def _note_said(self, task: asyncio.Task[str]) -> None:
        current = self._speculative is not None and self._speculative[1] is task
        if current and not task.cancelled() and task.exception() is None:
            self._said = task.result()

    def _prompt(self) -> str:
        """Whisper's prompt for this utterance: digit by digit once its words so far (up
        to a pause) say a number is being read out. Only then: a prompt changes how
        other speech is written too ("for four people" as "for 4 people")."""
        return NUMBERS_PROMPT if _NUMBER_CUE.search(self._said) else ""

    async def _stt_result(self, pcm16k: bytes, prompt: str = "") -> Any:
        if prompt and getattr(self._stt, "supports_prompts", False):
            return await self._stt.transcribe_async(pcm16k, self._executor, prompt=prompt)
        return await self._stt.transcribe_async(pcm16k, self._executor)

    async def _transcribe(self, pcm16k: bytes, prompt: str = "") -> str:
        result = await self._stt_result(pcm16k, prompt)
        return str(getattr(result, "text", result) or "").strip()

    async def _sounds_only(self, pcm16k: bytes) -> bool:
        """A second opinion on a short sound Whisper wrote as words: transcribed again
        with `SOUNDS_PROMPT`, an "uh-huh" tiny.en wrote "Out!" is written "Uh...", while
        real short words stay words. Its raw text counts: a word said twice over is
        rejected as a loop, yet still a word."""
        if not getattr(self._stt, "supports_prompts", False):
            return False
        try:
            result = await self._stt_result(pcm16k, SOUNDS_PROMPT)
        except asyncio.CancelledError:
            raise
        except Exception:  # no second opinion: the plain transcription decides alone
            log.exception("transcription with the sounds prompt failed")
            return False
        return is_noise(str(getattr(result, "raw_text", None) or getattr(result, "text", "")))

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
            text = await self._transcribe(audio, self._prompt())
        timing.stt_ms = (time.perf_counter() - started) * 1000
        return text

    def _start_reply(self, work: Callable[[], Awaitable[None]], utterance: bytes = b"") -> None:
        self._settle_held(real=True)
        self._cancel_reply()
        reply = _Reply(response_id=f"local-{next(_ids)}", utterance=utterance)
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
            if reply.closed_id != reply.response_id:
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
            self._emit_state()

    def _emit_state(self) -> None:
        """Where the dialog stands, for a replica that may carry the call on."""
        state = getattr(self._brain, "state", None)
        if state is not None:
            self._emit(AgentState(json.dumps(state())))

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
    async def _answer(self, audio: bytes, timing: TurnTimings, ended_at: float) -> None:
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
        index = len(reply.spoken)
        async for chunk in self._tts.stream(text, self._rate, self._voice_executor):
            await reply.gate.wait()  # held while a sound over the agent is judged
            pcm = chunk if reply.pieces else trim_lead(chunk, self._rate)
            if timing is not None and mark:
                now = time.perf_counter()
                timing.tts_first_ms = (now - t_text) * 1000
                timing.first_audio_ms = (now - t0) * 1000
            self._emit_audio(reply, Piece(pcm, mark, text, index))
            mark, spoke = "", True
        reply.spoken.append(text)
        return spoke

    def _emit_audio(self, reply: _Reply, piece: Piece) -> None:
        reply.pieces.append(piece)
        self._emit(AgentAudio(piece.pcm, reply.response_id, piece.mark))

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
