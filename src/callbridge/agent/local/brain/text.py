"""Text helpers shared by the brains: transcript normalisation, number words, stems.

Whisper writes what it hears in many shapes ("7 p.m.", "7pm", "seven PM", "It's 4 5 1 2.",
"where's"), so everything the flow brain matches on first goes through `tokens()`, which
makes one canonical lower-case token stream out of all of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}
DIGIT_WORDS = {w: v for w, v in UNITS.items() if v < 10}

# Contractions that carry meaning for matching; any other "'s" is a possessive and just
# loses its apostrophe ("luigi's" -> "luigis"), so names stay one token.
_CONTRACTIONS = [
    (re.compile(r"\b(where|what|it|that|there|here|who|how|when|he|she)'s\b"), r"\1 is"),
    (re.compile(r"\blet's\b"), "let us"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"\bi'm\b"), "i am"),
    (re.compile(r"\bo'clock\b"), "oclock"),
]
_AM_PM = re.compile(r"(?<![a-z])([ap])\.?\s?m\b\.?")
_DIGIT_LETTER = re.compile(r"(\d)([a-z])")
_LETTER_DIGIT = re.compile(r"([a-z])(\d)")
_TOKEN = re.compile(r"\d{1,2}:\d{2}|[a-z0-9]+")
FILLERS = frozenset({"uh", "um", "umm", "uhm", "uhh", "er", "erm", "ah", "hmm", "mm", "mhm"})
# Ordinal suffixes glued to digits ("5th") are split off by _DIGIT_LETTER and dropped here,
# so "the 5th" and "the 5" look alike to the date parser.
_ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th"})


def tokens(text: str) -> list[str]:
    """Lower-case word tokens of a transcript with punctuation, fillers and casing gone."""
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    t = _AM_PM.sub(r" \1m ", t)
    for pattern, repl in _CONTRACTIONS:
        t = pattern.sub(repl, t)
    t = t.replace("'", "")
    t = t.replace("-", " ").replace("/", " ")
    t = re.sub(r"(\d),(\d{3})\b", r"\1\2", t)  # "4,512" is one number
    # "7pm" -> "7 pm", "5th" -> "5 th"; "b12" -> "b 12" (an order typed as letter+digits)
    t = _DIGIT_LETTER.sub(r"\1 \2", t)
    t = _LETTER_DIGIT.sub(r"\1 \2", t)
    out: list[str] = []
    for tok in _TOKEN.findall(t):
        if tok in FILLERS:
            continue
        if tok in _ORDINAL_SUFFIXES and out and out[-1].isdigit():
            continue
        out.append(tok)
    return out


def parse_number(toks: Sequence[str], i: int) -> tuple[int, int] | None:
    """A cardinal number at toks[i] as (value, tokens used): "7", "seven", "twenty two"."""
    if i >= len(toks):
        return None
    tok = toks[i]
    if tok.isdigit():
        return int(tok), 1
    if tok in UNITS:
        return UNITS[tok], 1
    if tok in TENS:
        value = TENS[tok]
        if i + 1 < len(toks) and toks[i + 1] in UNITS and 0 < UNITS[toks[i + 1]] < 10:
            return value + UNITS[toks[i + 1]], 2
        return value, 1
    return None


def parse_ordinal(toks: Sequence[str], i: int) -> tuple[int, int] | None:
    """An ordinal at toks[i]: "fifth", "twenty first", or a bare number ("the 5[th]")."""
    if i >= len(toks):
        return None
    tok = toks[i]
    if tok in ORDINALS:
        return ORDINALS[tok], 1
    if tok in TENS and i + 1 < len(toks) and toks[i + 1] in ORDINALS:
        return TENS[tok] + ORDINALS[toks[i + 1]], 2
    if tok.isdigit():
        return int(tok), 1
    return None


def join_words(items: Sequence[str], conj: str = "and") -> str:
    """ "a", "a and b", "a, b and c" — how a list sounds when spoken."""
    items = [s for s in items if s]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conj} " + items[-1]


# --- matching helpers --------------------------------------------------------------------


def stem(word: str) -> str:
    """A crude suffix stripper so "bookings", "booking" and "book" meet, and "reservation"
    meets "reserve". Only ever compared with other stems, so it needn't be a real word."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, repl in (
        ("ations", ""),
        ("ation", ""),
        ("ings", ""),
        ("ing", ""),
        ("ies", "y"),
        ("ed", ""),
        ("es", ""),
        ("s", ""),
        ("e", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                continue
            return word[: len(word) - len(suffix)] + repl
    return word
