"""Agent audio on the caller's side: playout buffer, what was heard, the stereo recording."""

from __future__ import annotations

import asyncio
import wave

import numpy as np

FRAME_S = 0.020  # ACS media streaming: 20 ms frames, 50 per second
SILENCE_PEAK = 8  # |sample| <= this counts as silence (dither / rounding noise)
MERGE_GAP_TICKS = 4  # gaps < 100 ms (≤ 4 ticks of 20 ms) are merged into one segment
UNDERRUN_WINDOW_TICKS = 10  # audio resuming within 200 ms of running dry = an underrun


class PlayoutBuffer:
    """Queued agent audio, played 20 ms per tick on the call clock; emptied by StopAudio.

    An *underrun* is counted when the buffer ran dry (or held only part of a frame) while
    agent audio was playing and more audio arrived within 200 ms without a StopAudio in
    between — i.e. an audible gap inside what the service meant as continuous speech.
    """

    def __init__(self, frame_bytes: int) -> None:
        self.frame_bytes = frame_bytes
        self._buf = bytearray()
        self._playing = False
        self._dry_tick: int | None = None
        self.underruns = 0
        self.underrun_ticks: list[int] = []  # when each gap ended (the audio resumed)

    def __len__(self) -> int:
        return len(self._buf)

    def push(self, pcm: bytes, tick: int) -> None:
        if not pcm:
            return
        if self._dry_tick is not None and tick - self._dry_tick <= UNDERRUN_WINDOW_TICKS:
            self.underruns += 1
            self.underrun_ticks.append(tick)
        self._dry_tick = None
        self._buf += pcm

    def has_audible(self) -> bool:
        """Whether anything still queued would be heard (checked only when a wait ends)."""
        return bool(self._buf) and is_audible(bytes(self._buf))

    def flush(self) -> None:
        self._buf.clear()
        self._playing = False
        self._dry_tick = None

    def pull(self, tick: int) -> bytes | None:
        """The next 20 ms to play, zero-padded; ``None`` when nothing is queued."""
        if not self._buf:
            if self._playing:
                self._dry_tick = tick
            self._playing = False
            return None
        frame = bytes(self._buf[: self.frame_bytes])
        del self._buf[: self.frame_bytes]
        if len(frame) < self.frame_bytes:
            frame += bytes(self.frame_bytes - len(frame))
            self._dry_tick = tick
            self._playing = False
        else:
            self._playing = True
        return frame


class HeardTracker:
    """Where the caller heard non-silent agent audio: merged segments for the report, and
    one flag byte per tick (exact, for live waits: ``ticks.find(1, since)`` is C-speed)."""

    def __init__(self) -> None:
        self._segments: list[list[int]] = []  # [start_tick, end_tick)
        self.last_tick: int | None = None  # last tick that played audible agent audio
        self.ticks = bytearray()  # ticks[t] == 1: agent audio audible during tick t

    def add(self, tick: int, frame: bytes | None) -> None:
        if len(self.ticks) <= tick:
            self.ticks.extend(bytes(tick + 1 - len(self.ticks)))
        if frame is None or not is_audible(frame):
            return
        self.ticks[tick] = 1
        self.last_tick = tick
        if self._segments and tick - self._segments[-1][1] <= MERGE_GAP_TICKS:
            self._segments[-1][1] = tick + 1
        else:
            self._segments.append([tick, tick + 1])

    def segments(self) -> list[tuple[float, float]]:
        return [(round(a * FRAME_S, 3), round(b * FRAME_S, 3)) for a, b in self._segments]


class Voices:
    """What other people on the call say (simulated humans after an add-participant),
    one buffer per speaker, mixed 20 ms per tick into what the caller hears and into the
    mixed audio the service receives."""

    def __init__(self) -> None:
        self._pcm: dict[str, bytearray] = {}

    def __bool__(self) -> bool:
        return bool(self._pcm)

    def add(self, speaker: str, pcm: bytes) -> None:
        if pcm:
            self._pcm.setdefault(speaker, bytearray()).extend(pcm)

    def remove(self, speaker: str) -> None:
        self._pcm.pop(speaker, None)

    def pull(self, frame_bytes: int) -> bytes | None:
        """The next 20 ms of everyone speaking, mixed; ``None`` when nobody is."""
        if not self._pcm:
            return None
        frames: list[bytes | None] = []
        for speaker in list(self._pcm):
            buf = self._pcm[speaker]
            frame = bytes(buf[:frame_bytes])
            del buf[:frame_bytes]
            if len(frame) < frame_bytes:
                frame += bytes(frame_bytes - len(frame))
            frames.append(frame)
            if not buf:
                del self._pcm[speaker]
        return mix(*frames)


def mix(*frames: bytes | None) -> bytes | None:
    """Sum equal-length PCM16 frames with clipping; ``None`` frames are absent."""
    present = [f for f in frames if f is not None]
    if len(present) <= 1:
        return present[0] if present else None
    acc = np.zeros(len(present[0]) // 2, dtype=np.int32)
    for frame in present:
        acc += np.frombuffer(frame, dtype="<i2")
    return np.clip(acc, -32768, 32767).astype("<i2").tobytes()


def is_audible(frame: bytes) -> bool:
    samples = np.frombuffer(frame, dtype="<i2")
    return bool(samples.size) and int(np.abs(samples.astype(np.int32)).max()) > SILENCE_PEAK


class Timeline:
    """Caller (left) and heard agent audio (right), one frame per tick, for WAV + report."""

    def __init__(self, frame_bytes: int, record_caller: bool) -> None:
        self.frame_bytes = frame_bytes
        self._record_caller = record_caller
        self.caller = bytearray()
        self.agent = bytearray()

    def add(self, caller: bytes, agent: bytes | None) -> None:
        if self._record_caller:
            self.caller += caller
        self.agent += agent if agent is not None else bytes(self.frame_bytes)

    async def write_wav(self, path: str, rate: int) -> None:
        await asyncio.to_thread(_write_stereo, path, rate, bytes(self.caller), bytes(self.agent))


def _write_stereo(path: str, rate: int, left: bytes, right: bytes) -> None:
    lch = np.frombuffer(left, dtype="<i2")
    rch = np.frombuffer(right, dtype="<i2")
    n = max(lch.size, rch.size)
    stereo = np.zeros((n, 2), dtype="<i2")
    stereo[: lch.size, 0] = lch
    stereo[: rch.size, 1] = rch
    with wave.open(path, "wb") as wf:
        wf.setnchannels(2)
        wf.setsampwidth(2)
        wf.setframerate(rate)
        wf.writeframes(stereo.tobytes())
