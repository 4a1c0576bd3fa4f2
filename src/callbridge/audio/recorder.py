"""A stereo WAV of a bridged call: the caller on the left, the agent on the right.

The caller's frames are the clock (ACS sends one every 20 ms, silence included); agent
audio is placed where the caller's stream was when it was sent. Blocks go to disk every
couple of seconds from a thread, so a long call costs little memory and no loop time.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np

FLUSH_S = 2.0
MARGIN_S = 0.3  # agent audio may be placed slightly ahead of the caller's stream


class StereoRecorder:
    def __init__(self, path: str | Path, sample_rate: int) -> None:
        self.path = Path(path)
        self.rate = sample_rate
        self._caller = bytearray()
        self._agent = bytearray()
        self._wav: wave.Wave_write | None = None
        self._pending: asyncio.Task[None] | None = None
        self._closed = False
        self.seconds_written = 0.0

    def caller(self, pcm: bytes) -> None:
        if self._closed:
            return
        self._caller += pcm
        if len(self._caller) >= int(self.rate * (FLUSH_S + MARGIN_S)) * 2:
            self._flush(len(self._caller) - int(self.rate * MARGIN_S) * 2)

    def agent(self, pcm: bytes) -> None:
        if self._closed:
            return
        if len(self._agent) < len(self._caller):
            self._agent += bytes(len(self._caller) - len(self._agent))
        self._agent += pcm

    def _flush(self, n_bytes: int) -> None:
        n_bytes -= n_bytes % 2
        if n_bytes <= 0 or (self._pending is not None and not self._pending.done()):
            return
        caller = bytes(self._caller[:n_bytes])
        agent = bytes(self._agent[:n_bytes]).ljust(n_bytes, b"\0")
        del self._caller[:n_bytes]
        del self._agent[: min(n_bytes, len(self._agent))]
        self._pending = asyncio.ensure_future(asyncio.to_thread(self._write, caller, agent))

    def _write(self, caller: bytes, agent: bytes) -> None:
        if self._wav is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wav = wave.open(str(self.path), "wb")
            self._wav.setnchannels(2)
            self._wav.setsampwidth(2)
            self._wav.setframerate(self.rate)
        left = np.frombuffer(caller, dtype="<i2")
        right = np.frombuffer(agent, dtype="<i2")
        stereo = np.empty(left.size * 2, dtype="<i2")
        stereo[0::2], stereo[1::2] = left, right
        self._wav.writeframes(stereo.tobytes())
        self.seconds_written += left.size / self.rate

    async def close(self) -> Path | None:
        """Write what is left and finish the file; None if the call had no audio."""
        if self._closed:
            return self.path if self._wav is not None else None
        self._closed = True
        if self._pending is not None:
            await self._pending
        n = max(len(self._caller), len(self._agent))
        caller = bytes(self._caller).ljust(n, b"\0")
        agent = bytes(self._agent).ljust(n, b"\0")
        if n or self._wav is not None:
            await asyncio.to_thread(self._write, caller, agent)
        if self._wav is None:
            return None
        wav = self._wav
        await asyncio.to_thread(wav.close)
        return self.path
