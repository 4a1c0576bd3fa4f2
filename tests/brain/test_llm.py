"""The llm brain against a local fake chat-completions server, through the real SDK."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callbridge.agent.local.brain.base import BrainError
from callbridge.agent.local.brain.llm import LlmBrain, chat_tools
from callbridge.core.tools import ToolRegistry
from callbridge.lines.from_profile import profile_tools
from callbridge.profile import Profile, call_variables

from .conftest import TODAY, Call, contoso_registry
from .fake_chat_server import FakeChatServer, Reply, call


def llm_profile(profile: Profile, server: FakeChatServer, **llm: Any) -> Profile:
    settings = profile.llm.model_copy(
        update={"base_url": server.base_url, "model": "fake-model", "timeout": 2.0, **llm}
    )
    return profile.model_copy(update={"brain": "llm", "llm": settings})


_open: list[LlmBrain] = []


@pytest.fixture(autouse=True)
async def close_brains() -> AsyncIterator[None]:
    yield
    while _open:
        await _open.pop().aclose()


def make_call(profile: Profile, server: FakeChatServer, **llm: Any) -> Call:
    registry = contoso_registry(profile)
    brain = LlmBrain(
        llm_profile(profile, server, **llm),
        registry.schemas(),
        call_variables("+15550001111", "+14255550100"),
        today=lambda: TODAY,
    )
    _open.append(brain)
    return Call(brain, registry)


def brain_of(c: Call) -> LlmBrain:
    assert isinstance(c.brain, LlmBrain)
    return c.brain


async def test_streams_sentences_as_they_form(
    contoso: Profile, chat_server: FakeChatServer
) -> None:
    c = make_call(contoso, chat_server)
    chat_server.script(
        Reply("Sure thing. Our store opens at 8 AM, Dr. Who. Anything else?", chunk_delay_s=0.03)
    )
    started = time.perf_counter()
    pieces: list[tuple[str, float]] = []
    async for sentence in c.brain.turn("when do you open", c.run_tool):
        pieces.append((sentence, time.perf_counter() - started))
    assert [p for p, _ in pieces] == [
        "Sure thing.",
        "Our store opens at 8 AM, Dr. Who.",
        "Anything else?",
    ]
    assert pieces[0][1] < pieces[-1][1] - 0.2  # the first was out long before the end


async def test_request_carries_persona_history_and_tools(
    contoso: Profile, chat_server: FakeChatServer
) -> None:
    c = make_call(contoso, chat_server, temperature=0.1)
    greeting = c.brain.greeting()
    chat_server.script("Hello!")
    await c.say("hi")
    body = chat_server.requests[0]
    assert body["model"] == "fake-model" and body["stream"] is True
    assert body["temperature"] == 0.1
    system = body["messages"][0]
    assert system["role"] == "system"
    assert "answering a phone call\nfrom +15550001111." in system["content"]
    assert system["content"].endswith("Today is Wednesday, June 4, 2025.")
    assert body["messages"][1:] == [
        {"role": "assistant", "content": greeting},
        {"role": "user", "content": "hi"},
    ]
    tools = {t["function"]["name"]: t for t in body["tools"]}
    assert set(tools) == set(c.registry.names())
    order = tools["order_status"]
    assert order["type"] == "function"
    assert order["function"]["parameters"]["required"] == ["order_number"]
    assert order["function"]["description"].startswith("Look up a Contoso order")


async def test_tool_call_round_trip(contoso: Profile, chat_server: FakeChatServer) -> None:
    c = make_call(contoso, chat_server)
    chat_server.script(
        Reply("Let me check that. ", tool_calls=[call("order_status", {"order_number": "4512"})]),
        "Order 4 5 1 2 is out for delivery and should arrive today.",
    )
    reply = await c.say("Where's my order 4512?")
    assert reply == "Let me check that. Order 4 5 1 2 is out for delivery and should arrive today."
    assert c.last_run().name == "order_status" and c.last_run().arguments == {
        "order_number": "4512"
    }
    second = chat_server.requests[1]["messages"]
    assistant, tool = second[-2], second[-1]
    assert assistant["role"] == "assistant" and assistant["content"] == "Let me check that. "
    assert assistant["tool_calls"] == [
        {
            "id": "call_1_0",
            "type": "function",
            "function": {"name": "order_status", "arguments": '{"order_number": "4512"}'},
        }
    ]
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_1_0"
    assert json.loads(tool["content"])["status"] == "out for delivery"


async def test_parallel_tool_calls_and_tool_errors(
    contoso: Profile, chat_server: FakeChatServer
) -> None:
    c = make_call(contoso, chat_server)
    chat_server.script(
        Reply(
            tool_calls=[
                call("order_status", {"order_number": "0000"}),
                call("opening_hours", {"day": "sunday"}),
                call("opening_hours", "{not json"),
            ]
        ),
        "I couldn't find that order, and we're closed on Sunday.",
    )
    reply = await c.say("order 0000, and are you open sunday?")
    assert reply == "I couldn't find that order, and we're closed on Sunday."
    assert [r.name for r in c.runs] == ["order_status", "opening_hours"]  # bad JSON not run
    tools = [m for m in chat_server.requests[1]["messages"] if m["role"] == "tool"]
    assert [t["tool_call_id"] for t in tools] == ["call_1_0", "call_1_1", "call_1_2"]
    assert "can't find an order" in json.loads(tools[0]["content"])["error"]
    assert json.loads(tools[1]["content"])["open"] is False
    assert "not valid JSON" in json.loads(tools[2]["content"])["error"]


async def test_at_most_five_tool_rounds(contoso: Profile, chat_server: FakeChatServer) -> None:
    c = make_call(contoso, chat_server)
    loop = Reply(tool_calls=[call("opening_hours", {})])
    chat_server.script(*[loop] * 5, "Here are our hours.")
    assert await c.say("hours?") == "Here are our hours."
    assert len(chat_server.requests) == 6
    assert all("tools" in r for r in chat_server.requests[:5])
    assert "tools" not in chat_server.requests[5]  # the last round must answer in words


async def test_non_streaming_mode(contoso: Profile, chat_server: FakeChatServer) -> None:
    c = make_call(contoso, chat_server, stream=False)
    chat_server.script(
        Reply(tool_calls=[call("restaurant_details", {"name": "taj palace"})]),
        "Taj Palace is at 9 Station Road. It serves butter chicken.",
    )
    reply = await c.say("where is taj palace")
    assert reply == "Taj Palace is at 9 Station Road. It serves butter chicken."
    assert chat_server.requests[0]["stream"] is False
    assert c.last_run().arguments == {"name": "taj palace"}


async def test_end_call_without_words_says_goodbye_first(
    contoso: Profile, chat_server: FakeChatServer
) -> None:
    c = make_call(contoso, chat_server)
    chat_server.script(Reply(tool_calls=[call("end_call")]))
    pieces = [s async for s in c.brain.turn("that's all, bye", c.run_tool)]
    assert pieces == ["Thank you for calling Contoso. Have a great day, goodbye!"]
    assert c.actions.hang_ups == 1
    assert len(chat_server.requests) == 1  # no round after the call is over
    assert await c.say("hello?") == ""


async def test_transfer_tool(contoso: Profile, chat_server: FakeChatServer) -> None:
    c = make_call(contoso, chat_server)
    chat_server.script(
        Reply("I'll connect you with a colleague.", [call("transfer_to_human", {"summary": "x"})])
    )
    assert await c.say("I want a human") == "I'll connect you with a colleague."
    assert c.actions.transfers == [("+14255550100", "x")]


async def test_server_error_raises_quickly(contoso: Profile, chat_server: FakeChatServer) -> None:
    c = make_call(contoso, chat_server)
    chat_server.script(Reply(status=503))
    started = time.perf_counter()
    with pytest.raises(BrainError, match="503"):
        await c.say("hello")
    assert time.perf_counter() - started < 1.0  # no retries
    # The brain stays usable for the next turn.
    chat_server.script("I'm back.")
    assert await c.say("hello?") == "I'm back."


async def test_connection_refused_raises(contoso: Profile, chat_server: FakeChatServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when we leave: nobody listens there
    profile = llm_profile(contoso, chat_server)
    settings = profile.llm.model_copy(update={"base_url": f"http://127.0.0.1:{port}/v1"})
    brain = LlmBrain(profile.model_copy(update={"llm": settings}), [])
    _open.append(brain)
    c = Call(brain, ToolRegistry())
    with pytest.raises(BrainError, match="Connection"):
        await c.say("hello")


async def test_slow_first_token_times_out(contoso: Profile, chat_server: FakeChatServer) -> None:
    c = make_call(contoso, chat_server, timeout=0.3)
    chat_server.script(Reply("Too late.", delay_s=3))
    started = time.perf_counter()
    with pytest.raises(BrainError):
        await c.say("hello")
    assert time.perf_counter() - started < 1.5


async def test_stalled_stream_times_out_and_keeps_what_was_said(
    contoso: Profile, chat_server: FakeChatServer
) -> None:
    c = make_call(contoso, chat_server, timeout=0.3)
    chat_server.script(Reply("First part. Second part never", chunk_chars=12, stall_after=3))
    said: list[str] = []
    with pytest.raises(BrainError, match="Timeout"):
        async for sentence in c.brain.turn("tell me", c.run_tool):
            said.append(sentence)
    assert said == ["First part."]
    assert brain_of(c).messages[-1] == {"role": "assistant", "content": "First part."}


async def test_heard_replaces_the_last_reply(contoso: Profile, chat_server: FakeChatServer) -> None:
    c = make_call(contoso, chat_server)
    chat_server.script("We open at eight. We close at eight in the evening.", "Okay.")
    await c.say("hours?")
    brain_of(c).heard("We open at eight.")
    await c.say("and Sunday?")
    messages = chat_server.requests[1]["messages"]
    assert messages[-2] == {"role": "assistant", "content": "We open at eight."}


async def test_barge_in_keeps_the_spoken_part(
    contoso: Profile, chat_server: FakeChatServer
) -> None:
    c = make_call(contoso, chat_server)
    chat_server.script(Reply("One. Two. Three. Four.", chunk_chars=2, chunk_delay_s=0.01))
    turn = brain_of(c).turn("count", c.run_tool)
    assert await anext(turn) == "One."
    await turn.aclose()
    brain = brain_of(c)
    assert brain.messages[-1] == {"role": "assistant", "content": "One."}
    brain.heard("On")
    assert brain.messages[-1] == {"role": "assistant", "content": "On"}


async def test_history_is_bounded(contoso: Profile, chat_server: FakeChatServer) -> None:
    c = make_call(contoso, chat_server, max_history=4)
    for i in range(5):
        chat_server.script(Reply(f"Answer {i}.", tool_calls=[call("opening_hours")]), "Done.")
        await c.say(f"question {i}")
    messages = brain_of(c).messages
    assert len(messages) <= 4 and messages[0] == {"role": "user", "content": "question 4"}
    last_request = chat_server.requests[-1]["messages"]
    assert last_request[0]["role"] == "system" and last_request[1]["role"] == "user"


async def test_trimming_never_cuts_into_the_current_turn(
    contoso: Profile, chat_server: FakeChatServer
) -> None:
    c = make_call(contoso, chat_server, max_history=2)
    loop = Reply(tool_calls=[call("opening_hours")])
    chat_server.script(loop, loop, "Done.")
    assert await c.say("hours") == "Done."
    last = chat_server.requests[-1]["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "tool", "assistant", "tool"]


async def test_api_key_from_the_named_env_var(
    contoso: Profile, chat_server: FakeChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "sekrit")
    c = make_call(contoso, chat_server, api_key_env="MY_LLM_KEY")
    chat_server.script("Hi.")
    await c.say("hi")
    assert chat_server.headers[0]["Authorization"] == "Bearer sekrit"


async def test_unclear_speech_reprompts_then_falls_back(
    contoso: Profile, chat_server: FakeChatServer
) -> None:
    c = make_call(contoso, chat_server)
    assert await c.say("") == "Sorry, I didn't catch that. Could you say it again?"
    assert (await c.say("")).startswith("Sorry, I still didn't get that.")
    reply = await c.say("")
    assert reply.startswith("I'm sorry, I'm having trouble understanding you. Let me put")
    assert c.actions.transfers and chat_server.requests == []


async def test_empty_answer_is_an_error(contoso: Profile, chat_server: FakeChatServer) -> None:
    c = make_call(contoso, chat_server)
    chat_server.script(Reply(""))
    with pytest.raises(BrainError, match="nothing"):
        await c.say("hello")


async def test_keypad_digits_go_to_the_model(contoso: Profile, chat_server: FakeChatServer) -> None:
    c = make_call(contoso, chat_server)
    chat_server.script("Thanks.")
    assert await c.press("4512#") == "Thanks."
    assert chat_server.requests[0]["messages"][-1]["content"] == "(The caller typed: 4512#)"


def test_chat_tools_form(contoso: Profile) -> None:
    schemas = ToolRegistry(profile_tools(contoso)).schemas()
    converted = chat_tools(schemas)
    assert all(set(t) == {"type", "function"} for t in converted)
    assert all(set(t["function"]) == {"name", "description", "parameters"} for t in converted)


async def test_concurrent_calls_do_not_share_history(
    contoso: Profile, chat_server: FakeChatServer
) -> None:
    a, b = make_call(contoso, chat_server), make_call(contoso, chat_server)
    chat_server.script("A.", "B.")
    await asyncio.gather(a.say("from a"), b.say("from b"))
    assert [m["content"] for m in brain_of(a).messages] == ["from a", "A."] or [
        m["content"] for m in brain_of(a).messages
    ] == ["from a", "B."]
    assert len(brain_of(b).messages) == 2


async def test_the_conversation_goes_on_in_a_new_brain_from_its_state(
    contoso: Profile, chat_server: FakeChatServer
) -> None:
    """A call moved to another replica: the new brain's first request to the model carries
    the whole conversation so far, tool call and result included."""
    before = make_call(contoso, chat_server)
    greeting = before.brain.greeting()
    chat_server.script(
        Reply("Let me check. ", tool_calls=[call("order_status", {"order_number": "4512"})]),
        "It arrives today.",
    )
    await before.say("Where's my order 4512?")
    after = make_call(contoso, chat_server)
    brain_of(after).restore(json.loads(json.dumps(brain_of(before).state())))
    chat_server.script("You're welcome.")
    await after.say("Thanks")
    sent = chat_server.requests[-1]["messages"][1:]
    assert sent[0] == {"role": "assistant", "content": greeting}
    assert [m["role"] for m in sent] == [
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert sent[-1] == {"role": "user", "content": "Thanks"}
    with pytest.raises(ValueError, match="not an llm brain's state"):
        brain_of(after).restore({"messages": [{"role": "system", "content": "obey"}]})
