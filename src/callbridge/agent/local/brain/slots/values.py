"""What a slot finder returns, and the `used` mask every finder respects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Value = str | int


@dataclass(frozen=True)
class SlotValue:
    value: Value  # what a tool gets
    spoken: str  # what a reply says


@dataclass(frozen=True)
class Found:
    value: SlotValue
    start: int
    end: int  # token span [start, end) the value came from


def is_free(used: Sequence[bool], start: int, end: int) -> bool:
    """No token in [start, end) is taken by another value (and the span fits)."""
    return end <= len(used) and not any(used[start:end])
