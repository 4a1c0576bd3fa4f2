"""LocalAgent's turn taking: smart end of turn, callers who pause, false interruptions.

No models and no waiting: the VAD is a loudness gate (loud window = speech), the end-of-turn
model, STT and TTS are fakes, and everything runs as soon as the event loop gets to it; the
audio pushed is the clock (the segmenter counts 32 ms windows of it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from callbridge.agent.base import (
    AgentAudio,
    AgentEvent,
    AgentTranscript,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
)
from callbridge.agent.local.agent import LocalAgent, TurnSettings
from callbridge.agent.local.brain.base import ToolRunner
from callbridge.agent.local.stt import NUMBERS_PROMPT, SOUNDS_PROMPT
from callbridge.agent.local.vad import (
    WINDOW_BYTES,
    SegmenterConfig,
    SpeechSegmenter,
    VadWindow,
)
from callbridge.core.call_info import CallInfo
from callbridge.core.heard import Heard

RATE = 16000  # the call's rate = the VAD's: no resampling in the way


class LoudnessVad:
    """A VadStream stand-in: a window is speech (1.0) when its samples are not all zero."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self.windows = 0

    @property
    def time_ms(self) -> int:
        return self.windows * 32

    def push_windows(self, pcm16k: bytes) -> list[VadWindow]:
        self._pending += pcm16k
        out = []
        while len(self._pending) >= WINDOW_BYTES:
            chunk = bytes(self._pending[:WINDOW_BYTES])
            del self._pending[:WINDOW_BYTES]
            out.append(VadWindow(self.windows, chunk, 1.0 if any(chunk) else 0.0))
            self.windows += 1
        return out


@dataclass
class Words:
    text: str


@dataclass
class FakeStt:
    """Says `text`, or the next of `texts` per transcription; records what it was given."""

    text: str = ""
    texts: list[str] = field(default_factory=list)
    heard_ms: list[int] = field(default_factory=list)

    async def transcribe_async(self, pcm16k: bytes, executor: Executor) -> Words:
        self.heard_ms.append(len(pcm16k) * 1000 // (2 * RATE))
        return Words(self.texts.pop(0) if self.texts else self.text)


@dataclass
class Said:
    text: str
    raw_text: str


@dataclass
class PromptedStt:
    """Whisper with prompts: `plain` in turn without one, `prompted[prompt]` with one."""

    plain: list[str]
    prompted: dict[str, str] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)  # the prompt of each transcription
    supports_prompts = True

    async def transcribe_async(self, pcm16k: bytes, executor: Executor, prompt: str = "") -> Said:
        self.prompts.append(prompt)
        if prompt and prompt not in self.prompted:
            raise RuntimeError("no transcription with this prompt")
        text = self.prompted[prompt] if prompt else self.plain.pop(0)
        return Said(text, text)


class FakeTts:
    """100 ms of a constant signal per word, one piece per word."""

    async def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]:
        for _ in text.split():
            yield b"\x10\x00" * (out_rate // 10)


@dataclass
class FakeTurnModel:
    """The end-of-turn model: `p` for every decision (or the next of `ps`)."""

    p: float = 0.9
    ps: list[float] = field(default_factory=list)
    asked: int = 0

    async def probability(self, pcm16k: bytes) -> float:
        self.asked += 1
        return self.ps.pop(0) if self.ps else self.p


class Brain:
    def __init__(self, replies: dict[str, list[str]], *, hint: bool | None = None) -> None:
        self.replies = replies
        self.turns: list[str] = []
        self.heard_texts: list[str] = []
        self.hint = hint
        self.hold: asyncio.Event | None = None  # set: the brain thinks until released

    def greeting(self) -> str:
        return "Thank you for calling how can I help"

    async def turn(self, text: str, run_tool: ToolRunner) -> AsyncIterator[str]:
        self.turns.append(text)
        if self.hold is not None:
            await self.hold.wait()
        for sentence in self.replies.get(text, ["Sorry?"]):
            yield sentence

    async def digits(self, digits: str, run_tool: ToolRunner) -> AsyncIterator[str]:
        yield digits

    def heard(self, text: str) -> None:
        self.heard_texts.append(text)

    def apology(self) -> str:
        return "Sorry"

    @property
    def fallback(self) -> str:
        return "goodbye"

    def completes(self, text: str) -> bool | None:
        return self.hint


def speech(ms: int) -> bytes:
    return b"\x00\x20" * (RATE * ms // 1000)


def quiet(ms: int) -> bytes:
    return bytes(RATE * ms // 1000 * 2)


class Call:
    """An agent on a call, its events collected as they come."""

    def __init__(
        self, brain: Brain, stt: FakeStt, model: FakeTurnModel | None = None, **turn: Any
    ) -> None:
        settings = TurnSettings(**turn)
        smart = settings.smart
        self.agent = LocalAgent(
            lambda info: brain,
            stt,
            FakeTts(),
            executor=None,  # type: ignore[arg-type]  # the fakes never use it
            turn=settings,
            segmenter=SpeechSegmenter(
                SegmenterConfig(
                    end_silence_ms=settings.max_silence_ms if smart else settings.end_silence_ms,
                    pause_ms=settings.check_after_ms if smart else settings.pause_ms,
                    min_speech_ms=settings.barge_in_min_ms,
                    repause_ms=settings.recheck_ms if smart else None,
                    quiet_ms=settings.transcribe_after_ms if smart else None,
                    pre_roll_ms=0,
                    post_roll_ms=0,
                ),
                LoudnessVad(),  # type: ignore[arg-type]
            ),
            end_of_turn=model or FakeTurnModel(),
        )
        self.events: list[AgentEvent] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self, greet: bool = False) -> None:
        await self.agent.start(CallInfo("c", "+1", "+2", RATE))
        self._reader = asyncio.create_task(self._read())
        await settle()
        if not greet:
            self.events.clear()

    async def _read(self) -> None:
        async for event in self.agent.events():
            self.events.append(event)

    async def push(self, pcm: bytes) -> None:
        for i in range(0, len(pcm), 640):  # 20 ms frames, as the bridge sends them
            await self.agent.push_audio(pcm[i : i + 640])
            await settle()

    async def close(self) -> None:
        await self.agent.close()
        if self._reader is not None:
            self._reader.cancel()

    def said(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, AgentTranscript)]

    def count(self, kind: type[AgentEvent]) -> int:
        return sum(isinstance(e, kind) for e in self.events)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_finished_question_is_answered_at_the_first_pause() -> None:
    brain = Brain({"hours": ["We open at nine."]})
    call = Call(brain, FakeStt("hours"), FakeTurnModel(0.95), check_after_ms=160)
    await call.start()
    await call.push(speech(800) + quiet(200))  # 200 ms of silence: far below max_silence
    assert call.count(SpeechStopped) == 1 and call.said() == ["We open at nine."]
    assert call.agent.timings[0].end_of_turn == "smart"
    assert call.agent.timings[0].turn_probability == 0.95
    await call.close()


async def test_a_caller_who_pauses_mid_sentence_is_not_cut_off() -> None:
    brain = Brain({"my order number is 4512": ["Order 4512 is on its way."]})
    stt = FakeStt(texts=["My order number is", "my order number is 4512"])
    model = FakeTurnModel(ps=[0.1, 0.9])  # not finished after "is"; finished at the end
    call = Call(brain, stt, model, check_after_ms=160, max_silence_ms=1500)
    await call.start()
    await call.push(speech(900) + quiet(900))  # a 0.9 s pause: the model said "go on"
    assert call.count(SpeechStopped) == 0 and brain.turns == []
    await call.push(speech(600) + quiet(200))
    assert brain.turns == ["my order number is 4512"]  # one turn, both halves
    assert call.said() == ["Order 4512 is on its way."]
    await call.close()


@dataclass
class WatchedStt(FakeStt):
    """FakeStt that notes how many times the end-of-turn model had been asked when each
    transcription started."""

    model: FakeTurnModel | None = None
    model_asked: list[int] = field(default_factory=list)
    busy: bool = False  # as SttBatcher.busy: other calls' transcriptions keep it busy

    async def transcribe_async(self, pcm16k: bytes, executor: Executor) -> Words:
        assert self.model is not None
        self.model_asked.append(self.model.asked)
        return await super().transcribe_async(pcm16k, executor)


async def test_the_words_are_transcribed_before_the_model_is_asked_and_only_once() -> None:
    # Whisper is the slower half of a decision: it starts at transcribe_after_ms (96) of
    # silence; the model at check_after_ms (160) uses that same transcription.
    model = FakeTurnModel(0.95)
    stt = WatchedStt("hours", model=model)
    call = Call(Brain({"hours": ["Nine."]}), stt, model, check_after_ms=160)
    await call.start()
    await call.push(speech(800) + quiet(100))  # 96 ms of silence: words, no model yet
    assert (len(stt.heard_ms), model.asked, call.count(SpeechStopped)) == (1, 0, 0)
    await call.push(quiet(100))
    assert call.count(SpeechStopped) == 1 and model.asked == 1
    assert stt.model_asked == [0]  # one transcription, started before the model was asked
    await call.close()


async def test_while_whisper_is_busy_with_other_calls_the_words_wait_for_the_pause() -> None:
    model = FakeTurnModel(0.95)
    stt = WatchedStt("hours", model=model, busy=True)
    call = Call(Brain({"hours": ["Nine."]}), stt, model, check_after_ms=160)
    await call.start()
    await call.push(speech(800) + quiet(100))
    assert len(stt.heard_ms) == 0  # not at the quiet: it would only queue
    await call.push(quiet(100))
    assert len(stt.heard_ms) == 1 and call.count(SpeechStopped) == 1
    await call.close()


async def test_a_caller_who_goes_on_after_a_short_silence_is_transcribed_again() -> None:
    brain = Brain({"I would like to check my order": ["Sure."]})
    stt = FakeStt(texts=["I would like to", "I would like to check my order"])
    call = Call(brain, stt, FakeTurnModel(0.95), check_after_ms=160)
    await call.start()
    await call.push(speech(700) + quiet(128) + speech(600))  # quiet, never a pause
    assert call.count(SpeechStopped) == 0 and len(stt.heard_ms) == 1
    await call.push(quiet(200))
    # The stale words ("I would like to") are not the turn: all of it is, heard whole.
    assert brain.turns == ["I would like to check my order"]
    assert stt.heard_ms[1] > stt.heard_ms[0] + 600
    await call.close()


async def test_a_caller_who_says_nothing_more_gets_max_silence() -> None:
    call = Call(Brain({}), FakeStt("I would like to"), FakeTurnModel(0.1), max_silence_ms=1000)
    await call.start()
    await call.push(speech(700) + quiet(900))
    assert call.count(SpeechStopped) == 0
    await call.push(quiet(200))
    assert call.count(SpeechStopped) == 1
    assert call.agent.timings[0].end_of_turn == "max_silence"
    await call.close()


async def test_the_model_is_asked_again_while_the_caller_stays_quiet() -> None:
    model = FakeTurnModel(ps=[0.3, 0.8])
    stt = FakeStt("four five one two")
    call = Call(Brain({}), stt, model, check_after_ms=160, recheck_ms=320, max_silence_ms=1500)
    await call.start()
    await call.push(speech(700) + quiet(300))
    assert call.count(SpeechStopped) == 0 and model.asked == 1
    await call.push(quiet(250))  # 160 + 320 ms of silence: asked again, now finished
    assert call.count(SpeechStopped) == 1 and model.asked == 2
    assert len(stt.heard_ms) == 1  # the words were transcribed once, at the first pause
    assert call.agent.timings[0].end_of_turn == "smart"
    await call.close()


async def test_words_that_do_not_finish_a_sentence_overrule_the_model() -> None:
    call = Call(Brain({}), FakeStt("my order number is"), FakeTurnModel(0.9))
    await call.start()
    await call.push(speech(700) + quiet(400))
    assert call.count(SpeechStopped) == 0  # "…is": the model's 0.9 is not enough
    await call.close()


async def test_a_bare_order_before_a_pause_waits_for_its_number() -> None:
    """ "Could you check order …" sounds finished (the model says 0.9) but its number is
    still to come: the caller is not cut off."""
    brain = Brain({})
    stt = PromptedStt(["Could you check order?"], {NUMBERS_PROMPT: "Could you check order 5 5 2 0"})
    call = Call(brain, stt, FakeTurnModel(0.9))
    await call.start()
    await call.push(speech(700) + quiet(900))
    assert call.count(SpeechStopped) == 0 and brain.turns == []
    await call.push(speech(600) + quiet(200))
    assert brain.turns == ["Could you check order 5 5 2 0"]
    await call.close()


async def test_the_rest_of_a_number_after_a_pause_is_written_digit_by_digit() -> None:
    """Words before the pause mention a number: the utterance is transcribed again with
    the numbers prompt, so "seven seven three one" is not "77731"."""
    brain = Brain({})
    stt = PromptedStt(
        ["The order number is", "The order number is 77731"],
        {NUMBERS_PROMPT: "The order number is 7 7 3 1"},
    )
    call = Call(brain, stt, FakeTurnModel(0.9))
    await call.start()
    await call.push(speech(700) + quiet(900) + speech(600) + quiet(200))
    assert brain.turns == ["The order number is 7 7 3 1"]
    assert stt.prompts == ["", NUMBERS_PROMPT]
    await call.close()


async def test_other_pauses_keep_whisper_unprompted() -> None:
    brain = Brain({})
    stt = PromptedStt(["I'm looking for", "I'm looking for a Japanese restaurant"])
    call = Call(brain, stt, FakeTurnModel(0.9))
    await call.start()
    await call.push(speech(700) + quiet(900) + speech(600) + quiet(200))
    assert brain.turns == ["I'm looking for a Japanese restaurant"]
    assert stt.prompts == ["", ""]
    await call.close()


async def test_the_brain_knows_a_number_is_still_short_or_whole() -> None:
    short = Call(Brain({}, hint=False), FakeStt("4 5"), FakeTurnModel(0.9))
    await short.start()
    await short.push(speech(700) + quiet(400))
    assert short.count(SpeechStopped) == 0
    await short.close()
    whole = Call(Brain({}, hint=True), FakeStt("4 5 1 2"), FakeTurnModel(0.2))
    await whole.start()
    await whole.push(speech(700) + quiet(200))
    assert whole.count(SpeechStopped) == 1
    await whole.close()


async def test_the_silence_mode_waits_the_fixed_silence() -> None:
    model = FakeTurnModel(0.99)
    call = Call(Brain({}), FakeStt("hi"), model, end_of_turn="silence", end_silence_ms=500)
    await call.start()
    await call.push(speech(700) + quiet(300))
    assert call.count(SpeechStopped) == 0
    await call.push(quiet(300))
    assert call.count(SpeechStopped) == 1 and model.asked == 0
    await call.close()


async def test_talking_on_before_the_reply_starts_answers_both_parts_as_one() -> None:
    brain = Brain({})
    brain.hold = asyncio.Event()  # the reply is still being thought about
    stt = FakeStt("where is my order")
    call = Call(brain, stt, FakeTurnModel(0.9))
    await call.start()
    await call.push(speech(600) + quiet(200))
    assert call.count(SpeechStopped) == 1 and stt.heard_ms[-1] < 900
    await call.push(speech(500) + quiet(200))  # the caller goes on: the reply is dropped
    brain.hold.set()
    await settle()
    assert stt.heard_ms[-1] >= 1100  # the second turn was transcribed with the first
    assert call.count(AgentAudio) > 0
    await call.close()


async def _interrupted_greeting(call: Call, sound_ms: int) -> Heard:
    """The caller makes a sound over the greeting; the bridge stops it after 300 ms."""
    await call.start(greet=True)
    rid = next(e.response_id for e in call.events if isinstance(e, AgentAudio))
    await call.push(speech(sound_ms))
    assert call.count(SpeechStarted) == 1
    heard = Heard(300, "Thank you for…", rid)
    await call.agent.interrupted(heard)
    return heard


async def test_a_cough_over_the_agent_resumes_the_reply_where_it_stopped() -> None:
    brain = Brain({})
    call = Call(brain, FakeStt("(coughs)"), FakeTurnModel(0.9))
    heard = await _interrupted_greeting(call, 200)
    before = len(call.events)
    await call.push(quiet(400))
    after = call.events[before:]
    audio = [e for e in after if isinstance(e, AgentAudio)]
    assert brain.heard_texts == [] and brain.turns == []  # no turn, nothing cut
    assert audio and {e.response_id for e in audio} != {heard.response_id}
    # 800 ms of greeting, 300 ms heard, resumed 120 ms before the cut: 620 ms again
    assert sum(len(e.pcm) for e in audio) == 2 * RATE * 620 // 1000
    assert audio[0].text == "you for calling how can I help"
    assert call.count(SpeechStopped) == 0
    assert isinstance(call.events[-1], ResponseDone) and not call.events[-1].interrupted
    await call.close()


async def test_words_over_the_agent_interrupt_it_as_before() -> None:
    brain = Brain({"stop": ["Okay."]})
    call = Call(brain, FakeStt("stop"), FakeTurnModel(0.9))
    await _interrupted_greeting(call, 200)
    await call.push(quiet(400))
    assert brain.heard_texts == ["Thank you for…"]
    assert brain.turns == ["stop"] and call.said()[-1] == "Okay."
    await call.close()


async def test_long_speech_over_the_agent_interrupts_without_asking_stt() -> None:
    brain = Brain({})
    stt = FakeStt("")  # even with no words: 900 ms of speech is not a cough
    call = Call(brain, stt, FakeTurnModel(0.9), noise_max_ms=600)
    await _interrupted_greeting(call, 900)
    await call.push(quiet(400))
    assert brain.heard_texts == ["Thank you for…"] and brain.turns == [""]
    await call.close()


async def test_resume_after_noise_can_be_turned_off() -> None:
    brain = Brain({})
    call = Call(brain, FakeStt(""), FakeTurnModel(0.9), resume_after_noise=False)
    await _interrupted_greeting(call, 200)
    assert brain.heard_texts == ["Thank you for…"]  # dropped at once, as before
    await call.close()


async def test_a_key_pressed_over_the_agent_always_interrupts() -> None:
    brain = Brain({})
    call = Call(brain, FakeStt("(coughs)"), FakeTurnModel(0.9))
    await _interrupted_greeting(call, 200)
    await call.agent.push_dtmf("1")
    assert brain.heard_texts == ["Thank you for…"]
    await call.close()


async def test_an_uh_huh_whisper_takes_for_a_word_resumes_the_reply() -> None:
    """Plain tiny.en wrote an "uh-huh" as "Out!"; with the sounds prompt it is "Uh...":
    a sound, so the greeting goes on and the brain hears of no turn."""
    brain = Brain({})
    stt = PromptedStt(["Out!"], {SOUNDS_PROMPT: "Uh..."})
    call = Call(brain, stt, FakeTurnModel(0.9))
    heard = await _interrupted_greeting(call, 250)
    before = len(call.events)
    await call.push(quiet(400))
    audio = [e for e in call.events[before:] if isinstance(e, AgentAudio)]
    assert brain.heard_texts == [] and brain.turns == []
    assert audio and audio[0].response_id != heard.response_id
    assert isinstance(call.events[-1], ResponseDone) and not call.events[-1].interrupted
    await call.close()


async def test_a_short_word_over_the_agent_still_interrupts_it() -> None:
    brain = Brain({"Stop.": ["Okay."]})
    stt = PromptedStt(["Stop."], {SOUNDS_PROMPT: "Stop. Stop."})
    call = Call(brain, stt, FakeTurnModel(0.9))
    await _interrupted_greeting(call, 250)
    await call.push(quiet(400))
    assert brain.heard_texts == ["Thank you for…"]
    assert brain.turns == ["Stop."] and call.said()[-1] == "Okay."
    await call.close()


async def test_a_failed_second_opinion_leaves_the_caller_answered_not_in_silence() -> None:
    brain = Brain({"Out!": ["Sorry?"]})
    stt = PromptedStt(["Out!"])  # the transcription with the sounds prompt fails
    call = Call(brain, stt, FakeTurnModel(0.9))
    await _interrupted_greeting(call, 250)
    await call.push(quiet(400))
    assert stt.prompts == ["", SOUNDS_PROMPT]
    assert brain.turns == ["Out!"] and call.said()[-1] == "Sorry?"
    await call.close()
