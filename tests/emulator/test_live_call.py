"""LiveCaller: a caller that reacts to the agent (fake service playing greeter / echo agent).

Timing bounds are deliberately generous: these run in real time beside other real-time
tests on a busy 2-core machine. Exact values are only asserted where they are counted in
20 ms ticks (the call clock), which load cannot bend.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import numpy as np
import pytest

from callbridge.emulator import AcsEmulator, CallEndedError, CallScript, LiveCaller, SaidSpan
from callbridge.emulator.caller import CallerSpeechQueue

from .fake_service import FakeService, WsSession, echo_after_silence, greeter, tone


def _dtmf_received(service: FakeService) -> list[str]:
    (session,) = service.ws_sessions
    return [m["dtmfData"]["data"] for _, m in session.received if m.get("kind") == "DtmfData"]


async def test_greeting_then_turn_with_latency(emu: AcsEmulator, service: FakeService) -> None:
    service.on_media = greeter(1.0, then=echo_after_silence(0.4))
    call = await emu.start_call()
    assert call.is_active and call.report.webhook[0].status == 200
    await call.wait_media()
    assert call.rate == 24000

    greeting = await call.wait_agent_quiet(since=0.0, quiet_s=0.5)
    assert greeting.first_audio_s is not None and greeting.first_audio_s < 0.5
    assert 0.9 <= greeting.duration_s <= 1.1  # 1 s tone, measured in ticks
    assert greeting.stop_audio_times == []
    samples = np.frombuffer(greeting.pcm, dtype="<i2")
    assert samples.size == round(greeting.duration_s * 24000) and np.abs(samples).max() > 4000

    said = await call.say(tone(0.6, 16000), 16000)  # resampled to 24 kHz
    assert greeting.last_audio_s is not None and said.start_s >= greeting.last_audio_s
    assert abs(said.speech_end_s - said.start_s - 0.6) < 0.021
    assert said.end_s == said.speech_end_s

    reply = await call.wait_agent_quiet(since=said.start_s, quiet_s=0.6)
    assert reply.first_audio_s is not None
    latency = reply.first_audio_s - said.speech_end_s
    assert 0.38 <= latency <= 1.5, latency  # the agent answers after 400 ms of silence
    assert abs(reply.duration_s - 0.6) < 0.05  # the echo of what was said
    assert not call.agent_audible

    live_report = call.report
    assert len(live_report.heard_segments) == 2 and live_report.ended_by is None

    report = await call.hang_up()
    assert report.ended_by == "caller" and report.end_reason.startswith("caller hung up at")
    assert not call.is_active and call.ended_event.is_set()
    assert report.heard_segments[0][0] == greeting.first_audio_s
    assert report.heard_segments[1] == (reply.first_audio_s, reply.last_audio_s)
    assert service.event_names()[-2:] == ["MediaStreamingStopped", "CallDisconnected"]
    disc = service.events("CallDisconnected")[0]["data"]["resultInformation"]
    assert disc["subCode"] == 5010  # ended by the caller
    with pytest.raises(CallEndedError, match="caller hung up"):
        await call.say(tone(0.2), 16000)


async def test_press_and_silence_on_the_call_clock(emu: AcsEmulator, service: FakeService) -> None:
    service.on_media = echo_after_silence()
    call = await emu.start_call()
    await call.wait_media()
    before = call.mark()
    await call.silence(0.3)
    assert call.mark() - before >= 0.3 - 1e-9

    pressed = await call.press("12#", gap_s=0.1)
    assert [d for _, d in pressed] == ["1", "2", "#"]
    gaps = [round(b - a, 3) for (a, _), (b, _) in itertools.pairwise(pressed)]
    assert gaps == [0.1, 0.1]  # exact: counted in ticks
    assert call.report.dtmf_sent == pressed
    await call.silence(0.1)  # let the last frame reach the service
    assert _dtmf_received(service) == ["1", "2", "#"]

    with pytest.raises(ValueError, match="not DTMF"):
        await call.press("1x")
    # Nobody speaks: require_speech=False returns quiet_s after `since`.
    turn = await call.wait_agent_quiet(quiet_s=0.2, require_speech=False)
    assert turn.first_audio_s is None and turn.pcm == b""
    with pytest.raises(TimeoutError, match="did not start speaking"):
        await call.wait_agent_speaking(timeout_s=0.3)
    report = await call.hang_up()
    assert report.ended_by == "caller" and report.heard_segments == []


async def test_barge_in_gets_stop_audio(emu: AcsEmulator, service: FakeService) -> None:
    service.on_media = greeter(3.0, then=echo_after_silence(0.4))
    call = await emu.start_call()
    await call.wait_media()
    started = await call.wait_agent_speaking(since=0.0)
    assert started < 0.5
    await asyncio.sleep(0.5)
    assert call.agent_audible  # 3 s greeting still playing

    said = await call.say(tone(0.4, 24000), 24000)
    greeting = await call.wait_agent_quiet(since=started, quiet_s=0.3)
    (stop,) = greeting.stop_audio_times
    # The service stops the greeting on the caller's first speech frame.
    assert said.start_s < stop < said.start_s + 0.6, (said, stop)
    assert greeting.last_audio_s is not None
    assert stop - 0.1 <= greeting.last_audio_s <= stop + 0.06  # playout flushed
    assert greeting.duration_s < 2.5  # cut short, not the whole 3 s

    reply = await call.wait_agent_quiet(since=said.end_s, quiet_s=0.4)
    assert reply.first_audio_s is not None
    assert 0.38 <= reply.first_audio_s - said.speech_end_s <= 1.5
    report = await call.hang_up()
    assert report.stop_audio_times == [stop]
    assert len(report.heard_segments) == 2


async def test_service_hang_up_ends_waits_or_leaves_the_caller_on_the_line(
    emu: AcsEmulator, service: FakeService
) -> None:
    async def hang_up_on_dtmf(session: WsSession, msg: dict[str, Any] | None) -> None:
        if msg and msg.get("kind") == "DtmfData":
            assert service.client is not None
            conn = service.client.get_call_connection(session.headers["x-ms-call-connection-id"])
            await conn.hang_up(is_for_everyone=msg["dtmfData"]["data"] == "9")

    service.on_media = hang_up_on_dtmf
    call = await emu.start_call()
    await call.wait_media()
    await call.press("9")  # the service terminates the call for everyone
    with pytest.raises(CallEndedError, match="service terminated the call"):
        await call.wait_agent_speaking(timeout_s=5)
    report = await call.ended(timeout_s=5)
    assert report.ended_by == "service" and report.service_hung_up_s is not None
    assert not call.is_active

    # hangup_when_agent_hangs_up=False: the bot leaves (DELETE), the caller stays on.
    service.callbacks.clear()
    call = await emu.start_call(CallScript(hangup_when_agent_hangs_up=False))
    await call.wait_media()
    await call.press("1")
    await call.wait_agent_quiet(quiet_s=0.4, require_speech=False)
    assert call.is_active and call.report.service_hung_up_s is not None
    assert call.report.media_closed_by == "emulator"
    report = await call.hang_up()
    assert report.ended_by == "caller"
    assert service.event_names().count("CallDisconnected") == 1


async def test_unanswered_and_abandoned_calls(emu: AcsEmulator, service: FakeService) -> None:
    service.answer = False
    call = await emu.start_call(CallScript(answer_timeout_s=0.3))
    with pytest.raises(CallEndedError, match=r"not answered within 0\.3 s"):
        await call.wait_media(timeout_s=5)

    call = await emu.start_call()
    report = await call.hang_up()  # while ringing
    assert report.ended_by == "caller" and "abandoned" in report.end_reason
    assert not report.answered
    assert CallScript().effective_tail_s(live=True) is None
    assert CallScript().effective_tail_s(live=False) == 2.0


async def test_script_audio_plays_before_live_speech(
    emu: AcsEmulator, service: FakeService
) -> None:
    service.on_media = echo_after_silence(0.2)
    call = await emu.start_call(CallScript(audio=tone(0.4), start_delay_s=0.2))
    await call.wait_media()
    said = await call.say(tone(0.2), 16000)
    assert said.start_s >= 0.6 - 1e-9  # queued behind the script's 0.2 s delay + 0.4 s
    first = await call.wait_agent_quiet(since=0.0, quiet_s=0.1)  # the script audio's echo
    assert first.first_audio_s is not None and first.first_audio_s >= 0.6
    report = await call.hang_up()
    assert report.ended_by == "caller"


async def _conversation(call: LiveCaller) -> float:
    await call.wait_media()
    await call.wait_agent_quiet(since=0.0, quiet_s=0.4)
    said = await call.say(tone(0.4), 16000)
    reply = await call.wait_agent_quiet(since=said.start_s, quiet_s=0.4)
    assert reply.first_audio_s is not None
    await call.hang_up()
    return reply.first_audio_s - said.speech_end_s


async def test_ten_concurrent_live_calls(emu: AcsEmulator, service: FakeService) -> None:
    service.on_media = greeter(0.6, then=echo_after_silence(0.4))
    calls = await asyncio.gather(
        *(emu.start_call(CallScript(from_number=f"+1425555{i:04d}")) for i in range(10))
    )
    latencies = await asyncio.gather(*(_conversation(c) for c in calls))
    assert all(0.38 <= x <= 2.0 for x in latencies), latencies
    reports = [c.report for c in calls]
    assert all(r.ended_by == "caller" and len(r.heard_segments) == 2 for r in reports)
    assert len({r.call_connection_id for r in reports}) == 10


async def test_caller_audio_queue_and_closing() -> None:
    """Pure unit test of the queue the clock pulls from (no real time involved)."""
    audio = CallerSpeechQueue(frame_bytes=8)  # 4 samples a frame
    loud = np.full(6, 1000, dtype="<i2")  # 1.5 frames of speech
    pcm = np.concatenate([loud, np.zeros(5, dtype="<i2")])  # then silence: 3 frames
    utt = audio.make(pcm, live=True, want_future=True)
    assert utt is not None and utt.n_frames == 3 and utt.future is not None
    assert audio.make(np.zeros(0, dtype="<i2"), live=True, want_future=True) is None
    audio.append(utt)
    frames = []
    for tick in range(10, 13):
        pulled = audio.pull(tick)
        assert pulled is not None
        frames.append(pulled[0])
        audio.frame_sent()
    assert audio.empty and audio.pull(13) is None
    assert frames[2] == bytes(8)  # zero-padded to whole frames
    assert await utt.future == SaidSpan(start_s=0.2, end_s=0.26, speech_end_s=0.24)

    # Closing fails what is queued and what is mid-send, and anything said afterwards.
    queued = audio.make(loud, live=True, want_future=True)
    in_flight = audio.make(loud[:4], live=True, want_future=True)
    assert queued is not None and in_flight is not None
    audio.append(in_flight)
    audio.append(queued)
    assert audio.pull(0) is not None  # in_flight's only frame: pulled, not yet sent
    audio.close(CallEndedError("gone"))
    late = audio.make(loud, live=True, want_future=True)
    for u in (queued, in_flight, late):
        assert u is not None and u.future is not None
        with pytest.raises(CallEndedError):
            await u.future


async def test_a_greeting_over_the_script_does_not_end_the_call_early(
    emu: AcsEmulator, service: FakeService
) -> None:
    """The caller's script runs past the agent's greeting: the tail counts from the
    script's end, not from the last agent audio (it used to hang up at the script's end)."""
    service.on_media = greeter(0.5)
    report = await emu.place_call(CallScript(audio=tone(2.0, 16000), audio_rate=16000, tail_s=1.0))
    media_s = report.frames_sent * 0.02
    assert report.ended_by == "caller"
    assert media_s >= 0.5 + 2.0 + 1.0 - 0.1, report.summary()
