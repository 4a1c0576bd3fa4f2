"""The flow brain's mechanics, on a small made-up profile with test tools."""

from __future__ import annotations

import json
from typing import Any

import pytest

from callbridge.agent.local.brain import make_brain
from callbridge.agent.local.brain.base import Brain
from callbridge.agent.local.brain.flow import FlowBrain
from callbridge.agent.local.brain.llm import LlmBrain
from callbridge.core.call_info import CallInfo
from callbridge.core.tools import ToolContext, ToolRegistry, ToolSpec, builtin_tools
from callbridge.lines.catalogue import default_catalogue
from callbridge.profile import Profile, parse_profile

from .conftest import Call

PROFILE = """\
name: Parcel line
greeting: Parcel line, {caller}.
fallback: goodbye
reprompts: ["Pardon?", "Say again?"]
max_misses: 3
goodbye: Bye now.
transfer: {target: "+15550100"}
tools: [order_status]
flow:
  slots:
    order_number: {type: digits, min_length: 4, max_length: 6, prompt: "Which parcel?"}
  intents:
    order_status:
      examples: [where is my parcel, "track parcel {order_number}"]
      required: [order_number]
      tool: order_status
      confirm: Parcel {order_number}, right?
      reply: Parcel {order_number} is {status}. It left {note}.
      errors:
        gone: "Sorry, {error}"
    human:
      examples: [a person please]
      action: transfer
    bye:
      examples: [bye]
      action: goodbye
      reply: See you.
"""


def tool(name: str, result: Any) -> ToolSpec:
    async def handler(args: dict[str, Any], ctx: ToolContext) -> Any:
        if isinstance(result, Exception):
            raise result
        return result

    return ToolSpec(
        name,
        "test",
        {
            "type": "object",
            "properties": {"order_number": {"type": "string"}},
            "required": ["order_number"],
        },
        handler,
    )


def make(result: Any) -> Call:
    profile = parse_profile(PROFILE, default_catalogue())
    registry = ToolRegistry([*builtin_tools("+15550100"), tool("order_status", result)])
    return Call(FlowBrain(profile), registry)


async def test_confirm_then_reply_sentence_by_sentence() -> None:
    call = make({"status": "on its way", "note": "Denver"})
    assert await call.say("where's my parcel") == "Which parcel?"
    assert await call.say("1 2 3 4") == "Parcel 1 2 3 4, right?"
    pieces = [s async for s in call.brain.turn("yes", call.run_tool)]
    assert pieces == ["Parcel 1 2 3 4 is on its way.", "It left Denver."]
    assert call.last_run().arguments == {"order_number": "1234"}


async def test_no_then_a_new_value_confirms_again() -> None:
    call = make({"status": "here", "note": "x"})
    await call.say("track parcel 1234")
    assert await call.say("no") == "Okay. What would you like to change?"
    assert await call.say("it's 5678") == "Parcel 5 6 7 8, right?"
    await call.say("correct")
    assert call.last_run().arguments == {"order_number": "5678"}


async def test_cancel_drops_the_task() -> None:
    call = make({"status": "here", "note": "x"})
    await call.say("track parcel 1234")
    reply = await call.say("never mind")
    assert reply.startswith("Okay, I've cancelled that.")
    assert call.runs == []


async def test_a_tool_error_with_a_reason_uses_its_reply() -> None:
    call = make({"error": "that parcel was returned.", "reason": "gone"})
    await call.say("track parcel 1234")
    assert await call.say("yes") == "Sorry, that parcel was returned."


@pytest.mark.parametrize(
    "result",
    [
        {"error": "database down"},  # a tool's own error without a reason
        RuntimeError("boom"),  # the registry turns an exception into an error
    ],
)
async def test_other_tool_errors_get_the_generic_apology(result: Any) -> None:
    call = make(result)
    await call.say("track parcel 1234")
    assert await call.say("yes") == "Sorry, I couldn't get that done just now."
    # ...and the dialog goes on.
    assert await call.say("where is my parcel") == "Which parcel?"


async def test_a_runner_that_raises_is_an_error_too() -> None:
    call = make({"status": "x", "note": "y"})

    async def broken(name: str, args: dict[str, Any]) -> str:
        raise ConnectionError("session gone")

    await call.say("track parcel 1234")
    reply = " ".join([s async for s in call.brain.turn("yes", broken)])
    assert reply == "Sorry, I couldn't get that done just now."


async def test_reprompts_cycle_then_goodbye() -> None:
    call = make({})
    assert await call.say("") == "Pardon?"
    assert await call.say("purple monkey dishwasher") == "Say again?"
    assert await call.say("where is my parcel") == "Which parcel?"  # understood: count resets
    assert await call.say("") == "Sorry, I didn't catch that. Which parcel?"
    assert await call.say("hmm") == "Sorry, I didn't catch that. Which parcel?"
    reply = await call.say("")
    assert reply == "I'm sorry, I'm having trouble understanding you. Bye now."
    assert call.actions.hang_ups == 1


async def test_transfer_and_a_failed_transfer() -> None:
    call = make({})
    reply = await call.say("a person please")
    assert reply == "Let me put you through to a colleague. One moment, please."
    assert call.actions.transfers[0][0] == "+15550100"

    call = make({})

    async def no_transfer(name: str, args: dict[str, Any]) -> str:
        if name == "transfer_to_human":
            return '{"error": "nobody there"}'
        return await call.run_tool(name, args)

    pieces = [s async for s in call.brain.turn("a person please", no_transfer)]
    assert pieces[-2:] == ["I'm sorry, something went wrong on my side.", "Bye now."]
    assert call.actions.hang_ups == 1


async def test_goodbye_intent_says_its_reply_then_hangs_up() -> None:
    call = make({})
    assert await call.say("bye!") == "See you."
    assert call.actions.hang_ups == 1


async def test_keypad_fills_the_pending_slot_or_starts_the_only_intent() -> None:
    call = make({"status": "here", "note": "x"})
    assert await call.press("4321#") == "Parcel 4 3 2 1, right?"
    call = make({"status": "here", "note": "x"})
    await call.say("where is my parcel")
    assert await call.press("12#") == "Sorry, I didn't catch that. Which parcel?"  # too short
    assert await call.press("123456#") == "Parcel 1 2 3 4 5 6, right?"


async def test_heard_keeps_only_what_was_heard() -> None:
    call = make({"status": "here", "note": "Denver"})
    brain = call.brain
    assert isinstance(brain, FlowBrain)
    await call.say("track parcel 1234")
    await call.say("yes")
    brain.heard("Parcel 1 2 3 4 is")
    assert brain.history[-1] == ("agent", "Parcel 1 2 3 4 is")
    brain.heard("")
    assert brain.history[-1] == ("caller", "yes")


async def test_interrupted_reply_is_still_in_the_history() -> None:
    call = make({"status": "here", "note": "Denver"})
    brain = call.brain
    assert isinstance(brain, FlowBrain)
    await call.say("track parcel 1234")
    turn = brain.turn("yes", call.run_tool)
    assert await anext(turn) == "Parcel 1 2 3 4 is here."
    await turn.aclose()  # barge-in: the agent stops reading
    assert brain.history[-1] == ("agent", "Parcel 1 2 3 4 is here.")


def test_make_brain_picks_the_brain_and_fills_call_variables() -> None:
    profile = parse_profile(PROFILE, default_catalogue())
    registry = ToolRegistry(builtin_tools(None))
    brain: Brain = make_brain(profile, registry, CallInfo("c", "+1555", "+1425", 16000))
    assert isinstance(brain, FlowBrain)
    assert brain.greeting() == "Parcel line, +1555."
    assert brain.fallback == "goodbye" and brain.apology().startswith("I'm sorry")
    llm: Profile = profile.model_copy(
        update={"brain": "llm", "llm": profile.llm.model_copy(update={"model": "m"})}
    )
    assert isinstance(make_brain(llm, registry), LlmBrain)  # no request until a turn


async def test_the_dialog_goes_on_in_a_new_brain_from_its_state() -> None:
    """A call moved to another replica: a fresh brain restored from the old one's state
    (through JSON, as the directory carries it) is at the same question, with its slots."""
    call = make({"status": "on its way", "note": "Denver"})
    await call.say("track parcel 1234")  # asks to confirm 1 2 3 4
    moved = make({"status": "on its way", "note": "Denver"})
    assert isinstance(call.brain, FlowBrain) and isinstance(moved.brain, FlowBrain)
    moved.brain.restore(json.loads(json.dumps(call.brain.state())))
    assert await moved.say("yes") == "Parcel 1 2 3 4 is on its way. It left Denver."
    assert moved.last_run().arguments == {"order_number": "1234"}
    assert [who for who, _ in moved.brain.history] == ["caller", "agent", "caller", "agent"]


def test_state_of_another_shape_is_refused_and_unknown_names_left_out() -> None:
    brain = make({}).brain
    assert isinstance(brain, FlowBrain)
    with pytest.raises(ValueError, match="not a flow brain's state"):
        brain.restore({"memory": {"order_number": "1234"}})
    brain.restore({"active": {"name": "renamed_intent"}, "memory": {"colour": ["red", "red"]}})
    assert brain.state()["active"] is None and brain.state()["memory"] == {}
