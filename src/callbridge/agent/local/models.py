"""Process-wide speech models and the one executor all speech CPU work runs in.

Models are loaded lazily, once per process, and shared by every call (they are thread-safe);
per-call state lives in small objects (`vad.VadStream`, `vad.SpeechSegmenter`). Call
`preload` (or `preload_async`) at service start so the first call does not pay the load.

CPU budget (the target machine has 2 cores; ``make bench`` runs 50 calls on it):

* `speech_executor` is ONE bounded ThreadPoolExecutor (``max_workers`` = 2) for all STT and
  TTS work, so at most 2 heavy jobs run at once and the event loop never runs them.
* Each job gets ``threads = max(1, cores // max_workers)`` intra-op threads (1 here):
  2 workers x 1 thread fill 2 cores without oversubscription. A lone call would get its
  STT/TTS ~1.5x faster with 2 threads per job, but under load (many calls) 2 workers x 2
  threads means 4 busy threads on 2 cores, more context switches and cache thrash, and no
  more throughput; set ``configure(threads=2)`` for a single-call desktop demo.
* onnxruntime pools never spin (``session.intra_op.allow_spinning=0``).
* Whisper's CTranslate2 model has ``stt_workers`` replicas (one per core, at most
  ``max_workers``; +14 MB each): two callers who stop together are transcribed at the
  same time, one per core, and more are batched between the replicas (`stt_batch`). The
  agent's own voice has a pool of its own (`voice_executor`), so it never waits for them.
* Smart Turn (end of turn) has a one-thread executor of its own (`turn_executor`): a
  decision is ~40 ms and is on the critical path of every reply, so it never queues behind
  a transcription (speech pool) or a sentence of synthesis (voice pool).
* Silero VAD runs inline (0.1 ms per 32 ms window, 1 thread, no spinning): it is cheaper than a
  thread hand-off; the caller may run it on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from callbridge.agent.local.stt import SttOptions, WhisperStt, resolve_model_path
from callbridge.agent.local.tts import PiperTts, resolve_voice_path
from callbridge.agent.local.turn_model import SmartTurnModel, TurnModelError
from callbridge.agent.local.vad import SileroVadModel, VadStream

DEFAULT_MAX_WORKERS = 2


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class SpeechRuntime:
    """Thread settings, fixed once the first model or the executor exists."""

    max_workers: int = DEFAULT_MAX_WORKERS
    """Speech jobs (STT/TTS) that may run at once."""
    threads: int | None = None
    """Intra-op threads per job; None = ``max(1, cores // max_workers)``."""
    stt_workers: int = field(default_factory=lambda: min(DEFAULT_MAX_WORKERS, _cores()))
    """CTranslate2 Whisper replicas (parallel transcriptions)."""

    @property
    def threads_per_job(self) -> int:
        if self.threads is not None:
            return max(1, self.threads)
        return max(1, _cores() // max(1, self.max_workers))


_config_lock = threading.Lock()
_vad_lock = threading.Lock()
_stt_lock = threading.Lock()
_tts_lock = threading.Lock()
_turn_lock = threading.Lock()

_runtime = SpeechRuntime()
_executor: ThreadPoolExecutor | None = None
_vad: SileroVadModel | None = None
_stt: dict[Path, WhisperStt] = {}
_tts: dict[Path, PiperTts] = {}


def runtime() -> SpeechRuntime:
    return _runtime


def _started() -> bool:
    return _executor is not None or _vad is not None or bool(_stt) or bool(_tts)


def configure(
    *, max_workers: int | None = None, threads: int | None = None, stt_workers: int | None = None
) -> SpeechRuntime:
    """Change the thread settings; only before the executor or any model has been created."""
    global _runtime
    with _config_lock:
        if max_workers is not None and max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        new = SpeechRuntime(
            max_workers=_runtime.max_workers if max_workers is None else max_workers,
            threads=_runtime.threads if threads is None else threads,
            stt_workers=_runtime.stt_workers if stt_workers is None else max(1, stt_workers),
        )
        if new != _runtime and _started():
            raise RuntimeError("speech models are already loaded: configure() before using them")
        _runtime = new
        return new


def speech_executor() -> ThreadPoolExecutor:
    """The bounded pool for all blocking speech work (STT, TTS)."""
    global _executor
    if _executor is None:
        with _config_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(
                    max_workers=_runtime.max_workers, thread_name_prefix="speech"
                )
    return _executor


_voice_executor: ThreadPoolExecutor | None = None


def voice_executor() -> ThreadPoolExecutor:
    """A pool of its own for speech synthesis: the agent's voice must never wait behind
    transcriptions (a gap between two clauses is dead air on the call)."""
    global _voice_executor
    if _voice_executor is None:
        with _config_lock:
            if _voice_executor is None:
                _voice_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice")
    return _voice_executor


_turn_executor: ThreadPoolExecutor | None = None
_turn: SmartTurnModel | None = None
_turn_missing: str | None = None


def turn_executor() -> ThreadPoolExecutor:
    """One thread for end-of-turn decisions (Smart Turn): short, and always urgent."""
    global _turn_executor
    if _turn_executor is None:
        with _config_lock:
            if _turn_executor is None:
                _turn_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turn")
    return _turn_executor


def get_turn_model() -> SmartTurnModel | None:
    """The shared Smart Turn session, or None when the model is not installed (the agent
    then ends turns on silence alone; the reason is logged once at `preload`)."""
    global _turn, _turn_missing
    if _turn is None and _turn_missing is None:
        with _turn_lock:
            if _turn is None and _turn_missing is None:
                try:
                    _turn = SmartTurnModel()
                except TurnModelError as exc:
                    _turn_missing = str(exc)
    return _turn


def turn_model_missing() -> str | None:
    """Why `get_turn_model` gave None (None when it is loaded or not tried yet)."""
    return _turn_missing


def get_vad_model() -> SileroVadModel:
    """The shared Silero VAD session (per-call state: `vad.VadStream`)."""
    global _vad
    if _vad is None:
        with _vad_lock:
            if _vad is None:
                _vad = SileroVadModel()
    return _vad


def get_stt(model_path: str | Path | None = None) -> WhisperStt:
    """The Whisper model at ``model_path`` (default: the bundled tiny.en), loaded once."""
    path = resolve_model_path(model_path)
    stt = _stt.get(path)
    if stt is None:
        with _stt_lock:
            stt = _stt.get(path)
            if stt is None:
                options = SttOptions(
                    cpu_threads=_runtime.threads_per_job, num_workers=_runtime.stt_workers
                )
                stt = WhisperStt(path, options)
                _stt[path] = stt
    return stt


def get_tts(voice_path: str | Path | None = None) -> PiperTts:
    """The Piper voice at ``voice_path`` (default: en_US-joe-medium), loaded once.

    For another way of speaking with the same voice: ``get_tts().with_options(...)``.
    """
    path = resolve_voice_path(voice_path)
    tts = _tts.get(path)
    if tts is None:
        with _tts_lock:
            tts = _tts.get(path)
            if tts is None:
                tts = PiperTts.load(path, threads=_runtime.threads_per_job)
                _tts[path] = tts
    return tts


@dataclass(frozen=True, slots=True)
class PreloadReport:
    vad_s: float
    stt_s: float
    tts_s: float
    warmup_s: float
    threads_per_job: int
    max_workers: int

    @property
    def total_s(self) -> float:
        return self.vad_s + self.stt_s + self.tts_s + self.warmup_s

    def __str__(self) -> str:
        return (
            f"speech models loaded in {self.total_s:.2f}s (vad {self.vad_s:.2f}s, "
            f"stt {self.stt_s:.2f}s, tts {self.tts_s:.2f}s, warm-up {self.warmup_s:.2f}s; "
            f"{self.max_workers} workers x {self.threads_per_job} threads)"
        )


def preload(
    stt_model: str | Path | None = None,
    tts_voice: str | Path | None = None,
    *,
    warmup: bool = True,
) -> PreloadReport:
    """Load VAD, end of turn, STT and TTS now (BLOCKING, ~1-2 s); with ``warmup``, run each
    once so the first call does not pay first-run allocations. Already-loaded models cost
    nothing."""

    def timed(load: Callable[[], object]) -> float:
        started = time.perf_counter()
        load()
        return time.perf_counter() - started

    vad_s = timed(get_vad_model)
    vad_s += timed(get_turn_model)
    stt_s = timed(lambda: get_stt(stt_model))
    tts_s = timed(lambda: get_tts(tts_voice))
    warmup_s = 0.0
    if warmup:
        started = time.perf_counter()
        VadStream(get_vad_model()).push(bytes(4096))
        turn = get_turn_model()
        if turn is not None:
            turn.probability(bytes(16000))
        get_stt(stt_model).transcribe(bytes(32000))
        get_tts(tts_voice).synthesize("Hello.")
        warmup_s = time.perf_counter() - started
    return PreloadReport(
        vad_s=vad_s,
        stt_s=stt_s,
        tts_s=tts_s,
        warmup_s=warmup_s,
        threads_per_job=_runtime.threads_per_job,
        max_workers=_runtime.max_workers,
    )


async def preload_async(
    stt_model: str | Path | None = None,
    tts_voice: str | Path | None = None,
    *,
    warmup: bool = True,
) -> PreloadReport:
    """`preload` in a thread, for an async service start-up."""
    return await asyncio.to_thread(preload, stt_model, tts_voice, warmup=warmup)
