"""Several calls' transcriptions in one Whisper batch give what one by one gives."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from callbridge.agent.local.stt import NUMBERS_PROMPT, SOUNDS_PROMPT, WhisperStt
from callbridge.agent.local.stt_batch import SttBatcher, batched
from tests.local_models.audio import silence, speech16k
from tests.waiting import until

PHRASES = [
    "What are your opening hours?",
    "Where is my order?",
    "Four five one two.",
    "Can you recommend a Japanese restaurant?",
]


def _audio(text: str) -> bytes:
    return silence(200) + speech16k(text, pitch=1.15) + silence(200)


def test_a_batch_hears_what_one_by_one_hears(stt: WhisperStt) -> None:
    audio = [_audio(t) for t in PHRASES] + [b""]
    alone = [stt.transcribe(a).text for a in audio]
    together = [r.text for r in stt.transcribe_many(audio)]
    assert together == alone
    assert together[-1] == "" and "opening hours" in together[0].lower()


def test_a_batch_with_and_without_a_prompt_hears_what_one_by_one_hears(stt: WhisperStt) -> None:
    """Calls transcribed with a prompt (a number after a pause, a sound over the agent)
    and without one at the same moment: each gets its own prompt's text."""
    audio = [_audio(t) for t in PHRASES]
    prompts = ["", NUMBERS_PROMPT, SOUNDS_PROMPT, ""]
    alone = [stt.transcribe(a, prompt=p).text for a, p in zip(audio, prompts, strict=True)]
    together = [r.text for r in stt.transcribe_many(audio, prompts)]
    assert together == alone
    assert "opening hours" in together[0].lower() and together[1] != ""


class Recording:
    """Stands in for Whisper: records the batches it is given; the first waits for `go`."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.go = threading.Event()
        self.busy = threading.Event()

    def transcribe(self, pcm16k: bytes) -> str:
        return str(len(pcm16k))

    def transcribe_many(self, utterances: Sequence[bytes]) -> list[str]:
        self.busy.set()
        self.go.wait(5)
        self.batches.append(len(utterances))
        return [str(len(u)) for u in utterances]


async def test_calls_that_stop_together_share_a_batch() -> None:
    stt = Recording()
    batcher = SttBatcher(stt)
    pool = ThreadPoolExecutor(1)
    first = asyncio.ensure_future(batcher.transcribe_async(bytes(2), pool))
    await asyncio.to_thread(stt.busy.wait, 5)  # the first is being transcribed (alone) ...
    rest = [asyncio.ensure_future(batcher.transcribe_async(bytes(n), pool)) for n in (4, 6)]
    await asyncio.sleep(0)  # ... while two more calls stop talking
    stt.go.set()
    assert await asyncio.gather(first, *rest) == ["2", "4", "6"]
    assert stt.batches == [1, 2]
    assert batched(stt) is batched(stt) and batched(object()) is not None


class TwoReplicas(Recording):
    """`Recording` with two replicas: counts the transcriptions running at once."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0
        self._count = threading.Lock()

    def transcribe_many(self, utterances: Sequence[bytes]) -> list[str]:
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return super().transcribe_many(utterances)
        finally:
            with self._count:
                self.running -= 1


async def test_a_second_caller_goes_on_the_other_replica_and_the_rest_are_shared() -> None:
    stt = TwoReplicas()
    batcher = SttBatcher(stt, lanes=2)
    pool = ThreadPoolExecutor(2)
    first = asyncio.ensure_future(batcher.transcribe_async(bytes(2), pool))
    await asyncio.to_thread(stt.busy.wait, 5)
    assert not batcher.busy  # one replica is still free: an early transcription may go
    second = asyncio.ensure_future(batcher.transcribe_async(bytes(4), pool))
    for _ in range(500):  # the second starts without waiting for the first
        if stt.running == 2:
            break
        await asyncio.sleep(0.01)
    assert stt.running == 2 and batcher.busy
    rest = [asyncio.ensure_future(batcher.transcribe_async(bytes(n), pool)) for n in (6, 8, 10)]
    await asyncio.sleep(0)
    stt.go.set()
    assert await asyncio.gather(first, second, *rest) == ["2", "4", "6", "8", "10"]
    # The three that waited are split between the replicas as they free: 2 + 1.
    assert sorted(stt.batches) == [1, 1, 1, 2] and stt.most == 2
    await _freed(batcher)


async def test_a_waiter_whose_event_loop_closed_does_not_stop_the_batcher() -> None:
    """A transcription left waiting by an event loop that has since closed (a test's loop,
    a worker stopping) is dropped: the replica is not left counted busy, and later calls
    are still transcribed. Before, the drainer died settling it and every later
    transcription waited forever (the caller heard no reply at all)."""
    stt = Recording()
    batcher = SttBatcher(stt)
    pool = ThreadPoolExecutor(1)
    first = asyncio.ensure_future(batcher.transcribe_async(bytes(2), pool))
    await asyncio.to_thread(stt.busy.wait, 5)

    def leave_one_waiting() -> None:
        other = asyncio.new_event_loop()
        waiter = other.create_task(batcher.transcribe_async(bytes(4), pool))
        other.run_until_complete(asyncio.sleep(0.01))  # queued behind the first
        assert not waiter.done()
        other.close()

    await asyncio.to_thread(leave_one_waiting)
    stt.go.set()
    assert await first == "2"
    assert await asyncio.wait_for(batcher.transcribe_async(bytes(6), pool), 5) == "6"
    await _freed(batcher)


async def _freed(batcher: SttBatcher) -> None:
    """Every replica is free again (a drainer frees its own just after its last result)."""
    await until(lambda: not batcher.busy, 1.0, "a replica counted busy with nothing to do")
