"""What ties the parts of a well-formed profile together: the tools it names exist and are
enabled, intents use defined slots and pass the arguments their tool takes, templates only
name slots or tool result fields that will be there.

Which tools exist is passed in as a `ToolCatalogue` (built by callbridge/lines/catalogue.py),
so the profile depends on no tool implementation.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from callbridge.core import template
from callbridge.core.tools import ToolSpec
from callbridge.profile.schema import FlowSettings, IntentSpec, Profile, ToolEntry
from callbridge.profile.yaml_lines import KeyPath

CALL_FIELDS = frozenset({"caller", "callee"})


@dataclass(frozen=True)
class ToolCatalogue:
    """The tools a profile may name, and what the checks need to know of them."""

    specs: Mapping[str, ToolSpec]  # every tool a profile may list, by name
    # The top-level fields of a tool's result; a tool missing here may return anything, so
    # reply templates after it are not checked against its fields.
    result_fields: Mapping[str, frozenset[str]]
    # What is wrong with a user tool entry (`python` or `http`), e.g. "cannot load m:f: ...",
    # or None; reported as "tool NAME: <problem>".
    check_user_tool: Callable[[ToolEntry], str | None]


def check(profile: Profile, catalogue: ToolCatalogue) -> list[tuple[KeyPath, str]]:
    """What ties the parts of a (well-formed) profile together: (path, problem) pairs."""
    out: list[tuple[KeyPath, str]] = []
    known = dict(catalogue.specs)
    for entry in profile.tools:
        if isinstance(entry, ToolEntry) and (entry.python or entry.http):
            # A user tool stands in for itself here; it is built (and checked) below.
            known[entry.name] = ToolSpec(
                entry.name, entry.description, entry.parameters or {}, lambda a, c: None
            )
    enabled = set(profile.tool_names())
    for i, entry in enumerate(profile.tools):
        name = entry if isinstance(entry, str) else entry.name
        if isinstance(entry, ToolEntry) and (entry.python or entry.http):
            problem = _check_user_tool(entry, catalogue)
            if problem:
                out.append((("tools", i), problem))
            continue
        if name not in known:
            out.append((("tools", i), _no_tool(name, known)))
        elif name == "transfer_to_human" and not profile.transfer.target:
            out.append((("tools", i), "transfer_to_human needs transfer.target"))
    if profile.brain == "llm" and not profile.llm.model:
        out.append((("llm",), "brain: llm needs llm.model (the model or deployment name)"))
    if profile.brain == "flow" and profile.flow is None:
        out.append((("brain",), "brain: flow needs a `flow:` section with intents"))
    if profile.fallback == "transfer" and not profile.transfer.target:
        out.append((("fallback",), "`transfer` needs transfer.target (who to call)"))
    voice = profile.voice.voice_path
    if voice and not Path(voice).is_file():
        out.append((("voice", "voice_path"), f"no such voice file: {voice}"))
    if profile.flow is not None:
        out += _check_flow(profile, profile.flow, known, enabled, catalogue.result_fields)
    return out


def _check_user_tool(entry: ToolEntry, catalogue: ToolCatalogue) -> str | None:
    if entry.parameters is not None and entry.parameters.get("type") != "object":
        return f"tool {entry.name}: parameters must be a JSON schema with type: object"
    problem = catalogue.check_user_tool(entry)
    return f"tool {entry.name}: {problem}" if problem else None


def _no_tool(name: str, known: Mapping[str, ToolSpec]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known))}"
    return f"there is no tool named {name!r} ({hint})"


def _check_flow(
    profile: Profile,
    flow: FlowSettings,
    known: Mapping[str, ToolSpec],
    enabled: set[str],
    result_fields_of: Mapping[str, frozenset[str]],
) -> list[tuple[KeyPath, str]]:
    out: list[tuple[KeyPath, str]] = []
    slot_names = set(flow.slots)
    for name, slot in flow.slots.items():
        for key in ("prompt", "reprompt"):
            text = getattr(slot, key)
            problem = text and template.check(text, slot_names | CALL_FIELDS)
            if problem:
                out.append((("flow", "slots", name, key), problem))
    for name, intent in flow.intents.items():
        here: KeyPath = ("flow", "intents", name)
        for key in ("required", "optional"):
            for i, slot_name in enumerate(getattr(intent, key)):
                if slot_name not in slot_names:
                    defined = ", ".join(sorted(slot_names)) or "none"
                    msg = f"unknown slot {slot_name!r} (flow.slots defines: {defined})"
                    out.append(((*here, key, i), msg))
        own = set(intent.slots())
        if intent.retry_slot and intent.retry_slot not in own:
            out.append(((*here, "retry_slot"), f"{intent.retry_slot!r} is not a slot of {name}"))
        if intent.offer and intent.offer not in flow.intents:
            out.append(((*here, "offer"), f"there is no intent named {intent.offer!r}"))
        if intent.action == "transfer" and not profile.transfer.target:
            out.append(((*here, "action"), "action: transfer needs transfer.target"))
        result_fields: set[str] | None = set()
        if intent.tool:
            fields = result_fields_of.get(intent.tool)
            result_fields = set(fields) if fields is not None else None
            if intent.tool not in known:
                out.append(((*here, "tool"), _no_tool(intent.tool, known)))
            elif intent.tool not in enabled:
                msg = f"tool {intent.tool!r} is not enabled: add it to `tools`"
                if intent.tool == "transfer_to_human":
                    msg = "transfer_to_human needs transfer.target"
                out.append(((*here, "tool"), msg))
            elif all(slot in slot_names for slot in intent.slots()):
                out += _check_args(here, intent, known[intent.tool])
        for arg, slot_name in intent.args.items():
            if slot_name not in own:
                out.append(((*here, "args", arg), f"{slot_name!r} is not a slot of {name}"))
        texts = {"before": intent.before, "confirm": intent.confirm, "reply": intent.reply}
        for key, text in texts.items():
            allowed = own | CALL_FIELDS
            if key == "reply" and result_fields is not None:
                allowed = allowed | result_fields
            problem = text and template.check(
                text, None if key == "reply" and result_fields is None else allowed
            )
            if problem:
                out.append(((*here, key), problem))
        for reason, text in intent.errors.items():
            allowed = own | CALL_FIELDS | {"error", "reason"}
            problem = template.check(text, allowed)
            if problem:
                out.append(((*here, "errors", reason), problem))
    return out


def _check_args(here: KeyPath, intent: IntentSpec, spec: ToolSpec) -> list[tuple[KeyPath, str]]:
    """Each argument the intent passes exists, and each one the tool needs is passed."""
    out: list[tuple[KeyPath, str]] = []
    props = set(spec.parameters.get("properties", {}))
    renamed = {slot: arg for arg, slot in intent.args.items()}
    passed = {renamed.get(slot, slot) for slot in intent.slots()}
    for arg in intent.args:
        if arg not in props:
            out.append(((*here, "args", arg), f"tool {spec.name} has no argument {arg!r}"))
    for slot in intent.slots():
        arg = renamed.get(slot, slot)
        if slot not in renamed and arg not in props:
            msg = f"tool {spec.name} has no argument {arg!r} (map the slot in `args`)"
            out.append(((*here, "optional" if slot in intent.optional else "required"), msg))
    required_args = {renamed.get(s, s) for s in intent.required}
    for arg in spec.parameters.get("required", []):
        if arg not in required_args:
            where = "optional" if arg in passed else "required"
            msg = f"tool {spec.name} needs argument {arg!r}: make it a required slot"
            out.append(((*here, where), msg))
    return out
