"""What the offline agent needs from a dialog brain.

The agent turns the caller's speech into text and hands each turn to the brain; the brain
yields what to say, a sentence or so at a time so the first sentence can be spoken while
the rest is made, and runs tools through `run_tool` (executed by the call session, which
returns the tool's JSON result). A brain keeps its own history; after a barge-in the agent
tells it what the caller actually heard of its last reply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

ToolRunner = Callable[[str, dict[str, Any]], Awaitable[str]]


class BrainError(Exception):
    """The brain could not produce a reply (backend down, bad answer...)."""


class Brain(Protocol):
    def greeting(self) -> str:
        """What the agent says first (may be empty: then the agent waits for the caller)."""

    def turn(self, text: str, run_tool: ToolRunner) -> AsyncIterator[str]:
        """Reply to what the caller said. `text == ""` means speech nobody could make out:
        the brain answers with a reprompt. Yields pieces of speech (sentences)."""

    def digits(self, digits: str, run_tool: ToolRunner) -> AsyncIterator[str]:
        """Reply to keypad digits the caller pressed (a whole string, e.g. "12345#")."""

    def heard(self, text: str) -> None:
        """The caller barged in: only `text` of the last reply was heard; keep just that."""

    def apology(self) -> str:
        """What to say when something failed, before the fallback (transfer or goodbye)."""

    @property
    def fallback(self) -> str:
        """`transfer` or `goodbye`: what follows the apology."""
