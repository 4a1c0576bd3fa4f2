"""Answers of a burst of calls spaced out (core/spacing.py), on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from callbridge.core.spacing import Spacing
from callbridge.testing.fake_clock import FakeClock


async def test_a_burst_takes_turns_an_interval_apart_and_a_lone_turn_goes_at_once() -> None:
    clock = FakeClock()
    spacing = Spacing(0.02, clock)
    started: list[float] = []

    async def one() -> None:
        await spacing.turn()
        started.append(round(clock.now() - 1000.0, 3))

    tasks = [asyncio.create_task(one()) for _ in range(4)]
    await clock.advance(0.1, step=0.005)
    await asyncio.gather(*tasks)
    assert started == [0.0, 0.02, 0.04, 0.06]
    # Long after the burst, a call is answered without waiting.
    assert await spacing.turn() == 0.0


async def test_a_cancelled_waiter_does_not_move_the_others_up() -> None:
    clock = FakeClock()
    spacing = Spacing(0.05, clock)
    await spacing.turn()
    cancelled = asyncio.create_task(spacing.turn())
    last = asyncio.create_task(spacing.turn())
    await clock.settle()
    cancelled.cancel()
    await clock.advance(0.06, step=0.01)
    assert not last.done()  # its slot is at 0.10, after the cancelled one's
    await clock.advance(0.05, step=0.01)
    assert last.done() and last.result() == pytest.approx(0.1)


async def test_no_spacing_never_waits_and_a_negative_one_is_refused() -> None:
    clock = FakeClock()
    spacing = Spacing(0.0, clock)
    assert [await spacing.turn() for _ in range(3)] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="negative"):
        Spacing(-0.01, clock)


async def test_no_turn_waits_longer_than_the_bound() -> None:
    """A burst larger than the spacing allows within the bound is not left ringing: the
    rest go together at the bound (an unanswered call is lost after an undocumented time)."""
    clock = FakeClock()
    spacing = Spacing(1.0, clock, max_wait_s=2.5)
    turns = [asyncio.create_task(spacing.turn()) for _ in range(5)]
    await clock.advance(3.0, step=0.1)
    assert [t.result() for t in turns] == [0.0, 1.0, 2.0, 2.5, 2.5]
    await clock.advance(0.5, step=0.1)
    assert await spacing.turn() == 0.0  # the last slot given out (2.5) plus the spacing
