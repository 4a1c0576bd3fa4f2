"""Slot values found in transcript tokens: digits, numbers, dates, times, names, choices.

Every finder works on the tokens of `text.tokens()` and a `used` mask, so once a date
("tomorrow") or a time ("at 7 pm") has claimed its words, a number finder can't read the
7 of "7 pm" as a party size. Finders return where the value was, so the intent matcher can
ignore those words too. Forms that are ambiguous out of context (a bare "seven thirty", a
bare name) are only read when the brain just asked for that slot (`prompted`).
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from callbridge.agent.local.brain.text import (
    DIGIT_WORDS,
    ORDINALS,
    TENS,
    UNITS,
    parse_number,
    parse_ordinal,
    stem,
    tokens,
)

Value = str | int


@dataclass(frozen=True)
class SlotValue:
    value: Value  # what a tool gets
    spoken: str  # what a reply says


@dataclass(frozen=True)
class Found:
    value: SlotValue
    start: int
    end: int  # token span [start, end) the value came from


WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_REF_NOUNS = frozenset({"one", "option", "place", "restaurant", "choice", "of", "them"})


def _free(used: Sequence[bool], start: int, end: int) -> bool:
    return end <= len(used) and not any(used[start:end])


# --- dates -------------------------------------------------------------------------------


def say_date(day: dt.date, today: dt.date) -> str:
    delta = (day - today).days
    if delta == 0:
        return "today"
    if delta == 1:
        return "tomorrow"
    if 1 < delta < 7:
        return day.strftime("%A")
    return f"{day.strftime('%A')}, {day.strftime('%B')} {day.day}"


def _date_value(day: dt.date, today: dt.date) -> SlotValue:
    return SlotValue(day.isoformat(), say_date(day, today))


def _month_day(month: int, day: int, today: dt.date) -> dt.date | None:
    """The next `month`/`day` on or after today (this year, else next year)."""
    for year in (today.year, today.year + 1):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            return None
        if candidate >= today:
            return candidate
    return None


def _day_of_month(day: int, today: dt.date) -> dt.date | None:
    """The next date whose day of the month is `day` ("the 5th")."""
    year, month = today.year, today.month
    for _ in range(3):
        try:
            candidate = dt.date(year, month, day)
            if candidate >= today:
                return candidate
        except ValueError:
            pass
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def find_date(toks: Sequence[str], used: Sequence[bool], today: dt.date) -> Found | None:
    n = len(toks)
    for i, tok in enumerate(toks):
        if used[i]:
            continue
        if tok in ("today", "tonight"):
            return Found(_date_value(today, today), i, i + 1)
        if tok == "tomorrow":
            if i >= 2 and toks[i - 2 : i] == ["day", "after"] and _free(used, i - 2, i):
                return Found(_date_value(today + dt.timedelta(2), today), i - 2, i + 1)
            return Found(_date_value(today + dt.timedelta(1), today), i, i + 1)
        day_name = tok[:-1] if tok.endswith("s") and tok[:-1] in WEEKDAYS else tok
        if day_name in WEEKDAYS:
            ahead = (WEEKDAYS.index(day_name) - today.weekday()) % 7
            start = i
            if i > 0 and toks[i - 1] in ("next", "this", "on", "coming") and not used[i - 1]:
                start = i - 1
                if toks[i - 1] == "next" and ahead == 0:
                    ahead = 7
            return Found(_date_value(today + dt.timedelta(ahead), today), start, i + 1)
        if tok in MONTHS:
            month = MONTHS.index(tok) + 1
            # "march 5", "march the fifth"
            j = i + 1 + (1 if i + 1 < n and toks[i + 1] == "the" else 0)
            if j < n and _free(used, i, j + 1):
                ordinal = parse_ordinal(toks, j)
                if ordinal and 1 <= ordinal[0] <= 31:
                    day = _month_day(month, ordinal[0], today)
                    if day:
                        return Found(_date_value(day, today), i, j + ordinal[1])
            # "5th of march", "the fifth of march"
            k = i - 1 - (1 if i >= 1 and toks[i - 1] == "of" else 0)
            for width in (2, 1):
                s = k - width + 1
                if s >= 0 and _free(used, s, i):
                    ordinal = parse_ordinal(toks, s)
                    if ordinal and ordinal[1] == width and 1 <= ordinal[0] <= 31:
                        day = _month_day(month, ordinal[0], today)
                        if day:
                            return Found(_date_value(day, today), s, i + 1)
        if tok == "the" and i + 1 < n and not used[i + 1]:
            # "the 5th", "on the fifth" — but "the second one" points into a list.
            ordinal = parse_ordinal(toks, i + 1)
            if ordinal and 1 <= ordinal[0] <= 31:
                after = i + 1 + ordinal[1]
                if after < n and toks[after] in _REF_NOUNS:
                    continue
                day = _day_of_month(ordinal[0], today)
                if day:
                    return Found(_date_value(day, today), i, after)
    return None


def parse_date(text: str, today: dt.date) -> dt.date | None:
    """A date from free text or ISO form (tools get either from an LLM)."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        pass
    toks = tokens(text)
    found = find_date(toks, [False] * len(toks), today)
    return dt.date.fromisoformat(str(found.value.value)) if found else None


# --- times -------------------------------------------------------------------------------


def say_time(t: dt.time) -> str:
    if t == dt.time(12, 0):
        return "noon"
    if t == dt.time(0, 0):
        return "midnight"
    hour = t.hour % 12 or 12
    half = "AM" if t.hour < 12 else "PM"
    return f"{hour} {half}" if t.minute == 0 else f"{hour}:{t.minute:02d} {half}"


def _minutes(toks: Sequence[str], i: int) -> tuple[int, int] | None:
    """Spoken minutes after an hour: "thirty", "forty five", "oh five", "30"."""
    if i >= len(toks):
        return None
    tok = toks[i]
    if tok.isdigit() and len(tok) == 2:
        return (int(tok), 1) if int(tok) < 60 else None
    if tok in ("oh", "o") and i + 1 < len(toks) and toks[i + 1] in DIGIT_WORDS:
        return DIGIT_WORDS[toks[i + 1]], 2
    if tok in TENS or (tok in UNITS and UNITS[tok] >= 10):
        number = parse_number(toks, i)
        if number and number[0] < 60:
            return number
    return None


def _hour(toks: Sequence[str], i: int) -> tuple[int, int] | None:
    number = parse_number(toks, i)
    if number and 0 <= number[0] <= 23:
        return number
    return None


def find_time(
    toks: Sequence[str], used: Sequence[bool], *, assume_pm: bool = False, prompted: bool = False
) -> Found | None:
    n = len(toks)
    evening = any(t in ("evening", "tonight", "night", "dinner", "afternoon") for t in toks)
    morning = any(t in ("morning", "breakfast") for t in toks)

    def make(hour: int, minute: int, half: str | None, start: int, end: int) -> Found | None:
        if half == "pm" and hour < 12:
            hour += 12
        elif half == "am" and hour == 12:
            hour = 0
        elif half is None and 1 <= hour <= 11:
            # No am/pm said: the day part words decide, then the slot's preference.
            if evening or (assume_pm and not morning and hour <= 10):
                hour += 12
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            return None
        t = dt.time(hour, minute)
        return Found(SlotValue(f"{hour:02d}:{minute:02d}", say_time(t)), start, end)

    for i, tok in enumerate(toks):
        if used[i]:
            continue
        if tok in ("noon", "midday"):
            return make(12, 0, "pm", i, i + 1)
        if tok == "midnight":
            return make(0, 0, "am", i, i + 1)
        start = i - 1 if i > 0 and toks[i - 1] == "at" and not used[i - 1] else i
        marked = start < i
        if ":" in tok:
            hh, mm = tok.split(":")
            end, half = i + 1, None
            if end < n and toks[end] in ("am", "pm"):
                half, end = toks[end], end + 1
            return make(int(hh), int(mm), half, start, end)
        if tok in ("half", "quarter") and i + 2 < n and toks[i + 1] in ("past", "to"):
            hour = _hour(toks, i + 2)
            if hour:
                minute = 30 if tok == "half" else 15
                h = hour[0]
                if toks[i + 1] == "to":
                    h, minute = h - 1, 60 - minute
                end = i + 2 + hour[1]
                half = None
                if end < n and toks[end] in ("am", "pm"):
                    half, end = toks[end], end + 1
                return make(h, minute, half, start, end)
        hour = _hour(toks, i)
        if hour is None:
            continue
        end = i + hour[1]
        minute = 0
        mins = _minutes(toks, end)
        if mins and hour[0] <= 12:
            minute, end = mins[0], end + mins[1]
        half = None
        if end < n and toks[end] in ("am", "pm"):
            half, end = toks[end], end + 1
            marked = True
        elif end < n and toks[end] == "oclock":
            end += 1
            marked = True
        elif end + 1 < n and toks[end : end + 2] == ["o", "clock"]:
            end += 2
            marked = True
        if (marked or prompted) and _free(used, start, end):
            found = make(hour[0], minute, half, start, end)
            if found:
                return found
    return None


def parse_time(text: str) -> dt.time | None:
    """A time from "19:30", "7:30 pm", "seven thirty in the evening" (for tools)."""
    try:
        return dt.time.fromisoformat(text.strip())
    except ValueError:
        pass
    toks = tokens(text)
    found = find_time(toks, [False] * len(toks), prompted=True)
    return dt.time.fromisoformat(str(found.value.value)) if found else None


# --- digits and numbers ------------------------------------------------------------------


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
        if number is None or not _free(used, i, i + number[1]):
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


# --- choices and names -------------------------------------------------------------------


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
                if not _free(used, i, i + width):
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
            if tuple(toks[i : i + len(lead)]) == lead and _free(used, i, i + len(lead)):
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
