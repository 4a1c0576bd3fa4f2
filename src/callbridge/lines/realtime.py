"""The `voicelive` and `openai` backends: a realtime agent per line, routed like any other.

Everything is checked at service start: the connection settings (one line per problem,
saying which variable to set) and, for each line's profile, whether its `realtime:` section
asks for something the chosen service cannot do. Each line gets its own persona, greeting,
tools, notices and voice; `fallback: offline` wraps the line's agent so the offline agent
of the same profile takes the call over if the model is gone for good (docs/realtime.md).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Literal

from callbridge.agent.base import AgentSession
from callbridge.agent.fallback import FallbackAgent
from callbridge.agent.realtime.agent import RealtimeAgent, RealtimeSetup
from callbridge.agent.realtime.options import check_for_backend
from callbridge.agent.realtime.transport import Connector
from callbridge.core.call_info import CallInfo
from callbridge.core.tools import ToolRegistry
from callbridge.lines.from_profile import notice_texts
from callbridge.lines.switchboard import Backend
from callbridge.lines.voices import SPEECH_POOL, LazyPiper, line_speaker, profile_voice
from callbridge.profile import Profile, call_variables, render_text

if TYPE_CHECKING:
    from callbridge.agent.local.brain.base import Brain, ToolRunner

log = logging.getLogger(__name__)

Service = Literal["voicelive", "openai"]


def realtime_backend(name: str, main: Profile, profiles: list[Profile]) -> Backend:
    """`name` is voicelive or openai; raises ConfigError (environment) or ValueError (a
    profile asks what the service cannot do)."""
    service: Service = "voicelive" if name == "voicelive" else "openai"
    connector, instructions, timeout = _connector(service)
    for profile in profiles:
        check_for_backend(profile.realtime, service)
    speakers: dict[int, LazyPiper] = {}

    def speaker(profile: Profile) -> LazyPiper:
        return speakers.setdefault(id(profile), LazyPiper(profile))

    def agent_for(profile: Profile, tools: ToolRegistry) -> Callable[[], AgentSession]:
        setup = RealtimeSetup(
            connector=connector,
            options=profile.realtime,
            persona=profile.persona,
            greeting=profile.greeting,
            apology=profile.apology,
            goodbye=profile.goodbye,
            fallback=profile.fallback,
            instructions=instructions,
            speaker=speaker(profile),
            executor=SPEECH_POOL,
            notices=notice_texts(profile),
            render=_render,
            connect_timeout_s=timeout,
        )
        if profile.fallback != "offline":
            return lambda: RealtimeAgent(setup)
        offline = offline_agent_factory(profile, tools)
        return lambda: FallbackAgent(RealtimeAgent(setup), offline)

    # Callbridge's own voice speaks custom-voice replies, and the offline agent takes over
    # for `fallback: offline`: then the models load here, before the first call. Otherwise
    # the voice says only the service's fixed phrases (the apology), prepared in a child
    # process: this one never holds the offline models (docs/architecture.md, memory).
    in_process = any(p.realtime.custom_voice or p.fallback == "offline" for p in profiles)

    async def warm_up() -> None:
        if not in_process:
            return
        for profile in profiles:
            if profile.realtime.custom_voice:
                await speaker(profile).load()
        if any(p.fallback == "offline" for p in profiles):
            from callbridge.agent.local.models import preload_async

            log.info("offline fallback ready: %s", await preload_async(main.voice.voice_path))

    mode = "custom voice (text from the model)" if main.realtime.custom_voice else "audio"
    log.info("%s: main line %s (%s, fallback %s)", service, main.name, mode, main.fallback)
    return Backend(
        service,
        agent_for,
        line_speaker,
        warm_up,
        greets=lambda p: p.realtime.greet_first,
        phrases_in_child=not in_process,
    )


def _render(text: str, call: CallInfo) -> str:
    return render_text(text, call_variables(call.caller, call.callee, call.variables))


def _connector(name: Service) -> tuple[Connector, bool, float]:
    if name == "voicelive":
        from callbridge.agent.realtime.settings import load_voicelive_settings
        from callbridge.agent.realtime.voicelive import VoiceLiveConnector

        vl = load_voicelive_settings()
        what = f"agent {vl.agent_name} ({vl.project})" if vl.agent_mode else f"model {vl.model}"
        auth = "Entra ID" if vl.use_entra else "api-key"
        log.info("Voice Live at %s: %s, %s", vl.endpoint, what, auth)
        # Agent mode: the Foundry agent brings its own instructions (docs/realtime.md).
        return VoiceLiveConnector(vl), not vl.agent_mode, vl.connect_timeout_s
    from callbridge.agent.realtime.openai_rt import OpenAIConnector
    from callbridge.agent.realtime.settings import load_openai_settings

    oa = load_openai_settings()
    auth = "Entra ID" if oa.use_entra else "API key"
    log.info("OpenAI realtime at %s: model %s, %s", oa.ws_base_url, oa.model, auth)
    return OpenAIConnector(oa), True, oa.connect_timeout_s


def offline_agent_factory(profile: Profile, tools: ToolRegistry) -> Callable[[], AgentSession]:
    """The offline agent that takes the call over when the model is gone for good."""
    from callbridge.agent.local.agent import LocalAgent, TurnSettings
    from callbridge.agent.local.brain import make_brain
    from callbridge.agent.local.models import get_stt, speech_executor

    turn = TurnSettings.from_section(profile.turn)
    handover = f"{profile.apology} {profile.realtime.offline_handover}"

    def brain(info: CallInfo) -> Brain:
        return _HandoverBrain(make_brain(profile, tools, info), handover)

    def factory() -> AgentSession:
        return LocalAgent(
            brain,
            get_stt(),
            profile_voice(profile),  # loaded by warm_up: no I/O here
            speech_executor(),
            turn=turn,
            notices=notice_texts(profile),
        )

    return factory


class _HandoverBrain:
    """The call's brain, greeting with the apology and a hand-over line instead of the
    profile's greeting (the caller has been talking to the model already)."""

    def __init__(self, inner: Brain, greeting: str) -> None:
        self._inner = inner
        self._greeting = greeting

    def greeting(self) -> str:
        return self._greeting

    def turn(self, text: str, run_tool: ToolRunner) -> AsyncIterator[str]:
        return self._inner.turn(text, run_tool)

    def digits(self, digits: str, run_tool: ToolRunner) -> AsyncIterator[str]:
        return self._inner.digits(digits, run_tool)

    def heard(self, text: str) -> None:
        self._inner.heard(text)

    def apology(self) -> str:
        return self._inner.apology()

    @property
    def fallback(self) -> str:
        return self._inner.fallback

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()
