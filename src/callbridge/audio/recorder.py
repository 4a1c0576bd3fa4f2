"""A stereo WAV of a bridged call: the caller on the left, the agent on the right.

The caller's frames are the clock (ACS sends one every 20 ms, silence included); agent
audio is placed where the caller's stream was when it was sent. Every half second the
buffers are handed over whole (no copy) to one writer thread the process shares, so a call
holds under a second of audio and the loop never waits for the disk. One thread rather than
a pool: writes keep their order, and it reuses one interleaving buffer instead of each write
leaving large temporaries in a per-thread malloc arena. The file is written with plain
syscalls (the canonical 44-byte header, then the frames), as few as possible: each is a GIL
hand-over that delays the event loop, which paces the agent's audio.
"""

from __future__ import annotations

import asyncio
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

FLUSH_S = 0.5
HEADER_EVERY_S = 1.0  # the header's data size is brought up to date this often, and at close

_pool: ThreadPoolExecutor | None = None
# The writer thread's interleaving buffer. Plain bytes, not NumPy: a realtime replica loads
# NumPy for nothing else (audio/resample.py); the byte slices cost ~35 us a half-second
# block at 24 kHz (NumPy ~12 us, `array` ~75 us).
_scratch = bytearray()


def _writer() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder")
    return _pool


class StereoRecorder:
    def __init__(self, path: str | Path, sample_rate: int) -> None:
        self.path = Path(path)
        self.rate = sample_rate
        self._flush_bytes = int(sample_rate * FLUSH_S) * 2
        self._caller = bytearray()
        self._agent = bytearray()
        self._file: BinaryIO | None = None
        self._data_bytes = 0
        self._declared = 0  # data bytes the header on disk says
        self._error: Exception | None = None  # the first failed write (close raises it)
        self._closed = False
        self.seconds_written = 0.0

    def caller(self, pcm: bytes) -> None:
        if self._closed:
            return
        self._caller += pcm
        if len(self._caller) >= self._flush_bytes:
            self._flush()

    def agent(self, pcm: bytes) -> None:
        if self._closed:
            return
        if len(self._agent) < len(self._caller):
            self._agent += bytes(len(self._caller) - len(self._agent))
        self._agent += pcm

    def _flush(self) -> None:
        # Agent audio is only ever placed at or after the caller's position, so everything
        # before it is final; what the agent sent ahead stays for the next block.
        n = len(self._caller)
        caller, self._caller = self._caller, bytearray()
        agent, self._agent = self._agent, bytearray()
        if len(agent) > n:
            self._agent = agent[n:]
        _writer().submit(self._write, caller, agent, n)

    def _write(self, caller: bytearray, agent: bytearray, n_bytes: int) -> None:
        """In the writer thread: `n_bytes` of each channel (zeros where one is shorter)."""
        global _scratch
        if self._error is not None or n_bytes < 2:
            return
        frames = n_bytes // 2
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "wb", buffering=0)  # closed in _finish
                self._file.write(self._header())
            if len(_scratch) < frames * 4:
                _scratch = bytearray(frames * 4)
            for side, pcm in ((0, caller), (2, agent)):  # byte offsets in a stereo frame
                have = min(len(pcm) // 2, frames) * 2  # whole samples, in bytes
                _scratch[side : have * 2 : 4] = pcm[0:have:2]  # each sample's two bytes
                _scratch[side + 1 : have * 2 : 4] = pcm[1:have:2]
                if have < frames * 2:  # this channel is short: silence for the rest
                    zeros = bytes(frames - have // 2)
                    _scratch[side + have * 2 : frames * 4 : 4] = zeros
                    _scratch[side + 1 + have * 2 : frames * 4 : 4] = zeros
            view = memoryview(_scratch)[: frames * 4]
            while view:  # a raw write may be partial
                view = view[self._file.write(view) or 0 :]
            self._data_bytes += frames * 4
            self.seconds_written += frames / self.rate
            # A crash leaves a valid file of all but the last second. Not after every
            # block: each syscall here is a GIL hand-over the event loop feels.
            if self._data_bytes - self._declared >= self.rate * 4 * HEADER_EVERY_S:
                self._declare()
        except Exception as exc:  # kept for close(), as an awaited write would raise it
            self._error = exc

    def _declare(self) -> None:
        assert self._file is not None
        os.pwrite(self._file.fileno(), self._header(), 0)
        self._declared = self._data_bytes

    def _header(self) -> bytes:
        """The canonical 44-byte header of 16-bit stereo PCM, for the data written so far."""
        return b"RIFF" + struct.pack(
            "<L4s4sLHHLLHH4sL",
            36 + self._data_bytes,
            b"WAVE",
            b"fmt ",
            16,
            1,  # PCM
            2,
            self.rate,
            self.rate * 4,
            4,
            16,
            b"data",
            self._data_bytes,
        )

    def _finish(self, caller: bytearray, agent: bytearray, n_bytes: int) -> None:
        if n_bytes or self._file is not None:
            self._write(caller, agent, n_bytes)
        if self._file is not None:
            try:
                if self._declared != self._data_bytes:
                    self._declare()
                self._file.close()
            except Exception as exc:
                self._error = self._error or exc

    async def close(self) -> Path | None:
        """Write what is left and finish the file; None if the call had no audio."""
        if self._closed:
            return self.path if self._file is not None else None
        self._closed = True
        caller, agent = self._caller, self._agent
        self._caller, self._agent = bytearray(), bytearray()
        n = max(len(caller), len(agent))
        # The writer runs jobs in order: this one comes after every block of the call.
        await asyncio.get_running_loop().run_in_executor(_writer(), self._finish, caller, agent, n)
        if self._error is not None:
            raise self._error
        return self.path if self._file is not None else None
