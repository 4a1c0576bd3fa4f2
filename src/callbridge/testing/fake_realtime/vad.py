"""A simple energy VAD, standing in for the services' server VAD (``server_vad`` turn detection).

It works on the *input clock* — milliseconds of audio appended so far — as the services do,
so `audio_start_ms` / `audio_end_ms` are positions in the appended audio, never wall time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_MS = 20
RATE = 24000
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2


@dataclass
class EnergyVadEvent:
    kind: str  # "started" | "stopped"
    ms: int  # audio_start_ms (with prefix padding) or audio_end_ms


class EnergyVad:
    def __init__(self, threshold_rms: float = 350.0) -> None:
        self.threshold = threshold_rms
        self.prefix_padding_ms = 300
        self.silence_duration_ms = 500
        self.speech_duration_ms = 60
        self._buf = bytearray()
        self.position_ms = 0
        self.in_speech = False
        self._loud_ms = 0
        self._quiet_ms = 0
        self._onset_ms = 0
        self._last_loud_end = 0

    def configure(self, turn: dict[str, object] | None) -> None:
        turn = turn or {}
        for key in ("prefix_padding_ms", "silence_duration_ms", "speech_duration_ms"):
            value = turn.get(key)
            if isinstance(value, int | float):
                setattr(self, key, int(value))

    def push(self, pcm: bytes) -> list[EnergyVadEvent]:
        self._buf += pcm
        out: list[EnergyVadEvent] = []
        while len(self._buf) >= FRAME_BYTES:
            frame = np.frombuffer(bytes(self._buf[:FRAME_BYTES]), dtype="<i2").astype(np.float32)
            del self._buf[:FRAME_BYTES]
            loud = float(np.sqrt(np.mean(frame * frame))) > self.threshold
            start = self.position_ms
            self.position_ms += FRAME_MS
            if not self.in_speech:
                if loud:
                    if self._loud_ms == 0:
                        self._onset_ms = start
                    self._loud_ms += FRAME_MS
                else:
                    self._loud_ms = 0
                if self._loud_ms >= max(FRAME_MS, self.speech_duration_ms):
                    self.in_speech = True
                    self._quiet_ms = 0
                    self._last_loud_end = self.position_ms
                    onset = max(0, self._onset_ms - self.prefix_padding_ms)
                    out.append(EnergyVadEvent("started", onset))
                continue
            if loud:
                self._quiet_ms = 0
                self._last_loud_end = self.position_ms
            else:
                self._quiet_ms += FRAME_MS
                if self._quiet_ms >= self.silence_duration_ms:
                    self.in_speech = False
                    self._loud_ms = 0
                    out.append(EnergyVadEvent("stopped", self._last_loud_end))
        return out
