"""A pretend call around a RealtimeAgent: a caller pushing 20 ms frames in real time, and a
bridge that plays agent audio with the real `Playout` and handles barge-in and tools the
way the call session does (SpeechStarted while audible: flush, ignore the rest of that
response id, `interrupted(Heard)` with the heard milliseconds and, from the sentence marks
on `AgentAudio.text`, the heard words)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import SecretStr

from callbridge.agent.base import (
    AgentAudio,
    AgentEvent,
    AgentSession,
    AgentTranscript,
    CallerTranscript,
    ResponseDone,
    SpeechStarted,
    ToolCall,
)
from callbridge.agent.fallback import FallbackAgent
from callbridge.agent.realtime.agent import RealtimeAgent, RealtimeSetup
from callbridge.agent.realtime.openai_rt import OpenAIConnector
from callbridge.agent.realtime.options import RealtimeOptions, TurnDetection
from callbridge.agent.realtime.settings import OpenAIRealtimeSettings, VoiceLiveSettings
from callbridge.agent.realtime.transport import Connector
from callbridge.agent.realtime.voicelive import VoiceLiveConnector
from callbridge.audio.playout import Playout
from callbridge.core.call_info import CallInfo
from callbridge.core.heard import Heard, heard_text
from callbridge.testing.fake_realtime import FakeRealtimeServer
from tests.waiting import until

RATE = 24000
FRAME = RATE // 50 * 2

TOOLS = [
    {
        "type": "function",
        "name": "opening_hours",
        "description": "When the shop is open",
        "parameters": {"type": "object", "properties": {}},
    },
    {
        "type": "function",
        "name": "end_call",
        "description": "End the call",
        "parameters": {"type": "object", "properties": {}},
    },
]


def tone(ms: int, rate: int = RATE, amplitude: int = 8000) -> bytes:
    t = np.arange(rate * ms // 1000) / rate
    return (amplitude * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()


def connector_for(fake: FakeRealtimeServer) -> Connector:
    if fake.dialect == "voicelive":
        vl = VoiceLiveSettings(
            endpoint=fake.url, api_key=SecretStr(fake.api_key), model="gpt-realtime"
        )
        return VoiceLiveConnector(vl)
    oa = OpenAIRealtimeSettings(
        base_url=fake.url, api_key=SecretStr(fake.api_key), model="gpt-realtime"
    )
    return OpenAIConnector(oa)


def quick_options(**changes: Any) -> RealtimeOptions:
    """Options that keep tests short: 300 ms of silence ends a caller turn."""
    turn = changes.pop("turn_detection", None) or TurnDetection(silence_duration_ms=300)
    return RealtimeOptions(turn_detection=turn, **changes)


class FakeSpeaker:
    """A stand-in for Piper: 60 ms of tone per character pair, produced instantly."""

    def __init__(self) -> None:
        self.said: list[str] = []

    async def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]:
        self.said.append(text)
        ms = max(200, len(text) * 30)
        pcm = tone(ms, out_rate, 6000)
        step = out_rate // 10 * 2  # 100 ms pieces
        for i in range(0, len(pcm), step):
            await asyncio.sleep(0)
            yield pcm[i : i + step]


ToolImpl = Callable[[dict[str, Any]], Awaitable[str]]


async def hours(args: dict[str, Any]) -> str:
    return '{"open": "9 to 5"}'


@dataclass
class Reply:
    response_id: str
    first_s: float
    ms: float = 0.0  # played
    sentences: list[list[Any]] = field(default_factory=list)  # [text, ms] as handed over


@dataclass
class Bridge:
    """Plays an agent's events like CallSession does (see the module docstring)."""

    agent: AgentSession
    tools: dict[str, ToolImpl] = field(default_factory=lambda: {"opening_hours": hours})
    rate: int = RATE
    events: list[tuple[float, AgentEvent]] = field(default_factory=list)
    interruptions: list[int] = field(default_factory=list)
    heard: list[Heard] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    sent_at: list[tuple[float, float]] = field(default_factory=list)  # (time, ms) sent
    playout: Playout | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _current: str | None = None
    _cancelled: set[str] = field(default_factory=set)

    async def _send(self, chunk: bytes) -> None:
        ms = len(chunk) / (self.rate * 2 / 1000)
        self.sent_at.append((time.monotonic(), ms))
        if self.replies:
            self.replies[-1].ms += ms

    def start(self) -> None:
        self.playout = Playout(self._send, self.rate, chunk_ms=20, lead_ms=60)
        self._tasks = [
            asyncio.ensure_future(self._pump()),
            asyncio.ensure_future(self.playout.run()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _pump(self) -> None:
        assert self.playout is not None
        playout = self.playout
        async for event in self.agent.events():
            self.events.append((time.monotonic(), event))
            if isinstance(event, AgentAudio):
                if event.response_id in self._cancelled:
                    continue
                if event.response_id != self._current:
                    self._current = event.response_id
                    playout.start_reply()
                    self.replies.append(Reply(self._current, time.monotonic()))
                self._mark(event)
                playout.enqueue(event.pcm)
            elif isinstance(event, SpeechStarted):
                if playout.speaking:
                    heard = self._flush()
                    if self._current is not None:
                        self._cancelled.add(self._current)
                    await self.agent.interrupted(heard)
            elif isinstance(event, ToolCall):
                self.tool_calls.append(event)
                self._tasks.append(asyncio.ensure_future(self._run_tool(event)))

    async def keypad_barge_in(self) -> int:
        """What CallSession does when keys interrupt the agent: no SpeechStarted first."""
        assert self.playout is not None and self.playout.speaking
        heard = self._flush()
        self._cancelled.add(self._current or "")
        await self.agent.interrupted(heard)
        return heard.ms

    def _mark(self, audio: AgentAudio) -> None:
        """Where each sentence of the reply starts (AgentAudio.text), and its length."""
        ms = len(audio.pcm) / (self.rate * 2 / 1000)
        reply = self.replies[-1]
        if audio.text or not reply.sentences:
            reply.sentences.append([audio.text, 0.0])
        reply.sentences[-1][1] += ms

    def _flush(self) -> Heard:
        """What the call session tells the agent at a barge-in."""
        assert self.playout is not None
        ms = self.playout.flush()
        spoken = [(str(t), float(m)) for t, m in self.replies[-1].sentences] if self.replies else []
        heard = Heard(ms, heard_text(spoken, ms), self._current)
        self.interruptions.append(ms)
        self.heard.append(heard)
        return heard

    async def _run_tool(self, call: ToolCall) -> None:
        impl = self.tools.get(call.name)
        output = await impl(call.arguments) if impl else '{"ok": true}'
        await self.agent.tool_result(call.call_id, output)

    # --- what was observed -------------------------------------------------------------
    def of(self, kind: type[Any]) -> list[Any]:
        return [e for _, e in self.events if isinstance(e, kind)]

    def audio_ms(self, since: float = 0.0) -> float:
        return sum(
            len(e.pcm) / (self.rate * 2 / 1000)
            for t, e in self.events
            if isinstance(e, AgentAudio) and t >= since
        )

    def played_ms(self, since: float = 0.0) -> float:
        return sum(ms for t, ms in self.sent_at if t >= since)

    @property
    def speaking(self) -> bool:
        return self.playout is not None and self.playout.speaking

    def transcripts(self) -> tuple[list[str], list[str]]:
        agent = [e.text for e in self.of(AgentTranscript)]
        caller = [e.text for e in self.of(CallerTranscript)]
        return agent, caller

    def done(self) -> list[ResponseDone]:
        return self.of(ResponseDone)

    async def replies_done(self, n: int, timeout_s: float = 5.0) -> None:
        """Until `n` replies ended normally (ResponseDone comes after a reply's last audio)."""
        await until(
            lambda: len([d for d in self.done() if not d.interrupted]) >= n,
            timeout_s,
            f"{n} replies done",
        )


class Caller:
    """Pushes one 20 ms frame every 20 ms (silence unless speaking), like ACS does."""

    def __init__(self, agent: AgentSession, rate: int = RATE) -> None:
        self.agent = agent
        self.rate = rate
        self.frame = rate // 50 * 2
        self._pending = bytearray()
        self._done: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self.pushed_ms = 0

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def say(self, ms: int) -> None:
        """Speak (a loud tone) for `ms`; returns once it has been pushed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending += tone(ms, self.rate)
        self._done.append((len(self._pending), fut))
        await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            if self._pending:
                chunk = bytes(self._pending[: self.frame])
                del self._pending[: self.frame]
                chunk += bytes(self.frame - len(chunk))
                self._done = [(n - self.frame, f) for n, f in self._done]
            else:
                chunk = bytes(self.frame)
            await self.agent.push_audio(chunk)
            self.pushed_ms += 20
            for _, fut in [d for d in self._done if d[0] <= 0]:
                if not fut.done():
                    fut.set_result(None)
            self._done = [d for d in self._done if d[0] > 0]
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - loop.time()))


@dataclass
class Call:
    agent: AgentSession  # a RealtimeAgent, or a FallbackAgent around one
    bridge: Bridge
    caller: Caller
    fake: FakeRealtimeServer
    connector: Connector

    async def close(self) -> None:
        await self.caller.stop()
        await self.agent.close()
        await self.bridge.stop()
        await self.connector.aclose()


async def start_call(
    fake: FakeRealtimeServer,
    *,
    options: RealtimeOptions | None = None,
    rate: int = RATE,
    tools: dict[str, ToolImpl] | None = None,
    info: CallInfo | None = None,
    offline: Callable[[], AgentSession] | None = None,
    **setup: Any,
) -> Call:
    """`offline`: the agent is wrapped in a FallbackAgent with it (as runtime.py does for
    `fallback: offline`)."""
    connector = connector_for(fake)
    setup.setdefault("persona", "You are the test agent for {caller}.")
    setup.setdefault("render", lambda text, call: text.replace("{caller}", call.caller))
    agent: AgentSession = RealtimeAgent(
        RealtimeSetup(connector, options or quick_options(), **setup)
    )
    if offline is not None:
        agent = FallbackAgent(agent, offline)
    bridge = Bridge(agent, rate=rate)
    if tools is not None:
        bridge.tools.update(tools)
    bridge.start()
    await agent.start(info or CallInfo("call-1", "+14255550123", "+18005550100", rate, tools=TOOLS))
    await until(
        lambda: fake.sessions and fake.sessions[-1].client_events("session.update"),
        what="connected and set up",
    )
    caller = Caller(agent, rate)
    caller.start()
    return Call(agent, bridge, caller, fake, connector)
