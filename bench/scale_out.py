"""Scale-out: three `callbridge serve` replicas behind HAProxy with Redis (docs/scale-out.md).

N calls, every IncomingCall delivered twice (round robin: to two replicas); while they talk,
the replica holding the most calls is killed with -9, then started again, then every
replica is restarted in turn (SIGTERM: it hands its calls over, then exits). Every caller
talks the whole call and hangs up at the end; a call is lost if it ended any other way.
The silence a caller hears while their call moves is the gap between the media socket's
loss (MediaStreamingStopped) and the next one opening (MediaStreamingStarted). Then the CPU
per bridged call of one replica with Redis against one without, under the same load.
Prints a table and writes JSON.

    .venv/bin/python bench/scale_out.py --calls 60
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import wave
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from callbridge.emulator import CallReport, CallScript
from callbridge.testing.topology import topology
from goals import report  # bench/goals.py, beside this file

ROOT = Path(__file__).resolve().parents[1]


def caller_audio(seconds: float) -> bytes:
    with wave.open(str(ROOT / "samples" / "hello.wav"), "rb") as wf:
        speech = wf.readframes(wf.getnframes())
    loop = speech + bytes(16000 * 2 * 2)
    return (loop * (int(seconds * 32000 / len(loop)) + 1))[: int(seconds * 32000)]


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def media_gaps(report: CallReport, offset: float = 0.0) -> list[tuple[float, float]]:
    """(when the socket was lost, seconds until the next one opened); `offset`: when the
    call started on the caller's clock."""
    gaps, lost = [], None
    for cb in report.callbacks:
        if cb.type == "MediaStreamingStopped":
            lost = cb.t + offset
        elif cb.type == "MediaStreamingStarted" and lost is not None:
            gaps.append((lost, cb.t + offset - lost))
            lost = None
    return gaps


def timeline(report: CallReport, offset: float) -> list[tuple[float, str]]:
    """The callbacks ACS sent and the media requests it got, on the bench's clock."""
    events = [(cb.t + offset, cb.type) for cb in report.callbacks]
    events += [
        (rq.t + offset, rq.path.rsplit(":", 1)[-1])
        for rq in report.rest_requests
        if rq.path.endswith("MediaStreaming")
    ]
    return [(round(t, 2), what) for t, what in sorted(events)]


async def faults(calls: int, seconds: float, env: dict[str, str]) -> dict[str, Any]:
    settings = {"CALLBRIDGE_DRAIN_SETTLE_S": "1.2", **env}
    async with topology(3, "echo", settings, cwd=ROOT) as topo:
        emu = topo.emulator
        audio = caller_audio(seconds)
        scripts = [
            CallScript(
                audio=audio,
                start_delay_s=0.2,
                hangup_after_s=seconds,
                duplicate_delivery=True,
                from_number=f"+1425556{i:04d}",
                max_duration_s=seconds + 60,
            )
            for i in range(calls)
        ]
        placed = time.monotonic()
        running = [asyncio.create_task(emu.place_call(s)) for s in scripts]
        await asyncio.sleep(8.0)  # every call up and talking
        by_call = await topo.owners()
        held = Counter(by_call.values())
        victim, on_victim = held.most_common(1)[0]
        victims = {conn for conn, owner in by_call.items() if owner == victim}
        print(f"killing {victim} (holding {on_victim} of {sum(held.values())} calls)")
        killed_at = time.monotonic() - placed
        topo.kill(victim)
        await asyncio.sleep(6.0)
        await topo.restart(victim)
        rolling_from = time.monotonic() - placed
        stops: list[tuple[float, str]] = []
        for replica in topo.replicas:
            print(f"rolling restart: {replica.name}")
            stops.append((time.monotonic() - placed, replica.name))
            await topo.stop(replica.name)
            await topo.restart(replica.name)
            await asyncio.sleep(1.0)
        rolling_to = time.monotonic() - placed
        reports: list[CallReport] = await asyncio.gather(*running)
        # Each report counts time from its own call's start: put them on the bench's clock.
        offset = {c.call_connection_id: c.t0 - placed for c in emu.calls}

    def gaps_of(r: CallReport) -> list[tuple[float, float]]:
        return media_gaps(r, offset.get(r.call_connection_id, 0.0))

    answers = [r.answer_attempts for r in reports]
    lost = [r for r in reports if r.ended_by != "caller"]
    victim_reports = [r for r in reports if r.call_connection_id in victims]
    failover = [g for r in victim_reports for at, g in gaps_of(r) if killed_at <= at < rolling_from]
    rolling = [g for r in reports for at, g in gaps_of(r) if rolling_from <= at <= rolling_to]
    return {
        "calls": calls,
        "seconds": seconds,
        "answers_per_call_min": min(answers),
        "answers_per_call_max": max(answers),
        "killed_replica_calls": on_victim,
        "calls_lost": len(lost),
        "lost_reasons": sorted({r.end_reason for r in lost})[:5],
        "killed_calls_restarted": sum(
            any(killed_at <= at < rolling_from for at, _ in gaps_of(r)) for r in victim_reports
        ),
        "failover_silence_p50_s": round(pct(failover, 50), 2),
        "failover_silence_p95_s": round(pct(failover, 95), 2),
        "failover_silence_max_s": round(max(failover, default=0.0), 2),
        "rolling_moves": len(rolling),
        "rolling_silence_p50_s": round(pct(rolling, 50), 2),
        "rolling_silence_max_s": round(max(rolling, default=0.0), 2),
        "rolling_long_gaps": [
            (round(at, 1), round(g, 2))
            for r in reports
            for at, g in gaps_of(r)
            if rolling_from <= at <= rolling_to and g > 1.0
        ][:10],
        "rolling_stops_at": [(round(t, 1), n) for t, n in stops],
        # What ACS reported around each long gap: why the caller heard nothing.
        "rolling_long_gap_events": [
            timeline(r, offset.get(r.call_connection_id, 0.0))
            for r in reports
            if any(rolling_from <= at <= rolling_to and g > 1.0 for at, g in gaps_of(r))
        ][:6],
    }


async def cpu_per_call(calls: int, seconds: float, redis: bool) -> float:
    """CPU (% of a core) per bridged call of one replica, with or without Redis."""
    url = "redis://127.0.0.1:6379/0" if redis else None
    async with topology(1, "echo", redis_url=url, cwd=ROOT) as topo:
        proc = psutil.Process(topo.replicas[0].proc.pid)
        audio = caller_audio(seconds)
        scripts = [
            CallScript(audio=audio, start_delay_s=0.2, hangup_after_s=seconds + 1)
            for _ in range(calls)
        ]
        running = [asyncio.create_task(topo.emulator.place_call(s)) for s in scripts]
        await asyncio.sleep(3.0)
        c0, t0 = proc.cpu_times(), time.monotonic()
        await asyncio.sleep(seconds - 5.0)
        c1, t1 = proc.cpu_times(), time.monotonic()
        await asyncio.gather(*running)
    busy = (c1.user - c0.user) + (c1.system - c0.system)
    return 100.0 * busy / (t1 - t0) / calls


async def run(args: argparse.Namespace) -> dict[str, Any]:
    env = dict(item.partition("=")[::2] for item in args.env)
    result = await faults(args.calls, args.seconds, env)
    with_redis, without = [], []
    for _ in range(args.cpu_rounds):  # alternated: the machine's noise hits both alike
        without.append(await cpu_per_call(args.cpu_calls, 25.0, redis=False))
        with_redis.append(await cpu_per_call(args.cpu_calls, 25.0, redis=True))
    if without and with_redis:  # --cpu-rounds 0: the faults alone
        result["cpu_pct_per_call_without_redis"] = round(statistics.median(without), 3)
        result["cpu_pct_per_call_with_redis"] = round(statistics.median(with_redis), 3)
        ratio = statistics.median(with_redis) / statistics.median(without)
        result["cpu_ratio_redis"] = round(ratio, 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=75.0, help="each call's length")
    parser.add_argument("--cpu-calls", type=int, default=30)
    parser.add_argument("--cpu-rounds", type=int, default=3)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the three replicas (e.g. CALLBRIDGE_LOG_LEVEL=INFO)",
    )
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "scale_out.json"))
    args = parser.parse_args()
    result = asyncio.run(run(args))
    goals = {
        "answers_per_call_max": ("<=", 1),
        "answers_per_call_min": (">=", 1),
        "calls_lost": ("<=", 0),
        "failover_silence_p95_s": ("<=", 3.0),
        "rolling_silence_max_s": ("<=", 1.0),
        "cpu_ratio_redis": ("<=", 1.2),
    }
    report(result, goals, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
