"""Who is on a call and which line it is on: what agents, tools and observers are told."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_id: str
    caller: str
    callee: str  # the number or address called, without any telephony prefix
    sample_rate: int
    correlation_id: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)  # function declarations
    line: str = ""  # the name of the line (profile) the call is on
    # The conversation so far, (role, text) with role caller | agent, when the call was
    # taken over from another replica (docs/scale-out.md): the agent carries on from it.
    history: tuple[tuple[str, str], ...] = ()
    # And where the agent's dialog stood there (`AgentState`), for agents that keep one.
    agent_state: str = ""
