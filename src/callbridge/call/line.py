"""The line a call is on: everything the call uses, resolved once by the composition layer.

A line is what a profile becomes at run time: the agent factory of the configured backend,
the tools, the policy (silence, limits, transfer mode, recording) and an optional keypad
menu. Edges ask `Lines` for the line of a called number; the keypad menu moves a call to
another line through `Lines.named`. The composition layer (`callbridge.lines`) builds them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from callbridge.agent.base import AgentSession
from callbridge.core.policy import CallPolicy
from callbridge.core.tools import ToolRegistry

# Text and sample rate in, 16-bit mono PCM out: the line's own voice for menu prompts.
Speak = Callable[[str, int], Awaitable[bytes]]


@dataclass(frozen=True)
class KeypadMenu:
    """A keypad menu played before the agent speaks; the digits become a call variable
    and may move the call to another line."""

    prompt: str
    speak: Speak
    variable: str = "menu"
    max_digits: int = 1
    terminator: str = "#"
    timeout_s: float = 6.0
    attempts: int = 2
    invalid: str = "Sorry, that's not an option."
    routes: dict[str, str] = field(default_factory=dict)  # digits -> line name


@dataclass(frozen=True)
class Rescue:
    """What the service says and does itself when the line's agent fails, or does not
    start a reply within `reply_timeout_s` when one is due."""

    reply_timeout_s: float | None = None  # None: no watch (the echo agent)
    # A stalled reply first gets an apology and a request to repeat (`retries` times in a
    # row), then the fallback: a transfer to `transfer_target`, or goodbye.
    retries: int = 1
    mode: Literal["transfer", "goodbye"] = "goodbye"
    apology: str = "I'm sorry, something went wrong on my side."
    retry_prompt: str = "Could you say that again, please?"
    goodbye: str = "Thank you for calling. Goodbye!"
    transfer_target: str | None = None
    shutdown: str = "I'm sorry, I have to end our call now. Please call back in a moment."


@dataclass(frozen=True)
class Line:
    name: str
    new_agent: Callable[[], AgentSession]  # a fresh agent of the line's backend and profile
    tools: ToolRegistry = field(default_factory=ToolRegistry)
    policy: CallPolicy = field(default_factory=CallPolicy)
    menu: KeypadMenu | None = None
    numbers: tuple[str, ...] = ()  # called numbers this line answers
    greets: bool = False  # the agent speaks first: its greeting is a reply that is due
    speak: Speak | None = None  # the line's own voice, for what the service says itself
    rescue: Rescue = field(default_factory=Rescue)


class Lines(Protocol):
    def for_number(self, callee: str) -> Line:
        """The line that answers `callee`, else the main line."""

    def named(self, name: str) -> Line:
        """The line called `name`; KeyError if there is none."""


class OneLine:
    """Every call on the same line (the echo agent, tests)."""

    def __init__(self, line: Line) -> None:
        self.line = line

    def for_number(self, callee: str) -> Line:
        return self.line

    def named(self, name: str) -> Line:
        if name != self.line.name:
            raise KeyError(name)
        return self.line
