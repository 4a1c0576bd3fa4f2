"""Two replicas of the service sharing Redis and one records database: every IncomingCall
delivered to both at once is answered exactly once, and a media URL spent at one replica
opens nothing at the other."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import websockets

from callbridge.devstack import Stack, running_replicas
from callbridge.emulator import CallScript
from tests.e2e.harness import hello_pcm16k
from tests.scale.conftest import one_service

pytestmark = pytest.mark.e2e


def webhook(stack: Stack) -> str:
    return f"{stack.service_url}/acs/incoming?key={stack.settings.eventgrid_secret}"


async def test_a_call_delivered_to_two_replicas_at_once_is_answered_once(
    redis_prefix: str, tmp_path: Path
) -> None:
    async with running_replicas(2, **one_service(redis_prefix, tmp_path)) as (one, two):
        assert one.settings.eventgrid_secret == two.settings.eventgrid_secret
        scripts = [
            CallScript(
                audio=hello_pcm16k()[: 16000 * 2],
                start_delay_s=0.2,
                duplicate_delivery=True,
                duplicate_webhook=webhook(two),
                from_number=f"+1425555{1000 + i}",
            )
            for i in range(12)
        ]
        reports = await asyncio.gather(*(one.emulator.place_call(s) for s in scripts))
        for report in reports:
            assert report.answered and report.answer_attempts == 1, report.summary()
            assert [w.status for w in report.webhook] == [200, 200]
            assert report.ended_by == "caller", report.summary()
        answered = one.edge.counters["incoming"] + two.edge.counters["incoming"]
        duplicates = one.edge.counters["duplicates"] + two.edge.counters["duplicates"]
        assert (answered, duplicates) == (12, 12)
        # Both replicas took calls: the race is real, not one replica winning every time.
        assert one.edge.counters["incoming"] and two.edge.counters["incoming"]


async def test_a_spent_media_url_opens_nothing_at_another_replica(
    redis_prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "callbridge.telephony.acs.routes")
    async with running_replicas(2, **one_service(redis_prefix, tmp_path)) as (one, two):
        caller = await one.emulator.start_call(CallScript(audio=b"", tail_s=None))
        await caller.wait_media()
        call = one.emulator.calls[-1]
        assert call.media is not None
        # The same path and token, replayed at the other replica (as a balancer might send
        # it): the nonce was spent service-wide.
        path = call.media.transport_url.split("/acs/media/", 1)[1]
        url = two.service_url.replace("http", "ws") + "/acs/media/" + path
        headers = {"Authorization": f"Bearer {one.emulator.jwt.media_token()}"}
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, additional_headers=headers)
        assert refused.value.response.status_code == 403
        # Refused for the token, not merely because the call lives elsewhere.
        assert "rejected media socket: token already used" in caplog.text
        await caller.hang_up()
