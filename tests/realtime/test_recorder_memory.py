"""The call recording (audio/recorder.py): a stereo WAV, caller left and agent right, with the
agent's audio where the caller's stream was when it was sent, written as the call goes, and
holding little of the call in memory (a realtime model sends its replies faster than real
time, and every concurrent call records)."""

from __future__ import annotations

import asyncio
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest

from callbridge.audio.recorder import StereoRecorder

RATE = 24000
FRAME = RATE // 50  # samples in 20 ms


def frame(value: int) -> bytes:
    return np.full(FRAME, value, dtype="<i2").tobytes()


def channels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path), "rb") as wf:
        assert (wf.getnchannels(), wf.getsampwidth(), wf.getframerate()) == (2, 2, RATE)
        stereo = np.frombuffer(wf.readframes(wf.getnframes()), dtype="<i2")
    return stereo[0::2], stereo[1::2]


async def test_agent_audio_lands_where_the_caller_was_when_it_was_sent(tmp_path: Path) -> None:
    rec = StereoRecorder(tmp_path / "call.wav", RATE)
    reply = np.arange(1, RATE * 3 // 2 + 1, dtype="<i2")  # 1.5 s, sent in one piece
    for i in range(150):  # 3 s of caller audio, frame i holds the value 1000 + i
        rec.caller(frame(1000 + i))
        if i == 19:  # after 0.4 s: the agent's reply, far ahead of the caller's stream
            rec.agent(reply.tobytes())
        if i == 119:  # after 2.4 s: a short second reply
            rec.agent(frame(-7) * 5)
        await asyncio.sleep(0)
    path = await rec.close()

    assert path == tmp_path / "call.wav"
    left, right = channels(path)
    assert len(left) == len(right) == 150 * FRAME
    assert (left.reshape(150, FRAME) == np.arange(1000, 1150)[:, None]).all()
    start = 20 * FRAME
    assert not right[:start].any()
    assert (right[start : start + len(reply)] == reply).all()
    assert not right[start + len(reply) : 120 * FRAME].any()
    assert (right[120 * FRAME : 125 * FRAME] == -7).all()
    assert not right[125 * FRAME :].any()


async def test_the_file_is_a_valid_recording_while_the_call_goes_on(tmp_path: Path) -> None:
    rec = StereoRecorder(tmp_path / "call.wav", RATE)
    for i in range(250):  # 5 s
        rec.caller(frame(i))
        await asyncio.sleep(0)
    for _ in range(200):  # the writer is a thread: give it time
        await asyncio.sleep(0.01)
        with wave.open(str(tmp_path / "call.wav"), "rb") as wf:
            if wf.getnframes() >= 4 * RATE:
                break
    # A crash now would lose at most the last second of the call; the rest is readable.
    left, _ = channels(tmp_path / "call.wav")
    assert len(left) >= 4 * RATE
    assert (left[: 200 * FRAME].reshape(-1, FRAME)[:, 0] == np.arange(200)).all()
    await rec.close()
    left, _ = channels(tmp_path / "call.wav")
    assert len(left) == 250 * FRAME


async def test_a_recorded_call_holds_under_a_second_of_its_audio(tmp_path: Path) -> None:
    """20 calls at once, 20 s each, the agent answering 2 s of every 5 the way the playout
    sends (its lead at once, then a frame as each plays): what the recorders hold at their
    peak (buffers, copies, the writer's) is under a second of each call's audio (it was
    three: two-second blocks, copied twice on the way to a pool of writer threads)."""
    calls = 20
    recs = [StereoRecorder(tmp_path / f"{i}.wav", RATE) for i in range(calls)]
    lead = 20  # frames: the playout's largest lead, 400 ms
    await asyncio.sleep(0)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for tick in range(1000):  # 20 s of 20 ms frames, ten times faster than real time
            for i, rec in enumerate(recs):
                rec.caller(frame(tick % 100))
                at = (tick + 37 * i) % 250  # a reply starts every 5 s
                if at == 0:
                    rec.agent(frame(1) * lead)
                elif at < 100 - lead:
                    rec.agent(frame(1))
            await asyncio.sleep(0.002)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    for rec in recs:
        await rec.close()
    # One second of a call's stereo audio at 24 kHz is 96 kB.
    assert peak / calls < 96_000, f"{peak / calls / 1000:.0f} kB per call"
    left, right = channels(tmp_path / "0.wav")
    assert len(left) == 1000 * FRAME
    assert right[FRAME : 100 * FRAME].all() and not right[100 * FRAME : 251 * FRAME].any()


async def test_a_recording_that_cannot_be_written_says_so_at_the_end(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    rec = StereoRecorder(tmp_path / "not-a-folder" / "call.wav", RATE)
    for i in range(60):
        rec.caller(frame(i))
    with pytest.raises(OSError):
        await rec.close()


async def test_a_call_without_audio_leaves_no_file(tmp_path: Path) -> None:
    rec = StereoRecorder(tmp_path / "call.wav", RATE)
    assert await rec.close() is None
    assert not (tmp_path / "call.wav").exists()
