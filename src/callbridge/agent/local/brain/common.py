"""What both brains do the same way: run a tool safely, hand over or hang up."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from callbridge.agent.local.brain.base import ToolRunner
from callbridge.core.template import render
from callbridge.profile import Profile

log = logging.getLogger(__name__)

# What a brain's turn is: pieces of speech, and closable (a barge-in stops it).
Speech = AsyncGenerator[str, None]


async def call_tool(run_tool: ToolRunner, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """A tool's result as a dict. A runner that raises or answers non-JSON counts as a
    tool error (`{"error": ...}`), which the brain says instead of crashing the turn."""
    try:
        raw = await run_tool(name, args)
        value = json.loads(raw)
    except Exception as exc:
        log.warning("tool %s failed in the runner: %s", name, exc)
        return {"error": str(exc) or type(exc).__name__}
    return value if isinstance(value, dict) else {"result": value}


async def finish_call(
    profile: Profile,
    variables: Mapping[str, str],
    action: str,
    run_tool: ToolRunner,
    *,
    text: str | None = None,
    summary: str = "",
) -> Speech:
    """Transfer or goodbye: speak first (`text`, else the profile's announcement or
    goodbye), then run the tool, which acts once the words have been heard. A transfer
    that fails ends with an apology and a goodbye rather than silence."""
    if action == "transfer":
        yield text or render(profile.transfer.announce, variables)
        result = await call_tool(run_tool, "transfer_to_human", {"summary": summary})
        if "error" not in result:
            return
        log.warning("transfer failed: %s", result["error"])
        yield render(profile.apology, variables)
        yield render(profile.goodbye, variables)
    else:
        yield text or render(profile.goodbye, variables)
    await call_tool(run_tool, "end_call", {})


class Reprompts:
    """The profile's reprompts in turn, and the count of misses in a row."""

    def __init__(self, profile: Profile) -> None:
        self._texts = profile.reprompts
        self._limit = profile.max_misses
        self._next = 0
        self.misses = 0

    def miss(self) -> bool:
        """Count a miss; True when it is one too many (time for the fallback)."""
        self.misses += 1
        return self.misses >= self._limit

    def understood(self) -> None:
        self.misses = 0

    def text(self) -> str:
        text = self._texts[self._next % len(self._texts)]
        self._next += 1
        return text
