"""How each SDK reaches its service (URL, query, auth), and what the fakes put on the wire:
every event against the reference table, the dialects kept apart, the real error strings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from pydantic import SecretStr

from callbridge.agent.realtime.openai_rt import OpenAIConnector
from callbridge.agent.realtime.options import AZURE_SEMANTIC, TurnDetection
from callbridge.agent.realtime.settings import OpenAIRealtimeSettings, VoiceLiveSettings
from callbridge.agent.realtime.transport import Transport
from callbridge.agent.realtime.voicelive import VoiceLiveConnector
from callbridge.testing.fake_realtime import REQUIRED, FakeRealtimeServer, Say, Script, problems
from callbridge.testing.fake_realtime.wire import GA_NAMES
from tests.waiting import until

from .conftest import FakeFactory, on_both
from .helpers import quick_options, start_call


class StubCredential:
    """An Entra ID credential that hands out a fixed token and remembers the scopes."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes += scopes
        return AccessToken("entra-token", 4102444800)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StubCredential:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


@pytest.mark.parametrize("dialect", ["voicelive"])
async def test_voicelive_url_and_auth(make_fake: FakeFactory) -> None:
    fake = await make_fake(Script())
    key = VoiceLiveConnector(
        VoiceLiveSettings(endpoint=fake.url, api_key=SecretStr("test-key"), model="m1")
    )
    credential = StubCredential()
    agent_mode = VoiceLiveConnector(
        VoiceLiveSettings(endpoint=fake.url, agent_name="support", project="contoso"),
        credential=credential,
    )
    for connector in (key, agent_mode):
        transport: Transport = await connector.connect()
        assert (await transport.recv())["type"] == "session.created"
        await transport.close()
    by_key, by_token = fake.sessions
    assert by_key.path == "/voice-live/realtime"  # always appended
    assert by_key.query["api-version"] == "2026-07-15" and by_key.query["model"] == "m1"
    assert by_key.query["x-ms-client-sdk"].startswith("azsdk-python-ai-voicelive/")
    assert by_key.headers["api-key"] == "test-key"
    assert by_token.headers["authorization"] == "Bearer entra-token"
    assert credential.scopes == ["https://ai.azure.com/.default"]
    assert by_token.query["agent-name"] == "support"
    assert by_token.query["agent-project-name"] == "contoso" and "model" not in by_token.query
    bad = VoiceLiveConnector(
        VoiceLiveSettings(endpoint=fake.url, api_key=SecretStr("nope"), model="m")
    )
    with pytest.raises(Exception, match="401"):
        await bad.connect()
    for connector in (key, agent_mode, bad):
        await connector.aclose()


@pytest.mark.parametrize("dialect", ["voicelive"])
async def test_agent_mode_sends_no_instructions(make_fake: FakeFactory) -> None:
    fake = await make_fake(Script())
    call = await start_call(fake, options=quick_options(greet_first=False), instructions=False)
    try:
        assert "instructions" not in fake.sessions[0].client_events("session.update")[0]["session"]
    finally:
        await call.close()


@pytest.mark.parametrize("dialect", ["voicelive"])
async def test_speech_duration_ms_goes_only_with_azure_semantic_vad(
    make_fake: FakeFactory,
) -> None:
    """Voice Live documents `speech_duration_ms` for Azure semantic VAD only ([vl-howto];
    the SDK's ServerVad has no such field): the agent's session.update carries it for
    those types and never for server_vad or semantic_vad."""
    fake = await make_fake(Script())
    sent: dict[str, dict[str, Any]] = {}
    for kind in (*AZURE_SEMANTIC, "server_vad", "semantic_vad"):
        turn = TurnDetection.model_validate(
            {"type": kind, "speech_duration_ms": 250}
            | ({} if kind == "semantic_vad" else {"silence_duration_ms": 300})
        )
        call = await start_call(fake, options=quick_options(greet_first=False, turn_detection=turn))
        try:
            update = fake.sessions[-1].client_events("session.update")[0]
            sent[kind] = update["session"]["turn_detection"]
        finally:
            await call.close()
    for kind in AZURE_SEMANTIC:
        assert sent[kind]["type"] == kind and sent[kind]["speech_duration_ms"] == 250
        assert sent[kind]["silence_duration_ms"] == 300
    assert sent["server_vad"] == {
        "type": "server_vad",
        "silence_duration_ms": 300,
        "create_response": True,
        "interrupt_response": True,
        "auto_truncate": False,
    }
    assert "speech_duration_ms" not in sent["semantic_vad"]


@pytest.mark.parametrize("dialect", ["ga"])
async def test_openai_url_and_auth(make_fake: FakeFactory) -> None:
    fake = await make_fake(Script())

    async def token() -> str:
        return "entra-token"

    settings = OpenAIRealtimeSettings(
        base_url=fake.url, api_key=SecretStr("test-key"), model="gpt-rt"
    )
    for connector in (OpenAIConnector(settings), OpenAIConnector(settings, token_provider=token)):
        transport = await connector.connect()
        assert (await transport.recv())["type"] == "session.created"
        await transport.close()
        await connector.aclose()
    by_key, by_token = fake.sessions
    assert by_key.path == "/v1/realtime" and by_key.query == {"model": "gpt-rt"}
    assert by_key.headers["authorization"] == "Bearer test-key"
    assert "openai-beta" not in by_key.headers  # GA: the beta header is refused (docs/realtime.md)
    assert by_token.headers["authorization"] == "Bearer entra-token"


async def _raw(fake: FakeRealtimeServer) -> tuple[Transport, Any]:
    settings: Any
    if fake.dialect == "voicelive":
        settings = VoiceLiveSettings(endpoint=fake.url, api_key=SecretStr(fake.api_key), model="m")
        connector: Any = VoiceLiveConnector(settings)
    else:
        settings = OpenAIRealtimeSettings(
            base_url=fake.url, api_key=SecretStr(fake.api_key), model="m"
        )
        connector = OpenAIConnector(settings)
    return await connector.connect(), connector


@on_both
async def test_fake_answers_like_the_service(make_fake: FakeFactory) -> None:
    """The error strings clients meet in the field (docs/realtime.md), and the shapes."""
    fake = await make_fake(Script([Say("Hello there.", audio_ms=500)]))
    transport, connector = await _raw(fake)
    try:
        ga = fake.dialect == "ga"
        session: dict[str, Any] = (
            {"type": "realtime", "output_modalities": ["audio"]}
            if ga
            else {"modalities": ["text", "audio"]}
        )
        await transport.send({"type": "session.update", "session": session})
        await transport.send({"type": "response.cancel", "event_id": "c1"})
        await transport.send({"type": "response.create", "event_id": "r1"})
        await transport.send({"type": "response.create", "event_id": "r2"})
        wrong = {"type": "session.update", "session": {"modalities": ["audio"]}}
        if not ga:
            wrong = {"type": "session.update", "session": {"type": "realtime"}}
        await transport.send({**wrong, "event_id": "w1"})
        fs = fake.sessions[0]
        await until(lambda: fs.server_events("response.done"), 3, "reply")
        item = fs.server_events("response.done")[0]["response"]["output"][0]["id"]
        await transport.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item,
                "content_index": 0,
                "audio_end_ms": 900,
                "event_id": "t1",
            }
        )
        await transport.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item,
                "content_index": 0,
                "audio_end_ms": 300,
                "event_id": "t2",
            }
        )
        output = {"type": "function_call_output", "call_id": "nope", "output": "{}"}
        await transport.send({"type": "conversation.item.create", "item": output, "event_id": "o1"})
        await until(lambda: len(fs.server_events("error")) == 5, 3, "errors")
        errors = {e["error"]["event_id"]: e["error"] for e in fs.server_events("error")}
        assert errors["c1"]["code"] == "response_cancel_not_active"
        assert errors["r2"]["code"] == "conversation_already_has_active_response"
        assert errors["r2"]["message"].startswith("Conversation already has an active response")
        # A beta-shaped update to GA lacks session.type; a GA-shaped one to Voice Live has
        # fields it does not know (docs/realtime.md).
        assert errors["w1"]["code"] == ("missing_required_parameter" if ga else "unknown_parameter")
        assert errors["t1"]["message"] == "Audio content of 500ms is already shorter than 900ms"
        assert errors["o1"]["message"] == "Tool call ID 'nope' not found in conversation."
        (truncated,) = fs.server_events("conversation.item.truncated")
        assert truncated["audio_end_ms"] == 300
    finally:
        await transport.close()
        await connector.aclose()
    names = {e["type"] for e in fs.sent}
    other = set(GA_NAMES.values()) if fake.dialect == "voicelive" else set(GA_NAMES)
    assert not names & other  # never a name of the other dialect (docs/realtime.md)
    for event in fs.sent:
        assert not problems(fake.dialect, event), event


@on_both
async def test_fake_keeps_a_response_out_of_the_history_only_the_dialects_way(
    make_fake: FakeFactory,
) -> None:
    """OpenAI: `conversation: "none"`; Voice Live: `commit: false` (its SDK's
    ResponseCreateParams has `commit`, no `conversation`). The other dialect's spelling is
    not understood, so that response lands in the conversation."""
    fake = await make_fake(Script())
    transport, connector = await _raw(fake)
    openai_way: dict[str, Any] = {"conversation": "none"}
    voicelive_way: dict[str, Any] = {"commit": False}
    ways = (openai_way, voicelive_way) if fake.dialect == "ga" else (voicelive_way, openai_way)

    def answered(count: int) -> Callable[[], bool]:
        return lambda: len(fake.sessions[0].server_events("response.done")) >= count

    try:
        fs = fake.sessions[0]
        for n, how in enumerate(ways, 1):
            body = {**how, "instructions": f'Say exactly: "Line {n}."'}
            await transport.send({"type": "response.create", "response": body})
            await until(answered(n), 3, "done")
        first, second = (e["response"] for e in fs.server_events("response.done"))
        assert first["conversation_id"] is None and second["conversation_id"] is not None
        assert [item["id"] for item in fs.conversation] == [second["output"][0]["id"]]
    finally:
        await transport.close()
        await connector.aclose()


def test_required_fields_table_matches_the_reference() -> None:
    vl, ga = REQUIRED["voicelive"], REQUIRED["ga"]
    assert (
        vl["response.audio.delta"]
        == ga["response.output_audio.delta"]
        == (
            "response_id",
            "item_id",
            "output_index",
            "content_index",
            "delta",
        )
    )
    assert vl["conversation.item.created"] == ("previous_item_id", "item")
    assert "name" in ga["response.function_call_arguments.done"]
    assert "name" not in vl["response.function_call_arguments.done"]
    assert problems("ga", {"type": "response.audio.delta", "event_id": "e"}) == [
        "response.audio.delta: not an event of the ga dialect"
    ]
    bad = {"type": "response.done", "event_id": "e", "response": {"id": "r", "status": "x"}}
    assert "response.done: bad status 'x'" in problems("voicelive", bad)


@on_both
async def test_fake_vad_follows_the_input_clock(make_fake: FakeFactory) -> None:
    """speech_started/stopped positions are in appended audio, with prefix padding."""
    from .helpers import tone

    fake = await make_fake(Script())
    transport, connector = await _raw(fake)
    try:
        import base64

        audio = bytes(48 * 1000) + tone(600) + bytes(48 * 800)
        for i in range(0, len(audio), 48 * 100):
            chunk = base64.b64encode(audio[i : i + 48 * 100]).decode()
            await transport.send({"type": "input_audio_buffer.append", "audio": chunk})
        fs = fake.sessions[0]
        await until(lambda: fs.server_events("input_audio_buffer.committed"), 3, "commit")
        (started,) = fs.server_events("input_audio_buffer.speech_started")
        (stopped,) = fs.server_events("input_audio_buffer.speech_stopped")
        assert started["audio_start_ms"] == 1000 - 300  # default prefix padding
        assert stopped["audio_end_ms"] == 1600
        assert started["item_id"] == stopped["item_id"]
        await asyncio.sleep(0.05)
    finally:
        await transport.close()
        await connector.aclose()
