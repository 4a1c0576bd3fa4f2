"""The outbound lead follows the jitter of the caller's frame arrivals (audio/jitter.py,
audio/playout.py), on a fake clock."""

from __future__ import annotations

import asyncio

from callbridge.audio.jitter import ArrivalJitter
from callbridge.audio.pcm import frame_bytes
from callbridge.audio.playout import Playout
from callbridge.testing.fake_clock import FakeClock

RATE = 16000


def test_steady_arrivals_have_no_spread_and_late_ones_do() -> None:
    jitter = ArrivalJitter()
    for i in range(100):
        jitter.arrived(10.0 + i * 0.02, 20)
    assert jitter.spread_ms < 1e-6
    # One frame 90 ms late (a stall), the next ones in a burst that catches up.
    t = 10.0 + 100 * 0.02
    jitter.arrived(t + 0.09, 20)
    for i in range(1, 5):
        jitter.arrived(t + 0.09 + i * 0.001, 20)
    assert 85 <= jitter.spread_ms <= 95
    jitter.reset()
    assert jitter.spread_ms == 0


def test_the_spread_is_forgotten_after_the_window() -> None:
    jitter = ArrivalJitter(window_s=2)
    jitter.arrived(0.0, 20)
    jitter.arrived(0.02 + 0.1, 20)  # 100 ms late
    t = 0.12
    for i in range(1, 200):  # four seconds of steady frames after it
        jitter.arrived(t + i * 0.02, 20)
    assert jitter.spread_ms < 1e-6


async def test_the_lead_grows_with_the_spread_up_to_its_ceiling() -> None:
    clock = FakeClock()
    sent: list[int] = []

    async def send(chunk: bytes) -> None:
        sent.append(len(chunk) * 1000 // (2 * RATE))

    p = Playout(send, RATE, chunk_ms=20, lead_ms=60, max_lead_ms=300, clock=clock)
    # A path not known yet (the greeting plays before the caller's frames tell anything):
    # a rough lead until two seconds of them have arrived.
    assert p.lead_ms == 200
    for i in range(110):
        p.arrivals.arrived(clock.now() + i * 0.02 + (0.08 if i == 105 else 0.0), 20)
    assert 139 <= p.lead_ms <= 141  # 60 + the 80 ms spread
    for i in range(110, 160):
        p.arrivals.arrived(clock.now() + i * 0.02 + (0.5 if i == 150 else 0.0), 20)
    assert p.lead_ms == 300  # capped
    # With that lead, a reply's first 300 ms leave at once, in one message.
    task = asyncio.create_task(p.run())
    p.start_reply()
    p.enqueue(bytes(frame_bytes(RATE, 1000)))
    await clock.settle()
    assert sent[0] == 300 and sum(sent) <= 320
    task.cancel()


async def test_a_fixed_lead_ignores_the_arrivals() -> None:
    async def send(chunk: bytes) -> None:
        return None

    p = Playout(send, RATE, chunk_ms=20, lead_ms=60)
    p.arrivals.arrived(0.0, 20)
    p.arrivals.arrived(0.5, 20)
    assert p.lead_ms == 60


async def test_held_audio_waits_for_the_new_leg_and_then_plays() -> None:
    clock = FakeClock()
    sent: list[int] = []

    async def send(chunk: bytes) -> None:
        sent.append(len(chunk) * 1000 // (2 * RATE))

    p = Playout(send, RATE, chunk_ms=20, lead_ms=40, clock=clock)
    task = asyncio.create_task(p.run())
    p.start_reply()
    p.enqueue(bytes(frame_bytes(RATE, 400)))
    await clock.advance(0.1)
    before = sum(sent)
    p.hold()  # the media socket broke
    await clock.advance(0.5)
    assert sum(sent) <= before + 20  # at most the chunk already on its way
    held = sum(sent)
    p.resume()  # ACS reopened it: the rest of the reply goes out on the new one
    await clock.advance(0.5)
    assert sum(sent) == 400 and held < 400
    task.cancel()


def test_a_reopened_stream_keeps_what_the_path_showed() -> None:
    jitter = ArrivalJitter()
    for i in range(100):
        jitter.arrived(i * 0.02 + (0.09 if i == 50 else 0.0), 20)
    before = jitter.spread_ms
    jitter.restart()  # a new socket over the same network
    assert jitter.observed_s == 0 and jitter.spread_ms == before
    for i in range(20):
        jitter.arrived(10.0 + i * 0.02, 20)
    assert jitter.spread_ms >= before
