"""Digit strings and counts in transcript tokens: an order number said any way, a party
size ("four of us")."""

from __future__ import annotations

from collections.abc import Sequence

from callbridge.agent.local.brain.slots.values import Found, SlotValue, is_free
from callbridge.agent.local.brain.text import DIGIT_WORDS, TENS, UNITS, parse_number


def find_digits(
    toks: Sequence[str], used: Sequence[bool], min_len: int = 1, max_len: int = 20
) -> Found | None:
    """A digit string said or written any way: "4512", "4 5 1 2", "four five one two",
    "double five one two", "45 12", "forty five twelve"; "oh" is zero inside a run."""
    best: Found | None = None
    i, n = 0, len(toks)
    while i < n:
        start, digits = i, ""
        while i < n and not used[i]:
            tok = toks[i]
            if tok.isdigit():
                digits += tok
            elif tok in DIGIT_WORDS:
                digits += str(DIGIT_WORDS[tok])
            elif tok in ("oh", "o") and digits:
                digits += "0"
            elif tok in TENS or (tok in UNITS and UNITS[tok] >= 10):
                # "forty five twelve" — numbers said in pairs
                number = parse_number(toks, i)
                if number is None or (number[1] == 2 and used[i + 1]):
                    break
                digits += str(number[0])
                i += number[1] - 1
            elif tok in ("double", "triple") and i + 1 < n:
                nxt = toks[i + 1]
                digit = nxt if nxt.isdigit() and len(nxt) == 1 else None
                if nxt in DIGIT_WORDS:
                    digit = str(DIGIT_WORDS[nxt])
                if digit is None:
                    break
                digits += digit * (2 if tok == "double" else 3)
                i += 1
            else:
                break
            i += 1
        if digits and min_len <= len(digits) <= max_len:
            if best is None or len(digits) > len(str(best.value.value)):
                best = Found(SlotValue(digits, " ".join(digits)), start, i)
        i = max(i, start + 1)
    return best


_PEOPLE = frozenset({"people", "persons", "person", "guests", "adults", "us", "of", "pax"})


def find_number(
    toks: Sequence[str], used: Sequence[bool], lo: int | None = None, hi: int | None = None
) -> Found | None:
    """A number in [lo, hi]; one next to "people"/"of us"/"party of" wins over others."""
    candidates: list[tuple[bool, Found]] = []
    for i in range(len(toks)):
        if used[i]:
            continue
        number = parse_number(toks, i)
        if number is None and toks[i] == "couple":
            number = (2, 1)
        if number is None or not is_free(used, i, i + number[1]):
            continue
        if toks[i] == "one" and not (i > 0 and toks[i - 1] in ("for", "of", "just")):
            continue  # "the second one", "that one" are not a count
        value = number[0]
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            continue
        end = i + number[1]
        near = (end < len(toks) and toks[end] in _PEOPLE) or (i > 0 and toks[i - 1] == "of")
        candidates.append((near, Found(SlotValue(value, str(value)), i, end)))
    if not candidates:
        return None
    near_ones = [f for near, f in candidates if near]
    return near_ones[0] if near_ones else candidates[0][1]
