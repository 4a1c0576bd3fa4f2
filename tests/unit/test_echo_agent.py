import numpy as np

from callbridge.agent.base import AgentAudio, AgentEvent, ResponseDone, SpeechStarted, SpeechStopped
from callbridge.agent.echo import EchoAgent
from callbridge.core.call_info import CallInfo

RATE = 16000


def tone(ms: int, amp: float = 8000.0) -> bytes:
    t = np.arange(RATE * ms // 1000) / RATE
    return (amp * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


def quiet(ms: int) -> bytes:
    return bytes(RATE * ms // 1000 * 2)


async def run(agent: EchoAgent, audio: bytes) -> list[AgentEvent]:
    await agent.start(CallInfo("c", "a", "b", RATE))
    for i in range(0, len(audio), 640):
        await agent.push_audio(audio[i : i + 640])
    await agent.close()
    return [e async for e in agent.events()]


async def test_repeats_an_utterance_after_the_caller_stops() -> None:
    events = await run(EchoAgent(end_silence_ms=600), quiet(300) + tone(800) + quiet(800))
    kinds = [type(e) for e in events]
    assert kinds[0] is SpeechStarted
    assert SpeechStopped in kinds and kinds[-1] is ResponseDone
    audio = b"".join(e.pcm for e in events if isinstance(e, AgentAudio))
    ms = len(audio) / 2 / RATE * 1000
    assert 800 <= ms <= 960, ms  # the utterance plus a short tail, not the long silence
    # An echo has no words: its audio carries no sentence marks (heard text stays "").
    assert all(e.text == "" for e in events if isinstance(e, AgentAudio))


async def test_silence_and_a_click_get_no_reply() -> None:
    events = await run(EchoAgent(), quiet(500) + tone(20) + quiet(1000))
    assert events == []
