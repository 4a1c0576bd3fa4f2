"""Where the pending tasks wait: what a stop that takes too long is stuck on."""

from __future__ import annotations

import asyncio


def pending_tasks(limit: int = 40) -> list[str]:
    """One line per pending task (but the caller's): its name and chain of awaits."""
    me = asyncio.current_task()
    waiting = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    return [f"{t.get_name()}: {awaiting(t.get_coro())}" for t in waiting[:limit]]


def awaiting(coro: object) -> str:
    """Where a coroutine waits: its chain of awaits, outermost first."""
    where = []
    for _ in range(30):
        frame = (
            getattr(coro, "cr_frame", None)
            or getattr(coro, "gi_frame", None)
            or getattr(coro, "ag_frame", None)
        )
        if frame is None:
            break
        where.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "gi_yieldfrom", None)
            or getattr(coro, "ag_await", None)
        )
    return " -> ".join(where) or type(coro).__name__
