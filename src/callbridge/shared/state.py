"""What replicas must agree on, behind one interface.

* `claim(keys)`: the first replica to see any of `keys` wins, every later one is told it
  is a duplicate (Event Grid delivers an `IncomingCall` at least once, maybe to another
  replica; ACS retries callbacks).
* `first_use(nonce)`: a single-use token is honoured once across the service.
* the call directory: which replica holds a call, on which line, in which state, and the
  replicas' heartbeats, so a survivor can tell a live owner from a dead one.
* the number of calls on every replica, for an optional service-wide cap.

`MemoryState` is one process (the default, `make run`); `RedisState` is many.
"""

from __future__ import annotations

import time
from typing import Protocol


class SharedStateError(Exception):
    """The shared store cannot be reached or refused the operation."""


class SharedState(Protocol):
    replica_id: str
    distributed: bool  # other replicas may hold calls: callbacks go through the shared log

    async def claim(self, keys: list[str], ttl_s: float) -> bool:
        """True (and all `keys` are taken for `ttl_s`) if none was taken before."""

    async def first_use(self, nonce: str, expires_at: float) -> bool:
        """True the first time `nonce` is used, until `expires_at` (epoch seconds)."""

    async def put_call(self, call_id: str, fields: dict[str, str], ttl_s: float) -> None:
        """Create or update the call's directory entry (this replica as its owner)."""

    async def get_call(self, call_id: str) -> dict[str, str] | None: ...

    async def drop_call(self, call_id: str) -> None: ...

    async def set_fields(self, call_id: str, fields: dict[str, str]) -> None:
        """Update fields of an existing directory entry (its owner unchanged)."""

    async def call_ids(self) -> list[str]:
        """Every call in the directory."""

    async def append_event(self, call_id: str, payload: str) -> None:
        """Add a callback event to the call's log, in arrival order."""

    async def read_events(self, after: dict[str, str], block_ms: int) -> list[tuple[str, str, str]]:
        """(call id, event id, payload) of the events of the calls in `after` (call id ->
        the last event id read, "0": from the start), waiting up to `block_ms` for one;
        one command for every call, so a replica holds one reading connection."""

    async def add_line(self, call_id: str, role: str, text: str) -> None:
        """One line of the call's transcript, for whoever holds the call next."""

    async def lines(self, call_id: str) -> list[tuple[str, str]]: ...

    async def heartbeat(self, ttl_s: float, state: str = "ready") -> None:
        """This replica is alive for `ttl_s` more seconds, and ready for calls or
        draining (alive: its calls are its own; draining: it takes no more)."""

    async def is_alive(self, replica_id: str) -> bool: ...

    async def alive_replicas(self) -> set[str]:
        """Every replica whose heartbeat is current and which is ready for calls."""

    async def stop_heartbeat(self) -> None:
        """This replica is going: the others stop counting on it at once."""

    async def active_calls(self) -> int:
        """Calls in the directory, every replica's."""

    async def publish_live(self, payloads: list[str]) -> None:
        """Add to the service's live feed (what every replica's console shows), in order;
        the feed keeps only its latest entries."""

    async def live_position(self) -> str:
        """The id of the live feed's latest entry ("0" when empty): read after it."""

    async def read_live(self, after: str, block_ms: int) -> list[tuple[str, str]]:
        """(entry id, payload) of the live feed after `after`, waiting up to `block_ms`."""

    async def close(self) -> None: ...


class MemoryState:
    """One process: the state is this process's own (keys expire lazily)."""

    distributed = False

    def __init__(self, replica_id: str = "local") -> None:
        self.replica_id = replica_id
        self._keys: dict[str, float] = {}  # key -> expiry (monotonic)
        self._calls: dict[str, dict[str, str]] = {}

    def _expire(self) -> None:
        if len(self._keys) > 4096:
            now = time.monotonic()
            self._keys = {k: e for k, e in self._keys.items() if e > now}

    async def claim(self, keys: list[str], ttl_s: float) -> bool:
        self._expire()
        now = time.monotonic()
        if any(self._keys.get(k, 0.0) > now for k in keys):
            return False
        for k in keys:
            self._keys[k] = now + ttl_s
        return True

    async def first_use(self, nonce: str, expires_at: float) -> bool:
        return await self.claim([f"nonce:{nonce}"], max(1.0, expires_at - time.time()))

    async def put_call(self, call_id: str, fields: dict[str, str], ttl_s: float) -> None:
        self._calls.setdefault(call_id, {}).update({**fields, "owner": self.replica_id})

    async def get_call(self, call_id: str) -> dict[str, str] | None:
        entry = self._calls.get(call_id)
        return dict(entry) if entry is not None else None

    async def drop_call(self, call_id: str) -> None:
        self._calls.pop(call_id, None)

    async def set_fields(self, call_id: str, fields: dict[str, str]) -> None:
        if call_id in self._calls:
            self._calls[call_id].update(fields)

    async def call_ids(self) -> list[str]:
        return list(self._calls)

    async def append_event(self, call_id: str, payload: str) -> None:
        raise SharedStateError("one replica: callbacks are applied where they arrive")

    async def read_events(self, after: dict[str, str], block_ms: int) -> list[tuple[str, str, str]]:
        return []

    async def add_line(self, call_id: str, role: str, text: str) -> None:
        return None

    async def lines(self, call_id: str) -> list[tuple[str, str]]:
        return []

    async def heartbeat(self, ttl_s: float, state: str = "ready") -> None:
        return None

    async def is_alive(self, replica_id: str) -> bool:
        return replica_id == self.replica_id

    async def alive_replicas(self) -> set[str]:
        return {self.replica_id}

    async def stop_heartbeat(self) -> None:
        return None

    async def active_calls(self) -> int:
        return len(self._calls)

    async def publish_live(self, payloads: list[str]) -> None:
        return None  # one replica: its console has every call already

    async def live_position(self) -> str:
        return "0"

    async def read_live(self, after: str, block_ms: int) -> list[tuple[str, str]]:
        return []

    async def close(self) -> None:
        return None
