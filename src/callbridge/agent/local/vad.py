"""Voice activity detection with Silero VAD (v5/v6 ONNX), run directly with onnxruntime.

The model file ships in the ``silero-vad`` wheel (``silero_vad/data/silero_vad.onnx``). It is
located with ``importlib.util.find_spec`` and never imported: the package's ``__init__`` imports
torch, which is not installed (and would cost seconds and hundreds of MB if it were).

Layers:

* `SileroVadModel` — the ONNX session, created once per process (see `models.get_vad_model`)
  and shared by every call; ``InferenceSession.run`` is thread-safe.
* `VadStream` — per call: RNN state + the 64-sample context the model needs, and the leftover
  bytes of a partial window. ``push(pcm16k) -> list[float]``: one speech probability per
  512-sample window (32 ms at 16 kHz).
* `SpeechSegmenter` — per call: turns probabilities into `VadEvent`s (``speech_start``,
  ``pause``, ``resume``, ``speech_end``) with hysteresis, and keeps the audio of the current
  utterance (with pre-roll) so a ``pause`` / ``speech_end`` event carries the PCM to transcribe.

Cost: one window is one ``session.run`` of 0.1-0.2 ms on the 2-core target
(``python -m tests.local_models.measure``), i.e. 0.4-0.6 % of a core per call in real time.
"""

from __future__ import annotations

import importlib.util
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

SAMPLE_RATE: Final = 16_000
WINDOW_SAMPLES: Final = 512
"""Samples per model call at 16 kHz (the v5 model accepts exactly 512)."""
WINDOW_BYTES: Final = WINDOW_SAMPLES * 2
WINDOW_MS: Final = WINDOW_SAMPLES * 1000 // SAMPLE_RATE  # 32
CONTEXT_SAMPLES: Final = 64
"""The v5 model expects the last 64 samples of the previous window in front of each window."""

_INT16_SCALE: Final = np.float32(1.0 / 32768.0)


class VadModelError(RuntimeError):
    """The Silero VAD model could not be found or does not look like the expected model."""


def default_model_path() -> Path:
    """``silero_vad/data/silero_vad.onnx`` from the installed wheel, found without importing it."""
    spec = importlib.util.find_spec("silero_vad")  # does not execute the package
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "data" / "silero_vad.onnx"
        if path.is_file():
            return path
    raise VadModelError(
        "Silero VAD model not found: install the silero-vad wheel "
        "(pip install --no-deps silero-vad) or pass a model path"
    )


class SileroVadModel:
    """The shared ONNX session. Create one per process (`models.get_vad_model`)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_model_path()
        options = ort.SessionOptions()
        # One thread: a window is ~0.1 ms of work, thread hand-offs would cost more than they
        # save, and many calls run their windows concurrently anyway.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session: Any = ort.InferenceSession(
            str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        if set(inputs) != {"input", "state", "sr"}:
            raise VadModelError(
                f"{self.path}: unexpected inputs {sorted(inputs)}; "
                "expected Silero VAD v5+ (input, state, sr)"
            )
        # state is [2, batch, hidden]; hidden is 128 in v5 and v6.
        state_shape = inputs["state"]
        hidden = state_shape[2] if isinstance(state_shape[2], int) else 128
        self.state_shape: tuple[int, int, int] = (2, 1, hidden)
        self._output_names = [o.name for o in self.session.get_outputs()]
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def run(
        self, window: npt.NDArray[np.float32], state: npt.NDArray[np.float32]
    ) -> tuple[float, npt.NDArray[np.float32]]:
        """One step: ``window`` is ``(1, 64 + 512)`` float32, returns (probability, new state)."""
        out, new_state = self.session.run(
            self._output_names, {"input": window, "state": state, "sr": self._sr}
        )
        return float(out[0, 0]), new_state

    def new_stream(self) -> VadStream:
        return VadStream(self)


@dataclass(frozen=True, slots=True)
class VadWindow:
    """One 32 ms window: its index on the stream's timeline, its PCM and its speech probability."""

    index: int
    pcm: bytes
    prob: float

    @property
    def start_ms(self) -> int:
        return self.index * WINDOW_MS

    @property
    def end_ms(self) -> int:
        return (self.index + 1) * WINDOW_MS


class VadStream:
    """Per-call VAD state: 16 kHz 16-bit mono little-endian PCM in, probabilities out.

    Not thread-safe (one call = one stream, fed from one task).
    """

    def __init__(self, model: SileroVadModel | None = None) -> None:
        if model is None:
            from callbridge.agent.local.models import get_vad_model

            model = get_vad_model()
        self._model = model
        self._pending = bytearray()
        self._input = np.zeros((1, CONTEXT_SAMPLES + WINDOW_SAMPLES), dtype=np.float32)
        self._state = np.zeros(model.state_shape, dtype=np.float32)
        self._windows = 0

    @property
    def windows(self) -> int:
        """Windows consumed so far (the stream's clock: ``windows * 32`` ms)."""
        return self._windows

    @property
    def time_ms(self) -> int:
        return self._windows * WINDOW_MS

    def reset(self) -> None:
        """Forget the RNN state and buffered audio (the clock keeps running)."""
        self._pending.clear()
        self._input.fill(0.0)
        self._state = np.zeros(self._model.state_shape, dtype=np.float32)

    def push(self, pcm16k: bytes) -> list[float]:
        """Feed audio; one probability per whole 512-sample window now available."""
        return [w.prob for w in self.push_windows(pcm16k)]

    def push_windows(self, pcm16k: bytes) -> list[VadWindow]:
        """Like `push`, with each window's PCM and index (what `SpeechSegmenter` needs)."""
        self._pending += pcm16k
        count = len(self._pending) // WINDOW_BYTES
        if count == 0:
            return []
        used = count * WINDOW_BYTES
        chunk = bytes(self._pending[:used])
        del self._pending[:used]
        samples = np.frombuffer(chunk, dtype="<i2").astype(np.float32) * _INT16_SCALE
        result: list[VadWindow] = []
        x = self._input
        for i in range(count):
            x[0, CONTEXT_SAMPLES:] = samples[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES]
            prob, self._state = self._model.run(x, self._state)
            # The next window's context is the last 64 samples of this one.
            x[0, :CONTEXT_SAMPLES] = x[0, -CONTEXT_SAMPLES:]
            result.append(
                VadWindow(self._windows, chunk[i * WINDOW_BYTES : (i + 1) * WINDOW_BYTES], prob)
            )
            self._windows += 1
        return result


VadEventKind = Literal["speech_start", "quiet", "pause", "still_paused", "resume", "speech_end"]


@dataclass(frozen=True, slots=True)
class VadEvent:
    """Something the segmenter decided. Times are on the stream's own timeline (ms of audio
    pushed since the segmenter was created), multiples of 32 ms.

    * ``speech_start`` — ``min_speech_ms`` of speech seen. ``time_ms`` is when that became
      known; ``speech_start_ms`` is the onset (start of the first speech window).
    * ``quiet`` — ``quiet_ms`` of silence inside speech (if set, and shorter than
      ``pause_ms``): ``audio`` as for ``pause``, so a transcription can start sooner.
    * ``pause`` — ``pause_ms`` of silence inside speech. ``audio`` holds the utterance so far
      (pre-roll included), for a speculative transcription.
    * ``still_paused`` — every ``repause_ms`` of silence after ``pause`` (if set): the same
      utterance with more silence after it (an end-of-turn model may now think otherwise).
    * ``resume`` — speech again after a ``quiet`` or ``pause`` event: a speculative result
      is now stale.
    * ``speech_end`` — ``end_silence_ms`` of silence (or ``max_utterance_ms`` reached, or
      `SpeechSegmenter.finish`). ``audio`` holds the whole utterance: pre-roll, speech, and up
      to ``post_roll_ms`` after the last speech window. ``speech_end_ms`` is the end of the
      last speech window.
    """

    kind: VadEventKind
    time_ms: int
    speech_start_ms: int
    speech_end_ms: int | None = None
    audio: bytes | None = field(default=None, repr=False)

    @property
    def audio_ms(self) -> int:
        return 0 if self.audio is None else len(self.audio) * 1000 // (2 * SAMPLE_RATE)


@dataclass(frozen=True, slots=True)
class SegmenterConfig:
    """Hysteresis settings (ms values are rounded up to whole 32 ms windows).

    The defaults are tuned for phone speech (8 kHz narrow-band upsampled to 16 kHz): a caller's
    mid-sentence hesitations often last 300-500 ms, hence 600 ms before ``speech_end``.
    """

    threshold: float = 0.5
    """A window with probability >= threshold is speech."""
    neg_threshold: float | None = None
    """A window below this is silence; None = ``threshold - 0.15``. In between: no change."""
    min_speech_ms: int = 90
    """Speech (counted over windows >= threshold, reset by a silent window) before speech_start."""
    end_silence_ms: int = 600
    pause_ms: int = 250
    pre_roll_ms: int = 200
    """Audio kept before the onset (Whisper likes a little lead-in; soft onsets score low)."""
    post_roll_ms: int = 300
    """Audio kept after the last speech window in the ``speech_end`` utterance."""
    max_utterance_ms: int = 25_000
    """Force speech_end past this (keeps one utterance inside Whisper's 30 s window)."""
    repause_ms: int | None = None
    """After ``pause``, a ``still_paused`` event every this much more silence (None: none)."""
    quiet_ms: int | None = None
    """A ``quiet`` event at this much silence, before ``pause`` (None, or not shorter than
    ``pause_ms``: none)."""
    max_gap_ms: int | None = None
    """Silences inside the utterance are cut to this in the audio of ``pause`` and
    ``speech_end`` events (None: kept whole). Whisper tiny tends to drop what follows a
    pause of a second ("my order number is … 4 5 1 2" heard as "my order number is...")."""

    @property
    def silence_threshold(self) -> float:
        return self.threshold - 0.15 if self.neg_threshold is None else self.neg_threshold


def _windows_for(ms: int) -> int:
    return max(1, -(-ms // WINDOW_MS))


class SpeechSegmenter:
    """Per-call utterance segmentation on top of a `VadStream`.

    ``push(pcm16k) -> list[VadEvent]``. Not thread-safe: feed it from one task.
    """

    def __init__(
        self,
        config: SegmenterConfig | None = None,
        stream: VadStream | None = None,
    ) -> None:
        self.config = config or SegmenterConfig()
        self._stream = stream if stream is not None else VadStream()
        cfg = self.config
        self._threshold = cfg.threshold
        self._silence_threshold = cfg.silence_threshold
        self._min_speech = _windows_for(cfg.min_speech_ms)
        self._end_silence = _windows_for(cfg.end_silence_ms)
        self._pause = _windows_for(cfg.pause_ms)
        self._pre_roll = -(-cfg.pre_roll_ms // WINDOW_MS)
        self._post_roll = -(-cfg.post_roll_ms // WINDOW_MS)
        self._max_utterance = _windows_for(cfg.max_utterance_ms)
        self._max_gap = None if cfg.max_gap_ms is None else _windows_for(cfg.max_gap_ms)
        self._repause = None if cfg.repause_ms is None else _windows_for(cfg.repause_ms)
        quiet = None if cfg.quiet_ms is None else _windows_for(cfg.quiet_ms)
        self._quiet = quiet if quiet is not None and quiet < self._pause else None
        # Recent windows while not in speech: pre-roll + a pending onset.
        self._history: deque[VadWindow] = deque(maxlen=self._pre_roll + 4 * self._min_speech + 8)
        self._in_speech = False
        # Onset candidate (while not in speech).
        self._candidate_start: int | None = None
        self._candidate_count = 0
        # Current utterance (while in speech).
        self._utterance: list[VadWindow] = []
        self._onset = 0
        self._last_speech = 0
        self._silence_start: int | None = None
        self._paused = False
        self._quieted = False  # a ``quiet`` event was given since the last speech window

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def time_ms(self) -> int:
        """Stream time: ms of audio consumed (whole windows)."""
        return self._stream.time_ms

    def current_audio(self) -> bytes:
        """PCM of the current utterance so far (pre-roll included); empty when not in speech."""
        return b"".join(w.pcm for w in self._utterance) if self._in_speech else b""

    def push(self, pcm16k: bytes) -> list[VadEvent]:
        events: list[VadEvent] = []
        for window in self._stream.push_windows(pcm16k):
            events.extend(self.step(window))
        return events

    def step(self, window: VadWindow) -> list[VadEvent]:
        """Advance by one window whose probability is known (tests drive this directly)."""
        if self._in_speech:
            return self._step_speech(window)
        return self._step_silence(window)

    def finish(self) -> list[VadEvent]:
        """End of audio (hang-up): close an open utterance with ``speech_end``."""
        if not self._in_speech:
            return []
        return [self._end((self._last_speech + 1) * WINDOW_MS)]

    @property
    def paused(self) -> bool:
        """In speech, and a ``pause`` event was given since the last speech window."""
        return self._in_speech and self._paused

    def end_now(self) -> VadEvent | None:
        """End the utterance at once (the end-of-turn model says the caller has finished):
        the ``speech_end`` that ``end_silence_ms`` of silence would have given, sooner.
        None unless paused (speech after the pause makes the decision stale)."""
        if not self.paused:
            return None
        return self._end((self._last_speech + 1) * WINDOW_MS)

    def drop(self) -> None:
        """Forget the current utterance (a cough or a noise): back to waiting for speech."""
        if self._in_speech:
            self._history.clear()
            self._utterance = []
            self._in_speech = False
            self._silence_start = None
            self._paused = self._quieted = False

    # -- internals ---------------------------------------------------------------------

    def _step_silence(self, window: VadWindow) -> list[VadEvent]:
        self._history.append(window)
        if window.prob >= self._threshold:
            if self._candidate_start is None:
                self._candidate_start = window.index
                self._candidate_count = 0
            self._candidate_count += 1
        elif window.prob < self._silence_threshold:
            self._candidate_start = None
            self._candidate_count = 0
        if self._candidate_start is None or self._candidate_count < self._min_speech:
            return []
        onset = self._candidate_start
        first = onset - self._pre_roll
        self._utterance = [w for w in self._history if w.index >= first]
        self._history.clear()
        self._in_speech = True
        self._onset = onset
        self._last_speech = window.index
        self._silence_start = None
        self._paused = self._quieted = False
        self._candidate_start = None
        self._candidate_count = 0
        return [VadEvent("speech_start", window.end_ms, onset * WINDOW_MS)]

    def _step_speech(self, window: VadWindow) -> list[VadEvent]:
        self._utterance.append(window)
        events: list[VadEvent] = []
        if window.prob >= self._threshold:
            self._last_speech = window.index
            self._silence_start = None
            if self._paused or self._quieted:
                self._paused = self._quieted = False
                events.append(VadEvent("resume", window.end_ms, self._onset * WINDOW_MS))
        elif window.prob < self._silence_threshold:
            if self._silence_start is None:
                self._silence_start = window.index
        elif self._silence_start is None:
            # Neutral band: counts as speech for the end of the utterance, like Silero's
            # own iterator (it only starts the silence timer below neg_threshold).
            self._last_speech = window.index

        if self._silence_start is not None:
            silent = window.index - self._silence_start + 1
            if silent >= self._end_silence:
                events.append(self._end((self._last_speech + 1) * WINDOW_MS))
                return events
            again = self._repause is not None and silent > self._pause
            if self._quiet is not None and self._quiet <= silent < self._pause:
                if not self._quieted:
                    self._quieted = True
                    events.append(self._pause_event("quiet", window))
            elif silent >= self._pause and not self._paused:
                self._paused = True
                events.append(self._pause_event("pause", window))
            elif again and self._paused and (silent - self._pause) % (self._repause or 1) == 0:
                events.append(self._pause_event("still_paused", window))
        if window.index - self._onset + 1 >= self._max_utterance:
            events.append(self._end(window.end_ms))
        return events

    def _pause_event(self, kind: VadEventKind, window: VadWindow) -> VadEvent:
        return VadEvent(
            kind,
            window.end_ms,
            self._onset * WINDOW_MS,
            (self._last_speech + 1) * WINDOW_MS,
            self._audio(self._utterance),
        )

    def _audio(self, windows: list[VadWindow]) -> bytes:
        """The windows' PCM, silent runs cut to ``max_gap_ms``."""
        if self._max_gap is None:
            return b"".join(w.pcm for w in windows)
        kept, run = [], 0
        for w in windows:
            run = run + 1 if w.prob < self._silence_threshold else 0
            if run <= self._max_gap:
                kept.append(w.pcm)
        return b"".join(kept)

    def _end(self, speech_end_ms: int) -> VadEvent:
        last = speech_end_ms // WINDOW_MS - 1
        keep = [w for w in self._utterance if w.index <= last + self._post_roll]
        now = self._utterance[-1].end_ms if self._utterance else speech_end_ms
        event = VadEvent(
            "speech_end",
            now,
            self._onset * WINDOW_MS,
            speech_end_ms,
            self._audio(keep),
        )
        # Windows after the kept part can be pre-roll of the next utterance.
        self._history.clear()
        self._history.extend(w for w in self._utterance if w.index > last)
        self._utterance = []
        self._in_speech = False
        self._silence_start = None
        self._paused = self._quieted = False
        return event
