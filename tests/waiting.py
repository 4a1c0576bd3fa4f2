"""Waiting in a test for something another task or thread makes true."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], object], timeout_s: float = 5.0, what: str = "") -> None:
    """Poll `condition` every 10 ms; TimeoutError (saying `what`) if it is not true in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(what or "condition not met")
        await asyncio.sleep(0.01)
