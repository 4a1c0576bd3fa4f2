"""What the journal costs per record write. Run: python -m tests.store.journal_cost [N]

Prints, with the journal and without it (writes in memory only, as before the journal):
- put(): the time an observer callback spends on the event loop per write;
- journaled: writes per second through the journal thread (JSON, append, hand-over);
- end to end: N writes into SQLite (put -> journal -> committed -> journal emptied);
- loop lag: the longest the event loop waited for its turn while the journal thread took
  the writes (the database held back, so its own work is not counted);
and the cost of one fdatasync of the journal on this disk.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from callbridge.store import RecordWriter, SqlCallStore
from callbridge.store.records import TranscriptAdded, Write

TEXT = "Hi, I want to know where my order 10023 is, it was due on Friday."  # a typical turn


@dataclass
class Cost:
    journal: bool
    put_us: float  # mean time of put() on the loop
    put_p99_us: float
    journaled_per_s: float
    end_to_end_us: float  # per write, into SQLite
    loop_lag_ms: float
    one_write_us: float  # put() of a lone write until it is journaled and queued

    def __str__(self) -> str:
        name = "journal   " if self.journal else "no journal"
        return (
            f"{name}: put() {self.put_us:5.2f} µs (p99 {self.put_p99_us:5.2f}) on the loop; "
            f"journal thread {self.journaled_per_s:9.0f} writes/s; "
            f"into SQLite {self.end_to_end_us:6.1f} µs/write; "
            f"loop lag ≤ {self.loop_lag_ms:.1f} ms; "
            f"a lone write journaled in {self.one_write_us:.0f} µs"
        )


async def _lag_probe(stop: asyncio.Event, worst: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        worst[0] = max(worst[0], time.perf_counter() - t - 0.001)


class GatedStore(SqlCallStore):
    """Takes no write until `gate` is set: the journal's own cost, without the database's."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.gate = asyncio.Event()

    async def write(self, batch: Sequence[Write]) -> None:
        await self.gate.wait()
        await super().write(batch)


async def measure(n: int, *, journal: bool, workdir: Path) -> Cost:
    db = workdir / f"cost-{journal}.db"
    store = GatedStore(f"sqlite+aiosqlite:///{db}")
    await store.open()
    writer = RecordWriter(store, journal_dir=workdir / f"journal-{journal}" if journal else None)
    await writer.start()
    try:
        # 1. put() while the database takes nothing: the loop's cost, the thread's rate,
        # and how long the loop waits for its turn meanwhile (the thread shares the GIL).
        times: list[float] = []
        stop, worst = asyncio.Event(), [0.0]
        probe = asyncio.create_task(_lag_probe(stop, worst))
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        for i in range(n):
            t = time.perf_counter_ns()
            writer.put(TranscriptAdded("c", "caller", TEXT, time.time()))
            times.append((time.perf_counter_ns() - t) / 1000)
            if i % 20 == 19:
                await asyncio.sleep(0)  # other calls' turns
        await writer.journaled()
        journaled_s = time.perf_counter() - started
        stop.set()
        await probe
        store.gate.set()
        await writer.flush()
        # 2. End to end into SQLite, the database taking writes as they come.
        started = time.perf_counter()
        for i in range(n):
            writer.put(TranscriptAdded("c", "caller", TEXT, time.time()))
            if i % 20 == 19:
                await asyncio.sleep(0)
        await writer.flush()
        total_s = time.perf_counter() - started
        # 3. A lone write (a quiet moment): wake the thread, append, hand back.
        lone = []
        for _ in range(500):
            t = time.perf_counter_ns()
            writer.put(TranscriptAdded("c", "caller", TEXT, time.time()))
            await writer.journaled()
            lone.append((time.perf_counter_ns() - t) / 1000)
        times.sort()
        return Cost(
            journal=journal,
            put_us=statistics.fmean(times),
            put_p99_us=times[int(len(times) * 0.99)],
            journaled_per_s=n / journaled_s,
            end_to_end_us=total_s / n * 1e6,
            loop_lag_ms=worst[0] * 1000,
            one_write_us=statistics.median(lone),
        )
    finally:
        await writer.close()
        await store.close()


def fsync_cost(workdir: Path, rounds: int = 50) -> float:
    """Mean ms of appending one line and fdatasync-ing it."""
    path = workdir / "fsync-probe.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        started = time.perf_counter()
        for _ in range(rounds):
            os.write(fd, b'{"type": "TranscriptAdded", "text": "x"}\n')
            os.fdatasync(fd)
        return (time.perf_counter() - started) / rounds * 1000
    finally:
        os.close(fd)


async def main(n: int = 20_000) -> list[Cost]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        costs = [await measure(n, journal=j, workdir=workdir) for j in (False, True)]
        for cost in costs:
            print(cost)
        print(f"fdatasync of the journal: {fsync_cost(workdir):.2f} ms (at most one per 50 ms)")
    return costs


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
