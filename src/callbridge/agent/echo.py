"""The echo agent: repeats each caller utterance once the caller stops (by energy).

It exists for tests and benchmarks: cheap, deterministic, and it exercises the whole bridge
(speech start/stop, agent audio, barge-in) without any model.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from callbridge.agent.base import (
    AgentAudio,
    AgentEvent,
    EventStream,
    ResponseDone,
    SpeechStarted,
    SpeechStopped,
)
from callbridge.core.call_info import CallInfo
from callbridge.core.heard import Heard

_ids = itertools.count(1)


class EchoAgent:
    def __init__(
        self,
        *,
        threshold_dbfs: float = -45.0,
        onset_ms: int = 40,
        end_silence_ms: int = 600,
        max_utterance_ms: int = 20000,
        chunk_ms: int = 100,
    ) -> None:
        self._threshold = 32768.0 * 10 ** (threshold_dbfs / 20)
        self._onset_ms = onset_ms
        self._end_ms = end_silence_ms
        self._max_ms = max_utterance_ms
        self._chunk_ms = chunk_ms
        self._set_rate(24000)
        self._pending = bytearray()
        self._utterance = bytearray()
        self._in_speech = False
        self._loud_ms = 0
        self._quiet_ms = 0
        self._events = EventStream()
        self._closed = False

    def _set_rate(self, rate: int) -> None:
        self._rate = rate
        self._frame_bytes = rate // 50 * 2
        self._zero_frame = bytes(self._frame_bytes)
        # Compare a frame's energy (sum of squares) with the threshold's: no mean, no sqrt.
        self._energy_threshold = self._threshold**2 * (self._frame_bytes // 2)

    async def start(self, call: CallInfo) -> None:
        self._set_rate(call.sample_rate)

    async def push_audio(self, pcm: bytes) -> None:
        if self._closed:
            return
        self._pending += pcm
        while len(self._pending) >= self._frame_bytes:
            frame = bytes(self._pending[: self._frame_bytes])
            del self._pending[: self._frame_bytes]
            self._on_frame(frame)

    def _on_frame(self, frame: bytes) -> None:
        if frame == self._zero_frame:  # ACS's silent frames: skip the arithmetic
            loud = False
        else:
            samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
            loud = float(samples @ samples) >= self._energy_threshold
        if not self._in_speech:
            self._loud_ms = self._loud_ms + 20 if loud else 0
            self._utterance += frame  # keep the onset frames
            if len(self._utterance) > self._onset_ms // 20 * self._frame_bytes:
                del self._utterance[: self._frame_bytes]
            if self._loud_ms >= self._onset_ms:
                self._in_speech = True
                self._quiet_ms = 0
                self._events.put(SpeechStarted())
            return
        self._utterance += frame
        self._quiet_ms = 0 if loud else self._quiet_ms + 20
        too_long = len(self._utterance) >= self._max_ms // 20 * self._frame_bytes
        if self._quiet_ms >= self._end_ms or too_long:
            self._finish_utterance()

    def _finish_utterance(self) -> None:
        # Drop the trailing silence that ended the turn, keep a short natural tail.
        tail = max(0, self._quiet_ms - 100) // 20 * self._frame_bytes
        audio = bytes(self._utterance[: len(self._utterance) - tail])
        self._utterance.clear()
        self._in_speech = False
        self._loud_ms = 0
        self._events.put(SpeechStopped())
        rid = f"echo-{next(_ids)}"
        step = self._rate * self._chunk_ms // 1000 * 2
        for i in range(0, len(audio), step):
            self._events.put(AgentAudio(audio[i : i + step], rid))
        self._events.put(ResponseDone(rid))

    async def push_dtmf(self, digit: str) -> None:
        return None

    async def tool_result(self, call_id: str, output: str) -> None:
        return None

    async def notify(self, notice: str, detail: dict[str, Any]) -> None:
        return None

    async def interrupted(self, heard: Heard) -> None:
        # All audio of a reply is handed over at once; the bridge drops what was not heard.
        return None

    def events(self) -> AsyncIterator[AgentEvent]:
        return aiter(self._events)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._events.close()
