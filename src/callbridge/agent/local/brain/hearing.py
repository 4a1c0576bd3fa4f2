"""What the flow brain hears in one caller turn: the transcript's tokens, every slot value in
them with the words it used, and whether the caller said yes, no or never mind.

Slot types claim words in a fixed order (dates and times first, so their numbers aren't read
as party sizes); a slot the brain has just asked for reads the forms that are ambiguous out
of context (`prompted`). Choices come from the profile, and from the last list a tool gave
(so "the second one" or a restaurant's name picks from what was just read out).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callbridge.agent.local.brain.slots import (
    Choice,
    Found,
    SlotValue,
    find_choice,
    find_date,
    find_digits,
    find_list_ref,
    find_name,
    find_number,
    find_time,
    make_choice,
)
from callbridge.agent.local.brain.text import tokens
from callbridge.profile import FlowSettings, SlotSpec

# Slot types in the order they claim words (see module doc).
_TYPE_ORDER = ("date", "time", "digits", "choice", "number", "name")
# Words too generic to identify a list item by ("the house", "restaurant").
_GENERIC = frozenset({"the", "restaurant", "house", "cafe", "bar", "grill", "kitchen", "place"})


@dataclass
class HeardTurn:
    toks: list[str]
    found: dict[str, Found]  # slot name -> value in this turn
    used: set[int]  # tokens taken by slot values


class TurnReader:
    def __init__(self, flow: FlowSettings, today: Callable[[], dt.date]) -> None:
        self._flow = flow
        self._today = today
        self._static_choices: dict[str, list[Choice]] = {
            name: [make_choice(c, syn) for c, syn in slot.choice_map().items()]
            for name, slot in flow.slots.items()
            if slot.type == "choice"
        }
        self._yes = [tuple(tokens(w)) for w in flow.yes_words]
        self._no = [tuple(tokens(w)) for w in flow.no_words]
        self._cancel = [tuple(tokens(w)) for w in flow.cancel_words]
        self.items: list[dict[str, Any]] = []  # the last list a tool gave (recommendations)

    def read(self, text: str, pending: str | None) -> HeardTurn:
        """The turn's tokens and slot values; `pending`: the slot just asked for."""
        toks = tokens(text)
        used = [False] * len(toks)
        found: dict[str, Found] = {}
        for kind in _TYPE_ORDER:
            spans: list[Found] = []
            for name, slot in self._flow.slots.items():
                if slot.type != kind:
                    continue
                hit = self._find(name, slot, toks, used, prompted=name == pending)
                if hit:
                    found[name] = hit
                    spans.append(hit)
            for hit in spans:
                for i in range(hit.start, hit.end):
                    used[i] = True
        return HeardTurn(toks, found, {i for i, u in enumerate(used) if u})

    def yes(self, heard: HeardTurn) -> bool:
        return _has(heard.toks, self._yes)

    def no(self, heard: HeardTurn) -> bool:
        return _has(heard.toks, self._no) and not _has(heard.toks, self._yes)

    def cancel(self, heard: HeardTurn) -> bool:
        return _has(heard.toks, self._cancel)

    def _find(
        self, name: str, slot: SlotSpec, toks: list[str], used: list[bool], prompted: bool
    ) -> Found | None:
        if slot.type == "date":
            return find_date(toks, used, self._today())
        if slot.type == "time":
            return find_time(toks, used, assume_pm=slot.assume_pm, prompted=prompted)
        if slot.type == "digits":
            return find_digits(toks, used, slot.min_length, slot.max_length)
        if slot.type == "number":
            return find_number(toks, used, slot.min, slot.max)
        if slot.type == "name":
            return find_name(toks, used, prompted=prompted)
        return self._find_choice(name, slot, toks, used)

    def _find_choice(
        self, name: str, slot: SlotSpec, toks: list[str], used: list[bool]
    ) -> Found | None:
        choices = list(self._static_choices.get(name, []))
        if slot.from_list and self.items:
            values = [str(item.get(slot.from_list, "")) for item in self.items]
            ref = find_list_ref(toks, used, len(values))
            if ref is not None:
                index, at = ref
                end = at + 2 if at + 1 < len(toks) and toks[at + 1] == "one" else at + 1
                return Found(SlotValue(values[index], values[index]), at, end)
            for value in values:
                words = [w for w in tokens(value) if len(w) >= 4 and w not in _GENERIC]
                choices.append(make_choice(value, words))
        hit = find_choice(toks, used, choices)
        if hit is None:
            return None
        choice, start, end = hit
        return Found(SlotValue(choice.canonical, choice.canonical), start, end)


def _has(toks: list[str], phrases: list[tuple[str, ...]]) -> bool:
    for phrase in phrases:
        n = len(phrase)
        if n and any(tuple(toks[i : i + n]) == phrase for i in range(len(toks) - n + 1)):
            return True
    return False
