"""Measure the speech models on this machine (not a test: run it by hand).

    .venv/bin/python -m tests.local_models.measure [--threads N] [--workers N] [--stt-workers N]

Prints load times, VAD cost per window, Whisper latency for 1/3/5 s utterances (shortened
and standard 30 s encoder window) and Piper's time to first audio and real-time factor.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
from collections.abc import Callable

from callbridge.agent.local import models
from callbridge.agent.local.stt import SttOptions, WhisperStt
from callbridge.agent.local.tts import TtsOptions
from callbridge.agent.local.vad import VadStream

SR = 16_000
UTTERANCES = {
    1: "Yes, that's right.",
    3: "Please check the status of order one two three four five.",
    5: "I ordered a pair of shoes last Tuesday and they still have not arrived, can you help?",
}
REPLY = (
    "Thanks for waiting. Your order one two three four five shipped yesterday. "
    "It should arrive on Friday. Is there anything else I can help you with?"
)


def fit(pcm: bytes, seconds: int) -> bytes:
    """Pad with silence (or cut) to exactly ``seconds``."""
    size = seconds * SR * 2
    return (pcm + bytes(size))[:size]


def median_ms(fn: Callable[[], object], runs: int = 5) -> float:
    fn()  # warm
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def tts_first_audio(text: str) -> tuple[float, float, float]:
    tts = models.get_tts()
    started = time.perf_counter()
    first = 0.0
    samples = 0
    async for chunk in tts.stream(text, 24000):
        if not first:
            first = time.perf_counter() - started
        samples += len(chunk) // 2
    total = time.perf_counter() - started
    return first, total, samples / 24000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads per job")
    parser.add_argument("--workers", type=int, default=None, help="speech executor size")
    parser.add_argument("--stt-workers", type=int, default=None, help="Whisper replicas")
    args = parser.parse_args()
    runtime = models.configure(
        threads=args.threads, max_workers=args.workers, stt_workers=args.stt_workers
    )
    print(
        f"runtime: {runtime.max_workers} workers x {runtime.threads_per_job} threads per job, "
        f"{runtime.stt_workers} Whisper replica(s)"
    )

    report = models.preload()
    print(report)

    vad = VadStream()
    speech = b"".join(models.get_tts().sentences(REPLY, SR))
    vad.push(speech[:4096])
    started = time.perf_counter()
    probs = vad.push(speech)
    per_window = (time.perf_counter() - started) / len(probs) * 1e6
    print(f"VAD: {per_window:.0f} us per 32 ms window ({len(probs)} windows)")

    stt = models.get_stt()
    voice = models.get_tts().with_options(TtsOptions(noise_scale=0.0, noise_w_scale=0.0))
    started = time.perf_counter()
    full = WhisperStt(options=SttOptions(cpu_threads=runtime.threads_per_job, fast_window_s=30))
    print(f"STT (second instance, 30 s window) load: {time.perf_counter() - started:.2f}s")
    for seconds, text in UTTERANCES.items():
        pcm = fit(b"".join(voice.sentences(text, SR)), seconds)
        fast_ms = median_ms(functools.partial(stt.transcribe, pcm))
        full_ms = median_ms(functools.partial(full.transcribe, pcm))
        heard = stt.transcribe(pcm).text
        print(
            f"STT {seconds} s: {fast_ms:.0f} ms (15 s window), {full_ms:.0f} ms (30 s window)"
            f"  -> {heard!r}"
        )

    pcm3 = fit(b"".join(voice.sentences(UTTERANCES[3], SR)), 3)

    async def four_at_once() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(stt.transcribe_async(pcm3) for _ in range(4)))
        return time.perf_counter() - started

    wall = asyncio.run(four_at_once())
    print(f"STT 4 x 3 s at once through the speech executor: {wall * 1000:.0f} ms wall")

    tts = models.get_tts()
    sentence = "Your order one two three four five shipped yesterday."
    synth_ms = median_ms(lambda: tts.synthesize(sentence), runs=3)
    audio_s = len(tts.synthesize(sentence)) / 2 / tts.sample_rate
    print(
        f"TTS one sentence: {synth_ms:.0f} ms for {audio_s:.2f} s of audio "
        f"(RTF {synth_ms / 1000 / audio_s:.3f})"
    )
    first, total, audio = asyncio.run(tts_first_audio(REPLY))
    print(
        f"TTS stream of 4 sentences at 24 kHz: first audio after {first * 1000:.0f} ms, "
        f"all after {total * 1000:.0f} ms for {audio:.2f} s of audio (RTF {total / audio:.3f})"
    )


if __name__ == "__main__":
    main()
