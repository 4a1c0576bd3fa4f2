"""`SharedState` on Redis (redis-py's asyncio client).

Keys (all under `CALLBRIDGE_REDIS_PREFIX`, default `callbridge:`, so one Redis may serve
several deployments and other things too):

| key | holds | lifetime |
|---|---|---|
| `callbridge:seen:<key>` | a claimed delivery / callback key | its TTL (15 min) |
| `callbridge:nonce:<nonce>` | a spent single-use media token | until the token expires |
| `callbridge:call:<call id>` | hash: owner, line, state, call connection | the call's \
  maximum duration + 10 min; deleted at its end |
| `callbridge:calls` | set of the call ids in the directory | entries removed at each call's end |
| `callbridge:replica:<id>` | a replica's heartbeat | a few seconds, refreshed every second |

Every operation has a short timeout: a Redis that stalls must not stall a call.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from callbridge.shared.state import SharedStateError

DEFAULT_PREFIX = "callbridge:"
OP_TIMEOUT_S = 1.0

# All keys absent → set them all with the TTL; atomic, so two replicas racing on the
# same delivery cannot both win.
_CLAIM = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[2], 'PX', ARGV[1])
end
return 1
"""


class RedisState:
    def __init__(self, url: str, replica_id: str, prefix: str = DEFAULT_PREFIX) -> None:
        self.replica_id = replica_id
        self._p = prefix
        try:
            self._redis: aioredis.Redis = aioredis.Redis.from_url(
                url,
                socket_timeout=OP_TIMEOUT_S,
                socket_connect_timeout=OP_TIMEOUT_S,
                decode_responses=True,
                health_check_interval=10,
            )
        except ValueError as exc:
            raise SharedStateError(f"CALLBRIDGE_REDIS_URL is not a Redis URL: {exc}") from None
        self._claim = self._redis.register_script(_CLAIM)

    async def _do(self, what: str, op: Any) -> Any:
        try:
            return await op
        except (RedisError, OSError, TimeoutError) as exc:
            raise SharedStateError(f"Redis {what} failed: {exc}") from exc

    async def ping(self) -> None:
        await self._do("ping", self._redis.ping())

    async def claim(self, keys: list[str], ttl_s: float) -> bool:
        full = [f"{self._p}seen:{k}" for k in keys]
        won = await self._do(
            "claim", self._claim(keys=full, args=[int(ttl_s * 1000), self.replica_id])
        )
        return bool(won)

    async def first_use(self, nonce: str, expires_at: float) -> bool:
        ttl_ms = max(1000, int((expires_at - time.time()) * 1000))
        op = self._redis.set(f"{self._p}nonce:{nonce}", self.replica_id, nx=True, px=ttl_ms)
        return bool(await self._do("nonce", op))

    async def put_call(self, call_id: str, fields: dict[str, str], ttl_s: float) -> None:
        key = f"{self._p}call:{call_id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            mapping: dict[Any, Any] = {**fields, "owner": self.replica_id}
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, int(ttl_s))
            pipe.sadd(f"{self._p}calls", call_id)
            await self._do("directory write", pipe.execute())

    async def get_call(self, call_id: str) -> dict[str, str] | None:
        entry: dict[str, str] = await self._do(
            "directory read", self._redis.hgetall(f"{self._p}call:{call_id}")
        )
        return entry or None

    async def drop_call(self, call_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{self._p}call:{call_id}")
            pipe.srem(f"{self._p}calls", call_id)
            await self._do("directory delete", pipe.execute())

    async def heartbeat(self, ttl_s: float) -> None:
        op = self._redis.set(f"{self._p}replica:{self.replica_id}", "alive", px=int(ttl_s * 1000))
        await self._do("heartbeat", op)

    async def is_alive(self, replica_id: str) -> bool:
        return bool(
            await self._do("heartbeat read", self._redis.exists(f"{self._p}replica:{replica_id}"))
        )

    async def active_calls(self) -> int:
        return int(await self._do("count", self._redis.scard(f"{self._p}calls")))

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        except (RedisError, OSError):
            pass
