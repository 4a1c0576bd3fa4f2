"""Simulated people at the other end of a transfer or an add-participant.

``emu.humans.set("+14255550100", "decline")`` — per target number (or ACS user id
``8:acs:...``) one of:

* ``answer``    picks up after ``ring_s`` (and may say ``says`` once connected);
* ``decline``   rejects after ``ring_s``: 603 / 560603 (SIP 603 Decline);
* ``busy``      after ``ring_s``: 486 / 560486 (SIP 486 Busy Here);
* ``no_answer`` rings until the add's ``invitationTimeoutInSeconds`` (or ``no_answer_s``
  when there is none, e.g. transfers): 480 / 560480 (SIP 480 Temporarily Unavailable).

A human who would answer/decline later than the invitation timeout is a no-answer too.
Unknown targets use ``Humans.default`` (``answer``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args

from . import events as ev
from .ids import raw_id_for
from .targets import TargetAction, TargetOutcome

Behaviour = Literal["answer", "decline", "busy", "no_answer"]
BEHAVIOURS: tuple[str, ...] = get_args(Behaviour)
DEFAULT_RING_S = 0.2
DEFAULT_NO_ANSWER_S = 5.0
DEFAULT_KEY = "*"  # control API / CLI key for the default human


@dataclass(frozen=True)
class Human:
    behaviour: Behaviour = "answer"
    ring_s: float = DEFAULT_RING_S  # until they answer / decline / say busy
    says: bytes | str | Path | None = None  # PCM16 mono at says_rate, or a WAV path
    says_rate: int = 16000
    says_after_s: float = 0.3  # after AddParticipantSucceeded
    no_answer_s: float | None = None  # ring time without an invitation timeout

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(
                f"unknown human behaviour {self.behaviour!r}; one of {', '.join(BEHAVIOURS)}"
            )
        if self.ring_s < 0 or (self.no_answer_s is not None and self.no_answer_s < 0):
            raise ValueError("ring_s / no_answer_s must not be negative")

    def to_dict(self) -> dict[str, Any]:
        says: str | None
        if isinstance(self.says, bytes | bytearray):
            says = f"<{len(self.says)} bytes PCM @ {self.says_rate} Hz>"
        else:
            says = str(self.says) if self.says is not None else None
        return {
            "behaviour": self.behaviour,
            "ring_s": self.ring_s,
            "says": says,
            "says_after_s": self.says_after_s,
            "no_answer_s": self.no_answer_s,
        }


def as_human(value: Human | str) -> Human:
    if isinstance(value, Human):
        return value
    return Human(behaviour=cast(Behaviour, value))


class Humans:
    """The emulator's default :class:`~.targets.TargetResponder` (see module docstring)."""

    def __init__(
        self,
        targets: Mapping[str, Human | str] | None = None,
        *,
        default: Human | str = "answer",
        no_answer_s: float = DEFAULT_NO_ANSWER_S,
    ) -> None:
        self.default = as_human(default)
        self.no_answer_s = no_answer_s
        self._by_raw_id: dict[str, Human] = {}
        for target, human in (targets or {}).items():
            self.set(target, human)

    # ------------------------------------------------------------------ config

    def set(
        self,
        target: str,
        behaviour: Human | Behaviour | str = "answer",
        *,
        ring_s: float | None = None,
        says: bytes | str | Path | None = None,
        says_rate: int | None = None,
        says_after_s: float | None = None,
        no_answer_s: float | None = None,
    ) -> Human:
        """Configure the human at ``target`` ("+1425...", "4:+1425..." or "8:acs:...";
        "*" sets the default). Keyword arguments override fields of ``behaviour``."""
        human = as_human(behaviour)
        changes: dict[str, Any] = {}
        for name, value in [
            ("ring_s", ring_s),
            ("says", says),
            ("says_rate", says_rate),
            ("says_after_s", says_after_s),
            ("no_answer_s", no_answer_s),
        ]:
            if value is not None:
                changes[name] = value
        if changes:
            human = replace(human, **changes)
        if target == DEFAULT_KEY:
            self.default = human
        else:
            self._by_raw_id[raw_id_for(target)] = human
        return human

    def get(self, target: str) -> Human:
        """The human at ``target`` (a number, a rawId or an ACS user id)."""
        return self._by_raw_id.get(raw_id_for(target), self.default)

    def remove(self, target: str) -> None:
        self._by_raw_id.pop(raw_id_for(target), None)

    def clear(self) -> None:
        """Forget every per-target human (the default stays)."""
        self._by_raw_id.clear()

    def to_dict(self) -> dict[str, Any]:
        return {
            "default": self.default.to_dict(),
            "no_answer_s": self.no_answer_s,
            "targets": {k: h.to_dict() for k, h in sorted(self._by_raw_id.items())},
        }

    # ------------------------------------------------------------------ responder

    async def __call__(
        self,
        target: dict[str, Any],
        action: TargetAction,
        call_connection_id: str,
        *,
        invitation_timeout_s: float | None = None,
    ) -> TargetOutcome:
        human = self.get(str(target.get("rawId", "")))
        if invitation_timeout_s is not None and invitation_timeout_s > 0:
            limit = invitation_timeout_s
        else:
            limit = human.no_answer_s if human.no_answer_s is not None else self.no_answer_s
        if human.behaviour == "no_answer" or human.ring_s > limit:
            await asyncio.sleep(limit)
            return TargetOutcome(False, ev.NO_ANSWER, outcome="no_answer")
        await asyncio.sleep(human.ring_s)
        if human.behaviour == "decline":
            return TargetOutcome(False, ev.DECLINED, outcome="declined")
        if human.behaviour == "busy":
            return TargetOutcome(False, ev.BUSY, outcome="busy")
        return TargetOutcome(
            True,
            outcome="answered",
            says=human.says,
            says_rate=human.says_rate,
            says_after_s=human.says_after_s,
        )


# ---------------------------------------------------------------------- parsing


def parse_human_spec(spec: str) -> tuple[str, Human]:
    """CLI ``--human TARGET=BEHAVIOUR[,ring=S][,says=FILE.wav][,timeout=S]``."""
    target, sep, rest = spec.partition("=")
    target = target.strip()
    if not sep or not target or not rest:
        raise ValueError(f"--human {spec!r}: expected TARGET=BEHAVIOUR, e.g. +14255550100=decline")
    behaviour, *options = [part.strip() for part in rest.split(",")]
    fields: dict[str, Any] = {"behaviour": behaviour}
    for option in options:
        key, eq, value = option.partition("=")
        if not eq:
            raise ValueError(f"--human {spec!r}: option {option!r} is not KEY=VALUE")
        if key in ("ring", "ring_s"):
            fields["ring_s"] = float(value)
        elif key in ("timeout", "no_answer_s"):
            fields["no_answer_s"] = float(value)
        elif key in ("says_after", "says_after_s"):
            fields["says_after_s"] = float(value)
        elif key == "says":
            path = Path(value)
            if not path.is_file():
                raise ValueError(f"--human {spec!r}: says file {value!r} not found")
            fields["says"] = str(path.resolve())
        else:
            raise ValueError(f"--human {spec!r}: unknown option {key!r}")
    return target, Human(**fields)


def human_from_json(value: Any) -> Human:
    """Control API form: "decline" or {"behaviour", "ring_s", "says_path" | "says_b64",
    "says_rate", "says_after_s", "no_answer_s"}."""
    if isinstance(value, str):
        return Human(behaviour=cast(Behaviour, value))
    if not isinstance(value, dict):
        raise ValueError("a human is a behaviour string or an object")
    fields: dict[str, Any] = {"behaviour": str(value.get("behaviour", "answer"))}
    for name in ("ring_s", "says_after_s", "no_answer_s"):
        if value.get(name) is not None:
            fields[name] = float(value[name])
    if value.get("says_path"):
        path = Path(str(value["says_path"]))
        if not path.is_file():
            raise ValueError(f"says_path {str(path)!r} does not exist")
        fields["says"] = str(path)
    elif value.get("says_b64"):
        try:
            fields["says"] = base64.b64decode(str(value["says_b64"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("says_b64 is not valid base64") from exc
        fields["says_rate"] = int(value.get("says_rate", 16000))
    return Human(**fields)
