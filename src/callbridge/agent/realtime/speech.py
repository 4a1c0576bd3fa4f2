"""Callbridge's own voice for realtime sessions: custom-voice (hybrid) replies, and the
apology when the model cannot speak any more.

`Speaker` is the seam: anything with Piper's `stream(text, out_rate, executor)` can be
plugged in (another local TTS, a cloud TTS client). Text arrives from the model in deltas;
the agents' one `SentenceSplitter` (agent/sentences.py) cuts it into sentences so the first
one is spoken while the model is still writing the next.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import Executor
from typing import Protocol


class Speaker(Protocol):
    def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]:
        """16-bit mono PCM of `text` at `out_rate`, in pieces as soon as each is ready."""
        ...
