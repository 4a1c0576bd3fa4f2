"""The interface the rest of the service sees of the records store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from callbridge.store.records import CallDetailRow, CallQuery, CallRow, OrphanCall, Write

# Of these unfinished calls, the ones another live replica holds (docs/scale-out.md).
HeldElsewhere = Callable[[list[str]], Awaitable[set[str]]]


class CallStore(Protocol):
    async def open(
        self, replay: Sequence[Write] = (), held_elsewhere: HeldElsewhere | None = None
    ) -> list[OrphanCall]:
        """Create or upgrade the schema, apply `replay` (writes an earlier run journaled or
        spilled, perhaps committed already: applying a write twice changes nothing), then
        mark calls left without an end by a stop of the service incomplete and return them
        with their call connection ids; calls `held_elsewhere` names (live calls of other
        replicas sharing the database) are left alone. Raises StoreError."""

    async def close(self) -> None: ...

    async def write(self, batch: Sequence[Write]) -> None:
        """Apply the writes in order, all or nothing."""

    async def list_calls(self, query: CallQuery) -> tuple[list[CallRow], int]:
        """The page of calls `query` asks for, newest first, and the number of matches."""

    async def get_call(self, call_id: str) -> CallDetailRow | None: ...

    async def unanalyzed_calls(self, limit: int = 100) -> list[str]:
        """Ended calls whose post-call analysis has not been saved."""
