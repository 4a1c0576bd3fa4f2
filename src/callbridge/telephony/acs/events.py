"""Parsing of Event Grid deliveries and Call Automation callback CloudEvents.

See https://learn.microsoft.com/azure/communication-services/concepts/call-automation/incoming-call-notification
(and docs/emulator.md).

Both arrive as JSON arrays; Event Grid may use its own schema or CloudEvents 1.0 (and a
single CloudEvent may come as a bare object). Anything malformed raises EventError with a
reason fit for a 400 response and a log line: also JSON that Python's parser cannot take
(nesting past the recursion limit, an integer past the int-from-string digit limit) or
that is deeper than any ACS event, and any string with a lone surrogate (`"\\ud800"`),
which JSON can spell but UTF-8 cannot encode (a response, a log line or the database
would fail on it later). Event Grid retries a 5xx, so none of these may get one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

INCOMING_CALL = "Microsoft.Communication.IncomingCall"
VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
CALLBACK_PREFIX = "Microsoft.Communication."
# ACS events nest about six levels deep; anything far deeper is not an ACS event.
MAX_DEPTH = 32


class EventError(ValueError):
    """A delivery that is not what ACS or Event Grid send."""


@dataclass(frozen=True, slots=True)
class Party:
    raw_id: str
    kind: str
    phone_number: str | None

    @property
    def display(self) -> str:
        return self.phone_number or self.raw_id


@dataclass(frozen=True, slots=True)
class ValidationRequest:
    event_id: str
    code: str


@dataclass(frozen=True, slots=True)
class IncomingCall:
    event_id: str
    incoming_call_context: str
    caller: Party
    callee: Party
    server_call_id: str
    correlation_id: str
    caller_display_name: str
    sip_headers: dict[str, str] = field(default_factory=dict)
    voip_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OtherEvent:
    event_id: str
    event_type: str


GridEvent = ValidationRequest | IncomingCall | OtherEvent


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One Call Automation callback event, e.g. name='CallConnected'."""

    event_id: str
    name: str
    call_connection_id: str
    correlation_id: str
    operation_context: str | None
    code: int | None
    sub_code: int | None
    message: str
    data: dict[str, Any]


def _load(body: bytes) -> list[dict[str, Any]]:
    try:
        doc = json.loads(body)
    except RecursionError:
        raise EventError("body is JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        raise EventError(f"body is not JSON: {exc}") from None
    _check_text(doc)
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list) or not doc:
        raise EventError("body is not a non-empty JSON array of events")
    if not all(isinstance(e, dict) for e in doc):
        raise EventError("an event in the array is not a JSON object")
    return doc


def _check_text(doc: object) -> None:
    """Every key and string in `doc` is encodable text, and `doc` is at most MAX_DEPTH
    deep (iteratively: the check itself must not recurse)."""
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_string(value)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise EventError(f"body is JSON nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_string(key)
                stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in value)


def _check_string(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EventError(
            "body has a string that is not valid Unicode "
            f"(a lone surrogate, U+{ord(text[exc.start]):04X})"
        ) from None


def _str(obj: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise EventError(f"{where}.{key} is missing or not a string")
    return value


def parse_party(obj: object, where: str) -> Party:
    if not isinstance(obj, dict):
        raise EventError(f"{where} is not an identifier object")
    raw = _str(obj, "rawId", where)
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else "unknown"
    phone = obj.get("phoneNumber")
    value = phone.get("value") if isinstance(phone, dict) else None
    number = value if isinstance(value, str) and value else None
    if number is None and raw.startswith("4:"):
        number = raw[2:]
    return Party(raw_id=raw, kind=str(kind), phone_number=number)


def _headers(obj: object) -> dict[str, str]:
    if not isinstance(obj, dict):
        return {}
    return {str(k): str(v) for k, v in obj.items()}


def parse_eventgrid(body: bytes) -> list[GridEvent]:
    out: list[GridEvent] = []
    for ev in _load(body):
        is_cloud = "specversion" in ev
        etype = ev.get("type" if is_cloud else "eventType")
        if not isinstance(etype, str):
            raise EventError("event has no type")
        eid = _str(ev, "id", "event")
        data = ev.get("data")
        if etype == VALIDATION:
            if not isinstance(data, dict):
                raise EventError("validation event without data")
            out.append(ValidationRequest(eid, _str(data, "validationCode", "data")))
        elif etype == INCOMING_CALL:
            if not isinstance(data, dict):
                raise EventError("IncomingCall without data")
            ctx = data.get("customContext") or {}
            if not isinstance(ctx, dict):
                raise EventError("data.customContext is not an object")
            out.append(
                IncomingCall(
                    event_id=eid,
                    incoming_call_context=_str(data, "incomingCallContext", "data"),
                    caller=parse_party(data.get("from"), "data.from"),
                    callee=parse_party(data.get("to"), "data.to"),
                    server_call_id=_str(data, "serverCallId", "data", required=False),
                    correlation_id=_str(data, "correlationId", "data", required=False),
                    caller_display_name=_str(data, "callerDisplayName", "data", required=False),
                    sip_headers=_headers(ctx.get("sipHeaders")),
                    voip_headers=_headers(ctx.get("voipHeaders")),
                )
            )
        else:
            out.append(OtherEvent(eid, etype))
    return out


def parse_callbacks(body: bytes) -> list[CallEvent]:
    out: list[CallEvent] = []
    for ev in _load(body):
        etype = ev.get("type")
        if not isinstance(etype, str) or not etype:
            raise EventError("callback event has no type")
        data = ev.get("data")
        if not isinstance(data, dict):
            raise EventError(f"{etype} has no data object")
        result = data.get("resultInformation")
        result = result if isinstance(result, dict) else {}
        code, sub = result.get("code"), result.get("subCode")
        out.append(
            CallEvent(
                event_id=_str(ev, "id", "event"),
                name=etype.removeprefix(CALLBACK_PREFIX),
                call_connection_id=_str(data, "callConnectionId", "data", required=False),
                correlation_id=_str(data, "correlationId", "data", required=False),
                operation_context=data.get("operationContext")
                if isinstance(data.get("operationContext"), str)
                else None,
                code=code if isinstance(code, int) else None,
                sub_code=sub if isinstance(sub, int) else None,
                message=str(result.get("message", "")),
                data=data,
            )
        )
    return out
