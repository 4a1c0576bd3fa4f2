"""Dates and times in transcript tokens: "tomorrow", "next Friday", "the 5th of March",
"at 7 pm", "half past six", "seven thirty" (when asked for) — and how replies say them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from callbridge.agent.local.brain.slots.values import Found, SlotValue, is_free
from callbridge.agent.local.brain.text import (
    DIGIT_WORDS,
    TENS,
    UNITS,
    parse_number,
    parse_ordinal,
    tokens,
)

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
# Words after an ordinal that make it a list reference ("the second one"), not a date.
_REF_NOUNS = frozenset({"one", "option", "place", "restaurant", "choice", "of", "them"})


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
            if i >= 2 and toks[i - 2 : i] == ["day", "after"] and is_free(used, i - 2, i):
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
            if j < n and is_free(used, i, j + 1):
                ordinal = parse_ordinal(toks, j)
                if ordinal and 1 <= ordinal[0] <= 31:
                    day = _month_day(month, ordinal[0], today)
                    if day:
                        return Found(_date_value(day, today), i, j + ordinal[1])
            # "5th of march", "the fifth of march"
            k = i - 1 - (1 if i >= 1 and toks[i - 1] == "of" else 0)
            for width in (2, 1):
                s = k - width + 1
                if s >= 0 and is_free(used, s, i):
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
        if (marked or prompted) and is_free(used, start, end):
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
