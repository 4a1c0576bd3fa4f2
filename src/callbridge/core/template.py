"""Reply templates: `str.format` syntax that never fails while a caller is listening.

`{name}` takes a value from the context; `{restaurants.0.name}` walks into a tool result;
unknown fields become "" instead of raising. Format specs made for speech:

- `{code:spell}` says a code character by character ("K 7 Q 2"),
- `{items}` / `{items:join}` reads a list as "a, b and c", `{restaurants:join:name}` reads
  one field of each item, `{items:count}` is the length of a list.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

SPECS = ("spell", "join", "count")
_SPACES = re.compile(r"[ \t]+")
_BEFORE_PUNCT = re.compile(r"[ \t]+([.,!?;:])")
_DOUBLE_STOP = re.compile(r"([.!?])\.+")


def _join_words(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c". The same as agent.local.brain.text.join_words, which
    core cannot import (it imports nothing of callbridge)."""
    items = [s for s in items if s]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _speak(value: Any) -> str:
    """How a value sounds by default: lists joined, dicts by their name, None as nothing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return _join_words([_speak(v) for v in value])
    if isinstance(value, dict):
        return _speak(value.get("name", ""))
    return str(value)


class _SafeFormatter(string.Formatter):
    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        return lookup(kwargs, field_name), field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        kind, _, arg = format_spec.partition(":")
        if kind == "spell":
            return " ".join(ch for ch in _speak(value) if not ch.isspace())
        if kind == "count":
            return str(len(value)) if isinstance(value, list | dict | str) else "0"
        if kind == "join":
            items = value if isinstance(value, list) else [value]
            if arg:
                items = [v.get(arg) if isinstance(v, dict) else v for v in items]
            return _join_words([_speak(v) for v in items])
        if not format_spec:
            return _speak(value)
        try:
            return format(value, format_spec)
        except (TypeError, ValueError):
            return _speak(value)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        return value if conversion is None else super().convert_field(value, conversion)


_FORMATTER = _SafeFormatter()


def lookup(context: Mapping[str, Any], field_name: str) -> Any:
    """`a.b.0.c` in nested dicts and lists; None when any step is missing."""
    value: Any = context
    for part in field_name.replace("[", ".").replace("]", "").split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def render(template: str, context: Mapping[str, Any]) -> str:
    """`template` filled from `context`; a malformed template comes out as written."""
    try:
        text = _FORMATTER.vformat(template, (), context)
    except (ValueError, IndexError, KeyError):
        return template
    # Empty fields leave double spaces and " ." behind; tidy them for the voice (but keep
    # line breaks, which structure a persona).
    text = _SPACES.sub(" ", text)
    text = _BEFORE_PUNCT.sub(r"\1", text)
    text = _DOUBLE_STOP.sub(r"\1", text)
    return "\n".join(line.strip() for line in text.strip().split("\n"))


def fields(template: str) -> Iterator[tuple[str, str]]:
    """(field name, format spec) of each `{...}` in `template`; raises ValueError when the
    template is malformed (unbalanced braces), which profile checks report."""
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is not None:
            yield name, spec or ""


def check(template: str, allowed: set[str] | None) -> str | None:
    """What is wrong with `template` (None when fine). `allowed` = the top-level names it
    may use (None: anything)."""
    try:
        found = list(fields(template))
    except ValueError as exc:
        return f"bad template {template!r}: {exc}"
    for name, spec in found:
        if not name:
            return f"template {template!r} has an empty {{}}: name a field"
        root = name.replace("[", ".").split(".")[0]
        if allowed is not None and root not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            return (
                f"template {template!r} uses {{{root}}}, which is not known here (known: {known})"
            )
        kind = spec.partition(":")[0]
        if spec and kind not in SPECS and not _is_std_spec(spec):
            use = "spell, join, join:FIELD or count"
            return f"template {template!r}: unknown format {spec!r} (use {use})"
    return None


def _is_std_spec(spec: str) -> bool:
    try:
        format(1.5, spec)
    except ValueError:
        return False
    return True
