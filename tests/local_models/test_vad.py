"""Silero VAD through onnxruntime: VadStream (probabilities) and SpeechSegmenter (events)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from callbridge.agent.local import models
from callbridge.agent.local.vad import (
    WINDOW_BYTES,
    WINDOW_MS,
    SegmenterConfig,
    SpeechSegmenter,
    VadEvent,
    VadStream,
    VadWindow,
    default_model_path,
)
from tests.local_models.audio import SR, silence, speech16k, to_pcm, voiced_span_ms

ORDER = "Please check the status of order one two three four five."


def run(segmenter: SpeechSegmenter, pcm: bytes, chunk: int = 640) -> list[VadEvent]:
    """Feed ``pcm`` in 20 ms pieces (what a phone media stream delivers)."""
    events: list[VadEvent] = []
    for i in range(0, len(pcm), chunk):
        events += segmenter.push(pcm[i : i + chunk])
    return events


def kinds(events: list[VadEvent]) -> list[str]:
    return [e.kind for e in events]


# -- model file and imports ------------------------------------------------------------------


def test_model_file_is_found_without_importing_the_package() -> None:
    path = default_model_path()
    assert path.name == "silero_vad.onnx" and path.parent.name == "data"
    assert "silero_vad" not in sys.modules
    assert "torch" not in sys.modules


def test_torch_is_never_imported() -> None:
    code = (
        "import sys\n"
        "from callbridge.agent.local import models, stt, tts\n"
        "from callbridge.agent.local.vad import SpeechSegmenter\n"
        "models.get_vad_model()\n"
        "SpeechSegmenter().push(bytes(16000))\n"
        "import faster_whisper, piper\n"
        "bad = [m for m in ('torch', 'silero_vad') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "torch" not in sys.modules


def test_the_session_is_shared() -> None:
    model = models.get_vad_model()
    assert models.get_vad_model() is model
    inputs = {i.name for i in model.session.get_inputs()}
    assert inputs == {"input", "state", "sr"}


# -- VadStream -------------------------------------------------------------------------------


def test_one_probability_per_window_and_leftovers_are_kept() -> None:
    stream = VadStream()
    assert stream.push(bytes(1000)) == []  # < one window (1024 bytes)
    assert len(stream.push(bytes(48))) == 1
    assert len(stream.push(bytes(WINDOW_BYTES * 3 + 7))) == 3  # odd byte count is fine
    assert len(stream.push(bytes(WINDOW_BYTES - 7))) == 1
    assert stream.windows == 5 and stream.time_ms == 5 * WINDOW_MS


def test_chunking_does_not_change_probabilities() -> None:
    pcm = silence(300) + speech16k("Hello there.")
    whole = VadStream().push(pcm)
    stream = VadStream()
    pieces: list[float] = []
    for i in range(0, len(pcm), 333):  # odd size: splits samples in two
        pieces += stream.push(pcm[i : i + 333])
    assert len(pieces) == len(whole) == len(pcm) // WINDOW_BYTES
    assert np.allclose(pieces, whole, atol=1e-6)


def test_silence_and_low_noise_are_not_speech() -> None:
    rng = np.random.default_rng(1)
    noise = to_pcm(rng.normal(0, 30, SR * 2))
    for pcm in (silence(3000), noise):
        probs = VadStream().push(pcm)
        assert max(probs) < 0.2
        assert run(SpeechSegmenter(), pcm) == []


def test_speech_has_high_probability() -> None:
    probs = VadStream().push(speech16k(ORDER))
    assert np.mean(np.array(probs) >= 0.5) > 0.7


# -- SpeechSegmenter on real audio -----------------------------------------------------------


def test_speech_start_and_end_at_sensible_times() -> None:
    speech = speech16k(ORDER)
    lead = 1000
    pcm = silence(lead) + speech + silence(1500)
    onset, offset = voiced_span_ms(speech)
    onset += lead
    offset += lead
    events = run(SpeechSegmenter(), pcm)

    assert kinds(events)[0] == "speech_start" and kinds(events)[-1] == "speech_end"
    assert kinds(events).count("speech_start") == 1 and kinds(events).count("speech_end") == 1
    start, end = events[0], events[-1]
    # Onset within a window or two of the first loud 10 ms; decided 3 windows (~96 ms) later.
    assert onset - 100 <= start.speech_start_ms <= onset + 100
    assert 3 * WINDOW_MS <= start.time_ms - start.speech_start_ms <= 5 * WINDOW_MS
    # Last speech window near the last loud frame; speech_end ~600 ms of silence after it.
    assert end.speech_end_ms is not None
    assert offset - 150 <= end.speech_end_ms <= offset + 250
    assert 600 <= end.time_ms - end.speech_end_ms <= 600 + WINDOW_MS

    # The utterance: exactly the stream's audio from 200 ms before the onset to 300 ms after
    # the last speech window (pre-roll and post-roll rounded up to whole windows).
    assert end.audio is not None
    first = end.speech_start_ms - 224  # 7 windows of pre-roll
    last = end.speech_end_ms + 320  # 10 windows of post-roll
    assert end.audio == pcm[first * 32 : last * 32]  # 32 bytes per ms at 16 kHz
    assert end.audio_ms == last - first


def test_pause_carries_the_audio_so_far_and_resume_follows() -> None:
    first = speech16k("I would like to check my order.")
    second = speech16k("It is number five.")
    pcm = silence(500) + first + silence(400) + second + silence(1000)
    events = run(SpeechSegmenter(), pcm)
    names = kinds(events)
    assert names[0] == "speech_start" and names[-1] == "speech_end"
    assert names.count("speech_start") == 1  # a 400 ms gap is not the end of the turn
    assert "pause" in names and "resume" in names
    pause = next(e for e in events if e.kind == "pause")
    assert pause.audio is not None
    assert pause.time_ms - (pause.speech_end_ms or 0) >= 250
    # The pause's audio is the utterance so far: a prefix of the final utterance.
    end = events[-1]
    assert end.audio is not None and end.audio.startswith(pause.audio)
    assert len(pause.audio) < len(end.audio)


def test_two_turns_make_two_utterances() -> None:
    pcm = silence(300) + speech16k("Yes.") + silence(1200) + speech16k("No.") + silence(1000)
    events = run(SpeechSegmenter(), pcm)
    assert kinds(events).count("speech_start") == 2
    assert kinds(events).count("speech_end") == 2


@pytest.mark.parametrize("shape", ["impulse", "noise_burst", "decaying_burst"])
def test_a_40ms_click_is_not_speech(shape: str) -> None:
    rng = np.random.default_rng(7)
    n = SR * 40 // 1000
    if shape == "impulse":
        click = np.r_[[30000.0, -30000.0], np.zeros(n - 2)]
    elif shape == "noise_burst":
        click = rng.normal(0, 0.5, n) * 32767
    else:
        click = rng.normal(0, 0.9, n) * np.exp(-np.arange(n) / 80) * 32767
    pcm = silence(1000) + to_pcm(click) + silence(1000)
    assert run(SpeechSegmenter(), pcm) == []


# -- SpeechSegmenter hysteresis on scripted probabilities ------------------------------------


class Script:
    """Drives a segmenter with given probabilities (no model needed)."""

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        self.segmenter = SpeechSegmenter(config, stream=VadStream(models.get_vad_model()))
        self.index = 0

    def feed(self, *probs: float) -> list[VadEvent]:
        events: list[VadEvent] = []
        for prob in probs:
            pcm = self.index.to_bytes(2, "little") * (WINDOW_BYTES // 2)  # tagged windows
            events += self.segmenter.step(VadWindow(self.index, pcm, prob))
            self.index += 1
        return events


def window_ids(audio: bytes | None) -> list[int]:
    assert audio is not None
    return [int.from_bytes(audio[i : i + 2], "little") for i in range(0, len(audio), WINDOW_BYTES)]


def test_min_speech_needs_three_speech_windows() -> None:
    script = Script()
    assert script.feed(0.0, 0.9, 0.9, 0.1, 0.9, 0.9, 0.1) == []  # reset by silent windows
    # Neutral (0.35..0.5) neither counts nor resets.
    events = script.feed(0.9, 0.4, 0.9, 0.4, 0.9)
    assert kinds(events) == ["speech_start"]
    assert events[0].speech_start_ms == 7 * WINDOW_MS
    assert events[0].time_ms == 12 * WINDOW_MS


def test_pause_resume_end_and_pre_post_roll() -> None:
    script = Script()
    script.feed(*[0.0] * 10)
    assert kinds(script.feed(0.9, 0.9, 0.9)) == ["speech_start"]  # windows 10-12
    assert script.feed(0.9, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2) == []  # 7 silent < pause (8)
    events = script.feed(0.2)  # 8 x 32 = 256 ms >= 250
    assert kinds(events) == ["pause"]
    assert events[0].speech_end_ms == 14 * WINDOW_MS
    assert window_ids(events[0].audio) == list(range(3, 22))  # 7 windows of pre-roll
    assert kinds(script.feed(0.4)) == []  # neutral: no resume
    assert kinds(script.feed(0.6)) == ["resume"]
    events = script.feed(*[0.1] * 19)
    assert kinds(events) == ["pause", "speech_end"]
    end = events[-1]
    assert end.speech_end_ms == 24 * WINDOW_MS
    assert end.time_ms == 43 * WINDOW_MS
    # pre-roll 7 windows (224 ms >= 200), post-roll 10 windows (320 ms >= 300)
    assert window_ids(end.audio) == list(range(3, 34))
    assert not script.segmenter.in_speech
    # The trailing silence becomes pre-roll for the next utterance.
    events = script.feed(0.9, 0.9, 0.9)
    assert kinds(events) == ["speech_start"]
    assert script.segmenter.current_audio()[:2] == (36).to_bytes(2, "little")


def test_quiet_comes_before_pause_and_speech_after_either_resumes() -> None:
    script = Script(SegmenterConfig(quiet_ms=96, pause_ms=160))
    script.feed(*[0.0] * 10)
    assert kinds(script.feed(0.9, 0.9, 0.9)) == ["speech_start"]
    assert script.feed(0.2, 0.2) == []
    events = script.feed(0.2)  # 3 x 32 = 96 ms
    assert kinds(events) == ["quiet"]
    assert window_ids(events[0].audio) == list(range(3, 16))  # as a pause's audio
    assert events[0].speech_end_ms == 13 * WINDOW_MS
    assert kinds(script.feed(0.2)) == []
    assert kinds(script.feed(0.2)) == ["pause"]  # 5 x 32 = 160 ms
    assert kinds(script.feed(0.9)) == ["resume"]
    # A silence that ends between quiet and pause: quiet, then resume.
    assert kinds(script.feed(0.2, 0.2, 0.2, 0.2, 0.9)) == ["quiet", "resume"]
    # quiet_ms not shorter than pause_ms: no quiet event.
    plain = Script(SegmenterConfig(quiet_ms=160, pause_ms=160))
    plain.feed(*[0.0] * 10, 0.9, 0.9, 0.9)
    assert kinds(plain.feed(*[0.2] * 6)) == ["pause"]


def test_max_utterance_and_finish() -> None:
    script = Script(SegmenterConfig(max_utterance_ms=320))  # 10 windows
    events = script.feed(*[0.9] * 12)
    assert kinds(events) == ["speech_start", "speech_end"]
    assert events[-1].time_ms == 10 * WINDOW_MS
    # Still speaking: windows 10 and 11 already count towards the next onset.
    assert kinds(script.feed(0.9)) == ["speech_start"]
    events = script.segmenter.finish()
    assert kinds(events) == ["speech_end"]
    assert script.segmenter.finish() == []


def test_thresholds_are_configurable() -> None:
    script = Script(SegmenterConfig(threshold=0.8, min_speech_ms=32, end_silence_ms=64))
    assert script.feed(0.7, 0.7) == []
    assert kinds(script.feed(0.85)) == ["speech_start"]
    assert kinds(script.feed(0.7, 0.7, 0.7)) == []  # above 0.8 - 0.15: not silence
    assert kinds(script.feed(0.6, 0.6)) == ["speech_end"]


# -- cost ------------------------------------------------------------------------------------


def test_cost_per_window(capsys: pytest.CaptureFixture[str]) -> None:
    stream = VadStream()
    pcm = speech16k(ORDER)
    stream.push(pcm[:WINDOW_BYTES])  # warm
    started = time.perf_counter()
    probs = stream.push(pcm)
    per_window_us = (time.perf_counter() - started) / len(probs) * 1e6
    with capsys.disabled():
        print(f"\nVAD: {per_window_us:.0f} us per 32 ms window ({len(probs)} windows)")
    assert per_window_us < 2000  # ~100-150 us here; generous for a loaded CI box
