"""DigitCollector: `#` ends an entry at once, a pause after the last key ends it too."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from callbridge.agent.keypad import DigitCollector


class FakeTimers:
    """Stands in for loop.call_later: timers fire when the test says so."""

    def __init__(self) -> None:
        self.pending: list[FakeTimer] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(delay, callback)
        self.pending.append(timer)
        return timer

    def fire(self) -> None:
        live = [t for t in self.pending if not t.cancelled]
        self.pending = []
        for timer in live:
            timer.callback()

    @property
    def live(self) -> list[FakeTimer]:
        return [t for t in self.pending if not t.cancelled]


class FakeTimer:
    def __init__(self, delay: float, callback: Callable[[], None]) -> None:
        self.delay = delay
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def collector(timeout_s: float = 2.5) -> tuple[DigitCollector, list[str], FakeTimers]:
    got: list[str] = []
    timers = FakeTimers()
    return DigitCollector(got.append, timeout_s, schedule=timers), got, timers


def test_pound_ends_the_entry_and_is_part_of_it() -> None:
    keypad, got, timers = collector()
    for digit in "4512#":
        keypad.push(digit)
    assert got == ["4512#"]
    assert not timers.live  # nothing left to time out
    keypad.push("#")  # a lone # is an entry too
    assert got == ["4512#", "#"]


def test_a_pause_after_the_last_key_ends_the_entry() -> None:
    keypad, got, timers = collector(timeout_s=1.5)
    keypad.push("1")
    keypad.push("2")
    assert got == []
    assert [t.delay for t in timers.live] == [1.5]  # one timer, restarted by each key
    timers.fire()
    assert got == ["12"]
    timers.fire()  # nothing more
    assert got == ["12"]


def test_timeout_can_change_and_close_forgets() -> None:
    keypad, got, timers = collector()
    keypad.timeout_s = 4.0  # a call's profile may set its own
    keypad.push("7")
    assert [t.delay for t in timers.live] == [4.0]
    keypad.close()
    assert not timers.live
    timers.fire()
    keypad.flush()
    assert got == []


async def test_the_default_timer_is_the_event_loop() -> None:
    got: list[str] = []
    keypad = DigitCollector(got.append, 0.05)
    keypad.push("9")
    await asyncio.sleep(0.01)
    keypad.push("8")  # restarts the timer
    await asyncio.sleep(0.03)
    assert got == []
    await asyncio.sleep(0.06)
    assert got == ["98"]
