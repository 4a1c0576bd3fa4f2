"""A local Azure Communication Services emulator that plays ACS against a service at a URL.

It speaks only the public protocol: Event Grid IncomingCall delivery, the HMAC-signed
Call Automation REST API, JWT-signed callbacks and the media WebSocket (see
docs/emulator.md). Nothing here imports the service, so it can test any deployment.
"""

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
