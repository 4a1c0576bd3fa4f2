"""Checking Call Automation request bodies, and the ACS error a bad one gets.

Errors have the ACS shape ``{"error": {"code", "message"}}``; the codes used (404 8522,
400 8523, 412 8583, 401 7509) are those of the public troubleshooting page:
https://learn.microsoft.com/azure/communication-services/resources/troubleshooting/voice-video-calling/troubleshooting-codes
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .ids import identifier_from_request
from .media import parse_audio_format
from .media_stream import MediaConfig

if TYPE_CHECKING:
    from .call import EmulatedCall

Json = dict[str, Any]


class AcsError(Exception):
    """A request the emulator refuses; rendered as an ACS error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.call: EmulatedCall | None = None  # the call it concerns, for its report


def not_found(what: str = "Call") -> AcsError:
    return AcsError(404, "8522", f"{what} not found")


def bad_request(message: str) -> AcsError:
    return AcsError(400, "8523", message)  # invalid argument


def error_body(code: str, message: str) -> Json:
    return {"error": {"code": code, "message": message}}


def require(body: Json, name: str) -> Any:
    value = body.get(name)
    if value is None or value == "" or value == []:
        raise bad_request(f"The {name} field is required.")
    return value


def identifier(body: Json, name: str) -> Json:
    ident = identifier_from_request(require(body, name))
    if ident is None:
        raise bad_request(f"The {name} field is not a valid CommunicationIdentifier.")
    return ident


def opt_str(body: Json, name: str) -> str | None:
    value = body.get(name)
    return str(value) if value is not None else None


# Custom context limits: ≤ 5 custom SIP headers (X-MS-Custom-*, or X-* since SDK 1.5.0) +
# the UUI header, ≤ 1000 VoIP headers; key ≤ 64, SIP value ≤ 256, VoIP ≤ 1024. See
# https://learn.microsoft.com/azure/communication-services/how-tos/call-automation/custom-context
UUI_HEADERS = ("user-to-user", "usertouser")


def custom_context(body: Json) -> Json | None:
    """``customCallingContext`` validated against the limits; kept exactly as received."""
    ctx = body.get("customCallingContext")
    if ctx is None:
        return None
    if not isinstance(ctx, dict):
        raise bad_request("customCallingContext must be an object.")
    sip = ctx.get("sipHeaders") or {}
    voip = ctx.get("voipHeaders") or {}
    for name, headers, value_max in [("sipHeaders", sip, 256), ("voipHeaders", voip, 1024)]:
        if not isinstance(headers, dict):
            raise bad_request(f"customCallingContext.{name} must be an object.")
        for key, value in headers.items():
            if not isinstance(value, str):
                raise bad_request(f"{name} header {key!r} must have a string value.")
            if not key or len(key) > 64:
                raise bad_request(f"{name} header name {key!r} must be 1-64 characters.")
            if len(value) > value_max:
                raise bad_request(f"{name} header {key!r}: value longer than {value_max}.")
    custom = [k for k in sip if k.lower() not in UUI_HEADERS]
    bad = [k for k in custom if not k.lower().startswith("x-")]
    if bad:
        raise bad_request(
            f"Custom SIP header {bad[0]!r} must start with X-MS-Custom- (or X-) or be User-To-User."
        )
    if len(custom) > 5:
        raise bad_request("At most 5 custom SIP headers (plus User-To-User) are allowed.")
    if len(voip) > 1000:
        raise bad_request("At most 1000 VoIP headers are allowed.")
    return ctx


def media_config(options: Any) -> MediaConfig | None:
    """Validate the answer's ``mediaStreamingOptions``."""
    if options is None:
        return None
    if not isinstance(options, dict):
        raise bad_request("mediaStreamingOptions must be an object.")
    url = str(require(options, "transportUrl"))
    if urlsplit(url).scheme not in ("ws", "wss"):
        raise bad_request(f"Invalid Stream URL {url!r}: must be ws:// or wss://.")
    if str(options.get("transportType", "websocket")).lower() != "websocket":
        raise bad_request("mediaStreamingOptions.transportType must be websocket.")
    try:
        fmt, rate = parse_audio_format(options.get("audioFormat"))
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
    return MediaConfig(
        transport_url=url,
        audio_format=fmt,
        rate=rate,
        start=bool(options.get("startMediaStreaming")),
        bidirectional=bool(options.get("enableBidirectional")),
        dtmf=bool(options.get("enableDtmfTones")),
    )
