"""What a call session needs from a telephony media edge (ACS today, others later)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from callbridge.core.ending import EndReason


@dataclass(frozen=True, slots=True)
class CallerAudio:
    pcm: bytes  # 16-bit mono at the leg's rate; silence kept as zeros


@dataclass(frozen=True, slots=True)
class CallerDtmf:
    digit: str


CallerInput = CallerAudio | CallerDtmf


class MediaLeg(Protocol):
    sample_rate: int
    close_reason: EndReason | None  # why receive() returned None, once it has

    async def receive(self) -> CallerInput | None:
        """The caller's next input, or None once the leg has closed."""

    async def send_audio(self, pcm: bytes) -> None: ...

    async def stop_audio(self) -> None:
        """Drop all agent audio queued at the far end (barge-in)."""

    async def close(self, code: int = 1000) -> None: ...
