"""Which agent backend a setting names, with the tools its calls get."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from callbridge.agent.base import AgentFactory, CallInfo
from callbridge.agent.echo import EchoAgent
from callbridge.call.policy import CallPolicy
from callbridge.call.tools import ToolRegistry

log = logging.getLogger(__name__)

BACKENDS = ("echo", "local", "voicelive", "openai")


@dataclass
class AgentRuntime:
    """How calls get an agent session and their tools, and what to load before serving."""

    name: str
    factory: AgentFactory
    tools_for: Callable[[CallInfo], ToolRegistry]
    warm_up: Callable[[], Awaitable[None]] | None = None
    policy_for: Callable[[CallInfo], CallPolicy] = field(default=lambda info: CallPolicy())


def _no_tools(info: CallInfo) -> ToolRegistry:
    return ToolRegistry()


def agent_runtime(name: str, profile_path: str | Path | None = None) -> AgentRuntime:
    """Build the backend `name`; raises ValueError (bad name) or ProfileError (bad profile)."""
    if name == "echo":
        return AgentRuntime("echo", EchoAgent, _no_tools)
    if name == "local":
        return _local_runtime(Path(profile_path or "profiles/contoso.yaml"))
    if name in ("voicelive", "openai"):
        from callbridge.agent.realtime.runtime import realtime_runtime

        return realtime_runtime(name, Path(profile_path or "profiles/contoso.yaml"))
    raise ValueError(
        f"CALLBRIDGE_AGENT={name!r} is not a known agent; use one of: {', '.join(BACKENDS)}"
    )


def _local_runtime(profile_path: Path) -> AgentRuntime:
    from callbridge.agent.local.agent import LocalAgent, TurnSettings
    from callbridge.agent.local.brain import make_brain
    from callbridge.agent.local.models import (
        get_stt,
        get_tts,
        preload_async,
        speech_executor,
    )
    from callbridge.profile import call_policy, load_profile, notice_texts, profile_tools

    profile = load_profile(profile_path)
    policy = call_policy(profile)

    def tools_for(info: CallInfo) -> ToolRegistry:
        return ToolRegistry(profile_tools(profile))

    turn = TurnSettings(
        end_silence_ms=profile.turn.end_silence_ms,
        barge_in_min_ms=profile.turn.barge_in_min_ms,
    )

    def factory() -> LocalAgent:
        tts = get_tts(profile.voice.voice_path)
        if profile.voice.length_scale != 1.0:
            tts = tts.with_options(length_scale=profile.voice.length_scale)
        return LocalAgent(
            lambda info: make_brain(profile, tools_for(info), info),
            get_stt(),
            tts,
            speech_executor(),
            turn=turn,
            notices=notice_texts(profile),
        )

    async def warm_up() -> None:
        report = await preload_async(tts_voice=profile.voice.voice_path)
        log.info("offline models ready: %s", report)

    log.info("agent profile %s: %s (%s brain)", profile_path, profile.name, profile.brain)
    return AgentRuntime("local", factory, tools_for, warm_up, lambda info: policy)
