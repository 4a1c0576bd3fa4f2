"""A keypad menu before the agent speaks: prompt, collect digits from the media stream,
store them as a call variable, and possibly route the call to another profile."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from callbridge.agent.base import CallInfo
from callbridge.call.media_leg import CallerDtmf, MediaLeg
from callbridge.call.policy import CallPolicy
from callbridge.call.tools import ToolRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IvrPlan:
    prompt: str
    speak: Callable[[str, int], Awaitable[bytes]]  # text, rate -> PCM
    variable: str = "menu"
    max_digits: int = 1
    terminator: str = "#"
    timeout_s: float = 6.0
    attempts: int = 2
    invalid: str = "Sorry, that's not an option."
    routes: dict[str, str] = field(default_factory=dict)  # digits -> profile name
    # A routed call's tools and policy (the agent reads the profile from CallInfo).
    reroute: Callable[[CallInfo], tuple[ToolRegistry, CallPolicy]] | None = None


@dataclass
class IvrResult:
    digits: str
    profile: str | None  # the profile the digits route to, if any


async def collect_digits(
    leg: MediaLeg, plan: IvrPlan, on_audio: Callable[[bytes], None], prompt_s: float = 0.0
) -> str | None:
    """Digits until max_digits, the terminator, or `timeout_s` after the last key (or after
    the `prompt_s`-long prompt has played, when none came). None when the leg closed."""
    digits = ""
    deadline = time.monotonic() + prompt_s + plan.timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return digits
        try:
            item = await asyncio.wait_for(leg.receive(), left)
        except TimeoutError:
            return digits
        if item is None:
            return None
        if isinstance(item, CallerDtmf):
            if item.digit == plan.terminator:
                return digits
            digits += item.digit
            if len(digits) >= plan.max_digits:
                return digits
            deadline = time.monotonic() + plan.timeout_s
        else:
            on_audio(item.pcm)
