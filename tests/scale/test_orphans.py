"""A replica that starts after a crash hangs up the calls its dead predecessor left live,
and never the live calls of the other replicas on the same records database; a call whose
media is being restarted gets it back even when Call Automation refuses a start or two."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from callbridge.app import create_app
from callbridge.config import Settings, load_settings
from callbridge.shared.redis_state import RedisState
from callbridge.store.records import CallStarted
from callbridge.store.sql import SqlCallStore
from callbridge.telephony.acs.control import CallControlError
from callbridge.telephony.acs.edge import AcsEdge
from callbridge.telephony.acs.replicas import REATTACH_RETRY_S, START_TRIES
from tests.fakes import FakeControl
from tests.scale.conftest import REDIS_URL


async def _a_live_and_a_dead_replica(prefix: str) -> tuple[RedisState, RedisState]:
    """Each with a call in the directory; the live one beats, the dead one stopped."""
    live = RedisState(REDIS_URL, "replica-live", prefix)
    dead = RedisState(REDIS_URL, "replica-dead", prefix)
    await live.heartbeat(30)
    await live.put_call("call-live", {"connection": "conn-live"}, 60)
    await dead.put_call("call-dead", {"connection": "conn-dead"}, 60)
    return live, dead


def _new_replica(prefix: str, **extra: Any) -> Settings:
    return load_settings(
        acs_connection="endpoint=http://127.0.0.1:1/;accesskey=c2VjcmV0",
        public_url="https://bridge.example.com",
        eventgrid_secret="eventgrid-secret-123456",
        agent="echo",
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        signing_key="shared-by-every-replica-0123456789",
        **{"replica_id": "replica-new", **extra},
    )


async def test_only_calls_of_dead_replicas_are_hung_up(redis_prefix: str) -> None:
    live, dead = await _a_live_and_a_dead_replica(redis_prefix)
    control = FakeControl()
    app = create_app(_new_replica(redis_prefix), control=control)
    edge: AcsEdge = app.state.edge
    edge.hang_up_left_behind(
        [("call-live", "conn-live"), ("call-dead", "conn-dead"), ("call-unknown", "conn-x")]
    )
    for _ in range(100):
        if len(control.hang_ups) >= 2:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert sorted(control.hang_ups) == ["conn-dead", "conn-x"]
    for state in (live, dead, edge.shared):
        await state.close()


async def test_a_starting_replica_marks_only_dead_replicas_calls_incomplete(
    redis_prefix: str, tmp_path: Path
) -> None:
    """The records of another live replica's calls stay active (their end is that
    replica's to write); the dead replica's and unknown calls are marked incomplete."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    store = SqlCallStore(db)
    await store.open()
    await store.write(
        [
            CallStarted(call_id, "+1425555", "+1800555", "demo", "", 100.0 + n)
            for n, call_id in enumerate(("call-live", "call-dead", "call-unknown"))
        ]
    )
    await store.close()
    live, dead = await _a_live_and_a_dead_replica(redis_prefix)
    app = create_app(_new_replica(redis_prefix, database_url=db), control=FakeControl())
    async with app.router.lifespan_context(app):
        orphans = app.state.records.orphans
        assert sorted(o.call_id for o in orphans) == ["call-dead", "call-unknown"]
        status = {}
        for call_id in ("call-live", "call-dead"):
            detail = await app.state.records.store.get_call(call_id)
            assert detail is not None
            status[call_id] = detail.call.status
        assert status == {"call-live": "active", "call-dead": "incomplete"}
    for state in (live, dead):
        await state.close()


async def test_a_call_whose_media_no_replica_took_is_restarted_once(redis_prefix: str) -> None:
    """A drain restarted a call's media, and the new socket never came (a start request
    lost on the way): after REATTACH_RETRY_S one replica restarts it again, once."""
    mover = RedisState(REDIS_URL, "replica-gone", redis_prefix)
    waited = f"{time.time() - REATTACH_RETRY_S - 1:.3f}"
    await mover.put_call("call-stuck", {"connection": "conn-stuck"}, 60)
    await mover.set_fields("call-stuck", {"state": "reattach", "reattach_at": waited})
    await mover.put_call("call-moving", {"connection": "conn-moving"}, 60)
    await mover.set_fields(
        "call-moving", {"state": "reattach", "reattach_at": f"{time.time():.3f}"}
    )
    controls = [FakeControl(), FakeControl()]
    apps = [
        create_app(_new_replica(redis_prefix, replica_id=f"replica-{i}"), control=control)
        for i, control in enumerate(controls)
    ]
    edges: list[AcsEdge] = [app.state.edge for app in apps]
    for edge in edges:  # both survivors look at the directory at the same moment
        assert edge.replicas is not None
    await asyncio.gather(*(e.replicas._take_over_orphans() for e in edges if e.replicas))
    restarts = [c for control in controls for c in control.media_restarts]
    assert restarts == ["conn-stuck"]  # once, and not the call whose socket is on its way
    assert [c for control in controls for c in control.media_stops] == ["conn-stuck"]
    entry = await mover.get_call("call-stuck")
    assert entry is not None and float(entry["reattach_at"]) > float(waited)  # timed again
    for state in (mover, *(e.shared for e in edges)):
        await state.close()


class RefusingControl(FakeControl):
    """Call Automation refusing the first `refusals` media starts (still stopping)."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    async def start_media_streaming(self, call_connection_id: str) -> None:
        if self.refusals:
            self.refusals -= 1
            raise CallControlError("400 (8500) media streaming is being stopped")
        await super().start_media_streaming(call_connection_id)


class HandedOverCall:
    """What a drain's move reads of a call: its ids, and whether it is over."""

    call_id = "call-moving"
    leg_id = "conn-moving"
    ended = False
    moving = False

    async def wait_ended(self) -> None:  # its socket here closes at once
        return None

    async def disconnected(self, reason: str) -> None:
        self.ended = True


async def test_a_refused_media_start_in_a_hand_over_is_tried_again(redis_prefix: str) -> None:
    for refusals, moved in ((START_TRIES - 1, True), (START_TRIES, False)):
        control = RefusingControl(refusals)
        app = create_app(_new_replica(redis_prefix), control=control)
        replicas = app.state.edge.replicas
        assert replicas is not None
        call: Any = HandedOverCall()
        assert await replicas._move(call) is moved
        assert control.media_stops == ["conn-moving"]
        assert control.media_restarts == (["conn-moving"] if moved else [])
        assert control.refusals == 0
        await app.state.edge.shared.close()
