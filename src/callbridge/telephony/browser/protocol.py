"""The browser phone's wire protocol: JSON control messages and binary PCM frames.

One WebSocket per call (`/phone/ws`). Binary frames carry 16-bit little-endian mono PCM at
the rate agreed in `hello`/`ready`, both ways. Text frames are JSON objects with a `type`.
docs/console.md describes the exchange; this module is its only parser and encoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1
RATES = (16000, 24000)
DTMF_DIGITS = frozenset("0123456789*#ABCD")
MAX_CALLER_NAME = 64

# Close codes (4000-4999 are the application's own, RFC 6455 section 7.4.2).
CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
CLOSE_BAD_MESSAGE = 4400
CLOSE_UNAUTHORISED = 4401
CLOSE_DISABLED = 4403
CLOSE_HELLO_TIMEOUT = 4408
CLOSE_BUSY = 4503


class ProtocolError(ValueError):
    """A client message that does not follow the protocol."""


@dataclass(frozen=True, slots=True)
class Hello:
    """The first message: who calls, with which token, at which PCM rate."""

    token: str
    rate: int
    caller: str


@dataclass(frozen=True, slots=True)
class HangUp:
    pass


@dataclass(frozen=True, slots=True)
class Mute:
    muted: bool


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Playback:
    """The page's account of agent audio: playing now, and how much it has played in all."""

    playing: bool
    played_ms: int


@dataclass(frozen=True, slots=True)
class Flushed:
    """The page emptied its playback queue after `stop`, dropping this much unplayed audio."""

    dropped_ms: int


ClientMessage = Hello | HangUp | Mute | Dtmf | Playback | Flushed


def _int(data: dict[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    # bool is an int to Python, never to this protocol.
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ProtocolError(f"{key!r} must be a number")
    return int(value)


def parse_client(text: str) -> ClientMessage:
    """Decode one text frame from the page; raises ProtocolError."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("not JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError("not a JSON object")
    kind = data.get("type")
    if kind == "hello":
        token = data.get("token", "")
        caller = data.get("caller") or "browser"
        if not isinstance(token, str) or not isinstance(caller, str):
            raise ProtocolError("hello: token and caller must be strings")
        rate = _int(data, "rate", RATES[-1])
        if rate not in RATES:
            raise ProtocolError(f"hello: rate must be one of {RATES}")
        name = "".join(ch for ch in caller if ch.isprintable())[:MAX_CALLER_NAME]
        return Hello(token=token, rate=rate, caller=name.strip() or "browser")
    if kind == "hangup":
        return HangUp()
    if kind == "mute":
        return Mute(bool(data.get("muted", True)))
    if kind == "dtmf":
        digit = data.get("digit")
        if not isinstance(digit, str) or digit.upper() not in DTMF_DIGITS or len(digit) != 1:
            raise ProtocolError("dtmf: digit must be one of 0-9 * # A-D")
        return Dtmf(digit.upper())
    if kind == "playback":
        return Playback(bool(data.get("playing")), max(0, _int(data, "played_ms", 0)))
    if kind == "flushed":
        return Flushed(max(0, _int(data, "dropped_ms", 0)))
    raise ProtocolError(f"unknown message type {kind!r}")


def _encode(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))


def ready(call_id: str, rate: int) -> str:
    return _encode("ready", call_id=call_id, rate=rate, version=PROTOCOL_VERSION)


STOP = _encode("stop")


def transcript(role: str, text: str, at: float) -> str:
    return _encode("transcript", role=role, text=text, at=at)


def tool(name: str, ok: bool) -> str:
    return _encode("tool", name=name, ok=ok)


def transfer(target: str) -> str:
    return _encode("transfer", target=target)


def ended(reason: str, outcome: str) -> str:
    return _encode("ended", reason=reason, outcome=outcome)


def error(message: str) -> str:
    return _encode("error", message=message)
