import asyncio

from callbridge.audio.pcm import frame_bytes
from callbridge.audio.playout import Playout
from callbridge.testing.fake_clock import FakeClock

RATE = 24000


async def test_paces_in_real_time_and_counts_heard_ms() -> None:
    sent: list[bytes] = []

    async def send(chunk: bytes) -> None:
        sent.append(chunk)

    p = Playout(send, RATE, chunk_ms=20, lead_ms=60)
    task = asyncio.create_task(p.run())
    p.start_reply()
    p.enqueue(bytes(frame_bytes(RATE, 1000)))
    await asyncio.sleep(0.3)
    # ~300 ms played plus the 60 ms lead (one chunk of slack for timer jitter): the lead
    # leaves at once in one message, then a 20 ms chunk as each one plays.
    sent_ms = sum(len(c) for c in sent) * 1000 // (2 * RATE)
    assert 340 <= sent_ms <= 420, sent_ms
    assert len(sent[0]) == frame_bytes(RATE, 60)
    assert all(len(c) == frame_bytes(RATE, 20) for c in sent[1:-1])
    assert 260 <= p.heard_ms <= 340, p.heard_ms
    assert p.speaking
    heard = p.flush()
    count = len(sent)
    await asyncio.sleep(0.1)
    assert len(sent) == count, "nothing is sent after a flush"
    assert not p.speaking
    assert p.heard_ms == heard
    task.cancel()


async def test_whole_reply_heard_after_it_played() -> None:
    async def send(chunk: bytes) -> None:
        return None

    p = Playout(send, RATE, chunk_ms=20, lead_ms=40)
    task = asyncio.create_task(p.run())
    p.start_reply()
    p.enqueue(bytes(frame_bytes(RATE, 200)))
    await asyncio.sleep(0.35)
    assert p.heard_ms == 200
    assert not p.speaking
    task.cancel()


async def test_a_new_reply_is_heard_only_after_the_old_tail() -> None:
    async def send(chunk: bytes) -> None:
        return None

    p = Playout(send, RATE, chunk_ms=20, lead_ms=40)
    task = asyncio.create_task(p.run())
    p.start_reply()
    p.enqueue(bytes(frame_bytes(RATE, 300)))
    await asyncio.sleep(0.1)
    p.start_reply()  # the next reply is queued behind ~200 ms of the first
    p.enqueue(bytes(frame_bytes(RATE, 300)))
    assert p.heard_ms == 0
    await asyncio.sleep(0.3)
    assert 50 <= p.heard_ms <= 170, p.heard_ms  # ~100 ms of the second reply
    task.cancel()


async def test_a_late_loop_shows_in_the_pacing_lateness() -> None:
    """Each chunk that leaves after it was due counts in the call's lateness figures (what
    /stats and bench/bridge_load.py report); one stall of the loop is their maximum."""
    clock = FakeClock()

    async def send(chunk: bytes) -> None:
        return None

    p = Playout(send, RATE, chunk_ms=20, lead_ms=60, clock=clock)
    task = asyncio.create_task(p.run())
    p.start_reply()
    p.enqueue(bytes(frame_bytes(RATE, 2000)))
    await clock.advance(0.5, step=0.005)  # on time: each chunk leaves when due
    on_time = p.lateness.summary()
    await clock.stall(0.05)  # the loop is 50 ms late once (within the lead)
    await clock.advance(0.5, step=0.005)
    task.cancel()
    late = p.lateness.summary()
    assert on_time["count"] >= 20 and on_time["max"] <= 5.0
    # The chunk due first in the stall left late by the rest of it (up to 50 ms).
    assert late["count"] > on_time["count"] and 25.0 <= late["max"] <= 50.0
    assert late["p50"] <= 5.0  # one late chunk moves the max, not the median
