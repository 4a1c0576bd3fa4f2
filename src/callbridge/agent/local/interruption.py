"""False interruptions: a cough, a noise or an "mm-hm" over the agent must not cost the
caller the rest of its reply.

The bridge stops the agent's audio the moment the VAD hears speech (as fast as before);
the agent does not drop the reply at once but holds it (`Held`): its text and audio so
far, and how much the caller heard. When that speech turns out short and without words
(Whisper gives no text, only a noise tag such as "(coughs)", or only a backchannel sound),
the reply resumes where the caller stopped hearing it, under a new response id; anything
else (words, or speech longer than ``noise_max_ms``) is a real interruption and the brain
is told what was heard, as before. The idea follows LiveKit Agents' false-interruption
handling (``resume_false_interruption``,
https://docs.livekit.io/reference/agents/turn-handling-options/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from callbridge.core.heard import Heard

# Sounds and acknowledgements that say "go on" or nothing at all while the agent talks,
# never a turn of their own ("yes" and "no" may answer it, so they are words).
_BACKCHANNEL: Final = frozenset(
    """ah ahem aha eh er erm hm hmm hmmm huh mhm mm mmm mm-hm mm-hmm oh ooh uh uh-huh um umm
    okay ok yeah yep right sure alright gotcha""".split()
)
# Sound spellings Whisper makes of a hum, a grunt, a throat cleared: "Mmm", "Hm", "Uhh".
# A lone letter ("F", "M.") is Whisper's guess at a grunt or a cough too.
_SOUND = re.compile(r"^(?:[a-z]|[hm]+|a+h*|u+h*m*|o+h*|e+h*|e+r+m*|ugh|tsk)$")
_TAGS = re.compile(r"\([^)]*\)|\[[^]]*\]|\*[^*]*\*")  # Whisper's "(coughs)", "[noise]"
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

RESUME_REWIND_MS: Final = 120
"""Resume a little before the cut: the caller's own noise masked the last moment."""
FADE_IN_MS: Final = 10


def is_noise(text: str) -> bool:
    """No words: empty, only noise tags, or only backchannel sounds."""
    words = _WORD.findall(_TAGS.sub(" ", text.lower()))
    return all(w in _BACKCHANNEL or all(_SOUND.match(p) for p in w.split("-")) for w in words)


@dataclass
class Piece:
    """One chunk of a reply's audio as it went to the bridge (`mark`: its sentence's
    words on the sentence's first chunk)."""

    pcm: bytes
    mark: str = ""
    sentence: str = ""  # the sentence this chunk belongs to
    index: int = 0  # that sentence's place in the reply


@dataclass
class Held:
    """A reply stopped by a barge-in, waiting for the verdict on the caller's sound."""

    heard: Heard


def rest_of_reply(pieces: list[Piece], heard_ms: int, rate: int) -> list[Piece]:
    """The audio the caller has not heard yet (from `heard_ms`, rewound a little, faded
    in), its first piece marked with the words still to come of the cut sentence."""
    skip = max(0, heard_ms - RESUME_REWIND_MS) * rate // 1000 * 2
    out: list[Piece] = []
    sentence_bytes: dict[int, int] = {}
    for p in pieces:
        sentence_bytes[p.index] = sentence_bytes.get(p.index, 0) + len(p.pcm)
    done: dict[int, int] = {}  # bytes of each sentence before the cut
    for p in pieces:
        if out:
            out.append(p)
        elif skip >= len(p.pcm):
            skip -= len(p.pcm)
            done[p.index] = done.get(p.index, 0) + len(p.pcm)
        else:
            cut = skip - skip % 2
            before = done.get(p.index, 0) + cut
            fraction = before / (sentence_bytes.get(p.index, 0) or 1)
            mark = p.sentence if cut == 0 and before == 0 else _words_after(p.sentence, fraction)
            out.append(Piece(_fade_in(p.pcm[cut:], rate), mark, p.sentence, p.index))
    return out


def _words_after(sentence: str, fraction: float) -> str:
    words = sentence.split()
    return " ".join(words[int(len(words) * max(0.0, min(1.0, fraction))) :]) or sentence


def _fade_in(pcm: bytes, rate: int) -> bytes:
    import numpy as np

    n = min(len(pcm) // 2, rate * FADE_IN_MS // 1000)
    if n == 0:
        return pcm
    x = np.frombuffer(pcm, dtype="<i2").copy()
    x[:n] = (x[:n].astype(np.float32) * np.linspace(0.0, 1.0, n, dtype=np.float32)).astype("<i2")
    return x.tobytes()
