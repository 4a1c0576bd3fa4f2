"""A local Azure Communication Services emulator that plays ACS against a service at a URL.

It speaks only the public protocol: Event Grid IncomingCall delivery, the HMAC-signed
Call Automation REST API, JWT-signed callbacks and the media WebSocket (see
docs/emulator.md). Nothing here imports the service, so it can test any deployment.

Its parts load when first used (PEP 562), so `callbridge serve`, whose command line also
offers the emulator's commands, never loads the emulator (docs/architecture.md, "Memory").
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .caller import CallEndedError, SaidSpan
    from .eventgrid import WebhookValidationError
    from .events import ResultInfo
    from .humans import Human, Humans
    from .jwt_issuer import DEFAULT_ISSUER, DEFAULT_RESOURCE_ID
    from .live import AgentTurn, LiveCaller
    from .network import NetworkConditions
    from .report import CallReport, RecognizeRecord, RecordingRecord, TargetRecord
    from .script import CallScript
    from .server import AcsEmulator, run_emulator_forever
    from .targets import AcceptImmediately, TargetOutcome, TargetResponder

_WHERE = {
    "CallEndedError": "caller",
    "SaidSpan": "caller",
    "WebhookValidationError": "eventgrid",
    "ResultInfo": "events",
    "Human": "humans",
    "Humans": "humans",
    "DEFAULT_ISSUER": "jwt_issuer",
    "DEFAULT_RESOURCE_ID": "jwt_issuer",
    "AgentTurn": "live",
    "LiveCaller": "live",
    "NetworkConditions": "network",
    "CallReport": "report",
    "RecognizeRecord": "report",
    "RecordingRecord": "report",
    "TargetRecord": "report",
    "CallScript": "script",
    "AcsEmulator": "server",
    "run_emulator_forever": "server",
    "AcceptImmediately": "targets",
    "TargetOutcome": "targets",
    "TargetResponder": "targets",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_RESOURCE_ID",
    "AcceptImmediately",
    "AcsEmulator",
    "AgentTurn",
    "CallEndedError",
    "CallReport",
    "CallScript",
    "Human",
    "Humans",
    "LiveCaller",
    "NetworkConditions",
    "RecognizeRecord",
    "RecordingRecord",
    "ResultInfo",
    "SaidSpan",
    "TargetOutcome",
    "TargetRecord",
    "TargetResponder",
    "WebhookValidationError",
    "run_emulator_forever",
]
