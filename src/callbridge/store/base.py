"""The interface the rest of the service sees of the records store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from callbridge.store.records import CallDetailRow, CallQuery, CallRow, Write


class CallStore(Protocol):
    async def open(self) -> int:
        """Create or upgrade the schema, then mark calls left without an end by a stop of
        the service as incomplete; returns how many were marked."""

    async def close(self) -> None: ...

    async def write(self, batch: Sequence[Write]) -> None:
        """Apply the writes in order, all or nothing."""

    async def list_calls(self, query: CallQuery) -> tuple[list[CallRow], int]:
        """The page of calls `query` asks for, newest first, and the number of matches."""

    async def get_call(self, call_id: str) -> CallDetailRow | None: ...

    async def unanalyzed_calls(self, limit: int = 100) -> list[str]:
        """Ended calls whose post-call analysis has not been saved."""
