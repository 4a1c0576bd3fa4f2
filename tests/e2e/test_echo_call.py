"""Whole calls: the emulator plays ACS through the real SDK path to the service."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import websockets

from callbridge.emulator import CallScript
from tests.e2e.harness import hello_pcm16k, rms, silence16k, speech_end_s
from tests.e2e.harness import running_stack as _running_stack

pytestmark = pytest.mark.e2e


def running_stack(**overrides: Any) -> Any:
    return _running_stack(agent="echo", **overrides)


def session_tasks() -> set[asyncio.Task[object]]:
    """Tasks of any call (the session names them `<role>:<call id>`)."""
    return {t for t in asyncio.all_tasks() if ":" in t.get_name() and not t.done()}


async def test_caller_hears_the_echo_and_everything_is_released() -> None:
    async with running_stack() as stack:
        speech = hello_pcm16k()
        report = await stack.emulator.place_call(CallScript(audio=speech, start_delay_s=0.5))
        assert report.answered and report.answer_count == 1
        assert report.media_connected and report.sample_rate == 24000
        assert report.ended_by == "caller"
        # The caller heard their sentence back once they stopped speaking.
        assert report.heard_segments, report.summary()
        first_heard = report.heard_segments[0][0]
        speech_end = 0.5 + speech_end_s(speech)
        # The echo agent waits for 600 ms of silence before it answers.
        assert speech_end + 0.5 < first_heard < speech_end + 1.2, report.summary()
        heard_s = len(report.heard_pcm) / 48000
        assert heard_s > 3.5, report.summary()
        assert rms(report.heard_pcm) > 300
        # Every callback was accepted, the connection came up with media.
        types = [c.type for c in report.callbacks]
        assert {"CallConnected", "MediaStreamingStarted", "CallDisconnected"} <= set(types)
        assert all(c.status == 200 for c in report.callbacks), report.callbacks
        # Everything of the call is released once it has ended.
        for _ in range(50):
            if not stack.edge.calls and not session_tasks():
                break
            await asyncio.sleep(0.05)
        assert stack.edge.calls == {}
        assert session_tasks() == set()
        finished = stack.edge.finished[-1]
        assert finished.end_reason is not None
        assert finished.stats.frames_in > 200 and finished.stats.replies == 1


async def test_duplicate_event_grid_delivery_answers_once() -> None:
    async with running_stack() as stack:
        report = await stack.emulator.place_call(
            CallScript(audio=hello_pcm16k()[:32000], duplicate_delivery=True, hangup_after_s=2.5)
        )
        assert [w.status for w in report.webhook] == [200, 200]
        assert report.answer_count == 1 and report.answer_attempts == 1
        answers = [
            r
            for r in stack.emulator.rest_log
            if r.path.startswith("/calling/callConnections:answer")
        ]
        assert len(answers) == 1
        assert stack.edge.counters["duplicates"] == 1


async def test_barge_in_stops_the_agent_at_once() -> None:
    async with running_stack() as stack:
        first = hello_pcm16k()[: 2 * 16000 * 2]  # two seconds of speech
        audio = first + silence16k(1.3) + hello_pcm16k()[: 16000 * 2]
        report = await stack.emulator.place_call(CallScript(audio=audio, start_delay_s=0.3))
        assert report.stop_audio_times, report.summary()
        # The second utterance starts at 0.3 + 2 + 1.3 = 3.6 s: StopAudio follows its onset
        # quickly, and the interrupted echo was cut short (it was 2 s long).
        stop = report.stop_audio_times[0]
        assert 3.6 < stop < 3.6 + 0.4, report.summary()
        first_reply = report.heard_segments[0]
        assert first_reply[1] - first_reply[0] < 1.5, report.summary()
        assert stack.edge.finished[-1].stats.barge_ins >= 1


async def test_sixteen_khz_calls_work_too() -> None:
    async with running_stack(audio_format="pcm16KMono") as stack:
        report = await stack.emulator.place_call(CallScript(audio=hello_pcm16k()[:48000]))
        assert report.sample_rate == 16000 and report.audio_format == "pcm16KMono"
        assert report.heard_segments and rms(report.heard_pcm) > 300


async def test_service_hangs_up_at_the_maximum_duration() -> None:
    async with running_stack(max_call_duration_s=2.0) as stack:
        report = await stack.emulator.place_call(
            CallScript(audio=b"", tail_s=None, max_duration_s=10)
        )
        assert report.ended_by == "service", report.summary()
        assert 1.5 < report.duration_s < 5
        assert stack.edge.finished[-1].end_reason == "maximum call duration reached"


async def test_bad_call_ends_cleanly_while_a_good_call_goes_on() -> None:
    async with running_stack(max_ws_message_bytes=8192) as stack:
        garbage = [(1.0 + i * 0.02, "{not json") for i in range(60)]
        bad = stack.emulator.place_call(
            CallScript(audio=b"", raw_frames=garbage, tail_s=None, max_duration_s=10)
        )
        oversized = stack.emulator.place_call(
            CallScript(
                audio=b"",
                raw_frames=[
                    (1.0, '{"kind":"AudioData","audioData":{"data":"' + "A" * 20000 + '"}}')
                ],
                tail_s=None,
                max_duration_s=10,
            )
        )
        good = stack.emulator.place_call(CallScript(audio=hello_pcm16k()))
        bad_r, big_r, good_r = await asyncio.gather(bad, oversized, good)
        assert bad_r.ended_by == "service" and bad_r.duration_s < 5, bad_r.summary()
        assert big_r.ended_by == "service" and big_r.duration_s < 5, big_r.summary()
        assert good_r.ended_by == "caller" and len(good_r.heard_pcm) / 48000 > 3.5
        reasons = sorted(s.end_reason or "" for s in stack.edge.finished)
        assert any("malformed" in r for r in reasons), reasons
        assert any("oversized" in r for r in reasons), reasons
        async with httpx.AsyncClient() as client:
            health = await client.get(stack.service_url + "/healthz")
        assert health.json()["active_calls"] == 0


async def test_media_socket_needs_a_valid_token_and_acs_jwt() -> None:
    async with running_stack() as stack:
        ws_url = stack.service_url.replace("http", "ws")
        for path in ("/acs/media/abc/forged.token", "/acs/media/abc"):
            with pytest.raises(websockets.exceptions.InvalidStatus):
                async with websockets.connect(ws_url + path):
                    pass
        # A valid per-call token without the ACS-signed JWT is refused as well.
        token = stack.edge.tokens.mint("abc", "media", 30)
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(f"{ws_url}/acs/media/abc/{token}"):
                pass


async def test_cloudevents_schema_subscription_works() -> None:
    async with running_stack(event_schema="cloudevents") as stack:
        report = await stack.emulator.place_call(
            CallScript(audio=hello_pcm16k()[:40000], hangup_after_s=3.5)
        )
        assert report.answered and report.answer_count == 1
        assert report.heard_segments, report.summary()


async def test_callbacks_without_the_acs_jwt_are_refused() -> None:
    async with running_stack() as stack:
        call = asyncio.create_task(
            stack.emulator.place_call(CallScript(audio=b"", hangup_after_s=2.0))
        )
        while not stack.edge.calls:  # noqa: ASYNC110 - polling the service from outside
            await asyncio.sleep(0.02)
        (call_id,) = stack.edge.calls
        url = stack.edge.callback_url(call_id)
        event = [
            {
                "id": "forged-1",
                "type": "Microsoft.Communication.CallDisconnected",
                "specversion": "1.0",
                "source": "calling/callConnections/x",
                "data": {"callConnectionId": "x", "resultInformation": {"code": 200}},
            }
        ]
        async with httpx.AsyncClient() as client:
            r = await client.post(url, json=event)
            assert r.status_code == 401 and "bearer" in r.text
            r = await client.post(url, json=event, headers={"Authorization": "Bearer e30.e30.x"})
            assert r.status_code == 401
        report = await call
        # The forged hang-up did nothing: the call ran until the caller hung up.
        assert report.ended_by == "caller" and report.duration_s > 2.0
