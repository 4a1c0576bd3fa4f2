"""Agent profiles: one YAML file with the persona, greeting, tools and dialog of an agent.

`load_profile(path)` validates the file completely at start, so a typo fails the service
before the first call instead of during one: every problem is reported as
`file:line: where: what`, with the line of the offending key (the YAML is composed to
nodes first to keep their marks). Beyond the shape of the file it checks what ties the
parts together: tools exist and are enabled, intents use defined slots, templates only
name slots or tool result fields that will be there.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from callbridge.agent.local.brain import template
from callbridge.agent.realtime.options import RealtimeOptions
from callbridge.call.policy import CallPolicy
from callbridge.call.tools import ToolSpec, builtin_tools
from callbridge.demo.tools import RESULT_FIELDS, demo_tools

BUILTIN_TOOLS = ("end_call", "transfer_to_human")
BUILTIN_RESULT_FIELDS = frozenset({"ok", "note"})
CALL_FIELDS = frozenset({"caller", "callee"})


class ProfileError(Exception):
    """The profile file is unreadable or wrong; the message says where and what."""

    def __init__(self, file: str, problems: Sequence[Problem]) -> None:
        self.file = file
        self.problems = list(problems)
        super().__init__("\n".join(p.describe(file) for p in self.problems))


@dataclass(frozen=True)
class Problem:
    line: int | None
    where: str  # dotted path of the key, "" for the whole file
    message: str

    def describe(self, file: str) -> str:
        at = f"{file}:{self.line}" if self.line else file
        return f"{at}: {self.where}: {self.message}" if self.where else f"{at}: {self.message}"


# --- the schema --------------------------------------------------------------------------


class _Model(BaseModel):
    # Unknown keys are errors (a typo must not silently become a default), and a phone
    # number written without quotes (+14255550100, a YAML int) still reads as text.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)


class LlmSettings(_Model):
    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = ""
    api_key_env: str | None = "OPENAI_API_KEY"
    temperature: float = Field(default=0.3, ge=0, le=2)
    timeout: float = Field(default=8.0, gt=0, le=120)
    stream: bool = True
    max_history: int = Field(default=30, ge=2, le=500)  # messages besides the system prompt
    max_tool_rounds: int = Field(default=5, ge=0, le=20)
    max_tokens: int | None = Field(default=None, ge=1)


class VoiceSettings(_Model):
    voice_path: str | None = None  # a Piper .onnx; relative to the profile file
    length_scale: float = Field(default=1.0, ge=0.3, le=3.0)


class TurnSettings(_Model):
    end_silence_ms: int = Field(default=700, ge=100, le=5000)
    barge_in_min_ms: int = Field(default=300, ge=0, le=3000)


class TransferSettings(_Model):
    target: str | None = None  # phone number (E.164) or ACS user id
    announce: str = "Let me put you through to a colleague. One moment, please."
    # cold: hand the call over (the agent leaves at once). warm: add the human, let the
    # agent brief them, then the agent leaves (or stays on, muted, with `stay_muted`).
    mode: Literal["cold", "warm"] = "cold"
    queues: dict[str, str] = {}  # queue name -> number; the tool's `queue` argument
    brief: str = "Hello, I have a caller on the line. {summary}"  # warm: said to the human
    stay_muted: bool = False
    ring_timeout_s: int = Field(default=30, ge=5, le=180)
    failed: str = (
        "I'm sorry, I couldn't reach a colleague just now. I can keep helping you, "
        "or you can call back later. What would you like to do?"
    )


class SilenceSettings(_Model):
    """What happens when the caller says nothing (the agent is quiet too)."""

    reprompt_after_s: float = Field(default=8.0, gt=0)
    hangup_after_s: float = Field(default=25.0, gt=0)  # total silence before goodbye
    reprompt: str = "Are you still there?"
    goodbye: str = "I haven't heard from you, so I'll end the call now. Goodbye."


class LimitSettings(_Model):
    notice_before_end_s: float = Field(default=60.0, ge=0)
    notice: str = "Just so you know, we'll need to wrap up this call in about a minute."
    goodbye: str = "We've reached the time limit for this call. Thank you, goodbye."


class RecordingSettings(_Model):
    local: bool = True  # a stereo WAV per call (caller left, agent right)
    acs: bool = False  # ACS call recording (stored by ACS), started when the call connects


class IvrSettings(_Model):
    """A keypad menu before the agent speaks; the digits become a call variable and may
    route the call to another profile."""

    prompt: str
    variable: str = "menu"
    max_digits: int = Field(default=1, ge=1, le=20)
    terminator: str = "#"
    timeout_s: float = Field(default=6.0, gt=0)
    attempts: int = Field(default=2, ge=1, le=5)
    invalid: str = "Sorry, that's not an option."
    routes: dict[str, str] = {}  # digits -> profile name; unmatched: stay on this profile


class ToolEntry(_Model):
    """A tool given as a mapping: a built-in/demo tool by name, or a user tool with its
    JSON schema and either a Python callable or an HTTP endpoint."""

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None  # JSON schema of the arguments object
    python: str | None = None  # "package.module:function" (sync or async)
    http: HttpToolSettings | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _one_kind(self) -> ToolEntry:
        if self.python and self.http:
            raise ValueError("a tool is either `python` or `http`, not both")
        if (self.python or self.http) and not self.description:
            raise ValueError("a user tool needs a `description` (the model reads it)")
        if self.python and ":" not in self.python:
            raise ValueError("`python` is written module:function")
        return self


SlotType = Literal["digits", "number", "date", "time", "name", "choice"]


class HttpToolSettings(_Model):
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    # Header values may name environment variables: "Bearer ${CRM_TOKEN}".
    headers: dict[str, str] = {}


ToolEntry.model_rebuild()


class SlotSpec(_Model):
    type: SlotType
    prompt: str = ""
    reprompt: str | None = None
    choices: list[str] | dict[str, list[str]] | None = None  # canonical -> synonyms
    from_list: str | None = None  # field of the items of the last listed tool result
    min: int | None = None  # number
    max: int | None = None
    min_length: int = Field(default=1, ge=1)  # digits
    max_length: int = Field(default=20, ge=1)
    assume_pm: bool = False  # time: a bare "at 7" means 7 pm (restaurants)
    remember: bool = False  # reuse the value from earlier in the call

    @model_validator(mode="after")
    def _consistent(self) -> SlotSpec:
        if self.type == "choice" and not self.choices and not self.from_list:
            raise ValueError("a choice slot needs `choices` (or `from_list`)")
        if self.type != "choice" and (self.choices or self.from_list):
            raise ValueError(f"`choices`/`from_list` are for choice slots, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        if self.min_length > self.max_length:
            raise ValueError("min_length is greater than max_length")
        return self

    def choice_map(self) -> dict[str, list[str]]:
        if isinstance(self.choices, dict):
            return {k: list(v) for k, v in self.choices.items()}
        return {c: [] for c in self.choices or []}


class IntentSpec(_Model):
    examples: list[str] = Field(min_length=1)  # phrases; may hold {slot} placeholders
    required: list[str] = []  # slots asked for until given
    optional: list[str] = []  # slots used when said
    tool: str | None = None
    action: Literal["transfer", "goodbye"] | None = None
    args: dict[str, str] = {}  # tool argument -> slot, where the names differ
    before: str | None = None  # said before the tool runs ("One moment.")
    confirm: str | None = None  # asked (yes/no) before the tool runs
    reply: str = ""  # said after, with slots and tool result fields
    errors: dict[str, str] = {}  # tool error `reason` (or "default") -> reply
    retry_slot: str | None = None  # after a tool error, ask for this slot again
    offer: str | None = None  # intent a plain "yes" to the reply starts ("book it?")

    @model_validator(mode="after")
    def _does_something(self) -> IntentSpec:
        if self.tool and self.action:
            raise ValueError("give an intent a `tool` or an `action`, not both")
        if not (self.tool or self.action or self.reply):
            raise ValueError("the intent does nothing: give it a tool, an action or a reply")
        return self

    def slots(self) -> list[str]:
        return [*self.required, *self.optional]


class FlowSettings(_Model):
    threshold: float = Field(default=0.5, gt=0, lt=1)  # lowest intent score that counts
    slots: dict[str, SlotSpec] = {}
    intents: dict[str, IntentSpec] = Field(min_length=1)
    yes_words: list[str] = [
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "correct",
        "right",
        "ok",
        "okay",
        "go ahead",
        "please do",
        "sounds good",
        "absolutely",
        "perfect",
        "that is right",
    ]
    no_words: list[str] = ["no", "nope", "nah", "wrong", "not right", "incorrect", "wait"]
    cancel_words: list[str] = ["cancel", "never mind", "nevermind", "forget it", "stop"]
    didnt_catch: str = "Sorry, I didn't catch that."
    amend: str = "Okay. What would you like to change?"
    cancelled: str = "Okay, I've cancelled that. Is there anything else I can help with?"
    declined: str = "Okay. Is there anything else I can help with?"  # "no" to an offer
    tool_error: str = "Sorry, I couldn't get that done just now."


class Profile(_Model):
    name: str
    persona: str = ""  # the LLM's system prompt; {caller}, {callee}, SIP header values
    greeting: str = ""
    brain: Literal["flow", "llm"] = "flow"
    llm: LlmSettings = Field(default_factory=LlmSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    turn: TurnSettings = Field(default_factory=TurnSettings)
    # offline: a realtime agent whose model is gone hands the call to the offline agent
    # (the offline agent itself treats it as goodbye).
    fallback: Literal["transfer", "goodbye", "offline"] = "goodbye"
    apology: str = "I'm sorry, something went wrong on my side."
    give_up: str = "I'm sorry, I'm having trouble understanding you."
    reprompts: list[str] = Field(
        default=["Sorry, I didn't catch that. Could you say it again?"], min_length=1
    )
    # The Nth not-understood turn in a row says `give_up` and runs the fallback.
    max_misses: int = Field(default=3, ge=1, le=10)
    transfer: TransferSettings = Field(default_factory=TransferSettings)
    goodbye: str = "Thank you for calling. Goodbye!"
    silence: SilenceSettings = Field(default_factory=SilenceSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    recording: RecordingSettings = Field(default_factory=RecordingSettings)
    dtmf_barge_in: bool = True  # a key pressed while the agent talks interrupts it
    numbers: list[str] = []  # called numbers this profile answers (routing)
    ivr: IvrSettings | None = None
    tools: list[str | ToolEntry] = []
    flow: FlowSettings | None = None
    # The voicelive/openai backends' session settings (agent/realtime/options.py).
    realtime: RealtimeOptions = Field(default_factory=RealtimeOptions)

    def tool_names(self) -> list[str]:
        """The tools this profile enables: the built-ins plus those it lists."""
        names = ["end_call"] + (["transfer_to_human"] if self.transfer.target else [])
        for entry in self.tools:
            name = entry if isinstance(entry, str) else entry.name
            if name not in names:
                names.append(name)
        return names


# --- call variables and tools ------------------------------------------------------------


def call_variables(
    caller: str = "", callee: str = "", variables: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What persona/greeting templates can use: caller, callee and each custom SIP/VoIP
    header under its own name, lower-cased, with `-` as `_`, and without ACS's
    `X-MS-Custom-` prefix — so `{X-MS-Custom-Tier}`, `{x_ms_custom_tier}` and `{tier}` all
    work."""
    out: dict[str, str] = {}
    for key, value in (variables or {}).items():
        lower = key.lower()
        names = {key, lower, re.sub(r"\W", "_", lower)}
        if lower.startswith("x-ms-custom-"):
            short = lower.removeprefix("x-ms-custom-")
            names |= {short, re.sub(r"\W", "_", short)}
        for name in names:
            out.setdefault(name, value)
    out["caller"] = caller
    out["callee"] = callee
    return out


def render_text(text: str, variables: Mapping[str, str]) -> str:
    """A persona/greeting with call variables filled in; unknown fields come out empty."""
    return template.render(text, variables)


def call_policy(profile: Profile) -> CallPolicy:
    """How calls with this profile are run beyond the conversation."""
    return CallPolicy(
        silence_reprompt_after_s=profile.silence.reprompt_after_s,
        silence_hangup_after_s=profile.silence.hangup_after_s,
        limit_notice_before_s=profile.limits.notice_before_end_s,
        dtmf_barge_in=profile.dtmf_barge_in,
        transfer_mode=profile.transfer.mode,
        transfer_ring_timeout_s=profile.transfer.ring_timeout_s,
        transfer_stay_muted=profile.transfer.stay_muted,
        record_local=profile.recording.local,
        record_acs=profile.recording.acs,
    )


def notice_texts(profile: Profile, variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the agent says for each call notice (see agent.base.NOTICES)."""
    texts = {
        "caller_silent": profile.silence.reprompt,
        "silence_goodbye": profile.silence.goodbye,
        "ending_soon": profile.limits.notice,
        "limit_goodbye": profile.limits.goodbye,
        "transfer_failed": profile.transfer.failed,
        "briefing": profile.transfer.brief,
    }
    return {k: render_text(v, variables) if variables else v for k, v in texts.items()}


def profile_tools(profile: Profile) -> list[ToolSpec]:
    """The tool specs a call with this profile gets (give them to a ToolRegistry)."""
    from callbridge.call.user_tools import user_tool

    specs = builtin_tools(profile.transfer.target, profile.transfer.queues)
    enabled = set(profile.tool_names())
    specs += [spec for spec in demo_tools() if spec.name in enabled]
    specs += [
        user_tool(entry)
        for entry in profile.tools
        if isinstance(entry, ToolEntry) and (entry.python or entry.http)
    ]
    return specs


def _known_tools() -> dict[str, ToolSpec]:
    return {spec.name: spec for spec in builtin_tools("+0") + demo_tools()}


# --- checks across the file -------------------------------------------------------------


def check(profile: Profile) -> list[tuple[KeyPath, str]]:
    """What ties the parts of a (well-formed) profile together: (path, problem) pairs."""
    out: list[tuple[KeyPath, str]] = []
    known = _known_tools()
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
            problem = _check_user_tool(entry)
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
        out += _check_flow(profile, profile.flow, known, enabled)
    return out


def _check_user_tool(entry: ToolEntry) -> str | None:
    from callbridge.call.user_tools import UserToolError, user_tool

    if entry.parameters is not None and entry.parameters.get("type") != "object":
        return f"tool {entry.name}: parameters must be a JSON schema with type: object"
    try:
        user_tool(entry)
    except UserToolError as exc:
        return f"tool {entry.name}: {exc}"
    return None


def _no_tool(name: str, known: Mapping[str, ToolSpec]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known))}"
    return f"there is no tool named {name!r} ({hint})"


def _check_flow(
    profile: Profile, flow: FlowSettings, known: Mapping[str, ToolSpec], enabled: set[str]
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
            result_fields = _result_fields(intent.tool)
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


def _result_fields(tool: str) -> set[str] | None:
    """Top-level fields of a tool's result, None when unknown (anything goes)."""
    if tool in BUILTIN_TOOLS:
        return set(BUILTIN_RESULT_FIELDS)
    fields = RESULT_FIELDS.get(tool)
    return set(fields) if fields is not None else None


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


# --- loading -----------------------------------------------------------------------------

KeyPath = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: `no`, `yes`, `on`, `off` stay strings, so an
    example phrase "no" or a key `yes:` means what it says (YAML 1.1 made them bools)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _read_yaml(text: str) -> tuple[Any, dict[KeyPath, int], list[Problem]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        return None, {}, [Problem(line, "", f"not valid YAML: {what}")]
    except yaml.YAMLError as exc:
        return None, {}, [Problem(None, "", f"not valid YAML: {exc}")]
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {(): 1}
    problems: list[Problem] = []
    if node is not None:
        _marks(node, (), lines, problems)
    return data, lines, problems


def _marks(
    node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], problems: list[Problem]
) -> None:
    """Record the line of every key and list item; report duplicate keys (which YAML
    would otherwise quietly resolve to the last one)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            sub = (*path, key)
            if key in seen:
                problems.append(
                    Problem(key_node.start_mark.line + 1, _dotted(sub), "duplicate key")
                )
            seen.add(key)
            lines[sub] = key_node.start_mark.line + 1
            _marks(value_node, sub, lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _marks(item, (*path, i), lines, problems)


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _resolve(data: Any, loc: Sequence[str | int]) -> KeyPath:
    """The part of a pydantic error location that exists in the data (pydantic adds
    union member tags like `str` or `function-after[...]`, which the file doesn't have)."""
    path: list[str | int] = []
    value = data
    for part in loc:
        if isinstance(value, dict) and part in value:
            value = value[part]
            path.append(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
            path.append(part)
    return tuple(path)


def _model_at(path: KeyPath) -> type[BaseModel] | None:
    """Which model a data path is a mapping of, to list its keys after a typo."""
    if not path:
        return Profile
    if len(path) == 1:
        models: dict[str, type[BaseModel]] = {
            "flow": FlowSettings,
            "llm": LlmSettings,
            "voice": VoiceSettings,
            "turn": TurnSettings,
            "transfer": TransferSettings,
            "realtime": RealtimeOptions,
        }
        return models.get(str(path[0]))
    if len(path) == 2 and path[0] == "tools":
        return ToolEntry
    if len(path) == 3 and path[0] == "flow":
        items: dict[str, type[BaseModel]] = {"slots": SlotSpec, "intents": IntentSpec}
        return items.get(str(path[1]))
    return None


def _pydantic_problems(exc: ValidationError, data: Any, lines: dict[KeyPath, int]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    errors = exc.errors(include_url=False)
    paths = [_resolve(data, tuple(err["loc"])) for err in errors]
    for err, path in zip(errors, paths, strict=True):
        loc = tuple(err["loc"])
        kind = err["type"]
        if (
            kind.endswith("_type")
            and isinstance(err.get("input"), dict)
            and any(len(other) > len(path) and other[: len(path)] == path for other in paths)
        ):
            # A mapping where a union also allows a plain value (`tools: [name | {...}]`):
            # the errors inside the mapping say what's wrong; "not a string" is noise.
            continue
        if kind == "extra_forbidden":
            key = str(loc[-1])
            model = _model_at(path[:-1])
            hint = ""
            if model is not None:
                allowed = list(model.model_fields)
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                hint = hint or f" (allowed: {', '.join(allowed)})"
            message = f"unknown key {key!r}{hint}"
        elif kind == "missing":
            message = f"missing required field {loc[-1]!r}"
        elif kind in ("value_error", "assertion_error"):
            message = str(err["msg"]).removeprefix("Value error, ")
        else:
            got = err.get("input")
            shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
            message = f"{err['msg']} (got {shown})"
        where = _dotted(path) if kind != "missing" else _dotted((*path, loc[-1]))
        if (where, message) in seen:
            continue
        seen.add((where, message))
        problems.append(Problem(_line(lines, path), where, message))
    return sorted(problems, key=lambda p: p.line or 0)


def _line(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]


def parse_profile(text: str, source: str = "<profile>", base_dir: Path | None = None) -> Profile:
    """A profile from YAML text; `source` names it in errors, `base_dir` anchors relative
    paths (the voice)."""
    data, lines, problems = _read_yaml(text)
    if problems and data is None:
        raise ProfileError(source, problems)
    if not isinstance(data, dict):
        raise ProfileError(source, [Problem(1, "", "a profile is a mapping of settings")])
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(source, problems + _pydantic_problems(exc, data, lines)) from None
    if profile.voice.voice_path and base_dir is not None:
        voice = Path(profile.voice.voice_path)
        voice = voice if voice.is_absolute() else base_dir / voice
        profile = profile.model_copy(
            update={"voice": profile.voice.model_copy(update={"voice_path": str(voice)})}
        )
    found = [Problem(_line(lines, path), _dotted(path), msg) for path, msg in check(profile)]
    problems += sorted(found, key=lambda p: p.line or 0)
    if problems:
        raise ProfileError(source, problems)
    return profile


def load_profile(path: str | Path) -> Profile:
    """Read and check a profile file; raises ProfileError saying file, line and what."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(str(path), [Problem(None, "", f"cannot read: {exc.strerror}")]) from None
    return parse_profile(text, str(path), path.parent)
