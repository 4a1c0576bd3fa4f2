"""What a call session asks of the telephony edge that carries the call.

Each edge (ACS, the browser phone, any future one) implements this once per call, so the
session never sees Call Automation, a browser socket or their ids.
"""

from __future__ import annotations

from typing import Protocol


class CarrierError(Exception):
    """The edge could not do what the session asked (the message says why)."""


class Carrier(Protocol):
    # A warm transfer needs a human added to the call while the agent stays on it.
    can_add_participants: bool

    async def hang_up(self) -> None:
        """End the call for everyone."""

    async def transfer(self, target: str, context: dict[str, str]) -> None:
        """Hand the caller to `target` (a cold transfer); raises CarrierError."""

    async def add_participant(
        self, target: str, context: dict[str, str], ring_timeout_s: int
    ) -> None:
        """Ring `target` into the call (a warm transfer); raises CarrierError."""

    async def leave(self) -> None:
        """The agent leaves; the call goes on between the others."""
