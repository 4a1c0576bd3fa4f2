"""The live console of any replica shows every replica's calls: `/api/live` and its event
stream, a replica that starts while calls are in progress, and a call whose holder died."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from callbridge.api import live_relay
from callbridge.api.live import LiveHub
from callbridge.api.live_relay import LiveRelay
from callbridge.call.session import CallSession
from callbridge.devstack import Stack, running_replicas
from callbridge.emulator import CallScript, LiveCaller
from callbridge.shared.redis_state import RedisState
from tests.scale.conftest import REDIS_URL, one_service

pytestmark = pytest.mark.e2e
TOKEN = "console-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _call_at(stack: Stack, via: Stack, number: str) -> tuple[LiveCaller, CallSession]:
    """A call answered by `via` (the emulator rings that replica's webhook)."""
    emulator = stack.emulator
    emulator.webhook_url = f"{via.service_url}/acs/incoming?key={via.settings.eventgrid_secret}"
    caller = await emulator.start_call(CallScript(audio=b"", tail_s=None, from_number=number))
    await caller.wait_media()
    session = next(s for s in via.edge.calls.values() if s.info.caller.endswith(number))
    return caller, session


async def _events(url: str) -> AsyncGenerator[tuple[str, dict[str, Any]]]:
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream("GET", f"{url}/api/live/events", headers=AUTH) as response,
    ):
        assert response.status_code == 200
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                yield name, json.loads(line[6:])


async def _next(events: AsyncIterator[tuple[str, dict[str, Any]]], name: str) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for got, data in events:
            if got == name:
                return data
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(first(), 10)


async def test_every_replica_console_shows_every_call(redis_prefix: str, tmp_path: Path) -> None:
    shared = one_service(redis_prefix, tmp_path, admin_token=TOKEN)
    async with running_replicas(2, **shared) as (one, two):
        ids = {s.edge.shared.replica_id for s in (one, two)}
        assert len(ids) == 2
        caller_a, call_a = await _call_at(one, one, "+14255550101")
        caller_b, call_b = await _call_at(one, two, "+14255550102")
        call_b.add_transcript("caller", "Hello from the second replica")
        async with httpx.AsyncClient(timeout=10) as http:
            for stack in (one, two):
                for _ in range(50):
                    live = (await http.get(f"{stack.service_url}/api/live", headers=AUTH)).json()
                    if len(live["calls"]) == 2 and all(c["transcript"] for c in live["calls"][1:]):
                        break
                    await asyncio.sleep(0.1)
                held = {c["id"]: c["replica"] for c in live["calls"]}
                assert held == {
                    call_a.call_id: one.edge.shared.replica_id,
                    call_b.call_id: two.edge.shared.replica_id,
                }, stack.service_url
                (b,) = [c for c in live["calls"] if c["id"] == call_b.call_id]
                assert b["caller"] == "+14255550102"
                assert [t["text"] for t in b["transcript"]] == ["Hello from the second replica"]

        # The first replica's event stream carries the second replica's call as it goes.
        events = _events(one.service_url)
        snapshot = await _next(events, "snapshot")
        assert {c["id"] for c in snapshot["calls"]} == {call_a.call_id, call_b.call_id}
        call_b.add_transcript("agent", "Your table is booked")
        said = await _next(events, "transcript")
        assert (said["call_id"], said["text"]) == (call_b.call_id, "Your table is booked")

        # A replica starting now learns of the calls already in progress, with what was said.
        late = RedisState(REDIS_URL, "replica-late", redis_prefix)
        hub = LiveHub()
        relay = LiveRelay(hub, late)
        relay.start()
        try:
            for _ in range(50):
                if len(hub.calls) == 2:
                    break
                await asyncio.sleep(0.1)
            calls = {c.id: c for c in hub.snapshot().calls}
            assert set(calls) == {call_a.call_id, call_b.call_id}
            assert [t.text for t in calls[call_b.call_id].transcript] == [
                "Hello from the second replica",
                "Your table is booked",
            ]
        finally:
            await relay.stop()
            await late.close()

        await caller_b.hang_up()
        ended = await _next(events, "call_ended")
        assert ended["call_id"] == call_b.call_id
        await events.aclose()
        async with httpx.AsyncClient(timeout=10) as http:
            live = (await http.get(f"{one.service_url}/api/live", headers=AUTH)).json()
        assert [c["id"] for c in live["calls"]] == [call_a.call_id]
        await caller_a.hang_up()


async def test_a_call_whose_holder_died_leaves_the_console(
    redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its end was never heard (the holder was killed and the call ended meanwhile): once
    the directory has lost it, the console ends its card."""
    monkeypatch.setattr(live_relay, "PRUNE_S", 0.2)
    dead = RedisState(REDIS_URL, "replica-dead", redis_prefix)
    watcher = RedisState(REDIS_URL, "replica-watching", redis_prefix)
    await dead.put_call("call-x", {"state": "media", "caller": "+1", "started": "1.0"}, 60)
    hub = LiveHub()
    relay = LiveRelay(hub, watcher)
    sub = hub.subscribe()
    relay.start()
    try:
        for _ in range(50):
            if hub.calls:
                break
            await asyncio.sleep(0.05)
        assert hub.mirrored() == ["call-x"]
        await dead.drop_call("call-x")
        item = await asyncio.wait_for(sub.queue.get(), 5)
        assert item is not None and item[0] == "call_ended" and item[1]["call_id"] == "call-x"
        assert hub.calls == {}
    finally:
        await relay.stop()
        for state in (dead, watcher):
            await state.close()
