"""Streaming resampling of 16-bit mono PCM with soxr, keeping filter state between chunks.

soxr and NumPy (~11 MB of a replica's memory) load only for a stream whose rates differ:
a realtime line on 24 kHz ACS media talks to its 24 kHz model without them
(docs/architecture.md, "Memory").
"""

from __future__ import annotations

from typing import Any


class StreamResampler:
    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream: Any = None
        if in_rate != out_rate:
            import soxr

            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16")

    def process(self, pcm: bytes, last: bool = False) -> bytes:
        if self._stream is None:
            return pcm
        import numpy as np  # loaded with soxr above

        samples = np.frombuffer(pcm, dtype="<i2")
        out = self._stream.resample_chunk(samples, last=last)
        return bytes(np.asarray(out, dtype="<i2").tobytes())
