"""Callbridge's own voice for realtime sessions: custom-voice (hybrid) replies, and the
apology when the model cannot speak any more.

`Speaker` is the seam: anything with Piper's `stream(text, out_rate, executor)` can be
plugged in (another local TTS, a cloud TTS client). Text arrives from the model in deltas;
`SentenceSplitter` cuts it into sentences so the first one is spoken while the model is
still writing the next.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from typing import Protocol


class Speaker(Protocol):
    def stream(self, text: str, out_rate: int, executor: Executor) -> AsyncIterator[bytes]:
        """16-bit mono PCM of `text` at `out_rate`, in pieces as soon as each is ready."""
        ...


# A sentence ends at . ! ? (or …) followed by a space, or at a line break.
_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\n+")
_MIN_CHARS = 12  # "Hi. I'm …": very short pieces are kept with the next one


class SentenceSplitter:
    def __init__(self) -> None:
        self._buf = ""

    def push(self, delta: str) -> list[str]:
        """Sentences completed by `delta` (a sentence is complete once the next one starts)."""
        self._buf += delta
        out: list[str] = []
        start = 0
        for match in _END.finditer(self._buf):
            piece = self._buf[start : match.end()].strip()
            if len(piece) >= _MIN_CHARS:
                out.append(piece)
                start = match.end()
        self._buf = self._buf[start:]
        return out

    def flush(self) -> list[str]:
        rest, self._buf = self._buf.strip(), ""
        return [rest] if rest else []


def heard_text(spoken: list[tuple[str, float]], heard_ms: float) -> str:
    """What the caller heard of sentences spoken as (text, ms): whole sentences, then the
    words of the cut one in proportion to how much of it played."""
    out: list[str] = []
    left = heard_ms
    for text, ms in spoken:
        if ms <= 0:
            continue
        if left >= ms - 1:
            out.append(text)
            left -= ms
            continue
        part = heard_part(text, left / ms)
        if part:
            out.append(part)
        break
    return " ".join(out)


def heard_part(text: str, fraction: float) -> str:
    """The first `fraction` of `text`, in words, marked as cut off."""
    if fraction >= 0.999:
        return text
    words = text.split()
    n = int(len(words) * max(0.0, fraction))
    return " ".join(words[:n]) + "…" if n else ""
