"""Whole calls against the in-test fake service: media in real time, callbacks, endings."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import re
import wave
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import numpy as np
import pytest

from callbridge.emulator import AcsEmulator, CallScript

from .fake_service import FakeService, WsSession, echo, tone

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _verify(emu: AcsEmulator, bearer: str) -> dict[str, Any]:
    token = bearer.removeprefix("Bearer ")
    key = jwt.PyJWK(emu.jwt.jwks()["keys"][0]).key
    return jwt.decode(token, key, algorithms=["RS256"], audience=emu.audience, issuer=emu.issuer)  # type: ignore[no-any-return]


async def test_full_call_with_echoing_service(
    emu: AcsEmulator, service: FakeService, tmp_path: Path
) -> None:
    wav_path = tmp_path / "call.wav"
    script = CallScript(
        audio=tone(1.0, 16000),  # resampled to the call's 24 kHz
        audio_rate=16000,
        start_delay_s=0.3,
        dtmf=[(0.5, "5")],
        hangup_after_s=1.6,
        record_path=str(wav_path),
    )
    report = await emu.place_call(script)

    assert report.answered and report.answer_count == 1 and report.media_connected
    assert (report.audio_format, report.sample_rate) == ("pcm24KMono", 24000)
    assert report.ended_by == "caller" and report.frames_sent == 80
    # Every frame is echoed back, except the last few still in flight at hang-up (more of
    # them when the machine is busy with the other test worker).
    assert report.frames_sent - 6 <= report.frames_received <= report.frames_sent
    assert report.outbound_bytes == report.frames_received * 960
    assert report.invalid_outbound_frames == 0
    assert report.dtmf_sent == [(0.5, "5")]

    (session,) = service.ws_sessions
    claims = _verify(emu, session.headers["Authorization"])
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert session.headers["x-ms-call-connection-id"] == report.call_connection_id
    assert session.headers["x-ms-call-correlation-id"] == report.correlation_id
    first = session.received[0][1]
    assert first["kind"] == "AudioMetadata"
    assert first["audioMetadata"]["sampleRate"] == 24000
    assert first["audioMetadata"]["length"] == 960
    assert first["audioMetadata"]["encoding"] == "PCM"
    audio = [(t, m["audioData"]) for t, m in session.received if m.get("kind") == "AudioData"]
    assert len(audio) == 80
    assert all(len(base64.b64decode(a["data"])) == 960 for _, a in audio)
    assert all(
        TS.match(a["timestamp"]) and a["participantRawID"] == "4:+14255550123" for _, a in audio
    )
    silent = [a["silent"] for _, a in audio]
    assert all(silent[:15]) and not any(silent[15:65]) and all(silent[65:])
    span = audio[-1][0] - audio[0][0]  # arrival times at the service
    assert abs(span - 79 * 0.020) < 0.05, f"frames not at 50/s: {span:.3f}s for 79 intervals"
    dtmf = [m for _, m in session.received if m.get("kind") == "DtmfData"]
    assert dtmf == [{"kind": "DtmfData", "dtmfData": {"data": "5"}}]

    # What the caller heard: the echo, 0.3 s .. 1.3 s (plus one tick of echo latency).
    (seg,) = report.heard_segments
    assert abs(seg[0] - 0.3) <= 0.06 and abs(seg[1] - 1.3) <= 0.06
    heard = np.frombuffer(report.heard_pcm, dtype="<i2")
    assert heard.size == 80 * 480 and np.abs(heard).max() > 4000

    with wave.open(str(wav_path)) as wf:
        assert (wf.getnchannels(), wf.getframerate(), wf.getsampwidth()) == (2, 24000, 2)
        st = np.frombuffer(wf.readframes(wf.getnframes()), dtype="<i2").reshape(-1, 2)
    left, right = st[:, 0].astype(int), st[:, 1].astype(int)
    assert np.abs(left[: int(0.29 * 24000)]).max() == 0  # caller quiet before 0.3 s
    assert np.abs(left[int(0.35 * 24000) : int(1.25 * 24000)]).min() < 2000 < np.abs(left).max()
    assert np.abs(right[: int(0.29 * 24000)]).max() == 0
    assert np.abs(right[int(0.4 * 24000) : int(1.2 * 24000)]).max() > 4000
    assert np.abs(right[int(1.4 * 24000) :]).max() == 0

    names = service.event_names()
    assert names == [
        "CallConnected",
        "ParticipantsUpdated",
        "MediaStreamingStarted",
        "MediaStreamingStopped",
        "CallDisconnected",
    ]
    assert [c.status for c in report.callbacks] == [200] * 5
    for _, event, headers, path_qs in service.callbacks:
        assert path_qs == "/acs/callbacks/c1?callerId=%2B1425"
        assert headers["Content-Type"] == "application/json"
        assert (
            _verify(emu, headers["Authorization"])["exp"]
            - _verify(emu, headers["Authorization"])["iat"]
            == 300
        )
        src = f"calling/callConnections/{report.call_connection_id}"
        assert event["source"] == event["subject"] == src
        assert event["specversion"] == "1.0" and event["datacontenttype"] == "application/json"
        assert event["data"]["version"] == "2026-03-12"
        assert event["data"]["correlationId"] == report.correlation_id
        assert event["data"]["publicEventType"] == event["type"]
    tokens = {h["Authorization"] for _, _, h, _ in service.callbacks}
    assert len(tokens) == 5  # a fresh token per callback
    started = service.events("MediaStreamingStarted")[0]["data"]
    assert started["mediaStreamingUpdate"] == {
        "contentType": "Audio",
        "mediaStreamingStatus": "mediaStreamingStarted",
        "mediaStreamingStatusDetails": "subscriptionStarted",
    }
    updated = service.events("ParticipantsUpdated")[0]["data"]
    assert updated["sequenceNumber"] == 1
    assert {
        "identifier": {
            "kind": "phoneNumber",
            "rawId": "4:+14255550123",
            "phoneNumber": {"value": "+14255550123"},
        },
        "isMuted": False,
        "isOnHold": False,
    } in updated["participants"]
    disconnected = service.events("CallDisconnected")[0]["data"]
    assert disconnected["resultInformation"]["code"] == 200
    assert disconnected["resultInformation"]["subCode"] == 5010
    assert report.media_closed_by == "emulator"
    json.dumps(report.to_dict())  # JSON-serialisable
    assert "heard_pcm" not in report.to_dict()
    assert "caller heard the agent at" in report.summary()


async def test_stop_audio_flushes_playout_and_invalid_frames_are_counted(
    emu: AcsEmulator, service: FakeService
) -> None:
    three_s = base64.b64encode(tone(3.0, 24000)).decode()

    async def stop_later(session: WsSession) -> None:
        await asyncio.sleep(0.5)
        await session.ws.send_str(
            json.dumps({"Kind": "StopAudio", "AudioData": None, "StopAudio": {}})
        )

    async def hook(session: WsSession, msg: dict[str, Any] | None) -> None:
        if msg and msg.get("kind") == "AudioMetadata":
            # lower-camel form of the JS SDK is accepted too
            await session.ws.send_str(
                json.dumps({"kind": "audioData", "audioData": {"data": three_s}})
            )
            for bad in [
                "not json",
                '{"Kind":"Bogus"}',
                '{"Kind":"AudioData","AudioData":{"Data":"!!"}}',
            ]:
                await session.ws.send_str(bad)
            asyncio.get_running_loop().create_task(stop_later(session))

    service.on_media = hook
    report = await emu.place_call(
        CallScript(hangup_after_s=1.2, raw_frames=[(0.2, "{broken")], start_delay_s=0)
    )
    assert report.outbound_bytes == 3 * 24000 * 2
    assert report.invalid_outbound_frames == 3 and len(report.invalid_outbound_samples) == 3
    (stop_t,) = report.stop_audio_times
    assert 0.45 <= stop_t <= 0.6
    (seg,) = report.heard_segments
    assert seg[0] <= 0.04 and abs(seg[1] - stop_t) <= 0.05
    heard = np.frombuffer(report.heard_pcm, dtype="<i2")
    assert np.abs(heard[int((stop_t + 0.05) * 24000) :]).max() == 0  # silence after StopAudio
    assert report.underruns == 0
    assert "{broken" in service.ws_sessions[0].raw_text


async def test_media_connection_failures_end_the_call(
    emu: AcsEmulator, service: FakeService
) -> None:
    for url, expect in [
        ("ws://127.0.0.1:9/ws", "ClientConnectorError"),
        (f"ws://127.0.0.1:{service.port}/forbidden", "HTTP 403"),
    ]:
        service.transport_url = url
        service.callbacks.clear()
        report = await emu.place_call(CallScript())
        assert report.answered and not report.media_connected
        assert report.ended_by == "media_failed" and expect in report.end_reason
        assert service.event_names() == [
            "CallConnected",
            "ParticipantsUpdated",
            "MediaStreamingFailed",
            "CallDisconnected",
        ]
        failed = service.events("MediaStreamingFailed")[0]["data"]
        assert failed["resultInformation"] == {
            "code": 500,
            "subCode": 8603,
            "message": "Action failed, not able to establish websocket connection.",
        }
        details = failed["mediaStreamingUpdate"]["mediaStreamingStatusDetails"]
        assert details == "initialWebSocketConnectionFailed"


async def test_service_hang_up_and_caller_tail_hang_up(
    emu: AcsEmulator, service: FakeService
) -> None:
    async def hang_up_on_dtmf(session: WsSession, msg: dict[str, Any] | None) -> None:
        if msg and msg.get("kind") == "DtmfData":
            assert service.client is not None
            conn = service.client.get_call_connection(session.headers["x-ms-call-connection-id"])
            await conn.hang_up(is_for_everyone=True)

    service.on_media = hang_up_on_dtmf
    report = await emu.place_call(CallScript(dtmf=[(0.3, "#")], max_duration_s=5))
    assert report.ended_by == "service" and report.duration_s < 2
    assert service.event_names()[-2:] == ["MediaStreamingStopped", "CallDisconnected"]
    disc = service.events("CallDisconnected")[0]["data"]["resultInformation"]
    assert (disc["code"], disc["subCode"]) == (200, 7000)

    service.on_media = echo
    service.audio_format = "pcm16KMono"
    report = await emu.place_call(CallScript(audio=tone(0.5), start_delay_s=0.2, tail_s=0.4))
    assert report.ended_by == "caller" and "quiet" in report.end_reason
    assert report.sample_rate == 16000 and report.outbound_bytes % 640 == 0
    meta = service.ws_sessions[-1].received[0][1]["audioMetadata"]
    assert (meta["sampleRate"], meta["length"]) == (16000, 640)
    media_s = report.frames_sent * 0.02
    assert 1.1 <= media_s <= 1.25, media_s  # 0.2 delay + 0.5 audio + echo + 0.4 tail


# Fifty calls' 20 ms clocks in one process: in the heaviest tests' group (the scenario
# groups, the multi-replica topology), so never at the same time as them, whose load
# would bunch the frames.
@pytest.mark.xdist_group("scenarios")
async def test_many_concurrent_calls_and_clean_stop(service: FakeService, access_key: str) -> None:
    baseline = asyncio.all_tasks()
    emu = AcsEmulator(service.webhook, access_key)
    await emu.start()
    service.connect_sdk(emu.endpoint)
    scripts = [
        CallScript(
            audio=tone(0.5), start_delay_s=0.2, hangup_after_s=1.6, from_number=f"+1425555{i:04d}"
        )
        for i in range(50)
    ]
    # This worker has imported the whole suite: a full collection of its heap stopped the
    # loop the 50 calls, their SDK clients and the fake service share for ~100 ms and split
    # most echoes in two. The service does the same once it has started (server.py).
    gc.collect()
    gc.freeze()
    try:
        reports = await asyncio.gather(*(emu.place_call(s) for s in scripts))
    finally:
        gc.unfreeze()
    assert all(r.answered and r.answer_count == 1 for r in reports)
    assert all(r.frames_sent == 80 for r in reports)
    # Every caller heard their 0.5 s back; in one piece, bar a few the loaded suite machine
    # delays mid-echo (the fake service shares this event loop with 50 SDK clients). The
    # call lasts 0.9 s past the caller's audio: on a slow machine under the suite's load the
    # echo came back up to 0.4 s late, and a hang-up 0.3 s after the audio cut it short.
    heard = [sum(b - a for a, b in r.heard_segments) for r in reports]
    assert all(0.4 <= h <= 0.8 for h in heard), heard  # 0.64 s seen: late frames stretch it
    assert sum(len(r.heard_segments) == 1 for r in reports) >= 45
    assert len({r.call_connection_id for r in reports}) == 50
    assert len(service.ws_sessions) == 50
    # The fake service shares this process's event loop with 50 SDK clients, so judge the
    # cadence by the frames' own timestamps (emulator side): 79 intervals of 20 ms each.
    for session in service.ws_sessions:
        stamps = [
            datetime.fromisoformat(m["audioData"]["timestamp"])
            for _, m in session.received
            if m.get("kind") == "AudioData"
        ]
        # (The span, not each gap: on a loaded machine the clock catches up in bursts, by
        # design — absolute deadlines — so single gaps bunch while the total holds.)
        span = (stamps[-1] - stamps[0]).total_seconds()
        assert abs(span - 1.58) < 0.1, span

    # A call still running when the emulator stops is cut short, and nothing is left over.
    running = asyncio.create_task(emu.place_call(CallScript(hangup_after_s=30, max_duration_s=30)))
    await asyncio.sleep(0.5)
    await emu.stop()
    report = await asyncio.wait_for(running, 3)
    assert report.end_reason == "emulator stopped during the call"
    await asyncio.sleep(0.1)
    leftovers = [t for t in asyncio.all_tasks() - baseline if t is not asyncio.current_task()]
    assert leftovers == []
