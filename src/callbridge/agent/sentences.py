"""Cutting text into the pieces an agent speaks: sentences as they complete, clauses of a
long first sentence.

Replies are spoken a sentence at a time so the first one plays while the rest is still
being written (by a brain, or by a realtime model in custom-voice mode). One splitter
serves every agent; `min_chars` is the one knob where they differ.
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? or … (possibly repeated, possibly closed by a quote or a
# bracket) when white space follows, so text that has only just arrived stays buffered
# until the next piece shows whether it ended.
_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "a.m", "p.m", "approx"}
)


def _is_abbreviation(text: str, end: int) -> bool:
    """Is the full stop ending at `end` part of an abbreviation ("Dr.", "p.m.")?"""
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start:end].rstrip(".").lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


class SentenceSplitter:
    """Cuts streamed text into sentences as soon as each one is complete.

    A sentence ends at `.`, `!`, `?` or `…` followed by white space (not the full stop of
    an abbreviation), or at a line break. A run-on longer than `max_chars` is broken at its
    last comma or space rather than keep the caller waiting for the whole paragraph.
    Pieces shorter than `min_chars` are kept with the next sentence ("Hi. I'm Ava." as one
    piece of speech): a realtime model in custom-voice mode writes faster than it is
    spoken, so whole phrases cost nothing there and sound better.
    """

    def __init__(self, *, max_chars: int = 300, min_chars: int = 0) -> None:
        self._buf = ""
        self._max = max_chars
        self._min = min_chars

    def feed(self, piece: str) -> list[str]:
        """The sentences completed by `piece`."""
        self._buf += piece
        out: list[str] = []
        while (cut := self._find_cut()) is not None:
            sentence, self._buf = self._buf[:cut].strip(), self._buf[cut:].lstrip()
            if sentence:
                out.append(sentence)
        return out

    def flush(self) -> list[str]:
        """What is left, as the last sentence (the text is complete)."""
        rest, self._buf = self._buf.strip(), ""
        return [rest] if rest else []

    def _find_cut(self) -> int | None:
        for cut in self._ends():
            if len(self._buf[:cut].strip()) >= self._min:
                return cut
        if len(self._buf) > self._max:
            cut = max(self._buf.rfind(", ", 0, self._max), self._buf.rfind(" ", 0, self._max))
            return cut + 1 if cut > 0 else self._max
        return None

    def _ends(self) -> list[int]:
        """Where the buffered text could be cut, in order: sentence ends and line breaks."""
        cuts = [
            m.end()
            for m in _END.finditer(self._buf)
            if not (m.group().startswith(".") and _is_abbreviation(self._buf, m.start()))
        ]
        cuts += [m.end() for m in re.finditer(r"\n", self._buf)]
        return sorted(cuts)


def sentences(text: str) -> list[str]:
    """`text` cut into sentences (all at once)."""
    splitter = SentenceSplitter()
    return splitter.feed(text) + splitter.flush()


# --- the first sentence of a reply, clause by clause -----------------------------------

_CLAUSE = re.compile(r"(?<=[,;:])\s+|\s+(?=(?:and|but|or) )")
_SOFT_BREAKS = frozenset(
    "from at in on for with and but or because so which that who when where".split()
)


def first_clauses(sentence: str, min_words: int = 4, long_words: int = 9) -> list[str]:
    """A long first sentence split at its clause punctuation into pieces of at least
    `min_words`: its first clause is synthesised sooner, and the first audio is what the
    caller waits for."""
    if len(sentence.split()) < long_words:
        return [sentence]
    pieces: list[str] = []
    for part in _CLAUSE.split(sentence):
        if pieces and len(pieces[-1].split()) < min_words:
            pieces[-1] = f"{pieces[-1]} {part}"
        else:
            pieces.append(part)
    if len(pieces) > 1 and len(pieces[-1].split()) < min_words:
        last = pieces.pop()
        pieces[-1] = f"{pieces[-1]} {last}"
    # A first piece that is still long is cut before a preposition or conjunction early in
    # it: Piper makes a whole piece at once, so its length is the caller's wait.
    words = pieces[0].split()
    if len(words) > 7:
        for i in range(3, 7):
            if words[i].lower() in _SOFT_BREAKS:
                pieces[0:1] = [" ".join(words[:i]), " ".join(words[i:])]
                break
    return pieces
