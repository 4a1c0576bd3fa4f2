"""Agent profiles: one YAML file with the persona, greeting, tools and dialog of an agent.

`load_profile(path, catalogue)` validates the file completely at start, so a typo fails the
service before the first call instead of during one: every problem is reported as
`file:line: where: what`, with the line of the offending key. Beyond the shape of the file
(schema.py) it checks what ties the parts together (checks.py) against the tools the caller
says exist (a `ToolCatalogue`). This package imports nothing of callbridge but `core`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from callbridge.core import template
from callbridge.profile.checks import ToolCatalogue, check
from callbridge.profile.realtime import RealtimeOptions
from callbridge.profile.schema import (
    FlowSettings,
    HttpToolSettings,
    IntentSpec,
    IvrSettings,
    LimitSettings,
    LlmSettings,
    Profile,
    RecordingSettings,
    SilenceSettings,
    SlotSpec,
    SlotType,
    ToolEntry,
    TransferSettings,
    TurnSection,
    VoiceSettings,
)
from callbridge.profile.yaml_lines import (
    Problem,
    ProfileError,
    dotted,
    line_of,
    pydantic_problems,
    read_yaml,
)

__all__ = [
    "FlowSettings",
    "HttpToolSettings",
    "IntentSpec",
    "IvrSettings",
    "LimitSettings",
    "LlmSettings",
    "Problem",
    "Profile",
    "ProfileError",
    "RealtimeOptions",
    "RecordingSettings",
    "SilenceSettings",
    "SlotSpec",
    "SlotType",
    "ToolCatalogue",
    "ToolEntry",
    "TransferSettings",
    "TurnSection",
    "VoiceSettings",
    "call_variables",
    "load_profile",
    "parse_profile",
    "render_text",
]


def load_profile(path: str | Path, catalogue: ToolCatalogue) -> Profile:
    """Read and check a profile file; raises ProfileError saying file, line and what."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(str(path), [Problem(None, "", f"cannot read: {exc.strerror}")]) from None
    return parse_profile(text, catalogue, str(path), path.parent)


def parse_profile(
    text: str,
    catalogue: ToolCatalogue,
    source: str = "<profile>",
    base_dir: Path | None = None,
) -> Profile:
    """A profile from YAML text; `catalogue` says which tools exist, `source` names the text
    in errors, `base_dir` anchors relative paths (the voice)."""
    data, lines, problems = read_yaml(text)
    if problems and data is None:
        raise ProfileError(source, problems)
    if not isinstance(data, dict):
        raise ProfileError(source, [Problem(1, "", "a profile is a mapping of settings")])
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(source, problems + pydantic_problems(exc, data, lines)) from None
    if profile.voice.voice_path and base_dir is not None:
        voice = Path(profile.voice.voice_path)
        voice = voice if voice.is_absolute() else base_dir / voice
        profile = profile.model_copy(
            update={"voice": profile.voice.model_copy(update={"voice_path": str(voice)})}
        )
    found = [
        Problem(line_of(lines, path), dotted(path), msg) for path, msg in check(profile, catalogue)
    ]
    problems += sorted(found, key=lambda p: p.line or 0)
    if problems:
        raise ProfileError(source, problems)
    return profile


def call_variables(
    caller: str = "", callee: str = "", variables: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What persona/greeting templates can use: caller, callee and each custom SIP/VoIP
    header under its own name, lower-cased, with `-` as `_`, and without ACS's
    `X-MS-Custom-` prefix — so `{X-MS-Custom-Tier}`, `{x_ms_custom_tier}` and `{tier}` all
    work."""
    out: dict[str, str] = {}
    for key, value in (variables or {}).items():
        lower = key.lower()
        names = {key, lower, re.sub(r"\W", "_", lower)}
        if lower.startswith("x-ms-custom-"):
            short = lower.removeprefix("x-ms-custom-")
            names |= {short, re.sub(r"\W", "_", short)}
        for name in names:
            out.setdefault(name, value)
    out["caller"] = caller
    out["callee"] = callee
    return out


def render_text(text: str, variables: Mapping[str, str]) -> str:
    """A persona/greeting with call variables filled in; unknown fields come out empty."""
    return template.render(text, variables)
