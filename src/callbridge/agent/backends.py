"""Which agent backend a setting names, with the tools its calls get."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callbridge.agent.base import AgentFactory, CallInfo
from callbridge.agent.echo import EchoAgent
from callbridge.call.ivr import IvrPlan
from callbridge.call.policy import CallPolicy
from callbridge.call.tools import ToolRegistry

if TYPE_CHECKING:
    from callbridge.profile import Profile

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
    ivr_for: Callable[[CallInfo], IvrPlan | None] = field(default=lambda info: None)


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


def load_profiles(main_path: Path) -> tuple[Profile, dict[str, Profile]]:
    """The main profile and every profile beside it (for routing by number or menu),
    keyed by file stem and by name."""
    from callbridge.profile import load_profile

    main = load_profile(main_path)
    others: dict[str, Profile] = {}
    for path in sorted(main_path.parent.glob("*.yaml")):
        profile = main if path.resolve() == main_path.resolve() else load_profile(path)
        others[path.stem] = profile
        others.setdefault(profile.name, profile)
    return main, others


def profile_picker(main: Profile, profiles: dict[str, Profile]) -> Callable[[CallInfo], Profile]:
    """A call's profile: the one its menu routed to, else the one owning the called
    number, else the main one."""
    by_number = {n: p for p in profiles.values() for n in p.numbers}
    for route_owner in profiles.values():
        for target in route_owner.ivr.routes.values() if route_owner.ivr else []:
            if target not in profiles:
                raise ValueError(f"profile {route_owner.name!r}: menu routes to unknown {target!r}")

    def pick(info: CallInfo) -> Profile:
        routed = info.variables.get("profile")
        if routed and routed in profiles:
            return profiles[routed]
        return by_number.get(info.callee.removeprefix("4:"), main)

    return pick


def _local_runtime(profile_path: Path) -> AgentRuntime:
    from callbridge.agent.local.agent import CallSetup, LocalAgent, TurnSettings
    from callbridge.agent.local.brain import make_brain
    from callbridge.agent.local.models import (
        get_stt,
        get_tts,
        preload_async,
        speech_executor,
        voice_executor,
    )
    from callbridge.call.ivr import IvrPlan
    from callbridge.profile import call_policy, notice_texts, profile_tools

    main, profiles = load_profiles(profile_path)
    pick = profile_picker(main, profiles)

    def tools_for(info: CallInfo) -> ToolRegistry:
        return ToolRegistry(profile_tools(pick(info)))

    def policy_for(info: CallInfo) -> CallPolicy:
        return call_policy(pick(info))

    def voice(profile: Profile) -> Any:
        tts = get_tts(profile.voice.voice_path)
        if profile.voice.length_scale != 1.0:
            tts = tts.with_options(length_scale=profile.voice.length_scale)
        return tts

    def setup(info: CallInfo) -> CallSetup:
        profile = pick(info)
        return CallSetup(
            brain=lambda call: make_brain(profile, tools_for(call), call),
            turn=TurnSettings(
                end_silence_ms=profile.turn.end_silence_ms,
                barge_in_min_ms=profile.turn.barge_in_min_ms,
            ),
            notices=notice_texts(profile),
            tts=voice(profile),
        )

    def factory() -> LocalAgent:
        # The call's profile is only known at start (a menu may route it): see `setup`.
        return LocalAgent(
            lambda info: make_brain(main, tools_for(info), info),
            get_stt(),
            voice(main),
            speech_executor(),
            setup=setup,
            voice_executor=voice_executor(),
        )

    async def speak(text: str, rate: int) -> bytes:
        chunks = [pcm async for pcm in voice(main).stream(text, rate, voice_executor())]
        return b"".join(chunks)

    def ivr_for(info: CallInfo) -> IvrPlan | None:
        ivr = pick(info).ivr
        if ivr is None:
            return None
        return IvrPlan(
            prompt=ivr.prompt,
            speak=speak,
            variable=ivr.variable,
            max_digits=ivr.max_digits,
            terminator=ivr.terminator,
            timeout_s=ivr.timeout_s,
            attempts=ivr.attempts,
            invalid=ivr.invalid,
            routes=dict(ivr.routes),
            reroute=lambda call: (tools_for(call), policy_for(call)),
        )

    async def warm_up() -> None:
        report = await preload_async(tts_voice=main.voice.voice_path)
        log.info("offline models ready: %s", report)

    log.info(
        "agent profile %s: %s (%s brain); %d profile(s) for routing",
        profile_path,
        main.name,
        main.brain,
        len({id(p) for p in profiles.values()}),
    )
    return AgentRuntime("local", factory, tools_for, warm_up, policy_for, ivr_for)
