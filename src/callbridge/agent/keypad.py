"""Keypad digits, collected into one entry: `#` ends it at once, otherwise a pause of
`timeout_s` after the last key does. Every agent hands the entry on in one piece ("4512#")
rather than reacting to each key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


# (delay in seconds, callback) -> a handle that can cancel it; loop.call_later by default.
Schedule = Callable[[float, Callable[[], None]], Timer]


class DigitCollector:
    def __init__(
        self,
        on_digits: Callable[[str], None],
        timeout_s: float = 2.5,
        *,
        schedule: Schedule | None = None,
    ) -> None:
        self._on_digits = on_digits
        self.timeout_s = timeout_s
        self._schedule = schedule
        self._digits = ""
        self._timer: Timer | None = None

    def push(self, digit: str) -> None:
        """One key; `#` ends the entry (and is part of it)."""
        self._cancel_timer()
        self._digits += digit
        if digit == "#":
            self.flush()
        else:
            self._timer = self._call_later(self.timeout_s, self.flush)

    def flush(self) -> None:
        """Hand the digits so far on (nothing happens when there are none)."""
        self._cancel_timer()
        digits, self._digits = self._digits, ""
        if digits:
            self._on_digits(digits)

    def close(self) -> None:
        """Forget the digits so far; a pending timeout no longer fires."""
        self._cancel_timer()
        self._digits = ""

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        if self._schedule is not None:
            return self._schedule(delay, callback)
        return asyncio.get_running_loop().call_later(delay, callback)
