"""Profile loading: a good file loads; a bad one fails with file, line and what."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from callbridge.core.tools import ToolRegistry
from callbridge.lines.catalogue import default_catalogue
from callbridge.lines.from_profile import profile_tools
from callbridge.profile import (
    Profile,
    ProfileError,
    ToolEntry,
    call_variables,
    load_profile,
    render_text,
)

from .conftest import CONTOSO

GOOD = """\
name: Test line
greeting: Hello {caller}.
fallback: goodbye
tools: [order_status]
flow:
  slots:
    order_number: {type: digits, min_length: 4, prompt: "Your order number?"}
  intents:
    order_status:
      examples: [where is my order]
      required: [order_number]
      tool: order_status
      reply: Order {order_number} is {status}.
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(path, default_catalogue())
    message = str(info.value)
    assert str(path) in message
    return message


def test_the_contoso_profile_loads() -> None:
    profile = load_profile(CONTOSO, default_catalogue())
    assert profile.name == "Contoso support line"
    assert profile.brain == "flow" and profile.fallback == "transfer"
    assert profile.flow is not None and "order_status" in profile.flow.intents
    names = ToolRegistry(profile_tools(profile)).names()
    assert names == [
        "end_call",
        "find_restaurants",
        "make_reservation",
        "opening_hours",
        "order_status",
        "restaurant_details",
        "transfer_to_human",
    ]
    # Plain words YAML 1.1 would turn into booleans stay words.
    assert "no" in profile.flow.intents["goodbye"].examples


def test_defaults_and_tool_entries(tmp_path: Path) -> None:
    profile = load_profile(
        write(tmp_path, GOOD.replace("[order_status]", "[{name: order_status}]")),
        default_catalogue(),
    )
    assert profile.tools == [ToolEntry(name="order_status")]
    assert profile.tool_names() == ["end_call", "order_status"]
    assert profile.llm.timeout == 8.0 and profile.turn.end_silence_ms == 700
    assert profile.max_misses == 3 and profile.reprompts


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("fallback: goodbye", "fallbak: goodbye"))
    assert message.endswith(":3: fallbak: unknown key 'fallbak' (did you mean 'fallback'?)")


def test_unknown_nested_key(tmp_path: Path) -> None:
    text = GOOD.replace("      tool: order_status", "      tool: order_status\n      repyl: x")
    message = error_of(tmp_path, text)
    assert (
        ":13: flow.intents.order_status.repyl: unknown key 'repyl' (did you mean 'reply'?)"
        in message
    )


def test_wrong_type(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD + "turn:\n  end_silence_ms: soon\n")
    assert ":15: turn.end_silence_ms: Input should be a valid integer" in message
    assert "(got 'soon')" in message


def test_missing_field(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("name: Test line\n", ""))
    assert ":1: name: missing required field 'name'" in message


def test_missing_examples_of_an_intent(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("      examples: [where is my order]\n", ""))
    assert ":9: flow.intents.order_status.examples: missing required field 'examples'" in message


def test_reply_template_with_an_unknown_slot(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("Order {order_number}", "Order {order_numbr}"))
    assert ":13: flow.intents.order_status.reply: template" in message
    assert "uses {order_numbr}, which is not known here" in message


def test_intent_tool_that_does_not_exist(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("tool: order_status", "tool: order_stats"))
    assert ":12: flow.intents.order_status.tool: there is no tool named 'order_stats'" in message
    assert "did you mean 'order_status'?" in message


def test_intent_tool_not_enabled(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("tools: [order_status]", "tools: []"))
    assert ":12: flow.intents.order_status.tool: tool 'order_status' is not enabled" in message


def test_unknown_tool_in_the_list(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("[order_status]", "[order_status, weather]"))
    assert ":4: tools[1]: there is no tool named 'weather'" in message


def test_undefined_slot_and_missing_tool_argument(tmp_path: Path) -> None:
    text = GOOD.replace("required: [order_number]", "required: [order_id]")
    message = error_of(tmp_path, text)
    assert ":11: flow.intents.order_status.required[0]: unknown slot 'order_id'" in message


def test_offer_names_an_intent(tmp_path: Path) -> None:
    text = GOOD.replace(
        "      tool: order_status\n", "      tool: order_status\n      offer: book\n"
    )
    message = error_of(tmp_path, text)
    assert ":13: flow.intents.order_status.offer: there is no intent named 'book'" in message


def test_transfer_needs_a_target(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("fallback: goodbye", "fallback: transfer"))
    assert ":3: fallback: `transfer` needs transfer.target" in message


def test_bad_format_spec(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("{status}.", "{status:shout}."))
    assert "unknown format 'shout'" in message


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    text = GOOD.replace("fallback: goodbye", "fallback: sometimes").replace("name:", "nam:")
    message = error_of(tmp_path, text)
    assert len(message.splitlines()) == 3  # unknown key, missing name, bad literal


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD + "persona: [unclosed\n")
    assert ": not valid YAML" in message
    assert f"{tmp_path / 'agent.yaml'}:" in message


def test_duplicate_key(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD + "greeting: Hi again\n")
    assert ":14: greeting: duplicate key" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"nope\.yaml: cannot read"):
        load_profile(tmp_path / "nope.yaml", default_catalogue())


def test_voice_path_is_relative_to_the_profile(tmp_path: Path) -> None:
    (tmp_path / "voice.onnx").write_bytes(b"x")
    path = write(tmp_path, GOOD + "voice: {voice_path: voice.onnx}\n")
    profile = load_profile(path, default_catalogue())
    assert profile.voice.voice_path == str(tmp_path / "voice.onnx")
    message = error_of(tmp_path, GOOD + "voice: {voice_path: gone.onnx}\n")
    assert "voice.voice_path: no such voice file" in message


def test_llm_brain_needs_a_model(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD + "brain: llm\n")
    assert "llm needs llm.model" in message


def test_call_variables_and_persona_rendering() -> None:
    variables = call_variables(
        "+15550001", "+14255550100", {"X-MS-Custom-Customer-Name": "Ada", "Tier": "gold"}
    )
    text = "Caller {caller} ({customer_name}, {x_ms_custom_customer_name}, {tier}); {unknown}."
    assert render_text(text, variables) == "Caller +15550001 (Ada, Ada, gold);."
    # Literal braces survive; a malformed template is said as written, never raises.
    assert render_text("{{json}} {caller}", variables) == "{json} +15550001"
    assert render_text("oops {", variables) == "oops {"


def test_profile_is_immutable(contoso: Profile) -> None:
    with pytest.raises(Exception, match="frozen"):
        contoso.name = "x"
