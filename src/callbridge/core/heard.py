"""What the caller heard of a reply they interrupted, worked out once by the call session.

Playout knows how many milliseconds of the reply reached the caller's ear; the agent marks
where each sentence's audio starts (`AgentAudio.text`). From the two the session derives
the words heard, so every backend truncates its memory of the reply the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Heard:
    ms: int  # of the interrupted reply's audio, as played to the caller
    text: str  # its words as far as heard; the cut sentence ends with "…"
    response_id: str | None = None


def heard_text(spoken: list[tuple[str, float]], heard_ms: float) -> str:
    """What the caller heard of sentences spoken as (text, ms of audio): whole sentences,
    then the words of the cut one in proportion to how much of it played."""
    out: list[str] = []
    left = heard_ms
    for text, ms in spoken:
        if ms <= 0:
            continue
        if left >= ms - 1:
            if text:
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
