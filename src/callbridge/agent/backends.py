"""Which agent backend a setting names."""

from __future__ import annotations

from callbridge.agent.base import AgentFactory
from callbridge.agent.echo import EchoAgent

BACKENDS: dict[str, AgentFactory] = {"echo": EchoAgent}


def agent_factory(name: str) -> AgentFactory:
    try:
        return BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(
            f"CALLBRIDGE_AGENT={name!r} is not a known agent; use one of: {known}"
        ) from None
