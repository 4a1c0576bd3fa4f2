"""Function calls: ToolCall out, outputs back only after the call's response.done, one
response.create per batch, a spoken filler for slow tools, errors for the model to explain."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from callbridge.agent.base import AgentTranscript
from callbridge.testing.fake_realtime import CallTool, Fail, Say, Script
from callbridge.testing.fake_realtime.wire import wire_name
from tests.waiting import until

from .conftest import FakeFactory, on_both
from .helpers import quick_options, start_call


def assert_never_in_history(session: Any, words: str) -> None:
    """The fake's conversation (the model's history) never held an item saying `words`:
    none was created for it, and none is there now."""
    said = [
        e["item_id"]
        for e in session.server_events(wire_name(session.dialect, "response.audio_transcript.done"))
        if words in e["transcript"]
    ]
    assert said, f"{words!r} was never said"
    created = {
        e["item"]["id"]
        for e in session.sent
        if e["type"] in ("conversation.item.created", "conversation.item.added")
    }
    assert not created & set(said), "the filler was added to the conversation"
    held = json.dumps(session.conversation)
    assert words not in held and not {i["id"] for i in session.conversation} & set(said)


def _order(session: Any) -> list[str]:
    """Client and server events of interest, in the order the fake saw or sent them."""
    return [e["type"] for e in session.received if e["type"] != "input_audio_buffer.append"]


@on_both
async def test_tool_output_waits_for_response_done(make_fake: FakeFactory) -> None:
    # response.done comes 400 ms after the call; the tool answers at once.
    script = Script([CallTool("opening_hours", {}, hold_done_ms=400), Say("Nine to five.")])
    fake = await make_fake(script)
    call = await start_call(fake, options=quick_options(greet_first=False))
    try:
        await call.caller.say(400)
        session = fake.sessions[0]
        await until(lambda: len(session.server_events("response.done")) == 2, 5, "answer")
        (tool,) = call.bridge.tool_calls
        assert tool.name == "opening_hours" and tool.arguments == {}
        (output,) = session.client_events("conversation.item.create")
        assert output["item"] == {
            "type": "function_call_output",
            "call_id": tool.call_id,
            "output": '{"open": "9 to 5"}',
        }
        # The output was sent only after the response that called the tool was done.
        first_done = next(i for i, e in enumerate(session.sent) if e["type"] == "response.done")
        done_at = session.sent[first_done]
        assert session.received.index(output) > 0 and done_at["response"]["output"]
        creates = session.client_events("response.create")
        assert len(creates) == 1 and "response" not in creates[0]
        assert not session.server_events("error")
        await until(lambda: "Nine to five." in [e.text for e in call.bridge.of(AgentTranscript)], 2)
    finally:
        await call.close()


@on_both
async def test_slow_tool_gets_a_filler_and_failures_reach_the_model(
    make_fake: FakeFactory,
) -> None:
    async def slow_and_failing(args: dict[str, Any]) -> str:
        await asyncio.sleep(2.2)
        return json.dumps({"error": "opening_hours failed: database down"})

    script = Script([CallTool("opening_hours", {}), Say("Sorry, I can't look that up.")])
    fake = await make_fake(script)
    call = await start_call(
        fake, options=quick_options(greet_first=False), tools={"opening_hours": slow_and_failing}
    )
    try:
        await call.caller.say(400)
        session = fake.sessions[0]
        await until(lambda: len(session.server_events("response.done")) == 3, 8, "answer")
        filler, answer = session.client_events("response.create")
        # Kept out of the model's history, each service its own way: OpenAI's out-of-band
        # response, Voice Live's `commit: false` (its response.create has no `conversation`).
        if fake.dialect == "ga":
            assert filler["response"]["conversation"] == "none"
            assert "commit" not in filler["response"]
        else:
            assert filler["response"]["commit"] is False
            assert "conversation" not in filler["response"]
        assert '"One moment, please."' in filler["response"]["instructions"]
        assert_never_in_history(session, "One moment, please.")
        assert "response" not in answer
        (output,) = session.client_events("conversation.item.create")
        assert "database down" in output["item"]["output"]
        await until(lambda: len(call.bridge.of(AgentTranscript)) == 2, 2, "transcripts")
        said = [e.text for e in call.bridge.of(AgentTranscript)]
        assert said == ["One moment, please.", "Sorry, I can't look that up."]
        # The filler played while the tool ran: no dead air.
        assert call.bridge.replies and call.bridge.played_ms() > 500
        assert not session.server_events("error")
    finally:
        await call.close()


@on_both
async def test_create_waits_while_the_caller_made_a_response(make_fake: FakeFactory) -> None:
    """The caller speaks during a slow tool: VAD starts a response, and the tool's
    response.create is held until that one is done (docs/realtime.md)."""

    async def slow(args: dict[str, Any]) -> str:
        await asyncio.sleep(1.0)
        return '{"open": "9 to 5"}'

    script = Script(
        [CallTool("opening_hours", {}), Say("Still checking, " * 6, audio_ms=2500), Say("Done.")]
    )
    fake = await make_fake(script)
    options = quick_options(greet_first=False, tool_filler_after_s=5)
    call = await start_call(fake, options=options, tools={"opening_hours": slow})
    try:
        await call.caller.say(400)
        await until(lambda: call.bridge.tool_calls, 5, "tool call")
        await call.caller.say(300)  # speaks again while the tool runs
        session = fake.sessions[0]
        await until(lambda: len(session.server_events("response.done")) == 3, 10, "all replies")
        errors = [e["error"]["code"] for e in session.server_events("error")]
        assert "conversation_already_has_active_response" not in errors
        order = _order(session)
        assert order.index("conversation.item.create") < order.index("response.create")
    finally:
        await call.close()


@on_both
async def test_keypad_digits_and_a_failed_response(make_fake: FakeFactory) -> None:
    """Digits reach the model as a user message; a failed response is retried once."""
    script = Script([Fail(), Say("You pressed one two three.", audio_ms=800)])
    fake = await make_fake(script)
    call = await start_call(fake, options=quick_options(greet_first=False))
    try:
        for digit in "123#":
            await call.agent.push_dtmf(digit)
        session = fake.sessions[0]
        await until(lambda: len(session.server_events("response.done")) == 2, 5, "retry")
        (item,) = session.client_events("conversation.item.create")
        assert item["item"]["role"] == "user"
        assert "1 2 3 #" in item["item"]["content"][0]["text"]
        statuses = [e["response"]["status"] for e in session.server_events("response.done")]
        assert statuses == ["failed", "completed"]
        assert len(session.client_events("response.create")) == 2
    finally:
        await call.close()
