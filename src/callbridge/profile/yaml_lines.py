"""Where in the YAML file a problem is: the file read to nodes that keep their line marks,
and pydantic's errors turned into `Problem`s that say `file:line: where: what`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from callbridge.profile.realtime import RealtimeOptions
from callbridge.profile.schema import (
    FlowSettings,
    IntentSpec,
    LlmSettings,
    Profile,
    SlotSpec,
    ToolEntry,
    TransferSettings,
    TurnSection,
    VoiceSettings,
)

KeyPath = tuple[str | int, ...]  # a key's path in the data: ("flow", "intents", "x", "examples")


class ProfileError(Exception):
    """The profile file is unreadable or wrong; the message says where and what."""

    def __init__(self, file: str, problems: Sequence[Problem]) -> None:
        self.file = file
        self.problems = list(problems)
        super().__init__("\n".join(p.describe(file) for p in self.problems))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a profile, and where."""

    line: int | None
    where: str  # dotted path of the key, "" for the whole file
    message: str

    def describe(self, file: str) -> str:
        at = f"{file}:{self.line}" if self.line else file
        return f"{at}: {self.where}: {self.message}" if self.where else f"{at}: {self.message}"


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: `no`, `yes`, `on`, `off` stay strings, so an
    example phrase "no" or a key `yes:` means what it says (YAML 1.1 made them bools)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def read_yaml(text: str) -> tuple[Any, dict[KeyPath, int], list[Problem]]:
    """The data, the line of each key and list item, and what is wrong with the text
    itself (bad syntax leaves no data; a duplicate key does)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        return None, {}, [Problem(line, "", f"not valid YAML: {what}")]
    except yaml.YAMLError as exc:
        return None, {}, [Problem(None, "", f"not valid YAML: {exc}")]
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {(): 1}
    problems: list[Problem] = []
    if node is not None:
        _marks(node, (), lines, problems)
    return data, lines, problems


def _marks(
    node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], problems: list[Problem]
) -> None:
    """Record the line of every key and list item; report duplicate keys (which YAML
    would otherwise quietly resolve to the last one)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            sub = (*path, key)
            if key in seen:
                problems.append(Problem(key_node.start_mark.line + 1, dotted(sub), "duplicate key"))
            seen.add(key)
            lines[sub] = key_node.start_mark.line + 1
            _marks(value_node, sub, lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _marks(item, (*path, i), lines, problems)


def dotted(path: Sequence[str | int]) -> str:
    """A key path as messages show it: `flow.intents.order_status.required[0]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _resolve(data: Any, loc: Sequence[str | int]) -> KeyPath:
    """The part of a pydantic error location that exists in the data (pydantic adds
    union member tags like `str` or `function-after[...]`, which the file doesn't have)."""
    path: list[str | int] = []
    value = data
    for part in loc:
        if isinstance(value, dict) and part in value:
            value = value[part]
            path.append(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
            path.append(part)
    return tuple(path)


def _model_at(path: KeyPath) -> type[BaseModel] | None:
    """Which model a data path is a mapping of, to list its keys after a typo."""
    if not path:
        return Profile
    if len(path) == 1:
        models: dict[str, type[BaseModel]] = {
            "flow": FlowSettings,
            "llm": LlmSettings,
            "voice": VoiceSettings,
            "turn": TurnSection,
            "transfer": TransferSettings,
            "realtime": RealtimeOptions,
        }
        return models.get(str(path[0]))
    if len(path) == 2 and path[0] == "tools":
        return ToolEntry
    if len(path) == 3 and path[0] == "flow":
        items: dict[str, type[BaseModel]] = {"slots": SlotSpec, "intents": IntentSpec}
        return items.get(str(path[1]))
    return None


def pydantic_problems(exc: ValidationError, data: Any, lines: dict[KeyPath, int]) -> list[Problem]:
    """Pydantic's errors as Problems at the line of the key they are about, in file order."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    errors = exc.errors(include_url=False)
    paths = [_resolve(data, tuple(err["loc"])) for err in errors]
    for err, path in zip(errors, paths, strict=True):
        loc = tuple(err["loc"])
        kind = err["type"]
        if (
            kind.endswith("_type")
            and isinstance(err.get("input"), dict)
            and any(len(other) > len(path) and other[: len(path)] == path for other in paths)
        ):
            # A mapping where a union also allows a plain value (`tools: [name | {...}]`):
            # the errors inside the mapping say what's wrong; "not a string" is noise.
            continue
        if kind == "extra_forbidden":
            key = str(loc[-1])
            model = _model_at(path[:-1])
            hint = ""
            if model is not None:
                allowed = list(model.model_fields)
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                hint = hint or f" (allowed: {', '.join(allowed)})"
            message = f"unknown key {key!r}{hint}"
        elif kind == "missing":
            message = f"missing required field {loc[-1]!r}"
        elif kind in ("value_error", "assertion_error"):
            message = str(err["msg"]).removeprefix("Value error, ")
        else:
            got = err.get("input")
            shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
            message = f"{err['msg']} (got {shown})"
        where = dotted(path) if kind != "missing" else dotted((*path, loc[-1]))
        if (where, message) in seen:
            continue
        seen.add((where, message))
        problems.append(Problem(line_of(lines, path), where, message))
    return sorted(problems, key=lambda p: p.line or 0)


def line_of(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, else of its nearest parent that the file has."""
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]
