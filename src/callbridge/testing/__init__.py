"""Test doubles for the services a voice bot on Azure Communication Services talks to.

Use them to test your own deployment end to end on one machine, without Azure:

* :class:`AcsEmulator` plays ACS for a service at a URL, over the public protocol only:
  Event Grid ``IncomingCall`` delivery (with the validation handshake), the HMAC-checked
  Call Automation REST API, RS256-signed callbacks with a JWKS, and the media WebSocket
  in real time. ``place_call(CallScript(...))`` runs a whole scripted call and returns a
  :class:`CallReport`; ``start_call()`` hands back a :class:`LiveCaller` that speaks,
  presses keys and waits for the agent step by step. :func:`run_emulator_forever` keeps
  one running inside another program's event loop.
* :class:`FakeRealtimeServer` stands in for Azure Voice Live (``"voicelive"``) or the
  OpenAI Realtime GA API (``"ga"``) on loopback, where the official SDKs connect. A
  :class:`Script` of :class:`Say` / :class:`CallTool` / :class:`Fail` / :class:`Expire`
  turns says what the model answers; every event both ways is recorded.

Neither imports the service under test: point your deployment's ACS endpoint, JWKS URL
and realtime endpoint at them. See "Testing your own deployment" in docs/emulator.md, and
``python -m callbridge.testing.fake_realtime --help`` / ``callbridge emulator --help`` to
run them by hand. The names below load on first use, so importing one submodule (say
``callbridge.testing.fake_realtime``) does not start importing the other.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callbridge.emulator import (
        AcsEmulator,
        AgentTurn,
        CallEndedError,
        CallReport,
        CallScript,
        Human,
        Humans,
        LiveCaller,
        SaidSpan,
        TargetOutcome,
        TargetResponder,
        WebhookValidationError,
        run_emulator_forever,
    )
    from callbridge.testing.fake_realtime import (
        CallTool,
        Expire,
        Fail,
        FakeRealtimeServer,
        FakeSession,
        Say,
        Script,
        by_instructions,
    )

_EMULATOR = (
    "AcsEmulator",
    "AgentTurn",
    "CallEndedError",
    "CallReport",
    "CallScript",
    "Human",
    "Humans",
    "LiveCaller",
    "SaidSpan",
    "TargetOutcome",
    "TargetResponder",
    "WebhookValidationError",
    "run_emulator_forever",
)
_FAKE_REALTIME = (
    "CallTool",
    "Expire",
    "Fail",
    "FakeRealtimeServer",
    "FakeSession",
    "Say",
    "Script",
    "by_instructions",
)
_HOME = {
    **dict.fromkeys(_EMULATOR, "callbridge.emulator"),
    **dict.fromkeys(_FAKE_REALTIME, "callbridge.testing.fake_realtime"),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "AcsEmulator",
    "AgentTurn",
    "CallEndedError",
    "CallReport",
    "CallScript",
    "CallTool",
    "Expire",
    "Fail",
    "FakeRealtimeServer",
    "FakeSession",
    "Human",
    "Humans",
    "LiveCaller",
    "SaidSpan",
    "Say",
    "Script",
    "TargetOutcome",
    "TargetResponder",
    "WebhookValidationError",
    "by_instructions",
    "run_emulator_forever",
]
