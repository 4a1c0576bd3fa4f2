"""Bridge load: N concurrent emulated calls through the echo agent or a realtime model.

The service runs in its own process (`callbridge serve`), the ACS emulator in this one.
Every caller talks for the whole call (a sentence, a pause, the sentence again...), so the
agent answers all the time and audio flows both ways. With `--agent voicelive` the agent is
the Voice Live backend against the fake Voice Live server (callbridge.testing.fake_realtime,
in a third process), which answers each caller turn with a spoken reply streamed faster
than real time, as a real model does: the echo agent paces its own audio and hides gaps in
the agent's voice that a realtime backend shows. `--jitter-p99-ms` puts network jitter on
every media socket (emulator/network.py). Prints a table and writes JSON.

    .venv/bin/python bench/bridge_load.py --calls 50 --seconds 30
    .venv/bin/python bench/bridge_load.py --agent voicelive --calls 80 --seconds 40
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from callbridge.emulator import CallReport, CallScript, NetworkConditions
from callbridge.testing.service_process import free_port, service_process
from goals import report  # bench/goals.py, beside this file

ROOT = Path(__file__).resolve().parents[1]


# The realtime model's reply to every caller turn (~1.9 s of audio at the fake's pace).
REPLY = "Sure, I can help you with that."


def caller_audio(seconds: float, pause_s: float = 2.0) -> bytes:
    with wave.open(str(ROOT / "samples" / "hello.wav"), "rb") as wf:
        speech = wf.readframes(wf.getnframes())
    pause = bytes(int(16000 * pause_s) * 2)
    loop = speech + pause
    reps = int(seconds * 32000 / len(loop)) + 1
    return (loop * reps)[: int(seconds * 32000)]


def pct(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@contextlib.contextmanager
def fake_voicelive() -> Iterator[dict[str, str]]:
    """The fake Voice Live server in a process of its own; yields the service's settings."""
    port = free_port()
    cmd = [sys.executable, "-m", "callbridge.testing.fake_realtime"]
    cmd += ["--dialect", "voicelive", "--port", str(port), "--say", REPLY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        env: dict[str, str] = {}
        assert proc.stdout is not None
        for line in proc.stdout:  # it prints the settings once it listens
            if line.strip().startswith("export "):
                key, _, value = line.strip().removeprefix("export ").partition("=")
                env[key] = value
                if key == "CALLBRIDGE_VOICELIVE_MODEL":
                    break
        if "CALLBRIDGE_VOICELIVE_ENDPOINT" not in env:
            raise RuntimeError("the fake Voice Live server did not start")
        yield env
    finally:
        proc.terminate()
        proc.wait(10)


async def _loop_lag(into: list[tuple[float, float]], every_s: float = 0.02) -> None:
    """How late this process's event loop (the emulator's) wakes, every 20 ms tick, as
    (seconds since the first tick, ms late)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        due = loop.time() + every_s
        await asyncio.sleep(every_s)
        into.append((due - start, max(0.0, loop.time() - due) * 1000.0))


async def run(
    calls: int,
    seconds: float,
    agent: str,
    jitter_p99_ms: float,
    extra_env: dict[str, str],
    warmup: bool = False,
) -> dict[str, Any]:
    env = {"CALLBRIDGE_MAX_CALLS": str(calls + 10), **extra_env}
    async with service_process(agent, env, cwd=ROOT) as svc:
        emu, service_url = svc.emulator, svc.url
        service = psutil.Process(svc.proc.pid)
        rss_idle = service.memory_info().rss
        rss_warm = None
        before: dict[str, Any] = {}
        if warmup:
            # One call, ended, before the measured ones: what the first call of a fresh
            # process loads once (clients, imports) is not a per-call cost.
            await emu.place_call(
                CallScript(audio=caller_audio(2.0), start_delay_s=0.2, hangup_after_s=4.0)
            )
            await asyncio.sleep(2.0)
            rss_warm = service.memory_info().rss
            async with httpx.AsyncClient() as client:
                before = (await client.get(service_url + "/stats")).json()
        # The caller falls quiet 6 s before hanging up, so every reply has finished playing
        # and any frame missing at either end is a lost frame, not one still in flight.
        # A realtime reply is longer than the echo: the caller leaves it room.
        pause_s = 3.0 if agent != "echo" else 2.0
        audio = caller_audio(max(1.0, seconds - 6.0), pause_s)
        network = (
            NetworkConditions(delay_ms=20.0, jitter_p99_ms=jitter_p99_ms) if jitter_p99_ms else None
        )
        scripts = [
            CallScript(
                audio=audio, start_delay_s=0.2, hangup_after_s=seconds + 1.0, network=network
            )
            for _ in range(calls)
        ]
        # The emulator plays ACS in this process: a full collection of this heap would stop
        # its playout clock and count as the service's gap. Out of the collector's sight,
        # as the service does with its own (docs/architecture.md, "The collector").
        gc.collect()
        gc.freeze()
        # The emulator's own lag from before the first call: the start of 80 calls at once
        # is where it would be late, and a late emulator counts underruns of its own.
        lags: list[tuple[float, float]] = []
        lag = asyncio.create_task(_loop_lag(lags))
        placing = [asyncio.create_task(emu.place_call(s)) for s in scripts]
        # Measure the steady state: from 3 s in (all calls up) to 2 s before the end.
        await asyncio.sleep(3.0)
        cpu0, t0 = service.cpu_times(), time.monotonic()
        rss_samples = []
        while time.monotonic() - t0 < seconds - 4.0:
            await asyncio.sleep(0.5)
            rss_samples.append(service.memory_info().rss)
        cpu1, t1 = service.cpu_times(), time.monotonic()
        lag.cancel()
        reports: list[CallReport] = await asyncio.gather(*placing)
        await asyncio.sleep(1.0)
        async with httpx.AsyncClient() as client:
            stats = (await client.get(service_url + "/stats")).json()
    for key in ("frames_in", "chunks_out", "bytes_out", "replies", "barge_ins"):
        stats[key] -= before.get(key, 0)  # the warm-up call's
    busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    cpu_pct = 100.0 * busy / (t1 - t0)
    rss_peak = max(rss_samples) if rss_samples else rss_idle
    frames_sent = sum(r.frames_sent for r in reports)
    frames_received = sum(r.frames_received for r in reports)
    answered = sum(r.answered and r.media_connected for r in reports)
    lateness = stats["pacing_lateness_ms"]
    start_lag = [ms for at_s, ms in lags if at_s < 3.0]  # the calls starting
    steady_lag = [ms for at_s, ms in lags if at_s >= 3.0]
    underruns = sum(r.underruns for r in reports)
    replies = stats["replies"]
    return {
        "agent": agent,
        "calls": calls,
        "seconds": seconds,
        "jitter_p99_ms": jitter_p99_ms,
        "answered_with_media": answered,
        "service_cpu_pct": round(cpu_pct, 1),
        "cpu_pct_per_call": round(cpu_pct / calls, 3),
        "rss_idle_mb": round(rss_idle / 2**20, 1),
        "rss_peak_mb": round(rss_peak / 2**20, 1),
        "rss_per_call_mb": round((rss_peak - rss_idle) / 2**20 / calls, 3),
        **(
            {
                "rss_after_one_call_mb": round(rss_warm / 2**20, 1),
                "rss_per_call_after_one_call_mb": round((rss_peak - rss_warm) / 2**20 / calls, 3),
            }
            if rss_warm is not None
            else {}
        ),
        "pacing_lateness_p50_ms": round(lateness["p50"], 2),
        "pacing_lateness_p99_ms": round(lateness["p99"], 2),
        "pacing_lateness_max_ms": round(lateness["max"], 2),
        # Whether the emulator (ACS's side) kept time: a late emulator loop catches its
        # playout up on audio still unread in its socket, and would count underruns the
        # service did not cause.
        "emulator_loop_lag_p99_ms": round(pct(steady_lag, 99), 1),
        "emulator_loop_lag_max_ms": round(max(steady_lag, default=0.0), 1),
        "emulator_loop_lag_start_max_ms": round(max(start_lag, default=0.0), 1),
        "caller_frames_sent": frames_sent,
        "caller_frames_bridged": stats["frames_in"],
        "caller_frames_lost": frames_sent - stats["frames_in"],
        "agent_chunks_sent": stats["chunks_out"],
        "agent_frames_received": frames_received,
        "agent_bytes_lost": stats["bytes_out"] - sum(r.outbound_bytes for r in reports),
        "replies": replies,
        "barge_ins": stats["barge_ins"],
        "playout_underruns": underruns,
        # The greeting's first seconds, when every call started at once, and the rest.
        "underruns_first_3_s": sum(t < 3.0 for r in reports for t in r.underrun_times),
        "underruns_per_400_replies": round(400 * underruns / max(1, replies), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--agent", choices=["echo", "voicelive"], default="echo")
    parser.add_argument(
        "--jitter-p99-ms", type=float, default=0.0, help="network jitter on every media socket"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="a service setting"
    )
    parser.add_argument(
        "--warmup",
        action="store_true",
        help="one call before the measured ones; also reports RSS per call above that",
    )
    parser.add_argument("--json", default=None, help="default: bench/results/bridge_load*.json")
    parser.add_argument(
        "--telemetry",
        action="store_true",
        help="OpenTelemetry on: the service exports over OTLP/HTTP to a sink in this process",
    )
    args = parser.parse_args()
    extra_env = dict(item.partition("=")[::2] for item in args.env)
    if args.telemetry:  # the sink answers 200 to everything, on loopback (telemetry/sink.py)
        from callbridge.telemetry.sink import OtlpSink

        sink = OtlpSink(keep=False).start()
        extra_env.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", sink.endpoint)
    if args.agent == "voicelive":
        with fake_voicelive() as fake_env:
            extra_env = {**fake_env, **extra_env}
            result = asyncio.run(
                run(
                    args.calls, args.seconds, args.agent, args.jitter_p99_ms, extra_env, args.warmup
                )
            )
    else:
        result = asyncio.run(
            run(args.calls, args.seconds, args.agent, args.jitter_p99_ms, extra_env, args.warmup)
        )
    suffix = "" if args.agent == "echo" else f"_{args.agent}"
    if args.telemetry:
        result["otlp_requests"] = dict(sink.counts)
        suffix += "_telemetry"
        sink.stop()
    args.json = args.json or str(ROOT / "bench" / "results" / f"bridge_load{suffix}.json")
    goals: dict[str, tuple[str, float]] = {
        "cpu_pct_per_call": ("<=", 1.0),
        "rss_per_call_mb": ("<=", 2.0),
        "pacing_lateness_p99_ms": ("<", 10.0),
        "caller_frames_lost": ("<=", 0),
        "agent_bytes_lost": ("<=", 0),
        "underruns_per_400_replies": ("<=", 5),
    }
    report(result, goals, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
