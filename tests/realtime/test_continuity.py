"""Session continuity: a lost socket is reconnected and the new session re-seeded with the
conversation; repeated losses end in an apology and the profile's fallback."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callbridge.agent.base import AgentAudio, AgentEvent, AgentTranscript, ResponseDone, ToolCall
from callbridge.agent.fallback import FallbackAgent
from callbridge.agent.realtime.agent import RealtimeAgent, RealtimeSetup
from callbridge.agent.realtime.dialects import GA
from callbridge.core.call_info import CallInfo
from callbridge.core.heard import Heard
from callbridge.testing.fake_realtime import Expire, Say, Script
from tests.waiting import until

from .conftest import FakeFactory, on_both
from .helpers import FakeSpeaker, quick_options, start_call


@on_both
async def test_dropped_mid_reply_reconnects_and_carries_on(make_fake: FakeFactory) -> None:
    script = Script(
        [
            Say("We open at nine every weekday and at ten on Saturdays.", drop_after_ms=1000),
            Say("and on Sundays we are closed.", audio_ms=1200),
        ],
        caller_says=["When do you open?"],
    )
    fake = await make_fake(script)
    call = await start_call(fake, options=quick_options(greet_first=False))
    try:
        await call.caller.say(400)
        await until(lambda: len(fake.sessions) == 2, 5, "reconnected")
        first, second = fake.sessions
        assert first.closed_code == 1011
        await until(lambda: second.server_events("response.done"), 5, "the rest of the answer")
        # The new session got the same setup and the conversation so far, as text.
        assert second.client_events("session.update")[0] == {
            **first.client_events("session.update")[0],
            "event_id": second.client_events("session.update")[0]["event_id"],
        }
        seeded = [e["item"] for e in second.client_events("conversation.item.create")]
        assert seeded[0] == {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "When do you open?"}],
        }
        assert seeded[1]["role"] == "assistant"
        partial = seeded[1]["content"][0]["text"]
        assert partial.startswith("We open at") and "Saturdays" not in partial
        (resume,) = second.client_events("response.create")
        assert partial in resume["response"]["instructions"]
        assert "Continue from there" in resume["response"]["instructions"]
        # The caller heard the start of the answer, a short pause, then the rest.
        await call.bridge.replies_done(1)
        assert abs(call.bridge.audio_ms() - 2200) <= 60
        said = [e.text for e in call.bridge.of(AgentTranscript)]
        assert said == ["and on Sundays we are closed."]
        assert not second.server_events("error")
    finally:
        await call.close()


@pytest.mark.parametrize("fallback", ["goodbye", "transfer"])
@on_both
async def test_repeated_failures_apologise_and_fall_back(
    make_fake: FakeFactory, fallback: str
) -> None:
    script = Script(
        [Say("Let me see about that for you.", drop_after_ms=300)], refuse_after_drop=True
    )
    fake = await make_fake(script)
    speaker = FakeSpeaker()
    call = await start_call(
        fake,
        options=quick_options(greet_first=False),
        speaker=speaker,
        fallback=fallback,
        apology="Sorry, I'm having trouble.",
        goodbye="Goodbye!",
        reconnect_delays=(0.0, 0.2),
    )
    try:
        await call.caller.say(400)
        await until(lambda: call.bridge.tool_calls, 5, "fallback action")
        (action,) = call.bridge.tool_calls
        if fallback == "transfer":
            assert action.name == "transfer_to_human" and "failed" in action.arguments["summary"]
            assert speaker.said == ["Sorry, I'm having trouble."]
        else:
            assert action.name == "end_call"
            assert speaker.said == ["Sorry, I'm having trouble. Goodbye!"]
        assert [status for status, _ in fake.rejected] == [503, 503]
        assert len(fake.sessions) == 1
        # The apology was handed over before the action, and the reply ended.
        kinds = [type(e) for _, e in call.bridge.events]
        assert kinds.index(ToolCall) > kinds.index(AgentAudio)
        assert isinstance(call.bridge.events[-2][1], ResponseDone)
        await call.agent.push_audio(bytes(960))  # the model is gone: nothing is sent
    finally:
        await call.close()


class StubOffline:
    """Stands in for the offline agent."""

    def __init__(self) -> None:
        self.started: CallInfo | None = None
        self.audio = 0
        self.queue: asyncio.Queue[AgentEvent | None] = asyncio.Queue()
        self.closed = False

    async def start(self, call: CallInfo) -> None:
        self.started = call
        self.queue.put_nowait(AgentTranscript("Sorry. Let's carry on.", "local-1"))

    async def push_audio(self, pcm: bytes) -> None:
        self.audio += len(pcm)

    async def push_dtmf(self, digit: str) -> None:
        return None

    async def tool_result(self, call_id: str, output: str) -> None:
        return None

    async def interrupted(self, heard: Heard) -> None:
        return None

    async def notify(self, notice: str, detail: dict[str, Any]) -> None:
        return None

    async def events(self) -> AsyncIterator[AgentEvent]:
        while (event := await self.queue.get()) is not None:
            yield event

    async def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)


@pytest.mark.parametrize("dialect", ["voicelive"])
async def test_offline_fallback_takes_the_call_over(make_fake: FakeFactory) -> None:
    fake = await make_fake(Script([Say("Hmm", drop_after_ms=200)], refuse_after_drop=True))
    offline = StubOffline()
    call = await start_call(
        fake,
        options=quick_options(greet_first=False),
        fallback="offline",
        offline=lambda: offline,
        reconnect_delays=(0.0,),
    )
    try:
        await call.caller.say(400)
        await until(lambda: offline.started is not None, 5, "hand-over")
        await until(lambda: offline.audio > 0, 2, "caller audio goes to the offline agent")
        said = [e.text for e in call.bridge.of(AgentTranscript)]
        assert said[-1] == "Sorry. Let's carry on."
        assert offline.started is not None and offline.started.call_id == "call-1"
        assert isinstance(call.agent, FallbackAgent) and call.agent.handed_over
        assert not call.bridge.tool_calls  # no goodbye: the offline agent has the call
    finally:
        await call.close()
    assert offline.closed


@on_both
async def test_session_expiry_is_not_a_failure(make_fake: FakeFactory) -> None:
    fake = await make_fake(Script([Expire(), Say("Where were we?", audio_ms=600)]))
    call = await start_call(fake, options=quick_options(greet_first=False, max_failures=1))
    try:
        await call.caller.say(400)
        await until(lambda: len(fake.sessions) == 2, 5, "a new session")
        second = fake.sessions[1]
        assert fake.sessions[0].closed_code == 1001
        await until(lambda: second.server_events("response.done"), 5, "answer")
        assert [i["item"]["role"] for i in second.client_events("conversation.item.create")] == [
            "user"
        ]
        assert not call.bridge.tool_calls  # no fallback: expiry is expected, not a failure
    finally:
        await call.close()


@pytest.mark.parametrize("dialect", ["voicelive", "ga"])
async def test_close_releases_everything(make_fake: FakeFactory) -> None:
    fake = await make_fake(Script([Say("Hello " * 20, audio_ms=3000)]))
    call = await start_call(fake, options=quick_options(greet_first=False))
    await call.caller.say(300)
    await until(lambda: call.bridge.audio_ms() > 0, 5, "speaking")
    before = {t for t in asyncio.all_tasks() if not t.done()}
    agent: Any = call.agent
    await call.close()
    assert not agent._tasks
    await asyncio.wait_for(fake.sessions[0].closed.wait(), 2)  # the socket is closed
    await asyncio.sleep(0.05)
    left = {t for t in asyncio.all_tasks() if not t.done()} - before
    names = [t.get_coro().__qualname__ for t in left]  # type: ignore[union-attr]
    assert not [
        n for n in names if n.startswith(("RealtimeAgent", "ServerEvents", "LocalVoice"))
    ], names


_FAILED = re.compile(r"realtime connection failed(?: after [\d.]+ s)?: (.*)", re.DOTALL)


class RefusingConnector:
    """A service that cannot be reached: each connect fails as listed (None: it hangs,
    so the agent's connect timeout ends it)."""

    dialect = GA

    def __init__(self, failures: list[BaseException | None]) -> None:
        self.failures = failures

    async def connect(self) -> Any:
        failure = self.failures.pop(0)
        if failure is None:
            await asyncio.sleep(3600)
        raise failure or AssertionError("unreachable")

    async def aclose(self) -> None:
        return None


async def test_a_failed_connect_logs_what_failed(caplog: pytest.LogCaptureFixture) -> None:
    """Connect timeouts and bare ConnectionErrors have an empty str(): the log (and the
    reason the fallback carries) names the exception's type, then its message if any."""
    connector = RefusingConnector(
        [ConnectionError(), ConnectionRefusedError("[Errno 111] Connect call failed"), None]
    )
    agent = RealtimeAgent(
        RealtimeSetup(
            connector,
            quick_options(greet_first=False, max_failures=3),
            fallback="transfer",
            connect_timeout_s=0.05,
            reconnect_delays=(0.0,),
        )
    )
    caplog.set_level(logging.WARNING, logger="callbridge.agent.realtime")
    starting = asyncio.ensure_future(agent.start(CallInfo("call-1", "+1425", "+1800", 24000)))
    events = aiter(agent.events())
    try:
        action = await asyncio.wait_for(anext(events), 5)
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await agent.close()
    said = (_FAILED.fullmatch(r.getMessage()) for r in caplog.records)
    failed = [m.group(1) for m in said if m]
    assert failed == [
        "ConnectionError",
        "ConnectionRefusedError: [Errno 111] Connect call failed",
        "TimeoutError",
    ]
    assert isinstance(action, ToolCall) and action.name == "transfer_to_human"
    assert "(cannot connect: TimeoutError)" in action.arguments["summary"]
    assert any("cannot connect: TimeoutError" in r.getMessage() for r in caplog.records)
