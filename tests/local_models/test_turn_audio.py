"""What Whisper makes of the caller's audio as the offline agent cuts it: a question whole
at any window alignment, numbers read out after a pause, short sounds over the agent."""

from __future__ import annotations

import re

import numpy as np
import pytest

from callbridge.agent.local import models
from callbridge.agent.local.agent import MAX_GAP_MS
from callbridge.agent.local.interruption import is_noise
from callbridge.agent.local.setup import TurnSettings
from callbridge.agent.local.stt import NUMBERS_PROMPT, SOUNDS_PROMPT, WhisperStt
from callbridge.agent.local.vad import SegmenterConfig, SpeechSegmenter
from callbridge.audio.resample import StreamResampler
from tests.local_models.audio import SR, silence


def caller(text: str) -> bytes:
    """The benchmark's and the scenarios' caller (scenarios.runner.CallerVoice: Piper,
    higher, noise off) as the agent gets it: at Piper's rate, over a 24 kHz call, at 16 kHz."""
    tts = models.get_tts().with_options(pitch=1.15, noise_scale=0.0, noise_w_scale=0.0)
    pcm = tts.synthesize(text)
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    frame = tts.sample_rate // 50
    rms = np.sqrt(np.mean(x[: x.size // frame * frame].reshape(-1, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > 300)  # Piper's silence around it cut, as the benchmark does
    pcm = pcm[loud[0] * frame * 2 : (loud[-1] + 1) * frame * 2]
    at24k = StreamResampler(tts.sample_rate, 24000).process(pcm, last=True)
    return StreamResampler(24000, SR).process(at24k, last=True)


def _segmenter() -> SpeechSegmenter:
    turn = TurnSettings(barge_in_min_ms=120)  # as the agent makes it in smart mode
    return SpeechSegmenter(
        SegmenterConfig(
            end_silence_ms=turn.max_silence_ms,
            pause_ms=turn.check_after_ms,
            min_speech_ms=turn.barge_in_min_ms,
            max_gap_ms=MAX_GAP_MS,
            repause_ms=turn.recheck_ms,
        )
    )


def _cut(pcm16k: bytes, chunk: int = 640) -> tuple[list[bytes], bytes]:
    """The audio of each pause event and of the end, as the agent gets them."""
    seg, pauses, end = _segmenter(), [], b""
    for i in range(0, len(pcm16k), chunk):
        for event in seg.push(pcm16k[i : i + chunk]):
            if event.kind == "pause" and event.audio:
                pauses.append(event.audio)
            elif event.kind == "speech_end" and event.audio:
                end = event.audio
    return pauses, end


def _digits(text: str) -> str:
    names = "zero one two three four five six seven eight nine".split()
    toks = [t for t in re.findall(r"[a-z]+|\d", text.lower()) if t in names or t.isdigit()]
    return "".join(t if t.isdigit() else str(names.index(t)) for t in toks)


@pytest.mark.parametrize("lead_samples", [0, 97, 211, 389, 503, 1307, 2048, 3001])
def test_the_browser_callers_question_is_heard_whole_at_any_alignment(
    stt: WhisperStt, lead_samples: int
) -> None:
    """tests/web/test_browser_phone.py's question, as its WAV is made (Piper at its own
    rate, noise off), reaches the agent at 24 kHz wherever the VAD's windows fall: one
    pause (at its end, never before "hours") and every cut of it heard whole."""
    tts = models.get_tts().with_options(noise_scale=0.0, noise_w_scale=0.0)
    pcm = bytes(2 * lead_samples) + tts.synthesize("What are your opening hours?")
    at24k = StreamResampler(tts.sample_rate, 24000).process(pcm + bytes(tts.sample_rate * 4))
    at16k = StreamResampler(24000, SR).process(at24k, last=True)
    pauses, end = _cut(at16k)
    assert len(pauses) == 1 and end
    for audio in (*pauses, end):
        assert "opening hours" in stt.transcribe(audio).text.lower()


@pytest.mark.parametrize(
    ("first", "second", "pause_ms", "number"),
    [
        ("The order number is", "seven seven three one.", 1000, "7731"),
        ("Could you check order", "five five two zero?", 900, "5520"),
        ("My order number is four five", "one two.", 800, "4512"),
    ],
)
def test_a_number_read_after_a_pause_comes_through_digit_by_digit(
    stt: WhisperStt, first: str, second: str, pause_ms: int, number: str
) -> None:
    """Plain, tiny.en wrote these "77731", "555-20" or "5500", "45" (the benchmark's
    paused set); with the prompt the agent uses once the words before the pause mention
    a number, the number comes through whole."""
    pcm = silence(300) + caller(first) + silence(pause_ms) + caller(second) + silence(1800)
    pauses, _ = _cut(pcm)
    assert len(pauses) >= 2  # one in the middle, one at the end
    assert _digits(stt.transcribe(pauses[-1], prompt=NUMBERS_PROMPT).text) == number


def test_an_uh_huh_over_the_agent_is_a_sound_with_the_sounds_prompt(stt: WhisperStt) -> None:
    pcm = silence(300) + caller("Uh-huh.") + silence(600)
    pauses, _ = _cut(pcm)
    plain = stt.transcribe(pauses[0])
    assert not is_noise(plain.text)  # tiny.en: "Out!", which would stop the agent
    assert is_noise(stt.transcribe(pauses[0], prompt=SOUNDS_PROMPT).raw_text)


@pytest.mark.parametrize("word", ["Stop.", "No.", "Wait.", "Cancel.", "Hello?", "What?"])
def test_short_words_stay_words_with_the_sounds_prompt(stt: WhisperStt, word: str) -> None:
    pcm = silence(300) + caller(word) + silence(600)
    pauses, _ = _cut(pcm)
    assert not is_noise(stt.transcribe(pauses[0], prompt=SOUNDS_PROMPT).raw_text)


def test_a_prompted_loop_stops_at_its_budget(stt: WhisperStt) -> None:
    """The sounds prompt can make tiny.en repeat a sound; the decode stops at the token
    budget of its audio instead of running to Whisper's 448 tokens."""
    pcm = silence(300) + caller("Uh-huh.") + silence(600)
    result = stt.transcribe(pcm, prompt=SOUNDS_PROMPT)
    seconds = len(pcm) / 2 / SR
    assert len(result.raw_text.split()) <= 12 + 8 * seconds
