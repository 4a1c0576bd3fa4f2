"""Three `callbridge serve` replicas behind HAProxy with Redis: every IncomingCall is
delivered twice (round robin: to two replicas), callbacks and media sockets land wherever
the balancer sends them, and a replica killed with -9 mid-call loses no call."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest

from callbridge.emulator import CallReport, CallScript, LiveCaller
from callbridge.testing.fake_realtime import FakeRealtimeServer, Say, Script
from callbridge.testing.topology import haproxy_binary, topology
from tests.e2e.harness import hello_pcm16k, rms

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(haproxy_binary() is None, reason="HAProxy is not installed"),
    # Three replicas, a balancer and their callers fill both cores: never beside the
    # scenario groups, which are as heavy (tests/scenarios).
    pytest.mark.xdist_group("scenarios"),
]
ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "console-token-0123456789abcdef"


async def test_calls_through_the_balancer_are_answered_once_and_bridged() -> None:
    async with topology(3, "echo", cwd=ROOT) as topo:
        scripts = [
            CallScript(
                audio=hello_pcm16k()[: 16000 * 3],
                start_delay_s=0.2,
                duplicate_delivery=True,
                from_number=f"+1425555{2000 + i}",
            )
            for i in range(9)
        ]
        reports = await asyncio.gather(*(topo.emulator.place_call(s) for s in scripts))
        for r in reports:
            assert r.answered and r.answer_attempts == 1, r.summary()
            assert r.ended_by == "caller", r.summary()
            # The caller heard the echo: media and callbacks reached whoever held the call.
            assert rms(r.heard_pcm) > 200, r.summary()
            assert all(c.status == 200 for c in r.callbacks), r.summary()


async def test_a_replica_killed_mid_call_loses_no_call() -> None:
    async with topology(3, "echo", cwd=ROOT) as topo:
        calls = [
            await topo.emulator.start_call(
                CallScript(audio=b"", tail_s=None, from_number=f"+1425555{3000 + i}")
            )
            for i in range(6)
        ]
        for call in calls:
            await call.wait_media()
        await asyncio.sleep(1.0)
        owners = await topo.owners()
        victim = Counter(owners.values()).most_common(1)[0][0]
        on_victim = [c for c in calls if owners.get(c.call_connection_id or "") == victim]
        topo.kill(victim)
        await asyncio.sleep(0.5)

        async def talk(call: LiveCaller) -> float:
            said = await call.say(hello_pcm16k()[: 16000 * 4])
            turn = await call.wait_agent_quiet(since=said.start_s, quiet_s=1.0, timeout_s=20)
            return rms(turn.pcm)

        # Every caller is still answered: they talk, and hear the echo.
        loud = await asyncio.gather(*(talk(c) for c in calls))
        assert all(x > 200 for x in loud), loud
        # The calls of the dead replica were restarted by a survivor and now live elsewhere.
        owners = await topo.owners()
        for call in on_victim:
            assert owners.get(call.call_connection_id or "") not in (None, victim), owners
            started = [c for c in call.report.callbacks if c.type == "MediaStreamingStarted"]
            assert len(started) == 2, call.report.summary()
            # The silence while a survivor noticed and restarted the media.
            assert all(g <= 3.0 for g in media_gaps(call.report)), call.report.summary()
        for call in calls:
            report = await call.hang_up()
            assert report.ended_by == "caller", report.summary()


def media_gaps(report: CallReport) -> list[float]:
    """Seconds from each media socket's loss (MediaStreamingStopped) to the next one open
    (MediaStreamingStarted): what the caller hears as silence while the call moves."""
    gaps, lost = [], None
    for cb in report.callbacks:
        if cb.type == "MediaStreamingStopped":
            lost = cb.t
        elif cb.type == "MediaStreamingStarted" and lost is not None:
            gaps.append(cb.t - lost)
            lost = None
    return gaps


async def test_a_rolling_restart_of_every_replica_loses_no_call() -> None:
    env = {
        "CALLBRIDGE_DRAIN_SETTLE_S": "0.8",  # HAProxy: 300 ms checks, 2 to fall
        "CALLBRIDGE_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    async with topology(3, "echo", env, cwd=ROOT) as topo:
        calls = [
            await topo.emulator.start_call(
                # Longer than the emulator's default 60 s cap: three stops and six turns
                # take more than a minute on a loaded machine.
                CallScript(
                    audio=b"",
                    tail_s=None,
                    from_number=f"+1425555{4000 + i}",
                    max_duration_s=300,
                )
            )
            for i in range(6)
        ]
        for call in calls:
            await call.wait_media()
        for name in ("r0", "r1", "r2"):
            took = await topo.stop(name)  # SIGTERM: it hands its calls over, then exits
            assert took < 15, f"{name} took {took:.1f} s to stop"
            await topo.restart(name)
        for call in calls:
            assert call.is_active, call.report.summary()
        # Every caller is still answered after all three replicas restarted.
        for call in calls:
            said = await call.say(hello_pcm16k()[: 16000 * 3])
            turn = await call.wait_agent_quiet(since=said.start_s, quiet_s=1.0, timeout_s=20)
            assert rms(turn.pcm) > 200, call.report.summary()
        gaps = [g for call in calls for g in media_gaps(call.report)]
        assert gaps, "no call was moved"
        assert max(gaps) <= 1.0, gaps
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        callers = sorted(f"+1425555{4000 + i}" for i in range(6))
        async with httpx.AsyncClient(timeout=10) as http:
            # Every replica's console shows every call in progress, once, on a live replica.
            for replica in topo.replicas:
                live = (await http.get(f"{replica.url}/api/live", headers=auth)).json()
                assert sorted(c["caller"] for c in live["calls"]) == callers, replica.name
                assert {c["replica"] for c in live["calls"]} <= {"r0", "r1", "r2"}
            # No restarting replica took the others' live calls for orphans.
            listed = (await http.get(f"{topo.url}/api/calls", headers=auth)).json()["calls"]
            assert [c["status"] for c in listed] == ["active"] * 6, listed
        for call in calls:
            report = await call.hang_up()
            assert report.ended_by == "caller", report.summary()


async def test_after_failover_the_agent_carries_on_with_the_conversation() -> None:
    """The caller gives their order number, the replica holding the call dies; the new
    replica's model session is seeded with what was said, and the call goes on."""
    script = Script(
        [Say("Thanks, let me look that up."), Say("Your order ships tomorrow.")],
        caller_says=["My order number is four five one two.", "When does it ship?"],
    )
    async with FakeRealtimeServer("voicelive", script) as fake:
        env = {**fake.env(), "CALLBRIDGE_PROFILE": str(ROOT / "profiles" / "contoso.yaml")}
        async with topology(3, "voicelive", env, cwd=ROOT) as topo:
            call = await topo.emulator.start_call(CallScript(audio=b"", tail_s=None))
            await call.wait_media()
            await call.wait_agent_quiet(quiet_s=1.0, timeout_s=20)  # the greeting
            said = await call.say(hello_pcm16k())
            first = await call.wait_agent_quiet(since=said.speech_end_s, quiet_s=1.0, timeout_s=20)
            assert rms(first.pcm) > 200
            owner = (await topo.owners())[call.call_connection_id or ""]
            topo.kill(owner)
            await asyncio.sleep(3.0)  # a survivor restarts the media; another adopts it
            said = await call.say(hello_pcm16k())
            second = await call.wait_agent_quiet(since=said.speech_end_s, quiet_s=1.0, timeout_s=20)
            assert rms(second.pcm) > 200, call.report.summary()
            # The model session after the failover was seeded with the earlier turn.
            created = fake.client_events("conversation.item.create")
            texts = json.dumps(created)
            assert "four five one two" in texts, texts[:2000]
            await call.hang_up()
