"""The agent profile's schema: the pydantic models of the YAML file and its sections.

Only the shape of the file lives here; what ties the parts together (tools exist, templates
name known fields) is checked in checks.py, and where a problem is in the file in
yaml_lines.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from callbridge.profile.base import SECTION_CONFIG
from callbridge.profile.realtime import RealtimeOptions


class SectionModel(BaseModel):
    """A section of the profile file (or the whole file)."""

    model_config = SECTION_CONFIG


class LlmSettings(SectionModel):
    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = ""
    api_key_env: str | None = "OPENAI_API_KEY"
    temperature: float = Field(default=0.3, ge=0, le=2)
    timeout: float = Field(default=8.0, gt=0, le=120)
    stream: bool = True
    max_history: int = Field(default=30, ge=2, le=500)  # messages besides the system prompt
    max_tool_rounds: int = Field(default=5, ge=0, le=20)
    max_tokens: int | None = Field(default=None, ge=1)


class VoiceSettings(SectionModel):
    voice_path: str | None = None  # a Piper .onnx; relative to the profile file
    length_scale: float = Field(default=1.0, ge=0.3, le=3.0)


class TurnSection(SectionModel):
    """How the offline agent takes turns (docs/turn-taking.md)."""

    # smart: a moment after the caller goes quiet (check_after_ms), an end-of-turn model
    # (Smart Turn v3) decides from the audio whether they have finished; if not, they get
    # up to max_silence_ms to go on (the model is asked again every recheck_ms of that).
    # The words so far are transcribed a little sooner (transcribe_after_ms), since
    # Whisper takes longer than the model and the decision needs both.
    # silence: end_silence_ms of silence ends every turn.
    end_of_turn: Literal["smart", "silence"] = "smart"
    end_silence_ms: int = Field(default=700, ge=100, le=5000)
    check_after_ms: int = Field(default=160, ge=64, le=2000)
    transcribe_after_ms: int = Field(default=96, ge=32, le=2000)
    max_silence_ms: int = Field(default=1500, ge=300, le=5000)
    recheck_ms: int = Field(default=320, ge=64, le=5000)  # asked again while still quiet
    complete_threshold: float = Field(default=0.5, gt=0, lt=1)
    barge_in_min_ms: int = Field(default=300, ge=0, le=3000)
    # A cough, a noise or an "mm-hm" (no words) over the agent resumes its reply where it
    # stopped; speech over the agent longer than noise_max_ms always interrupts it.
    resume_after_noise: bool = True
    noise_max_ms: int = Field(default=600, ge=100, le=3000)

    @model_validator(mode="after")
    def _check_order(self) -> TurnSection:
        if self.max_silence_ms <= self.check_after_ms:
            raise ValueError("max_silence_ms must be longer than check_after_ms")
        if self.transcribe_after_ms > self.check_after_ms:
            raise ValueError("transcribe_after_ms must not be longer than check_after_ms")
        return self


class TransferSettings(SectionModel):
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


class SilenceSettings(SectionModel):
    """What happens when the caller says nothing (the agent is quiet too)."""

    reprompt_after_s: float = Field(default=8.0, gt=0)
    hangup_after_s: float = Field(default=25.0, gt=0)  # total silence before goodbye
    reprompt: str = "Are you still there?"
    goodbye: str = "I haven't heard from you, so I'll end the call now. Goodbye."


class LimitSettings(SectionModel):
    notice_before_end_s: float = Field(default=60.0, ge=0)
    notice: str = "Just so you know, we'll need to wrap up this call in about a minute."
    goodbye: str = "We've reached the time limit for this call. Thank you, goodbye."


class RecordingSettings(SectionModel):
    local: bool = True  # a stereo WAV per call (caller left, agent right)
    acs: bool = False  # ACS call recording (stored by ACS), started when the call connects


class IvrSettings(SectionModel):
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


class ToolEntry(SectionModel):
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


class HttpToolSettings(SectionModel):
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    # Header values may name environment variables: "Bearer ${CRM_TOKEN}".
    headers: dict[str, str] = {}


ToolEntry.model_rebuild()


class SlotSpec(SectionModel):
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


class IntentSpec(SectionModel):
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


class FlowSettings(SectionModel):
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


class Profile(SectionModel):
    name: str
    persona: str = ""  # the LLM's system prompt; {caller}, {callee}, SIP header values
    greeting: str = ""
    brain: Literal["flow", "llm"] = "flow"
    llm: LlmSettings = Field(default_factory=LlmSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    turn: TurnSection = Field(default_factory=TurnSection)
    # offline: a realtime agent whose model is gone hands the call to the offline agent
    # (the offline agent itself treats it as goodbye).
    fallback: Literal["transfer", "goodbye", "offline"] = "goodbye"
    apology: str = "I'm sorry, something went wrong on my side."
    # The agent must start speaking this soon after the caller's turn (or after a tool's
    # result, or at the start for the greeting); otherwise the service apologises itself
    # and runs the fallback (docs/architecture.md, "When the agent fails or stalls").
    reply_timeout_s: float = Field(default=2.5, ge=0.5, le=30)
    retry_prompt: str = "Could you say that again, please?"
    # Said to callers still on the line when the service stops (a deploy, a scale-in).
    shutdown: str = "I'm sorry, I have to end our call now. Please call back in a moment. Goodbye."
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
    # The voicelive/openai backends' session settings (realtime.py).
    realtime: RealtimeOptions = Field(default_factory=RealtimeOptions)

    def tool_names(self) -> list[str]:
        """The tools this profile enables: the built-ins plus those it lists."""
        names = ["end_call"] + (["transfer_to_human"] if self.transfer.target else [])
        for entry in self.tools:
            name = entry if isinstance(entry, str) else entry.name
            if name not in names:
                names.append(name)
        return names
