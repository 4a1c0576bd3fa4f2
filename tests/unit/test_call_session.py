"""CallSession with a scripted media leg: echo, barge-in, release of everything."""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np

from callbridge.agent.echo import EchoAgent
from callbridge.call.line import Line
from callbridge.call.media_leg import CallerAudio, CallerDtmf, CallerInput
from callbridge.call.session import CallLimits, CallSession
from callbridge.core.call_info import CallInfo
from tests.call_fakes import RecordingCarrier

RATE = 24000
FRAME = RATE // 50 * 2


def tone(ms: int) -> bytes:
    t = np.arange(RATE * ms // 1000) / RATE
    return (8000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()


def quiet(ms: int) -> bytes:
    return bytes(RATE * ms // 1000 * 2)


class ScriptedLeg:
    """Feeds caller audio in real time and records what the bridge sends back."""

    sample_rate = RATE

    def __init__(self) -> None:
        self.close_reason = ""
        self.inbox: asyncio.Queue[CallerInput | None] = asyncio.Queue()
        self.sent: list[tuple[float, bytes]] = []
        self.stops: list[float] = []
        self.closed = False

    async def receive(self) -> CallerInput | None:
        return await self.inbox.get()

    async def send_audio(self, pcm: bytes) -> None:
        self.sent.append((time.monotonic(), pcm))

    async def stop_audio(self) -> None:
        self.stops.append(time.monotonic())

    async def close(self, code: int = 1000) -> None:
        self.closed = True

    async def say(self, pcm: bytes) -> None:
        for i in range(0, len(pcm), FRAME):
            await self.inbox.put(CallerAudio(pcm[i : i + FRAME]))
            await asyncio.sleep(0.02)


class HangUpCarrier(RecordingCarrier):
    def __init__(self, hang_ups: list[str]) -> None:
        super().__init__()
        self._log = hang_ups

    async def hang_up(self) -> None:
        self._log.append("hung up")


def make_session(hang_ups: list[str], **limits: float) -> CallSession:
    return CallSession(
        CallInfo("call-1", "+1", "+2", RATE),
        Line("echo", lambda: EchoAgent(end_silence_ms=300)),
        HangUpCarrier(hang_ups),
        limits=CallLimits(disconnect_grace_s=0.2, **limits),  # type: ignore[arg-type]
    )


async def test_echo_barge_in_and_release() -> None:
    before = set(asyncio.all_tasks())
    hang_ups: list[str] = []
    session = make_session(hang_ups)
    session.answered()
    leg = ScriptedLeg()
    bridge = asyncio.create_task(session.run_media(leg))
    await leg.say(tone(600) + quiet(400))
    await leg.say(quiet(300))  # the echo plays while the caller is quiet
    heard_before_barge = sum(len(p) for _, p in leg.sent)
    assert heard_before_barge > 0, "the echo started playing"
    t_barge = time.monotonic()
    await leg.inbox.put(CallerDtmf("5"))
    await leg.say(tone(200))
    assert leg.stops, "StopAudio was sent on barge-in"
    assert leg.stops[0] - t_barge < 0.15
    sent_at_stop = len([t for t, _ in leg.sent if t <= leg.stops[0]])
    assert sent_at_stop == len([t for t, _ in leg.sent if t <= leg.stops[0] + 0.001])
    assert session.stats.barge_ins == 1
    assert session.stats.dtmf_in == ["5"]
    # The caller goes away: the socket closes and no CallDisconnected follows.
    await leg.inbox.put(None)
    await asyncio.wait_for(bridge, 3)
    assert session.ended and leg.closed
    assert hang_ups == ["hung up"]  # we hang up a call whose media vanished
    await asyncio.sleep(0)
    assert set(asyncio.all_tasks()) - before - {asyncio.current_task()} == set()


async def test_disconnect_during_media_releases_without_hang_up() -> None:
    hang_ups: list[str] = []
    session = make_session(hang_ups)
    session.answered()
    leg = ScriptedLeg()
    bridge = asyncio.create_task(session.run_media(leg))
    await leg.say(quiet(100))
    await session.disconnected("caller hung up")
    await asyncio.wait_for(bridge, 2)
    assert hang_ups == [] and leg.closed
    assert session.end_reason == "caller hung up"


async def test_idle_and_no_media_timeouts_hang_up() -> None:
    hang_ups: list[str] = []
    no_media = make_session(hang_ups, media_connect_timeout_s=0.1)
    no_media.answered()
    await asyncio.sleep(0.3)
    assert no_media.end_reason == "no media connection"

    idle = make_session(hang_ups, idle_timeout_s=0.3)
    idle.answered()
    leg = ScriptedLeg()
    await asyncio.wait_for(idle.run_media(leg), 3)
    assert idle.end_reason is not None and idle.end_reason.startswith("no media from the caller")
    assert hang_ups == ["hung up", "hung up"]


async def test_a_cancelled_media_task_still_releases_and_counts_the_call() -> None:
    """The socket's handler may be cancelled (a client gone, a server stop): the call is
    still ended, released and handed back to whoever counts it."""
    hang_ups: list[str] = []
    session = make_session(hang_ups)
    closed: list[str] = []
    session.on_closed.append(lambda s: closed.append(s.call_id))
    session.answered()
    leg = ScriptedLeg()
    bridge = asyncio.create_task(session.run_media(leg))
    await leg.say(tone(200))
    bridge.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await bridge
    for _ in range(100):
        if closed:
            break
        await asyncio.sleep(0.01)
    assert closed == ["call-1"] and session.ended and leg.closed
