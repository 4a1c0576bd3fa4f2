"""The emulated network between ACS and the service (emulator/network.py)."""

from __future__ import annotations

import asyncio
import random

import pytest

from callbridge.emulator import NetworkConditions
from callbridge.emulator.network import DelayLine


def test_conditions_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="negative"):
        NetworkConditions(delay_ms=-1)
    with pytest.raises(ValueError, match="stall"):
        NetworkConditions(stalls=((1.0, 0.0),))
    assert not NetworkConditions(drops=(1.0,)).shapes_traffic
    assert NetworkConditions(jitter_p99_ms=10).shapes_traffic


def test_a_message_sent_in_a_stall_leaves_when_it_ends() -> None:
    net = NetworkConditions(stalls=((2.0, 0.5), (5.0, 1.0)))
    assert net.held_until(1.0) == 1.0
    assert net.held_until(2.2) == 2.5
    assert net.held_until(5.9) == 6.0


async def _through(net: NetworkConditions, n: int, gap_s: float) -> list[tuple[int, float]]:
    loop = asyncio.get_running_loop()
    out: list[tuple[int, float]] = []
    t0 = loop.time()

    async def deliver(i: int) -> None:
        out.append((i, loop.time() - t0))

    line: DelayLine[int] = DelayLine(net, deliver, lambda: loop.time() - t0, random.Random(1))
    task = asyncio.create_task(line.run())
    for i in range(n):
        line.put(i)
        await asyncio.sleep(gap_s)
    await asyncio.sleep(0.4)
    task.cancel()
    return out


async def test_jitter_delays_but_keeps_order_and_loses_nothing() -> None:
    out = await _through(NetworkConditions(delay_ms=20, jitter_p99_ms=80), 100, 0.002)
    assert [i for i, _ in out] == list(range(100))
    # Every message at least the fixed delay late; some much later (the jitter's tail).
    sent_at = [i * 0.002 for i in range(100)]
    late = [t - s for (_, t), s in zip(out, sent_at, strict=True)]
    assert min(late) >= 0.019
    assert max(late) > 0.05


async def test_a_stall_holds_everything_then_lets_it_through() -> None:
    out = await _through(NetworkConditions(stalls=((0.05, 0.2),)), 20, 0.01)
    assert [i for i, _ in out] == list(range(20))
    held = [t for i, t in out if 0.06 <= i * 0.01 < 0.24]
    assert held and min(held) >= 0.245
