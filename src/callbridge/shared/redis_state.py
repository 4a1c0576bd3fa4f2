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
| `callbridge:replica:<id>` | a replica's heartbeat | 1.5 s, refreshed every 0.5 s |
| `callbridge:events:<call id>` | stream: the call's callback events, in order | as the call |
| `callbridge:lines:<call id>` | list: the call's transcript, `[role, text]` | as the call entry |
| `callbridge:live` | stream: every replica's live console events | its latest 10,000 entries |

Every operation has a short bound (1 s; the delivery claim 3 s): a Redis that stalls must not
stall a call.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from callbridge.shared.state import SharedStateError

DEFAULT_PREFIX = "callbridge:"
OP_TIMEOUT_S = 1.0
# Whether a call is answered twice hangs on the claim: it may wait longer than a log write
# (the caller is still ringing), so a starved replica does not give up and answer anyway.
CLAIM_TIMEOUT_S = 3.0
_CALL_TTL_S = 6 * 3600  # a call's log and transcript outlive any call (they go at its end)
LIVE_FEED_MAX = 10_000  # entries of the live feed kept (a console catches up from them)

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
    distributed = True

    def __init__(self, url: str, replica_id: str, prefix: str = DEFAULT_PREFIX) -> None:
        self.replica_id = replica_id
        self._p = prefix
        try:
            self._redis: aioredis.Redis = aioredis.Redis.from_url(
                url,
                # No socket timeout: with one, redis-py sends every command under
                # asyncio.wait_for, which on Python 3.11 loses a cancel that lands as the
                # send completes (callbridge.cancelling) -- about one in two of a busy
                # loop's. Each operation is bounded here instead (`_do`).
                socket_timeout=None,
                socket_connect_timeout=OP_TIMEOUT_S,
                decode_responses=True,
                health_check_interval=10,
                # One reading connection per replica, and short writes per call event.
                max_connections=400,
            )
        except ValueError as exc:
            raise SharedStateError(f"CALLBRIDGE_REDIS_URL is not a Redis URL: {exc}") from None
        self._claim = self._redis.register_script(_CLAIM)

    async def _do(self, what: str, op: Any, within_s: float = OP_TIMEOUT_S) -> Any:
        try:
            # A timeout cancels the command; redis-py then drops its connection, so no
            # late reply is read as the next command's.
            async with asyncio.timeout(within_s):
                return await op
        except TimeoutError:
            raise SharedStateError(f"Redis {what} failed: no reply within {within_s:g} s") from None
        except (RedisError, OSError) as exc:
            raise SharedStateError(f"Redis {what} failed: {exc or type(exc).__name__}") from exc

    async def ping(self) -> None:
        await self._do("ping", self._redis.ping())
        # Loaded now, the first claim is one round trip rather than three (EVALSHA,
        # NOSCRIPT, load, EVALSHA again).
        await self._do("script load", self._redis.script_load(_CLAIM))

    async def claim(self, keys: list[str], ttl_s: float) -> bool:
        full = [f"{self._p}seen:{k}" for k in keys]
        op = self._claim(keys=full, args=[int(ttl_s * 1000), self.replica_id])
        return bool(await self._do("claim", op, CLAIM_TIMEOUT_S))

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

    async def set_fields(self, call_id: str, fields: dict[str, str]) -> None:
        key = f"{self._p}call:{call_id}"
        mapping: dict[Any, Any] = dict(fields)
        await self._do("directory update", self._redis.hset(key, mapping=mapping))

    async def call_ids(self) -> list[str]:
        return sorted(await self._do("directory list", self._redis.smembers(f"{self._p}calls")))

    async def append_event(self, call_id: str, payload: str) -> None:
        key = f"{self._p}events:{call_id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"e": payload}, maxlen=1000, approximate=True)
            pipe.expire(key, _CALL_TTL_S)
            await self._do("event log", pipe.execute())

    async def read_events(self, after: dict[str, str], block_ms: int) -> list[tuple[str, str, str]]:
        if not after:
            await asyncio.sleep(block_ms / 1000)
            return []
        streams: dict[Any, Any] = {f"{self._p}events:{c}": i for c, i in after.items()}
        got = await self._xread("event", streams, 100, block_ms)
        skip = len(f"{self._p}events:")
        return [
            (str(key)[skip:], str(i), str(f["e"])) for key, entries in got or [] for i, f in entries
        ]

    async def add_line(self, call_id: str, role: str, text: str) -> None:
        key = f"{self._p}lines:{call_id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps([role, text]))
            pipe.expire(key, _CALL_TTL_S)
            await self._do("transcript", pipe.execute())

    async def lines(self, call_id: str) -> list[tuple[str, str]]:
        raw = await self._do("transcript", self._redis.lrange(f"{self._p}lines:{call_id}", 0, -1))
        out: list[tuple[str, str]] = []
        for item in raw:
            role, text = json.loads(item)
            out.append((str(role), str(text)))
        return out

    async def drop_call(self, call_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{self._p}call:{call_id}")
            pipe.delete(f"{self._p}events:{call_id}")
            pipe.delete(f"{self._p}lines:{call_id}")
            pipe.srem(f"{self._p}calls", call_id)
            await self._do("directory delete", pipe.execute())

    async def heartbeat(self, ttl_s: float, state: str = "ready") -> None:
        op = self._redis.set(f"{self._p}replica:{self.replica_id}", state, px=int(ttl_s * 1000))
        await self._do("heartbeat", op)

    async def is_alive(self, replica_id: str) -> bool:
        return bool(
            await self._do("heartbeat read", self._redis.exists(f"{self._p}replica:{replica_id}"))
        )

    async def alive_replicas(self) -> set[str]:
        ready: set[str] = await self._do("replica list", self._ready_replicas(), 2 * OP_TIMEOUT_S)
        return ready

    async def _ready_replicas(self) -> set[str]:
        pattern = f"{self._p}replica:*"
        ready: set[str] = set()
        async for key in self._redis.scan_iter(match=pattern, count=100):
            if await self._redis.get(key) == "ready":
                ready.add(str(key).removeprefix(f"{self._p}replica:"))
        return ready

    async def stop_heartbeat(self) -> None:
        await self._do("heartbeat", self._redis.delete(f"{self._p}replica:{self.replica_id}"))

    async def active_calls(self) -> int:
        return int(await self._do("count", self._redis.scard(f"{self._p}calls")))

    async def publish_live(self, payloads: list[str]) -> None:
        key = f"{self._p}live"
        async with self._redis.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.xadd(key, {"e": payload}, maxlen=LIVE_FEED_MAX, approximate=True)
            await self._do("live feed", pipe.execute())

    async def live_position(self) -> str:
        last: Any = await self._do("live feed", self._redis.xrevrange(f"{self._p}live", count=1))
        return str(last[0][0]) if last else "0"

    async def read_live(self, after: str, block_ms: int) -> list[tuple[str, str]]:
        got = await self._xread("live feed", {f"{self._p}live": after}, 500, block_ms)
        return [(str(i), str(f["e"])) for _, entries in got or [] for i, f in entries]

    async def _xread(self, what: str, streams: dict[Any, Any], count: int, block_ms: int) -> Any:
        # A blocking read outlasts `_do`'s usual bound: its own, a little longer than the block.
        op = self._redis.xread(streams, count=count, block=block_ms)
        return await self._do(f"{what} read", op, block_ms / 1000 + OP_TIMEOUT_S)

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        except (RedisError, OSError):
            pass
