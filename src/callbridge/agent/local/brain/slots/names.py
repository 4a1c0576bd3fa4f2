"""Choices, list references and names in transcript tokens: "Italian" (or "italien"),
"the second one", "under the name of Smith"."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from callbridge.agent.local.brain.slots.values import Found, SlotValue, is_free
from callbridge.agent.local.brain.text import ORDINALS, parse_number, stem, tokens


def similar(a: str, b: str) -> bool:
    """Same stem, or close enough for a mis-heard word of some length ("italien")."""
    if a == b or stem(a) == stem(b):
        return True
    return min(len(a), len(b)) >= 4 and difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


@dataclass(frozen=True)
class Choice:
    canonical: str  # the value tools get and replies say
    phrases: tuple[tuple[str, ...], ...]  # token sequences that name it


def make_choice(canonical: str, synonyms: Sequence[str] = ()) -> Choice:
    phrases = {tuple(tokens(canonical))} | {tuple(tokens(s)) for s in synonyms}
    return Choice(canonical, tuple(sorted(p for p in phrases if p)))


def find_choice(
    toks: Sequence[str], used: Sequence[bool], choices: Sequence[Choice]
) -> tuple[Choice, int, int] | None:
    """The choice with the longest phrase said (all its words in a row)."""
    best: tuple[int, Choice, int, int] | None = None
    for choice in choices:
        for phrase in choice.phrases:
            width = len(phrase)
            for i in range(len(toks) - width + 1):
                if not is_free(used, i, i + width):
                    continue
                if all(similar(toks[i + k], phrase[k]) for k in range(width)):
                    if best is None or width > best[0]:
                        best = (width, choice, i, i + width)
                    break
    return (best[1], best[2], best[3]) if best else None


_LIST_ORDINALS = {k: v - 1 for k, v in ORDINALS.items() if v <= 10}


def find_list_ref(toks: Sequence[str], used: Sequence[bool], count: int) -> tuple[int, int] | None:
    """Which item of a list just read out the caller means: "the second one", "the last
    one", "number two", "option 3". Returns (item index, token index)."""
    for i, tok in enumerate(toks):
        if used[i]:
            continue
        index: int | None = None
        if tok in _LIST_ORDINALS:
            index = _LIST_ORDINALS[tok]
        elif tok in ("last", "latter"):
            index = count - 1
        elif tok == "former":
            index = 0
        elif tok in ("number", "option") and i + 1 < len(toks) and not used[i + 1]:
            number = parse_number(toks, i + 1)
            index = number[0] - 1 if number else None
        elif tok.isdigit() and i + 1 < len(toks) and toks[i + 1] == "one" and i > 0:
            index = int(tok) - 1 if toks[i - 1] == "the" else None
        if index is not None and 0 <= index < count:
            return index, i
    return None


_NAME_LEADS: list[tuple[str, ...]] = [
    ("under", "the", "name", "of"),
    ("under", "the", "name"),
    ("my", "name", "is"),
    ("the", "name", "is"),
    ("name", "is"),
    ("under", "name"),
    ("call", "me"),
    ("under",),
]
_PROMPTED_LEADS: list[tuple[str, ...]] = [("it", "is"), ("this", "is"), ("i", "am"), ("its",)]
_NOT_NAME = frozenset(
    {
        "a",
        "an",
        "the",
        "and",
        "at",
        "for",
        "on",
        "please",
        "thanks",
        "thank",
        "you",
        "yes",
        "no",
        "ok",
        "okay",
        "today",
        "tomorrow",
        "tonight",
        "am",
        "pm",
        "people",
        "name",
        "is",
        "its",
        "my",
        "sure",
        "yeah",
        "so",
        "well",
        "just",
        "table",
    }
)


def find_name(toks: Sequence[str], used: Sequence[bool], *, prompted: bool = False) -> Found | None:
    """A person's name after "my name is", "under"...; asked for, a bare "Smith" too."""
    leads = _NAME_LEADS + (_PROMPTED_LEADS if prompted else [])
    n = len(toks)
    for lead in leads:
        for i in range(n - len(lead)):
            if tuple(toks[i : i + len(lead)]) == lead and is_free(used, i, i + len(lead)):
                found = _name_at(toks, used, i + len(lead), i)
                if found:
                    return found
    if prompted:
        words = [i for i, t in enumerate(toks) if not used[i] and t not in _NOT_NAME]
        # A long answer without "my name is" is probably not a name at all.
        if words and len(toks) <= 5:
            return _name_at(toks, used, words[0], words[0])
    return None


def _name_at(toks: Sequence[str], used: Sequence[bool], i: int, start: int) -> Found | None:
    words: list[str] = []
    j = i
    while j < len(toks) and len(words) < 3:
        tok = toks[j]
        if used[j] or tok in _NOT_NAME or not tok.isalpha():
            break
        words.append(tok)
        j += 1
    if not words:
        return None
    name = " ".join(w.capitalize() for w in words)
    return Found(SlotValue(name, name), start, j)
