"""`SharedState` on a real Redis and in memory: what replicas agree on."""

from __future__ import annotations

import asyncio
import time

import pytest

from callbridge.shared import MemoryState, SharedStateError
from callbridge.shared.redis_state import RedisState
from tests.scale.conftest import REDIS_URL


def two(prefix: str) -> tuple[RedisState, RedisState]:
    return RedisState(REDIS_URL, "a", prefix), RedisState(REDIS_URL, "b", prefix)


async def test_a_delivery_is_claimed_by_exactly_one_replica(redis_prefix: str) -> None:
    a, b = two(redis_prefix)
    try:
        for i in range(50):
            keys = [f"evt:{i}", f"ctx:{i}"]
            won = await asyncio.gather(a.claim(keys, 60), b.claim(keys, 60))
            assert sorted(won) == [False, True]
        # The same context under another event id (a retry with a new id) is a duplicate too.
        assert not await a.claim(["evt:new", "ctx:7"], 60)
        assert await b.claim(["evt:new", "ctx:new"], 60)
    finally:
        await a.close()
        await b.close()


async def test_a_claim_expires(redis_prefix: str) -> None:
    a, b = two(redis_prefix)
    try:
        assert await a.claim(["k"], 0.2)
        assert not await b.claim(["k"], 0.2)
        await asyncio.sleep(0.3)
        assert await b.claim(["k"], 0.2)
    finally:
        await a.close()
        await b.close()


async def test_a_media_token_is_honoured_once_across_replicas(redis_prefix: str) -> None:
    a, b = two(redis_prefix)
    try:
        expires = time.time() + 60
        assert await a.first_use("nonce-1", expires)
        assert not await b.first_use("nonce-1", expires)
        assert await b.first_use("nonce-2", expires)
    finally:
        await a.close()
        await b.close()


async def test_the_call_directory_and_heartbeats(redis_prefix: str) -> None:
    a, b = two(redis_prefix)
    try:
        await a.put_call("call-1", {"line": "main", "state": "answered"}, 60)
        await b.put_call("call-2", {"line": "sales", "state": "answered"}, 60)
        entry = await b.get_call("call-1")
        assert entry == {"line": "main", "state": "answered", "owner": "a"}
        assert await a.active_calls() == 2
        await a.heartbeat(0.3)
        assert await b.is_alive("a") and not await b.is_alive("c")
        await asyncio.sleep(0.4)
        assert not await b.is_alive("a")  # a missed its heartbeat: dead to the others
        await a.drop_call("call-1")
        assert await b.get_call("call-1") is None
        assert await b.active_calls() == 1
    finally:
        await a.close()
        await b.close()


async def test_an_unreachable_redis_is_a_clear_error_not_a_hang() -> None:
    state = RedisState("redis://127.0.0.1:1/0", "a")  # nothing listens on port 1
    started = time.monotonic()
    with pytest.raises(SharedStateError, match="Redis claim failed"):
        await state.claim(["k"], 10)
    assert time.monotonic() - started < 3
    await state.close()


async def test_memory_state_behaves_alike() -> None:
    m = MemoryState("solo")
    assert await m.claim(["x", "y"], 60)
    assert not await m.claim(["y"], 60)
    assert await m.first_use("n", time.time() + 60)
    assert not await m.first_use("n", time.time() + 60)
    await m.put_call("c", {"line": "main"}, 60)
    assert (await m.get_call("c")) == {"line": "main", "owner": "solo"}
    assert await m.active_calls() == 1 and await m.is_alive("solo")


def test_replicas_must_be_given_one_signing_key() -> None:
    from callbridge.config import load_settings

    base = {
        "acs_connection": "endpoint=http://127.0.0.1:1/;accesskey=c2VjcmV0",
        "public_url": "https://bridge.example.com",
        "eventgrid_secret": "eventgrid-secret-123456",
        "redis_url": REDIS_URL,
    }
    with pytest.raises(Exception, match="CALLBRIDGE_SIGNING_KEY must be set"):
        load_settings(**base)
    with pytest.raises(Exception, match="redis://host"):
        load_settings(**{**base, "redis_url": "http://nope", "signing_key": "k" * 20})
    assert load_settings(**base, signing_key="k" * 20).redis_url == REDIS_URL


async def test_a_calls_event_log_is_read_in_order_from_where_the_last_holder_stopped(
    redis_prefix: str,
) -> None:
    a, b = two(redis_prefix)
    try:
        await a.put_call("c1", {"state": "media"}, 60)
        for n in range(3):
            await a.append_event("c1", f"e{n}")
        await b.append_event("c2", "other")
        got = await a.read_events({"c1": "0", "c2": "0"}, 100)
        assert [(c, p) for c, _, p in got if c == "c1"] == [
            ("c1", "e0"),
            ("c1", "e1"),
            ("c1", "e2"),
        ]
        last = [i for c, i, _ in got if c == "c1"][1]
        # The next holder carries on after the last event the first one applied.
        rest = await b.read_events({"c1": last}, 100)
        assert [p for _, _, p in rest] == ["e2"]
        assert await b.read_events({"c1": rest[-1][1]}, 50) == []
        await a.add_line("c1", "caller", "my order is 4512")
        assert await b.lines("c1") == [("caller", "my order is 4512")]
    finally:
        await a.close()
        await b.close()


class SlowScripts:
    """A TCP proxy to the real Redis that holds every script call (EVALSHA) for `delay_s`
    before passing it on: a replica starved of CPU, or a Redis busy for a moment."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return REDIS_URL.replace("127.0.0.1:6379", f"127.0.0.1:{port}")

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host_port = REDIS_URL.split("//", 1)[1].split("/", 1)[0]
        host, port = host_port.rsplit(":", 1)
        up_r, up_w = await asyncio.open_connection(host, int(port))

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, hold: bool) -> None:
            while data := await src.read(65536):
                if hold and b"EVALSHA" in data.upper():
                    await asyncio.sleep(self.delay_s)
                dst.write(data)
                await dst.drain()
            dst.close()

        try:
            await asyncio.gather(copy(reader, up_w, True), copy(up_r, writer, False))
        except (ConnectionError, OSError):
            pass


async def test_a_claim_waits_out_a_slow_moment_rather_than_answer_without_the_check(
    redis_prefix: str,
) -> None:
    # CI: on a loaded machine both replicas' claims of one call ran past 1 s, both answered
    # "without the check", and ACS refused the second answer.
    async with SlowScripts(1.5) as url:
        a = RedisState(url, "a", redis_prefix)
        b = RedisState(REDIS_URL, "b", redis_prefix)
        try:
            await a.ping()
            assert await a.claim(["evt:slow"], 60)
            assert not await b.claim(["evt:slow"], 60)
        finally:
            await a.close()
            await b.close()


async def test_a_claim_that_gets_no_reply_says_so(
    redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from callbridge.shared import redis_state

    monkeypatch.setattr(redis_state, "CLAIM_TIMEOUT_S", 0.5)
    async with SlowScripts(30) as url:
        a = RedisState(url, "a", redis_prefix)
        try:
            with pytest.raises(SharedStateError, match=r"claim failed: no reply within 0.5 s"):
                await a.claim(["evt:stalled"], 60)
        finally:
            await a.close()
