"""Redis goes away for 10 seconds: the call in progress goes on, a new call is answered
(the logged decision: ACS takes one answer per call, so answering without the shared
duplicate check is safe), and once Redis is back the shared checks are made again."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from callbridge.devstack import running_replicas
from callbridge.emulator import CallScript
from tests.e2e.harness import hello_pcm16k, rms
from tests.scale.conftest import REDIS_URL
from tests.scale.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.e2e


async def test_calls_ride_out_a_redis_outage(
    redis_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "callbridge.telephony.acs.edge")
    port = int(REDIS_URL.rsplit(":", 1)[1].split("/", 1)[0])
    proxy = await CuttableProxy(port).start()
    try:
        async with running_replicas(
            1,
            redis_url=f"redis://127.0.0.1:{proxy.port}/0",
            redis_prefix=redis_prefix,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
            agent="echo",
            signing_key="shared-by-every-replica-0123456789",
        ) as (stack,):
            emu = stack.emulator
            talking = await emu.start_call(CallScript(audio=b"", tail_s=None))
            await talking.wait_media()
            proxy.sever()  # Redis is gone, for 10 s
            gone_at = asyncio.get_running_loop().time()
            # The call in progress: still heard and answered.
            said = await talking.say(hello_pcm16k())
            turn = await talking.wait_agent_quiet(since=said.start_s, quiet_s=1.0)
            assert rms(turn.pcm) > 300
            # A new call: answered all the same, the decision logged.
            during = await emu.place_call(CallScript(audio=hello_pcm16k()[:32000]))
            assert during.answered and during.answer_attempts == 1, during.summary()
            assert "shared state unreachable, answering without the check" in caplog.text
            await asyncio.sleep(max(0.0, gone_at + 10.0 - asyncio.get_running_loop().time()))
            assert talking.is_active  # nothing crashed the call meanwhile
            proxy.restore()
            await asyncio.sleep(1.5)  # the client reconnects on its next command
            after = await emu.place_call(
                CallScript(audio=hello_pcm16k()[:32000], duplicate_delivery=True)
            )
            assert after.answered and after.answer_attempts == 1, after.summary()
            # The shared check was made again: the delivery's key is in Redis.
            client = aioredis.Redis.from_url(REDIS_URL)
            key = f"{redis_prefix}seen:evt:{after.incoming_event_id}"
            assert await client.exists(key)
            await client.aclose()
            await talking.hang_up()
    finally:
        await proxy.stop()
