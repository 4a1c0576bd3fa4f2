"""Tasks that talk to Redis stop when a replica stops. On Python 3.11 redis-py with a
socket timeout lost about one cancel in two of a busy loop (callbridge.cancelling): a
replica's stop hung on its watch loop. The shared state takes every cancel now, and the
edge cancels again whatever does not stop at the first."""

from __future__ import annotations

import asyncio
import random

from callbridge.cancelling import cancel_and_wait
from callbridge.shared.redis_state import RedisState
from tests.scale.conftest import REDIS_URL


async def test_a_loop_on_the_shared_state_stops_at_its_first_cancel(redis_prefix: str) -> None:
    shared = RedisState(REDIS_URL, "r-test", redis_prefix)

    async def watch() -> None:  # as the replica's watch loop does, without its sleep
        while True:
            await asyncio.sleep(0)
            await shared.call_ids()

    try:
        for _ in range(100):
            task = asyncio.create_task(watch())
            await asyncio.sleep(random.random() * 0.01)
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
            if not task.done():
                await cancel_and_wait([task], within_s=2.0)  # not left running
                raise AssertionError("a cancel was lost")
    finally:
        await shared.close()


async def test_a_task_that_takes_only_a_second_cancel_is_stopped() -> None:
    async def stubborn() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass  # the lost cancel
        await asyncio.sleep(10)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], within_s=2.0) == set()
    assert task.cancelled()


async def test_what_will_not_stop_is_returned_at_the_bound() -> None:
    deaf_for = {"rounds": 0}

    async def deaf() -> None:
        while deaf_for["rounds"] < 100:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                deaf_for["rounds"] += 1

    task = asyncio.create_task(deaf())
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], within_s=0.5) == {task}
    assert deaf_for["rounds"] >= 2  # cancelled again while it ran on
    deaf_for["rounds"] = 100
    task.cancel()
    await asyncio.wait({task}, timeout=1.0)
