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

    async def claim(self, keys: list[str], ttl_s: float) -> bool:
        """True (and all `keys` are taken for `ttl_s`) if none was taken before."""

    async def first_use(self, nonce: str, expires_at: float) -> bool:
        """True the first time `nonce` is used, until `expires_at` (epoch seconds)."""

    async def put_call(self, call_id: str, fields: dict[str, str], ttl_s: float) -> None:
        """Create or update the call's directory entry (this replica as its owner)."""

    async def get_call(self, call_id: str) -> dict[str, str] | None: ...

    async def drop_call(self, call_id: str) -> None: ...

    async def heartbeat(self, ttl_s: float) -> None:
        """This replica is alive for `ttl_s` more seconds."""

    async def is_alive(self, replica_id: str) -> bool: ...

    async def active_calls(self) -> int:
        """Calls in the directory, every replica's."""

    async def close(self) -> None: ...


class MemoryState:
    """One process: the state is this process's own (keys expire lazily)."""

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

    async def heartbeat(self, ttl_s: float) -> None:
        return None

    async def is_alive(self, replica_id: str) -> bool:
        return replica_id == self.replica_id

    async def active_calls(self) -> int:
        return len(self._calls)

    async def close(self) -> None:
        return None
