"""Slot values found in transcript tokens: digits, numbers, dates, times, names, choices.

Every finder works on the tokens of `text.tokens()` and a `used` mask, so once a date
("tomorrow") or a time ("at 7 pm") has claimed its words, a number finder can't read the
7 of "7 pm" as a party size. Finders return where the value was, so the intent matcher can
ignore those words too. Forms that are ambiguous out of context (a bare "seven thirty", a
bare name) are only read when the brain just asked for that slot (`prompted`).

values.py has what every finder returns; dates.py dates and times; numbers.py digit
strings and counts; names.py choices, list references and names.
"""

from __future__ import annotations

from callbridge.agent.local.brain.slots.dates import (
    MONTHS,
    WEEKDAYS,
    find_date,
    find_time,
    parse_date,
    parse_time,
    say_date,
    say_time,
)
from callbridge.agent.local.brain.slots.names import (
    Choice,
    find_choice,
    find_list_ref,
    find_name,
    make_choice,
    similar,
)
from callbridge.agent.local.brain.slots.numbers import find_digits, find_number
from callbridge.agent.local.brain.slots.values import Found, SlotValue, Value, is_free

__all__ = [
    "MONTHS",
    "WEEKDAYS",
    "Choice",
    "Found",
    "SlotValue",
    "Value",
    "find_choice",
    "find_date",
    "find_digits",
    "find_list_ref",
    "find_name",
    "find_number",
    "find_time",
    "is_free",
    "make_choice",
    "parse_date",
    "parse_time",
    "say_date",
    "say_time",
    "similar",
]
