"""Build the `voicelive` and `openai` backends from the environment and the agent profile.

Everything is checked here, at service start: connection settings (one line per problem,
saying which variable to set), the profile, and whether the profile's `realtime:` section
asks for something the chosen service cannot do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from callbridge.agent.base import AgentSession, CallInfo
from callbridge.agent.realtime.agent import RealtimeAgent, RealtimeSetup
from callbridge.agent.realtime.options import check_for_backend
from callbridge.agent.realtime.transport import Connector
from callbridge.call.policy import CallPolicy
from callbridge.call.tools import ToolRegistry

if TYPE_CHECKING:
    from callbridge.agent.backends import AgentRuntime
    from callbridge.agent.local.brain.base import Brain, ToolRunner
    from callbridge.agent.local.tts import PiperTts
    from callbridge.profile import Profile

log = logging.getLogger(__name__)

Backend = Literal["voicelive", "openai"]


def realtime_runtime(name: str, profile_path: Path) -> AgentRuntime:
    """`name` is voicelive or openai; raises ConfigError (environment), ProfileError or
    ValueError (profile)."""
    from callbridge.agent.backends import AgentRuntime
    from callbridge.agent.local.models import speech_executor
    from callbridge.profile import (
        call_policy,
        call_variables,
        load_profile,
        notice_texts,
        profile_tools,
        render_text,
    )

    backend: Backend = "voicelive" if name == "voicelive" else "openai"
    connector, instructions, timeout = _connector(backend)
    profile = load_profile(profile_path)
    check_for_backend(profile.realtime, backend)

    def tools_for(info: CallInfo) -> ToolRegistry:
        return ToolRegistry(profile_tools(profile))

    def render(text: str, call: CallInfo) -> str:
        return render_text(text, call_variables(call.caller, call.callee, call.variables))

    speaker = LazyPiper(profile.voice.voice_path, profile.voice.length_scale)
    setup = RealtimeSetup(
        connector=connector,
        options=profile.realtime,
        persona=profile.persona,
        greeting=profile.greeting,
        apology=profile.apology,
        goodbye=profile.goodbye,
        fallback=profile.fallback,
        instructions=instructions,
        speaker=speaker,
        executor=speech_executor(),
        offline=_offline_factory(profile, tools_for) if profile.fallback == "offline" else None,
        notices=notice_texts(profile),
        render=render,
        connect_timeout_s=timeout,
    )

    async def warm_up() -> None:
        # Callbridge's own voice is needed for custom-voice replies and for the apology when
        # the model is gone: load it before the first call, not during one.
        await speaker.load()
        if profile.fallback == "offline":
            from callbridge.agent.local.models import preload_async

            log.info("offline fallback ready: %s", await preload_async(profile.voice.voice_path))

    mode = "custom voice (text from the model)" if profile.realtime.custom_voice else "audio"
    log.info(
        "agent profile %s: %s on %s (%s, fallback %s)",
        profile_path,
        profile.name,
        backend,
        mode,
        profile.fallback,
    )

    def policy_for(info: CallInfo) -> CallPolicy:
        return call_policy(profile)  # silence, limits, keypad barge-in, transfer mode

    return AgentRuntime(
        backend, lambda: RealtimeAgent(setup), tools_for, warm_up, policy_for=policy_for
    )


def _connector(name: Backend) -> tuple[Connector, bool, float]:
    if name == "voicelive":
        from callbridge.agent.realtime.settings import load_voicelive_settings
        from callbridge.agent.realtime.voicelive import VoiceLiveConnector

        vl = load_voicelive_settings()
        what = f"agent {vl.agent_name} ({vl.project})" if vl.agent_mode else f"model {vl.model}"
        auth = "Entra ID" if vl.use_entra else "api-key"
        log.info("Voice Live at %s: %s, %s", vl.endpoint, what, auth)
        # Agent mode: the Foundry agent brings its own instructions (§1.2).
        return VoiceLiveConnector(vl), not vl.agent_mode, vl.connect_timeout_s
    from callbridge.agent.realtime.openai_rt import OpenAIConnector
    from callbridge.agent.realtime.settings import load_openai_settings

    oa = load_openai_settings()
    auth = "Entra ID" if oa.use_entra else "API key"
    log.info("OpenAI realtime at %s: model %s, %s", oa.ws_base_url, oa.model, auth)
    return OpenAIConnector(oa), True, oa.connect_timeout_s


class LazyPiper:
    """The profile's Piper voice as a `Speaker`, loaded off the event loop on first need."""

    def __init__(self, voice_path: str | None, length_scale: float = 1.0) -> None:
        self._path = voice_path
        self._length_scale = length_scale
        self._tts: PiperTts | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> PiperTts:
        async with self._lock:
            if self._tts is None:
                self._tts = await asyncio.to_thread(self._load)
        return self._tts

    def _load(self) -> PiperTts:
        from callbridge.agent.local.models import get_tts

        tts = get_tts(self._path)
        if self._length_scale != 1.0:
            tts = tts.with_options(length_scale=self._length_scale)
        return tts

    async def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]:
        tts = self._tts or await self.load()
        async for pcm in tts.stream(text, out_rate, executor):
            yield pcm


def _offline_factory(profile: Profile, tools_for: Any) -> Any:
    """The offline agent that takes the call over when the model is gone for good."""
    from callbridge.agent.local.agent import LocalAgent, TurnSettings
    from callbridge.agent.local.brain import make_brain
    from callbridge.agent.local.models import get_stt, get_tts, speech_executor
    from callbridge.profile import notice_texts

    turn = TurnSettings(
        end_silence_ms=profile.turn.end_silence_ms, barge_in_min_ms=profile.turn.barge_in_min_ms
    )
    handover = f"{profile.apology} {profile.realtime.offline_handover}"

    def brain(info: CallInfo) -> Brain:
        return _HandoverBrain(make_brain(profile, tools_for(info), info), handover)

    def factory() -> AgentSession:
        tts = get_tts(profile.voice.voice_path)  # loaded by warm_up: no I/O here
        return LocalAgent(
            brain, get_stt(), tts, speech_executor(), turn=turn, notices=notice_texts(profile)
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
