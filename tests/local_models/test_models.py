"""Process-wide singletons, the speech executor and preload."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from callbridge.agent.local import models
from callbridge.agent.local.stt import bundled_model_path
from callbridge.agent.local.tts import default_voice_path


def test_models_are_loaded_once_and_shared() -> None:
    assert models.get_stt() is models.get_stt(bundled_model_path())
    assert models.get_stt() is models.get_stt("tiny.en")
    assert models.get_tts() is models.get_tts(default_voice_path())
    assert models.get_vad_model() is models.get_vad_model()


def test_concurrent_first_use_loads_once() -> None:
    seen: list[object] = []
    barrier = threading.Barrier(4)

    def grab() -> None:
        barrier.wait()
        seen.append(models.get_tts())
        seen.append(models.get_vad_model())

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(x) for x in seen}) == 2


def test_one_bounded_speech_executor() -> None:
    executor = models.speech_executor()
    assert isinstance(executor, ThreadPoolExecutor)
    assert executor is models.speech_executor()
    assert executor._max_workers == models.runtime().max_workers == 2


def test_thread_budget() -> None:
    runtime = models.runtime()
    assert runtime.threads_per_job >= 1
    assert models.get_stt().options.cpu_threads == runtime.threads_per_job
    assert models.SpeechRuntime(max_workers=2).threads_per_job == max(1, models._cores() // 2)
    assert models.SpeechRuntime(threads=3).threads_per_job == 3


def test_configure_after_start_is_refused() -> None:
    models.get_vad_model()
    current = models.runtime()
    assert models.configure(max_workers=current.max_workers) == current  # no change: fine
    with pytest.raises(RuntimeError, match="already loaded"):
        models.configure(max_workers=current.max_workers + 1)
    with pytest.raises(ValueError):
        models.configure(max_workers=0)
    assert models.runtime() == current


def test_preload_reports_times() -> None:
    report = models.preload()
    assert report.max_workers == 2
    assert min(report.vad_s, report.stt_s, report.tts_s, report.warmup_s) >= 0
    assert "speech models loaded" in str(report)


async def test_preload_async() -> None:
    report = await models.preload_async(warmup=False)
    assert report.warmup_s == 0.0
