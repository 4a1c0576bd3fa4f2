"""Voice latency of the offline agent, through the ACS emulator, in real time.

Part 1 (service in this process, so the agent's own timings are at hand): a scripted caller
asks short questions and barges in once; per turn it measures voice-to-voice latency (the
caller's speech ends in the audio -> the agent's first audio reaches the caller), the
agent's STT, brain and first-TTS-chunk times, and barge-in reaction (the caller's speech
onset -> StopAudio at the caller). With 1 call, then with 4 concurrent calls.
Part 2 (service in its own process): time until it answers, memory with the models loaded,
and memory per concurrent call.

    .venv/bin/python bench/voice_latency.py [--rounds 3] [--skip-memory]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from pathlib import Path
from typing import Any

import psutil

from callbridge.devstack import running_stack
from callbridge.emulator import AcsEmulator, CallScript
from callbridge.scenarios.model import load_scenario
from callbridge.scenarios.runner import ScenarioResult, run_scenarios
from callbridge.testing.service_process import service_process

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summarise(results: list[ScenarioResult]) -> dict[str, dict[str, float]]:
    series: dict[str, list[float]] = {
        "voice_to_voice_ms": [],
        "stt_ms": [],
        "brain_ms": [],
        "tts_first_chunk_ms": [],
        "barge_in_ms": [],
    }
    for r in results:
        series["voice_to_voice_ms"] += r.latencies_ms
        series["barge_in_ms"] += [s.barge_in_ms for s in r.steps if s.barge_in_ms is not None]
        for t in r.timings:
            series["stt_ms"].append(t["stt_ms"])
            series["brain_ms"].append(t["brain_first_ms"])
            series["tts_first_chunk_ms"].append(t["tts_first_ms"])
    return {
        name: {"n": len(v), "p50": round(pct(v, 50), 1), "p95": round(pct(v, 95), 1)}
        for name, v in series.items()
    }


async def latency(calls: int, rounds: int) -> dict[str, Any]:
    scenario = load_scenario(ROOT / "bench" / "latency_call.yaml")
    results: list[ScenarioResult] = []
    async with running_stack(agent="local") as stack:
        for _ in range(rounds):
            results += await run_scenarios(
                stack, [scenario] * calls, concurrency=calls, transcribe=False
            )
    failed = [p for r in results for p in r.to_dict()["problems"]]
    return {"calls": calls, "turns": summarise(results), "problems": failed[:5]}


async def _batch(
    emu: AcsEmulator, service: psutil.Process, calls: int
) -> tuple[int, int, list[Any]]:
    """Place `calls` calls at once; return (RSS after, peak RSS during, reports)."""
    peak = service.memory_info().rss
    placing = [
        asyncio.create_task(
            emu.place_call(CallScript(audio=ROOT / "samples" / "hello.wav", hangup_after_s=9))
        )
        for _ in range(calls)
    ]
    while not all(t.done() for t in placing):
        peak = max(peak, service.memory_info().rss)
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    return service.memory_info().rss, peak, [t.result() for t in placing]


async def memory(calls: int) -> dict[str, Any]:
    async with service_process("local", start_timeout_s=60, cwd=ROOT) as svc:
        emu, ready_s = svc.emulator, svc.ready_s
        service = psutil.Process(svc.proc.pid)
        rss_ready = service.memory_info().rss
        # A first batch warms the models' working memory (allocated once, on first use by
        # concurrent calls); the second batch shows what each call itself costs.
        rss_warm, peak_first, _ = await _batch(emu, service, calls)
        _, peak, reports = await _batch(emu, service, calls)
    return {
        "ready_s": round(ready_s, 2),
        "rss_ready_mb": round(rss_ready / 2**20, 1),
        "rss_first_batch_peak_mb": round(peak_first / 2**20, 1),
        "rss_warm_mb": round(rss_warm / 2**20, 1),
        "rss_peak_mb": round(peak / 2**20, 1),
        "rss_per_call_mb": round((peak - rss_warm) / 2**20 / calls, 2),
        "calls": calls,
        "answered": sum(r.answered and r.media_connected for r in reports),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="calls per series (1-call case)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "voice_latency.json"))
    args = parser.parse_args()
    out: dict[str, Any] = {
        "one_call": asyncio.run(latency(1, args.rounds)),
        "four_calls": asyncio.run(latency(4, 1)),
    }
    if not args.skip_memory:
        out["memory"] = asyncio.run(memory(4))
    goals = {
        ("one_call", "voice_to_voice_ms", "p50"): 700,
        ("one_call", "voice_to_voice_ms", "p95"): 1000,
        ("one_call", "barge_in_ms", "p50"): 300,
    }
    print(f"{'series':<11} {'metric':<20} {'n':>3} {'p50':>8} {'p95':>8}  goal")
    for series in ("one_call", "four_calls"):
        for metric, v in out[series]["turns"].items():
            marks = []
            for q in ("p50", "p95"):
                goal = goals.get((series, metric, q))
                if goal is not None:
                    marks.append(f"{q} <= {goal} {'ok' if v[q] <= goal else 'MISSED'}")
            print(
                f"{series:<11} {metric:<20} {v['n']:>3} {v['p50']:>8} {v['p95']:>8}  "
                + "; ".join(marks)
            )
        for p in out[series]["problems"]:
            print(f"  problem: {p}")
    if "memory" in out:
        m = out["memory"]
        print(
            f"\nready in {m['ready_s']} s (goal <= 5); RSS with models {m['rss_ready_mb']} MB "
            f"(goal < 1024); first {m['calls']} calls peak {m['rss_first_batch_peak_mb']} MB, "
            f"warm {m['rss_warm_mb']} MB; then +{m['rss_per_call_mb']} MB per call "
            f"(goal < 20); answered {m['answered']}/{m['calls']}"
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
