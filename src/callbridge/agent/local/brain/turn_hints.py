"""What the dialog knows about the end of the caller's turn (the agent asks a brain for
it, if the brain offers it, besides its end-of-turn model).

A caller reading out a number pauses between groups of digits ("four five … one two"),
and the audio alone often sounds finished after each group. The flow brain knows how many
digits the number it asked for has: fewer than that is not the end of the turn, enough is.
"""

from __future__ import annotations

from collections.abc import Iterable

from callbridge.agent.local.brain.slots import find_digits
from callbridge.agent.local.brain.text import tokens
from callbridge.profile import SlotSpec

_NUMBER_WORDS = frozenset({"number", "code", "reference", "is"})
# What Whisper writes for a digit said alone ("six one" → "6 won"); next to another digit
# only, except "won", which is never a word of an order number otherwise.
_SOUNDS_LIKE = {"won": "one", "to": "two", "too": "two", "for": "four", "ate": "eight"}


def _digit_tokens(text: str) -> list[str]:
    toks = tokens(text)
    for i, tok in enumerate(toks):
        if tok in _SOUNDS_LIKE and (tok == "won" or (i > 0 and _is_digit(toks[i - 1]))):
            toks[i] = _SOUNDS_LIKE[tok]
    return toks


def _is_digit(tok: str) -> bool:
    return tok.isdigit() or bool(find_digits([tok], [False], 1, 40))


def digits_hint(text: str, asked: SlotSpec | None, others: Iterable[SlotSpec]) -> bool | None:
    """Whether the words end a turn, for a caller reading out a number: for the digits slot
    just asked for (`asked`), or for any digits slot when "number is" comes before the
    digits, False while the digit string they end in is shorter than the slot needs, True
    once it is long enough; None (no opinion) otherwise."""
    toks = _digit_tokens(text)
    found = find_digits(toks, [False] * len(toks), 1, 40)
    if found is None or found.end != len(toks):
        return None
    got = len(str(found.value.value))
    if asked is not None and asked.type == "digits":
        return got >= asked.min_length
    after_number = found.start > 0 and toks[found.start - 1] in _NUMBER_WORDS
    needs = [s.min_length for s in others if s.type == "digits"]
    if after_number and needs:
        return got >= min(needs)
    return None
