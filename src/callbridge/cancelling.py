"""Stopping tasks that may not take the first cancel.

On Python 3.11 `asyncio.wait_for` returns its inner result instead of raising when the
cancel arrives in the same loop step as that result
(https://github.com/python/cpython/issues/86296, fixed in 3.12). redis-py given a socket
timeout awaits a `wait_for` on every command it sends: a task looping on Redis lost about
one cancel in two and ran on (measured here; the rolling-restart test caught a replica's
stop hanging on it). `RedisState` no longer gives one; other libraries may still do it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

RECANCEL_S = 0.2  # room for a task's own clean-up between two cancels


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], within_s: float
) -> set[asyncio.Task[Any]]:
    """Cancel the tasks, again every `RECANCEL_S` while any runs on, for up to `within_s`.
    Returns the ones still running at the bound (each with its cancel requested)."""
    pending = {t for t in tasks if not t.done()}
    finished = {t for t in tasks if t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        done, pending = await asyncio.wait(pending, timeout=min(RECANCEL_S, left))
        finished |= done
    for task in finished:  # their errors are theirs to have logged; retrieved, not raised
        if not task.cancelled():
            task.exception()
    return pending
