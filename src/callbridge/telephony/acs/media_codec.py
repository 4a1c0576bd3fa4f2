"""The ACS media WebSocket wire format, both directions.

See https://learn.microsoft.com/azure/communication-services/how-tos/call-automation/audio-streaming-quickstart
(and docs/emulator.md).

Inbound frames are camelCase JSON text frames; ACS evidently matches outbound kind and
property names case-insensitively, and we accept either casing on the way in too.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

# DtmfData spelling on the socket is unconfirmed for * and # (docs/emulator.md): accept both.
_DTMF_ALIASES = {
    "asterisk": "*",
    "star": "*",
    "pound": "#",
    "hash": "#",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_DTMF_DIGITS = set("0123456789*#ABCDabcd")


class FrameError(ValueError):
    """A frame that does not follow the ACS media protocol."""


@dataclass(frozen=True, slots=True)
class AudioMetadata:
    subscription_id: str
    encoding: str
    sample_rate: int
    channels: int
    length: int


@dataclass(frozen=True, slots=True)
class AudioData:
    pcm: bytes
    silent: bool
    timestamp: str | None
    participant: str | None


@dataclass(frozen=True, slots=True)
class DtmfData:
    digit: str


@dataclass(frozen=True, slots=True)
class OtherFrame:
    """A kind we do not use (e.g. TranscriptionData): acknowledged and ignored."""

    kind: str


InboundFrame = AudioMetadata | AudioData | DtmfData | OtherFrame


def _lower_keys(obj: dict[str, object]) -> dict[str, object]:
    return {k.lower(): v for k, v in obj.items()}


def _section(msg: dict[str, object], name: str) -> dict[str, object]:
    sub = msg.get(name.lower())
    if not isinstance(sub, dict):
        raise FrameError(f"{name} frame without a {name} object")
    return _lower_keys(sub)


def parse_frame(text: str | bytes) -> InboundFrame:
    """Parse one inbound text frame; raise FrameError with the reason if it is malformed."""
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, huge ints
        raise FrameError(f"not JSON: {getattr(exc, 'msg', type(exc).__name__)}") from None
    if not isinstance(msg, dict):
        raise FrameError("frame is not a JSON object")
    msg = _lower_keys(msg)
    kind = msg.get("kind")
    if not isinstance(kind, str):
        raise FrameError("frame has no 'kind'")
    lk = kind.lower()
    if lk == "audiodata":
        body = _section(msg, "audioData")
        data = body.get("data", "")
        if not isinstance(data, str):
            raise FrameError("AudioData.data is not a string")
        try:
            pcm = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise FrameError("AudioData.data is not valid base64") from None
        if len(pcm) % 2:
            raise FrameError("AudioData holds an odd number of bytes (not 16-bit PCM)")
        silent = bool(body.get("silent", False))
        ts = body.get("timestamp")
        who = body.get("participantrawid")
        return AudioData(
            pcm=pcm,
            silent=silent,
            timestamp=ts if isinstance(ts, str) else None,
            participant=who if isinstance(who, str) else None,
        )
    if lk == "dtmfdata":
        body = _section(msg, "dtmfData")
        raw = body.get("data")
        if not isinstance(raw, str) or not raw:
            raise FrameError("DtmfData without a digit")
        digit = _DTMF_ALIASES.get(raw.lower(), raw)
        if digit not in _DTMF_DIGITS:
            raise FrameError(f"DtmfData with unknown tone {raw!r}")
        return DtmfData(digit=digit.upper())
    if lk == "audiometadata":
        body = _section(msg, "audioMetadata")
        try:
            rate = int(body.get("samplerate", 0))  # type: ignore[call-overload]
            channels = int(body.get("channels", 1))  # type: ignore[call-overload]
            length = int(body.get("length", 0) or 0)  # type: ignore[call-overload]
        except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity, 1e400
            raise FrameError("AudioMetadata has non-numeric fields") from None
        return AudioMetadata(
            subscription_id=str(body.get("subscriptionid", "")),
            encoding=str(body.get("encoding", "PCM")),
            sample_rate=rate,
            channels=channels,
            length=length,
        )
    return OtherFrame(kind=kind)


def encode_audio(pcm: bytes) -> str:
    """Outbound agent audio, in the PascalCase form of Microsoft's Python docs."""
    b64 = base64.b64encode(pcm).decode("ascii")
    return '{"Kind":"AudioData","AudioData":{"Data":"' + b64 + '"},"StopAudio":null}'


STOP_AUDIO = '{"Kind":"StopAudio","AudioData":null,"StopAudio":{}}'
