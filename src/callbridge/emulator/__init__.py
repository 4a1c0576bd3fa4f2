"""A local Azure Communication Services emulator that plays ACS against callbridge.

It speaks only the public protocol (acs-protocol.md): Event Grid IncomingCall delivery,
the HMAC-signed Call Automation REST API, JWT-signed callbacks and the media WebSocket.
Nothing here imports the service.
"""

from .caller import CallEnded, SaidSpan
from .eventgrid import WebhookValidationError
from .events import ResultInfo
from .humans import Human, Humans
from .jwt_issuer import DEFAULT_ISSUER, DEFAULT_RESOURCE_ID
from .live import AgentTurn, LiveCall
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
    "CallEnded",
    "CallReport",
    "CallScript",
    "Human",
    "Humans",
    "LiveCall",
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
