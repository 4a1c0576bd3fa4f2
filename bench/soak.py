"""Soak: short calls back to back against `callbridge serve` for a long time, so a leak shows.

The service runs in its own process (`callbridge serve`), the ACS emulator in this one, as
in bridge_load.py. `--concurrency` callers each place one short call after another (the
sentence of samples/hello.wav, a pause, hang up: the echo is cut off mid-reply) until the
time is up. Every `--sample-s` the service's RSS, open files (fds), threads and asyncio
tasks are printed as a row; at the end each figure's growth after the warm-up (the first
20 % of the run or 2 minutes, whichever is shorter) is checked, and the JSON with every
sample is written.

The service has no endpoint for its asyncio tasks (/healthz and /stats give calls and
counters), so the soak counts them with a probe it puts in the service's process without
touching the service's code: a `sitecustomize` on the service's PYTHONPATH starts one
daemon thread that writes the number of pending tasks to a file once a second (+1 thread
in the thread count). `--no-task-probe` runs the service untouched (tasks shown as "-").
Records and recordings go to a temporary directory, not ./var.

    .venv/bin/python bench/soak.py --minutes 20 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import statistics
import tempfile
import time
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from callbridge.emulator import AcsEmulator, CallScript
from callbridge.testing.service_process import service_process

ROOT = Path(__file__).resolve().parents[1]
GROWTH_GOAL_PCT = 5.0
PAUSE_S = 2.0  # the caller's pause after the sentence, then the hang-up

# Runs in the service's process (Python 3.11/3.12: asyncio keeps every task in a WeakSet;
# asyncio.all_tasks() reads the same set, and is written to be read from another thread).
PROBE = """\
import os
import threading
import time

_DIR = os.environ.get("CALLBRIDGE_SOAK_PROBE_DIR")


def _count_tasks() -> None:
    import asyncio.tasks

    path = os.path.join(_DIR, f"tasks.{os.getpid()}")
    while True:
        time.sleep(1.0)
        try:
            pending = sum(not t.done() for t in list(asyncio.tasks._all_tasks))
        except Exception:  # the set changed under us: next second
            continue
        with open(path + ".tmp", "w") as f:
            f.write(str(pending))
        os.replace(path + ".tmp", path)


if _DIR:
    threading.Thread(target=_count_tasks, name="soak-task-probe", daemon=True).start()
"""


@dataclass
class Sample:
    elapsed_s: float
    calls: int  # calls ended so far (answered + failed)
    failed: int
    active: int | None  # calls in progress (/healthz)
    rss_mb: float
    fds: int
    threads: int
    tasks: int | None  # pending asyncio tasks (probe), None without it


@dataclass
class Tally:
    answered: int = 0
    failed: int = 0
    ended_by: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)


def caller_audio() -> bytes:
    with wave.open(str(ROOT / "samples" / "hello.wav"), "rb") as wf:
        return wf.readframes(wf.getnframes())  # 16 kHz mono PCM16, about 4.4 s


async def caller(
    emu: AcsEmulator, script: CallScript, delay_s: float, deadline: float, tally: Tally
) -> None:
    """One caller: a call, then the next, until the deadline (the last call ends after)."""
    await asyncio.sleep(delay_s)
    while time.monotonic() < deadline:
        try:
            report = await emu.place_call(script)
        except Exception as exc:  # counted and reported: the soak goes on
            tally.failed += 1
            tally.ended_by["error"] += 1
            if len(tally.errors) < 20:
                tally.errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(1.0)
            continue
        tally.ended_by[str(report.ended_by)] += 1
        if report.answered and report.media_connected and report.ended_by == "caller":
            tally.answered += 1
        else:
            tally.failed += 1


def read_tasks(probe_dir: Path | None, pid: int) -> int | None:
    if probe_dir is None:
        return None
    try:
        return int((probe_dir / f"tasks.{pid}").read_text())
    except (OSError, ValueError):
        return None


async def take_sample(
    client: httpx.AsyncClient,
    url: str,
    service: psutil.Process,
    probe_dir: Path | None,
    started: float,
    tally: Tally,
) -> Sample:
    try:
        active: int | None = (await client.get(url + "/healthz")).json()["active_calls"]
    except (httpx.HTTPError, ValueError, KeyError):
        active = None
    return Sample(
        elapsed_s=round(time.monotonic() - started, 1),
        calls=tally.answered + tally.failed,
        failed=tally.failed,
        active=active,
        rss_mb=round(service.memory_info().rss / 2**20, 1),
        fds=service.num_fds(),
        threads=service.num_threads(),
        tasks=read_tasks(probe_dir, service.pid),
    )


def print_row(s: Sample | None) -> None:
    if s is None:
        head = ("elapsed", 8), ("calls", 6), ("failed", 6), ("active", 6), ("rss_mb", 8)
        tail = ("fds", 5), ("threads", 7), ("tasks", 5)
        print(" ".join(f"{name:>{width}}" for name, width in head + tail), flush=True)
        return
    active = "-" if s.active is None else s.active
    tasks = "-" if s.tasks is None else s.tasks
    print(
        f"{s.elapsed_s:>7.0f}s {s.calls:>6} {s.failed:>6} {active!s:>6} {s.rss_mb:>8.1f} "
        f"{s.fds:>5} {s.threads:>7} {tasks!s:>5}",
        flush=True,
    )


async def settle(client: httpx.AsyncClient, url: str, timeout_s: float) -> None:
    """Wait until the service reports no call in progress (or the timeout)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            if (await client.get(url + "/healthz")).json()["active_calls"] == 0:
                break
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        await asyncio.sleep(0.5)
    await asyncio.sleep(3.0)  # let sockets close and done tasks be collected


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    duration_s = args.minutes * 60.0
    probe_dir: Path | None = None
    env = {
        "CALLBRIDGE_MAX_CALLS": str(args.concurrency + 10),
        "CALLBRIDGE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'soak.db'}",
        "CALLBRIDGE_RECORDINGS_DIR": str(tmp / "recordings"),
    }
    if args.task_probe:
        probe_dir = tmp / "probe"
        probe_dir.mkdir()
        (probe_dir / "sitecustomize.py").write_text(PROBE)
        path = os.environ.get("PYTHONPATH")
        env["PYTHONPATH"] = f"{probe_dir}{os.pathsep}{path}" if path else str(probe_dir)
        env["CALLBRIDGE_SOAK_PROBE_DIR"] = str(probe_dir)
    speech = caller_audio()
    script = CallScript(
        audio=speech, start_delay_s=0.2, hangup_after_s=len(speech) / 32000 + PAUSE_S
    )
    tally = Tally()
    samples: list[Sample] = []
    async with service_process(args.agent, env, cwd=ROOT) as svc:
        service = psutil.Process(svc.proc.pid)
        async with httpx.AsyncClient(timeout=10.0) as client:
            await asyncio.sleep(2.0)  # the probe's first count
            idle = await take_sample(client, svc.url, service, probe_dir, time.monotonic(), tally)
            started = time.monotonic()
            deadline = started + duration_s
            # Staggered over one call's length, so calls start and end all the time
            # rather than in step (the figures would swing with the phase of the calls).
            call_s = script.start_delay_s + (script.hangup_after_s or 0.0)
            callers = [
                asyncio.create_task(
                    caller(svc.emulator, script, i * call_s / args.concurrency, deadline, tally)
                )
                for i in range(args.concurrency)
            ]
            print_row(None)
            next_at = started
            while not all(c.done() for c in callers):
                if svc.proc.poll() is not None:
                    print(f"the service exited (code {svc.proc.returncode})", flush=True)
                    for c in callers:
                        c.cancel()
                    break
                if time.monotonic() >= next_at and next_at <= deadline:
                    sample = await take_sample(client, svc.url, service, probe_dir, started, tally)
                    samples.append(sample)
                    print_row(sample)
                    next_at += args.sample_s
                await asyncio.sleep(0.2)
            await asyncio.gather(*callers, return_exceptions=True)
            ran_s = time.monotonic() - started
            died = svc.proc.poll()  # None: the service ran the whole soak
            after = None
            if died is None:
                await settle(client, svc.url, 30.0)
                after = await take_sample(client, svc.url, service, probe_dir, started, tally)
    return {
        "agent": args.agent,
        "minutes": args.minutes,
        "concurrency": args.concurrency,
        "sample_s": args.sample_s,
        "ran_s": round(ran_s, 1),
        "warmup_s": round(min(0.2 * duration_s, 120.0), 1),
        "task_probe": args.task_probe,
        "calls_answered": tally.answered,
        "calls_failed": tally.failed,
        "calls_per_minute": round((tally.answered + tally.failed) / (ran_s / 60.0), 1),
        "ended_by": dict(tally.ended_by),
        "errors": tally.errors,
        "service_died": died is not None,
        "idle_before": asdict(idle),
        "idle_after": asdict(after) if after else None,
        "samples": [asdict(s) for s in samples],
    }


def growth(rows: list[dict[str, Any]], key: str) -> tuple[float, float, float]:
    """Median of the first and of the last few rows (a tenth of them, at least 3: one sample
    swings with the calls in progress), and the growth between the two in %."""
    n = max(1, min(len(rows) // 2, max(3, len(rows) // 10)))
    start = statistics.median(s[key] for s in rows[:n])
    end = statistics.median(s[key] for s in rows[-n:])
    return start, end, 100.0 * (end - start) / start if start else 0.0


def trend(samples: list[dict[str, Any]], key: str, warmup_s: float) -> dict[str, Any] | None:
    """The figure after the warm-up: its growth, the growth over the second half alone (a
    leak keeps growing there; a cache or pool filling up has stopped) and the least-squares
    slope per 1000 calls."""
    rows = [s for s in samples if s["elapsed_s"] >= warmup_s and s[key] is not None]
    if len(rows) < 2:
        return None
    start, end, pct = growth(rows, key)
    second_half = rows[len(rows) // 2 :]
    half_pct = growth(second_half, key)[2] if len(second_half) >= 2 else None
    slope = None
    if len({s["calls"] for s in rows}) > 1:
        slope = statistics.linear_regression([s["calls"] for s in rows], [s[key] for s in rows])
    return {
        "start": round(start, 1),
        "end": round(end, 1),
        "growth_pct": round(pct, 1),
        "second_half_growth_pct": None if half_pct is None else round(half_pct, 1),
        "per_1000_calls": round(slope.slope * 1000, 2) if slope else None,
        "samples": len(rows),
    }


def report(result: dict[str, Any]) -> None:
    """Print the summary and the verdict; adds each figure's trend to `result`."""
    print(
        f"\ncalls: {result['calls_answered']} answered, {result['calls_failed']} failed "
        f"({result['calls_per_minute']}/min) in {result['ran_s']:.0f} s; "
        f"ended by: {result['ended_by']}"
    )
    for error in result["errors"][:5]:
        print(f"  error: {error}")
    warmup_s = result["warmup_s"]
    print(f"after the warm-up ({warmup_s:g} s):\n")
    print(
        f"{'figure':<8} {'start':>8} {'end':>8} {'growth':>8} {'2nd half':>9} "
        f"{'/1000 calls':>12}  goal"
    )
    goals = {"rss_mb": GROWTH_GOAL_PCT, "fds": GROWTH_GOAL_PCT}
    result["trends"] = {}
    for key in ("rss_mb", "fds", "threads", "tasks"):
        t = trend(result["samples"], key, warmup_s)
        result["trends"][key] = t
        if t is None:
            print(f"{key:<8} {'-':>8} {'-':>8} {'-':>8} {'-':>9} {'-':>12}")
            continue
        mark = ""
        if key in goals:
            ok = t["growth_pct"] <= goals[key]
            mark = f"<= {goals[key]:g} %  {'ok' if ok else 'MISSED'}"
            t["ok"] = ok
        half = t["second_half_growth_pct"]
        half_s = "-" if half is None else f"{half:+.1f}%"
        per_k = "-" if t["per_1000_calls"] is None else f"{t['per_1000_calls']:+.2f}"
        print(
            f"{key:<8} {t['start']:>8g} {t['end']:>8g} {t['growth_pct']:>+7.1f}% {half_s:>9} "
            f"{per_k:>12}  {mark}".rstrip()
        )
    before, after = result["idle_before"], result["idle_after"]
    if after:
        print("\nno call in progress   rss_mb   fds  threads  tasks")
        for name, s in (("before the first call", before), ("after the last call", after)):
            tasks = "-" if s["tasks"] is None else s["tasks"]
            print(f"{name:<21} {s['rss_mb']:>6.1f} {s['fds']:>5} {s['threads']:>8} {tasks!s:>6}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes",
        type=float,
        default=20.0,
        help="how long to place calls (default 20: at least 20 minutes to pass every "
        "retention window; --minutes 1 for a smoke run)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="calls at a time")
    parser.add_argument("--agent", default="echo", help="echo (default) or local (slower)")
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between samples")
    parser.add_argument(
        "--no-task-probe",
        dest="task_probe",
        action="store_false",
        help="do not count the service's asyncio tasks (no probe in its process)",
    )
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "soak.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="callbridge-soak-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
        db = [p for p in Path(tmp).iterdir() if p.name.startswith("soak.db")]
        result["db_mb"] = round(sum(p.stat().st_size for p in db if p.is_file()) / 2**20, 2)

    report(result)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"\nJSON: {args.json}")
    if result["service_died"] or result["calls_answered"] == 0:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
