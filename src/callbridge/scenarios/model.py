"""The scenario file format (YAML), validated with line numbers in its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ScenarioError(Exception):
    """A scenario file with a mistake; the message names the file and what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(_Strict):
    """Wait for the agent to speak and fall quiet; check what the caller heard."""

    expect: list[str] = []  # every phrase must be heard (case-insensitive)
    expect_any: list[str] = []  # at least one must be heard
    reject: list[str] = []  # none may be heard
    within_s: float = 12.0  # the agent must start speaking within this
    max_latency_ms: float | None = None  # caller's speech end → agent's first audio
    quiet_s: float = 2.0  # silence that ends the agent's turn (clauses may pause under load)


class BargeIn(_Strict):
    """Speak over the agent `after_s` seconds into its next reply."""

    say: str
    after_s: float = 1.0
    max_stop_ms: float = 800.0  # StopAudio must come within this of the caller's onset


class Step(_Strict):
    say: str | None = None
    press: str | None = None
    wait: float | None = None
    listen: Listen | None = None
    barge_in: BargeIn | None = None
    hang_up: bool | None = None
    # The replica holding the call stops (SIGTERM's drain, as in a rolling restart): the
    # call moves to another replica (a scenario with `replicas` ≥ 2).
    move: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `- listen`, `- hang_up` and `- move` may be written bare; `- listen: {...}`
        # otherwise.
        if value == "listen":
            return {"listen": {}}
        if value in ("hang_up", "move"):
            return {value: True}
        if isinstance(value, dict) and "listen" in value and value["listen"] is None:
            return {**value, "listen": {}}
        return value

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        set_fields = [k for k, v in self.__dict__.items() if v is not None]
        if len(set_fields) != 1:
            raise ValueError(
                "each step does exactly one of say, press, wait, listen, barge_in, hang_up, "
                "move; "
                f"this one has {set_fields or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k, v in self.__dict__.items() if v is not None)


class Expect(_Strict):
    tools: list[str] = []  # these tools ran (in any order, others may run too)
    no_tools: list[str] = []
    tool_errors: list[str] = []  # these tools ran and returned an error (e.g. timed out)
    transferred_to: str | None = None
    # Custom calling context the transfer carried, as ACS received it ("*": any value).
    transfer_context: dict[str, str] = {}
    routed_to: str | None = None  # the profile the keypad menu routed to
    menu_digits: str | None = None
    line: str | None = None  # the line the call ended on, as the service and its record say
    recording: bool | None = None  # a local stereo recording of the call exists
    ended_by: Literal["caller", "service", "transfer"] | None = None
    max_duration_s: float | None = None
    max_gaps: int | None = None  # gaps the caller heard inside the agent's speech (underruns)
    media_reopened: int | None = None  # media sockets reopened after a network drop


class Caller(_Strict):
    from_number: Annotated[str, Field(alias="from")] = "+14255550123"
    to_number: Annotated[str | None, Field(alias="to")] = None
    display_name: str = ""
    sip_headers: dict[str, str] = {}
    length_scale: float = 1.0  # the caller's speaking rate


class Network(_Strict):
    """The network between ACS and the service for this call (emulator/network.py)."""

    delay_ms: float = Field(default=0.0, ge=0)
    jitter_p99_ms: float = Field(default=0.0, ge=0)
    stalls: list[tuple[float, float]] = []  # [at_s, for_s] since media start
    drops: list[float] = []  # at_s: the media socket breaks; ACS reopens it
    reconnect_after_s: float = Field(default=0.5, ge=0)


class Scenario(_Strict):
    name: str
    description: str = ""
    caller: Caller = Caller()
    # The agent profile of the service this scenario runs against (relative to this file);
    # scenarios with the same profile share one service.
    profile: str | None = None
    humans: dict[str, Literal["answer", "decline", "busy", "no_answer"]] = {}
    network: Network | None = None
    # Replicas of the service behind HAProxy, sharing Redis (CALLBRIDGE_TEST_REDIS, else
    # the machine's on 127.0.0.1:6379) and one records database; such a scenario gets a
    # service of its own.
    replicas: int = Field(default=1, ge=1, le=4)
    steps: list[Step]
    expect: Expect = Expect()
    max_duration_s: float = 90.0
    path: str = ""

    @model_validator(mode="after")
    def _moves_need_replicas(self) -> Scenario:
        moves = sum(1 for step in self.steps if step.move)
        if moves and moves >= self.replicas:
            raise ValueError(
                f"{moves} move step(s) need at least {moves + 1} replicas (replicas: "
                f"{self.replicas}): each move stops the replica holding the call"
            )
        return self


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{path}{where}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping with name and steps")
    raw.setdefault("name", path.stem)
    if isinstance(raw.get("profile"), str):
        raw["profile"] = str((path.parent / raw["profile"]).resolve())
        if not Path(raw["profile"]).is_file():
            raise ScenarioError(f"{path}: profile {raw['profile']} does not exist")
    try:
        return Scenario.model_validate({**raw, "path": str(path)})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ScenarioError(f"{path}: {problems}") from None
