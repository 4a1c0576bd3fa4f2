"""The `local` backend: an offline agent (VAD, Whisper, a dialog brain, Piper) per line."""

from __future__ import annotations

import logging
from collections.abc import Callable

from callbridge.agent.base import AgentSession
from callbridge.core.tools import ToolRegistry
from callbridge.lines.from_profile import notice_texts
from callbridge.lines.switchboard import Backend
from callbridge.lines.voices import line_speaker, profile_voice
from callbridge.profile import Profile

log = logging.getLogger(__name__)


def local_agent_factory(profile: Profile, tools: ToolRegistry) -> Callable[[], AgentSession]:
    from callbridge.agent.local.agent import LocalAgent, TurnSettings
    from callbridge.agent.local.brain import make_brain
    from callbridge.agent.local.models import get_stt, speech_executor, voice_executor

    turn = TurnSettings.from_section(profile.turn)
    notices = notice_texts(profile)

    def factory() -> AgentSession:
        return LocalAgent(
            lambda info: make_brain(profile, tools, info),
            get_stt(),
            profile_voice(profile),  # loaded by warm_up (main line) or on first use
            speech_executor(),
            turn=turn,
            notices=notices,
            voice_executor=voice_executor(),
        )

    return factory


def local_backend(main: Profile) -> Backend:
    async def warm_up() -> None:
        from callbridge.agent.local.models import preload_async

        report = await preload_async(tts_voice=main.voice.voice_path)
        log.info("offline models ready: %s", report)

    return Backend("local", local_agent_factory, line_speaker, warm_up)
