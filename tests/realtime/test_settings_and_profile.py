"""Start-up checks: environment (one line per problem, naming what to set), the profile's
`realtime:` section, and the backends' names in agent_runtime()."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbridge.agent.realtime.dialects import GA, VOICELIVE, SessionConfig
from callbridge.agent.realtime.settings import load_openai_settings, load_voicelive_settings
from callbridge.config import ConfigError
from callbridge.lines.catalogue import default_catalogue
from callbridge.lines.switchboard import BACKENDS, build_switchboard
from callbridge.profile import ProfileError, RealtimeOptions, parse_profile

ROOT = Path(__file__).resolve().parents[2]
CONTOSO = ROOT / "profiles" / "contoso.yaml"
CATALOGUE = default_catalogue()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("CALLBRIDGE_VOICELIVE_", "CALLBRIDGE_OPENAI_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_voicelive_settings_say_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as err:
        load_voicelive_settings()
    assert str(err.value).startswith("CALLBRIDGE_VOICELIVE_ENDPOINT is not set: the Foundry")
    assert "\n" not in str(err.value)
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_ENDPOINT", "https://r.services.ai.azure.com")
    with pytest.raises(ConfigError, match="CALLBRIDGE_VOICELIVE_MODEL is not set"):
        load_voicelive_settings()
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_AGENT_NAME", "support")
    with pytest.raises(ConfigError, match="agent mode needs both"):
        load_voicelive_settings()
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_PROJECT", "contoso")
    settings = load_voicelive_settings()
    assert settings.agent_mode and settings.use_entra  # no key: Entra ID
    monkeypatch.setenv(
        "CALLBRIDGE_VOICELIVE_ENDPOINT", "https://r.services.ai.azure.com/voice-live/realtime"
    )
    with pytest.raises(ConfigError, match="without /voice-live/realtime"):
        load_voicelive_settings()


def test_voicelive_agent_mode_refuses_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Agent mode takes Microsoft Entra ID only ([vl-agents]): a key would fail every
    connect, so it is refused at start in one line naming what to change."""
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_ENDPOINT", "https://r.services.ai.azure.com")
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_AGENT_NAME", "support")
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_PROJECT", "contoso")
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_API_KEY", "k")
    with pytest.raises(ConfigError) as err:
        load_voicelive_settings()
    message = str(err.value)
    assert message.startswith("agent mode (CALLBRIDGE_VOICELIVE_AGENT_NAME) needs Microsoft Entra")
    assert "unset CALLBRIDGE_VOICELIVE_API_KEY or set CALLBRIDGE_VOICELIVE_AUTH=entra" in message
    assert "\n" not in message and ";" not in message  # one problem, one line
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_AUTH", "key")
    with pytest.raises(ConfigError) as err:
        load_voicelive_settings()
    assert ": set CALLBRIDGE_VOICELIVE_AUTH=entra" in str(err.value)
    monkeypatch.delenv("CALLBRIDGE_VOICELIVE_API_KEY")
    with pytest.raises(ConfigError) as err:  # not also "API_KEY is not set": that misleads
        load_voicelive_settings()
    assert "needs Microsoft Entra ID" in str(err.value) and ";" not in str(err.value)
    # An explicit AUTH=entra with a key left in the environment connects with Entra ID.
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_API_KEY", "k")
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_AUTH", "entra")
    assert load_voicelive_settings().use_entra
    # Model mode keeps its key.
    for name in ("AGENT_NAME", "PROJECT", "AUTH"):
        monkeypatch.delenv(f"CALLBRIDGE_VOICELIVE_{name}")
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_MODEL", "gpt-realtime")
    assert not load_voicelive_settings().use_entra


def test_openai_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^CALLBRIDGE_OPENAI_API_KEY is not set"):
        load_openai_settings()
    monkeypatch.setenv("CALLBRIDGE_OPENAI_API_KEY", "sk-x")
    settings = load_openai_settings()
    assert settings.ws_base_url == "wss://api.openai.com/v1" and not settings.use_entra
    monkeypatch.setenv(
        "CALLBRIDGE_OPENAI_BASE_URL",
        "https://r.openai.azure.com/openai/realtime?api-version=2025-04-01-preview",
    )
    with pytest.raises(ConfigError, match="CALLBRIDGE_OPENAI_BASE_URL must not end with"):
        load_openai_settings()
    monkeypatch.setenv("CALLBRIDGE_OPENAI_BASE_URL", "https://r.openai.azure.com/openai/v1")
    monkeypatch.delenv("CALLBRIDGE_OPENAI_API_KEY")
    azure = load_openai_settings()
    assert azure.use_entra and azure.ws_base_url == "wss://r.openai.azure.com/openai/v1"


def _profile(realtime: str, fallback: str = "goodbye") -> str:
    return f"""
name: t
greeting: Hello
fallback: {fallback}
flow:
  intents:
    hi: {{examples: [hello], reply: Hi}}
realtime:
{realtime}
"""


def test_profile_realtime_section() -> None:
    profile = parse_profile(
        _profile(
            """  voice: en-US-Ava:DragonHDLatestNeural
  turn_detection:
    type: azure_semantic_vad
    silence_duration_ms: 400
    remove_filler_words: true
    end_of_utterance: {model: semantic_detection_v1, timeout_ms: 800}
  noise_suppression: true
  echo_cancellation: true
  input_transcription: {model: azure-speech, language: en-US}
  greet_first: false""",
            "offline",
        ),
        CATALOGUE,
    )
    opts = profile.realtime
    assert opts.voice_options().kind == "azure-standard" and not opts.greet_first
    session = VOICELIVE.session_update(SessionConfig("Be nice.", opts, []))["session"]
    assert session["voice"] == {"type": "azure-standard", "name": "en-US-Ava:DragonHDLatestNeural"}
    assert session["turn_detection"] == {
        "type": "azure_semantic_vad",
        "silence_duration_ms": 400,
        "remove_filler_words": True,
        "end_of_utterance_detection": {
            "model": "semantic_detection_v1",
            "threshold_level": "default",
            "timeout_ms": 800,
        },
        "create_response": True,
        "interrupt_response": True,
        "auto_truncate": False,
    }
    assert session["input_audio_noise_reduction"] == {"type": "azure_deep_noise_suppression"}
    assert session["input_audio_echo_cancellation"] == {"type": "server_echo_cancellation"}
    assert session["input_audio_transcription"] == {"model": "azure-speech", "language": "en-US"}
    assert session["input_audio_sampling_rate"] == 24000 and session["modalities"] == [
        "text",
        "audio",
    ]
    # A typo is an error with its line, like anywhere in a profile.
    with pytest.raises(
        ProfileError, match=r":10: realtime.turn_detection.silense_duration_ms: unk"
    ):
        parse_profile(_profile("  turn_detection:\n    silense_duration_ms: 400"), CATALOGUE)
    with pytest.raises(ProfileError, match="eagerness"):
        parse_profile(_profile("  turn_detection: {type: server_vad, eagerness: low}"), CATALOGUE)
    with pytest.raises(ProfileError, match="unknown voice 'bob'"):
        parse_profile(_profile("  voice: bob"), CATALOGUE)


def test_ga_session_shape() -> None:
    opts = RealtimeOptions(noise_suppression=True, voice="cedar")
    tools = [{"type": "function", "name": "x", "description": "", "parameters": {}}]
    session = GA.session_update(SessionConfig("Be nice.", opts, tools))["session"]
    assert session == {
        "type": "realtime",
        "instructions": "Be nice.",
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "turn_detection": {
                    "type": "server_vad",
                    "create_response": True,
                    "interrupt_response": True,
                },
                "transcription": {"model": "gpt-4o-mini-transcribe"},
                "noise_reduction": {"type": "near_field"},
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "cedar"},
        },
        "tools": tools,
        "tool_choice": "auto",
    }


def test_runtime_checks_the_profile_against_the_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert {"voicelive", "openai"} <= set(BACKENDS)
    monkeypatch.setenv("CALLBRIDGE_OPENAI_API_KEY", "sk-x")
    lines = build_switchboard("openai", CONTOSO)  # existing profiles stay valid
    assert lines.backend == "openai"
    path = tmp_path / "p.yaml"
    path.write_text(_profile("  turn_detection: {type: azure_semantic_vad}"))
    with pytest.raises(ValueError, match="azure_semantic_vad is Voice Live only"):
        build_switchboard("openai", path)
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_ENDPOINT", "https://r.services.ai.azure.com")
    monkeypatch.setenv("CALLBRIDGE_VOICELIVE_MODEL", "gpt-realtime")
    assert build_switchboard("voicelive", path).backend == "voicelive"


def test_speech_duration_ms_outside_azure_semantic_vad_is_refused_at_start() -> None:
    """It would not be sent (Voice Live has it for Azure semantic VAD only), so a profile
    asking for it under another type is told so at start, naming the key."""
    from callbridge.agent.realtime.options import check_for_backend

    for kind in ("server_vad", "semantic_vad"):
        opts = RealtimeOptions.model_validate(
            {"turn_detection": {"type": kind, "speech_duration_ms": 200}}
        )
        with pytest.raises(
            ValueError,
            match=f"realtime.turn_detection.speech_duration_ms is for the azure_semantic_vad "
            f"types, not {kind}",
        ):
            check_for_backend(opts, "voicelive")
    for kind in ("azure_semantic_vad", "azure_semantic_vad_en", "azure_semantic_vad_multilingual"):
        opts = RealtimeOptions.model_validate(
            {"turn_detection": {"type": kind, "speech_duration_ms": 200}}
        )
        check_for_backend(opts, "voicelive")


async def test_offline_fallback_agent_greets_with_the_apology(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`fallback: offline` builds the offline agent, whose first words are the apology and
    the hand-over line instead of the profile's greeting."""
    import asyncio
    from collections.abc import AsyncIterator
    from concurrent.futures import Executor

    from callbridge.agent.base import AgentTranscript, ResponseDone
    from callbridge.agent.local import models
    from callbridge.agent.local.agent import LocalAgent
    from callbridge.core.call_info import CallInfo
    from callbridge.core.tools import ToolRegistry
    from callbridge.lines.realtime import offline_agent_factory

    class Tts:
        async def stream(self, text: str, rate: int, ex: Executor) -> AsyncIterator[bytes]:
            yield bytes(960)

    monkeypatch.setattr(models, "get_tts", lambda path=None: Tts())
    monkeypatch.setattr(models, "get_stt", lambda path=None: object())
    profile = parse_profile(_profile("  greet_first: true", "offline"), CATALOGUE)
    agent = offline_agent_factory(profile, ToolRegistry())()
    assert isinstance(agent, LocalAgent)
    await agent.start(CallInfo("c", "+1", "+2", 24000))
    events = agent.events()
    said = []
    while not isinstance(event := await asyncio.wait_for(anext(events), 5), ResponseDone):
        if isinstance(event, AgentTranscript):
            said.append(event.text)
    await agent.close()
    assert " ".join(said) == f"{profile.apology} {profile.realtime.offline_handover}"
