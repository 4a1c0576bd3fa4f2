"""Greeting, caller audio batching, and barge-in with truncation against both fakes."""

from __future__ import annotations

import asyncio
import base64
import json

from callbridge.agent.base import AgentAudio, SpeechStarted
from callbridge.core.call_info import CallInfo
from callbridge.testing.fake_realtime import Say, Script
from tests.waiting import until

from .conftest import FakeFactory, on_both
from .helpers import TOOLS, quick_options, start_call


@on_both
async def test_greeting_and_transcripts(make_fake: FakeFactory) -> None:
    fake = await make_fake(Script([Say("We are open from nine to five.")], caller_says=["Hours?"]))
    call = await start_call(fake, greeting="Thanks for calling {caller}!")
    try:
        session = fake.sessions[0]
        await until(
            lambda: call.bridge.played_ms() > 1500 and not call.bridge.speaking,
            8,
            what="greeting heard",
        )
        update = session.client_events("session.update")[0]["session"]
        assert "+14255550123" in str(update["instructions"])  # persona templated
        create = session.client_events("response.create")[0]
        if fake.dialect == "voicelive":  # fixed words, spoken by the service
            message = create["response"]["pre_generated_assistant_message"]
            assert message["content"][0]["text"] == "Thanks for calling +14255550123!"
        else:
            assert '"Thanks for calling +14255550123!"' in create["response"]["instructions"]
        await call.caller.say(500)
        await until(lambda: len(call.bridge.transcripts()[0]) == 2, what="the answer")
        agent_said, caller_said = call.bridge.transcripts()
        assert agent_said == ["Thanks for calling +14255550123!", "We are open from nine to five."]
        assert caller_said == ["Hours?"]
    finally:
        await call.close()


@on_both
async def test_caller_audio_is_batched_and_resampled(make_fake: FakeFactory) -> None:
    fake = await make_fake(Script())
    info = CallInfo("c", "+1", "+2", 16000, tools=TOOLS)
    call = await start_call(fake, rate=16000, info=info, options=quick_options(greet_first=False))
    try:
        await asyncio.sleep(1.0)
        appends = fake.sessions[0].client_events("input_audio_buffer.append")
        sizes = {len(base64.b64decode(e["audio"])) for e in appends}
        assert sizes == {60 * 48}  # 60 ms of 24 kHz PCM per append (docs/realtime.md)
        sent_ms = sum(len(base64.b64decode(e["audio"])) for e in appends) / 48
        # Everything pushed at 16 kHz arrives at 24 kHz (less the last partial batch).
        assert call.caller.pushed_ms - 120 <= sent_ms <= call.caller.pushed_ms
    finally:
        await call.close()


@on_both
async def test_barge_in_truncates_to_what_was_heard(make_fake: FakeFactory) -> None:
    script = Script([Say("A long answer " * 8, audio_ms=5000), Say("Sure, go on.", audio_ms=800)])
    fake = await make_fake(script)
    call = await start_call(fake, options=quick_options(greet_first=False))
    try:
        await call.caller.say(400)
        await until(lambda: call.bridge.played_ms() > 1200, what="the long answer playing")
        assert call.bridge.speaking
        await call.caller.say(500)
        await until(lambda: call.bridge.interruptions, what="barge-in")
        session = fake.sessions[0]
        await until(lambda: session.client_events("conversation.item.truncate"), what="truncate")
        (truncate,) = session.client_events("conversation.item.truncate")
        heard = call.bridge.interruptions[0]
        long_item = session.server_events("response.output_item.added")[0]["item"]["id"]
        assert truncate["item_id"] == long_item and truncate["content_index"] == 0
        assert truncate["audio_end_ms"] == heard  # one playback, one item: exact
        assert 1200 <= heard <= 3000
        await until(lambda: session.server_events("conversation.item.truncated"), what="ack")
        assert not session.server_events("error")
        # The reply after the barge-in is heard; nothing of the long one came back.
        await call.bridge.replies_done(1)  # the long one was cut: only the next ends normally
        barge = [t for t, e in call.bridge.events if isinstance(e, SpeechStarted)][-1]
        after = call.bridge.audio_ms(since=barge)
        assert abs(after - 800) <= 40, after
    finally:
        await call.close()


@on_both
async def test_cancel_when_the_server_does_not(make_fake: FakeFactory) -> None:
    """interrupt_response off and a reply streamed in real time: the agent cancels it and
    drops the deltas that still come (docs/realtime.md)."""
    script = Script(
        [Say("Slow " * 30, audio_ms=6000), Say("Yes?", audio_ms=600)], speed=1.0, late_deltas=3
    )
    fake = await make_fake(script)
    options = quick_options(greet_first=False)
    turn = options.turn_detection.model_copy(update={"interrupt_response": False})
    call = await start_call(fake, options=options.model_copy(update={"turn_detection": turn}))
    try:
        await call.caller.say(400)
        await until(lambda: call.bridge.played_ms() > 800, what="slow answer playing")
        started = len(call.bridge.events)
        await call.caller.say(400)
        session = fake.sessions[0]
        await until(lambda: session.client_events("response.cancel"), what="cancel")
        cancel = session.client_events("response.cancel")[0]
        first = session.server_events("response.created")[0]["response"]["id"]
        assert cancel["response_id"] == first
        await until(lambda: len(session.server_events("response.done")) == 2, 8, "2nd reply")
        await call.bridge.replies_done(1)
        done = session.server_events("response.done")[0]["response"]
        assert done["status"] == "cancelled"
        # Nothing of the cancelled reply after SpeechStarted: only the short answer.
        later = call.bridge.events[started:]
        i = next(i for i, (_, e) in enumerate(later) if isinstance(e, SpeechStarted))
        audio = sum(len(e.pcm) for _, e in later[i:] if isinstance(e, AgentAudio)) / 48
        assert abs(audio - 600) <= 40, audio
        truncate = session.client_events("conversation.item.truncate")
        assert truncate and truncate[0]["audio_end_ms"] == call.bridge.interruptions[0]
    finally:
        await call.close()


@on_both
async def test_keypad_barge_in_and_call_notices(make_fake: FakeFactory) -> None:
    """Keys that interrupt the agent (no speech_started) truncate like speech does, and the
    next words — a call notice here — play under a new response id."""
    script = Script([Say("A long answer " * 8, audio_ms=5000)])
    fake = await make_fake(script)
    notices = {"caller_silent": "Are you still there, {caller}? {seconds}"}
    call = await start_call(fake, options=quick_options(greet_first=False), notices=notices)
    try:
        await call.caller.say(400)
        await until(lambda: call.bridge.played_ms() > 1000, what="the answer playing")
        heard = await call.bridge.keypad_barge_in()
        session = fake.sessions[0]
        await until(lambda: session.client_events("conversation.item.truncate"), what="truncate")
        (truncate,) = session.client_events("conversation.item.truncate")
        assert truncate["audio_end_ms"] == heard
        await call.agent.notify("caller_silent", {"seconds": 8})
        await until(lambda: len(session.server_events("response.done")) == 2, what="notice")
        said = "Are you still there, +14255550123? 8"
        create = session.client_events("response.create")[-1]["response"]
        assert said in json.dumps(create)
        await until(lambda: len(call.bridge.replies) == 2, what="the notice heard")
        assert call.bridge.replies[1].response_id != call.bridge.replies[0].response_id
    finally:
        await call.close()
