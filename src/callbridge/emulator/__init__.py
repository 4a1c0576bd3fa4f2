"""A local Azure Communication Services emulator that plays ACS against callbridge.

It speaks only the public protocol (acs-protocol.md): Event Grid IncomingCall delivery,
the HMAC-signed Call Automation REST API, JWT-signed callbacks and the media WebSocket.
Nothing here imports the service.
"""

from .eventgrid import WebhookValidationError
from .jwt_issuer import DEFAULT_ISSUER, DEFAULT_RESOURCE_ID
from .report import CallReport
from .script import CallScript
from .server import AcsEmulator, run_emulator_forever
from .targets import TargetOutcome, TargetResponder

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_RESOURCE_ID",
    "AcsEmulator",
    "CallReport",
    "CallScript",
    "TargetOutcome",
    "TargetResponder",
    "WebhookValidationError",
    "run_emulator_forever",
]
