"""The lines of the service: one per profile in the profile's folder, for one backend.

`build_switchboard(backend, profile_path)` is the one place that decides what a call is:
the profile by called number (and, after a keypad menu, by the menu's route), its tools,
policy, menu and recording, and an agent factory of the configured backend. Every edge
asks it for a call's line; every backend gets the line's profile from it.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from callbridge.agent.base import AgentSession
from callbridge.call.line import KeypadMenu, Line, Rescue, Speak
from callbridge.call.rescue import service_phrases
from callbridge.core.tools import ToolRegistry
from callbridge.lines.catalogue import default_catalogue
from callbridge.lines.from_profile import call_policy, profile_tools
from callbridge.lines.voices import LineVoice
from callbridge.profile import Profile, load_profile

log = logging.getLogger(__name__)

BACKENDS = ("echo", "local", "voicelive", "openai")
DEFAULT_PROFILE = Path("profiles/contoso.yaml")


@dataclass
class Backend:
    """How one backend turns a profile into agents, and what it loads before serving."""

    name: str
    agent_for: Callable[[Profile, ToolRegistry], Callable[[], AgentSession]]
    speak_for: Callable[[Profile], Speak]
    warm_up: Callable[[], Awaitable[None]] | None = None
    greets: Callable[[Profile], bool] = lambda profile: bool(profile.greeting)
    # Nothing of this backend speaks with the line's voice in this process but the
    # service's own phrases: say those once in a child process (lines/voices.py).
    phrases_in_child: bool = False


@dataclass
class Switchboard:
    """`Lines` for the edges: by called number, else the main line; by name for menus."""

    backend: str
    main: Line
    by_name: dict[str, Line] = field(default_factory=dict)
    warm_up: Callable[[], Awaitable[None]] | None = None
    phrases_in_child: bool = False

    async def prepare(self, rate: int) -> None:
        """Load the models and say each line's own phrases once (at `rate`, the media's),
        so the service's apology plays from memory even when a voice or model is stuck."""
        if self.warm_up is not None:
            await self.warm_up()
        for line in self.lines():
            if line.speak is None:
                continue
            texts = service_phrases(line)
            try:
                if isinstance(line.speak, LineVoice):
                    await line.speak.prepare(texts, rate, in_child=self.phrases_in_child)
                else:
                    for text in texts:
                        await line.speak(text, rate)
            except Exception as exc:  # the call path retries, and logs, on demand
                log.warning("line %s: could not prepare its phrases: %s", line.name, exc)

    def __post_init__(self) -> None:
        self.by_number = {n: line for line in self.lines() for n in line.numbers}

    def lines(self) -> list[Line]:
        """Each line once, the main line first."""
        seen = {id(self.main): self.main}
        for line in self.by_name.values():
            seen.setdefault(id(line), line)
        return list(seen.values())

    def for_number(self, callee: str) -> Line:
        return self.by_number.get(callee, self.main)

    def named(self, name: str) -> Line:
        return self.by_name[name]


def build_switchboard(backend: str, profile_path: str | Path | None = None) -> Switchboard:
    """The lines for `backend` from the profile at `profile_path` and those beside it.

    Raises ValueError (unknown backend, a menu routing nowhere), ProfileError (a bad
    profile) or ConfigError (a realtime backend's settings)."""
    if backend == "echo":
        # Imported here: the echo agent's energy check loads NumPy, which a realtime
        # replica otherwise never needs (docs/architecture.md, "Memory").
        from callbridge.agent.echo import EchoAgent

        return Switchboard("echo", Line("echo", lambda: EchoAgent()))
    if backend not in BACKENDS:
        raise ValueError(
            f"CALLBRIDGE_AGENT={backend!r} is not a known agent; use one of: {', '.join(BACKENDS)}"
        )
    require_extra(backend)
    main_path = Path(profile_path or DEFAULT_PROFILE)
    main, profiles = load_profiles(main_path)
    if backend == "local":
        from callbridge.lines.local import local_backend

        maker = local_backend(main)
    else:
        from callbridge.lines.realtime import realtime_backend

        maker = realtime_backend(backend, main, list(profiles.values()))
    lines: dict[int, Line] = {}
    by_name: dict[str, Line] = {}
    for key, profile in profiles.items():
        if id(profile) not in lines:
            lines[id(profile)] = make_line(profile, maker)
        by_name[key] = lines[id(profile)]
    for profile in profiles.values():
        for digits, target in (profile.ivr.routes if profile.ivr else {}).items():
            if target not in by_name:
                raise ValueError(
                    f"profile {profile.name!r}: menu choice {digits} routes to {target!r}, "
                    f"which is no profile beside {main_path} (known: {', '.join(sorted(by_name))})"
                )
    log.info(
        "%s agent; main line %s (%s); %d line(s) for routing",
        backend,
        main.name,
        main_path,
        len(lines),
    )
    return Switchboard(backend, lines[id(main)], by_name, maker.warm_up, maker.phrases_in_child)


# What each backend needs beyond the base install, and the extra that brings it.
_EXTRAS = {
    "local": ("local", ("onnxruntime", "faster_whisper", "piper")),
    "voicelive": ("realtime", ("azure.ai.voicelive",)),
    "openai": ("realtime", ("openai",)),
}


def require_extra(backend: str) -> None:
    """A clear error, at start, when the backend's packages are not installed."""
    extra, modules = _EXTRAS[backend]
    missing = [m for m in modules if importlib.util.find_spec(m.split(".")[0]) is None]
    if missing:
        raise ValueError(
            f"CALLBRIDGE_AGENT={backend} needs {', '.join(missing)}: "
            f"pip install 'callbridge[{extra}]'"
        )


def load_profiles(main_path: Path) -> tuple[Profile, dict[str, Profile]]:
    """The main profile and every profile beside it, keyed by file stem and by name."""
    catalogue = default_catalogue()
    main = load_profile(main_path, catalogue)
    profiles: dict[str, Profile] = {}
    for path in sorted(main_path.parent.glob("*.yaml")):
        same = path.resolve() == main_path.resolve()
        profile = main if same else load_profile(path, catalogue)
        profiles[path.stem] = profile
        profiles.setdefault(profile.name, profile)
    profiles.setdefault(main.name, main)
    return main, profiles


def make_line(profile: Profile, backend: Backend) -> Line:
    tools = ToolRegistry(profile_tools(profile))
    speak = backend.speak_for(profile)
    menu = None
    if profile.ivr is not None:
        ivr = profile.ivr
        menu = KeypadMenu(
            prompt=ivr.prompt,
            speak=speak,
            variable=ivr.variable,
            max_digits=ivr.max_digits,
            terminator=ivr.terminator,
            timeout_s=ivr.timeout_s,
            attempts=ivr.attempts,
            invalid=ivr.invalid,
            routes=dict(ivr.routes),
        )
    return Line(
        name=profile.name,
        new_agent=backend.agent_for(profile, tools),
        tools=tools,
        policy=call_policy(profile),
        menu=menu,
        numbers=tuple(profile.numbers),
        greets=backend.greets(profile),
        speak=speak,
        rescue=Rescue(
            reply_timeout_s=profile.reply_timeout_s,
            mode="transfer" if profile.fallback == "transfer" else "goodbye",
            apology=profile.apology,
            retry_prompt=profile.retry_prompt,
            goodbye=profile.goodbye,
            transfer_target=profile.transfer.target,
            shutdown=profile.shutdown,
        ),
    )
