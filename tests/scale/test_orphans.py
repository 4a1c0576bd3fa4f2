"""A replica that starts after a crash hangs up the calls its dead predecessor left live,
and never the live calls of the other replicas on the same records database."""

from __future__ import annotations

import asyncio

from callbridge.app import create_app
from callbridge.config import load_settings
from callbridge.shared.redis_state import RedisState
from callbridge.telephony.acs.edge import AcsEdge
from tests.fakes import FakeControl
from tests.scale.conftest import REDIS_URL


async def test_only_calls_of_dead_replicas_are_hung_up(redis_prefix: str) -> None:
    live = RedisState(REDIS_URL, "replica-live", redis_prefix)
    dead = RedisState(REDIS_URL, "replica-dead", redis_prefix)
    await live.heartbeat(30)  # alive; the dead one stopped beating
    await live.put_call("call-live", {"connection": "conn-live"}, 60)
    await dead.put_call("call-dead", {"connection": "conn-dead"}, 60)
    control = FakeControl()
    settings = load_settings(
        acs_connection="endpoint=http://127.0.0.1:1/;accesskey=c2VjcmV0",
        public_url="https://bridge.example.com",
        eventgrid_secret="eventgrid-secret-123456",
        agent="echo",
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        signing_key="shared-by-every-replica-0123456789",
        replica_id="replica-new",
    )
    app = create_app(settings, control=control)
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
