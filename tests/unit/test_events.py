import json
from typing import Any

import pytest

from callbridge.telephony.acs.events import (
    EventError,
    IncomingCall,
    OtherEvent,
    ValidationRequest,
    parse_callbacks,
    parse_eventgrid,
)

INCOMING_DATA = {
    "to": {
        "kind": "phoneNumber",
        "rawId": "4:+18005550100",
        "phoneNumber": {"value": "+18005550100"},
    },
    "from": {
        "kind": "phoneNumber",
        "rawId": "4:+14255550123",
        "phoneNumber": {"value": "+14255550123"},
    },
    "serverCallId": "aHR0cHM6Ly9hcGk=",
    "callerDisplayName": "",
    "customContext": {"sipHeaders": {"X-MS-Custom-ticket": "42"}, "voipHeaders": {}},
    "incomingCallContext": "eyJhbGciOiJub25lIn0.eyJjYyI6IngifQ.",
    "correlationId": "ebd8bf1f-0794-494f-bdda-913042c06ef7",
}


def test_incoming_call_in_event_grid_schema() -> None:
    body = [
        {
            "id": "e1",
            "topic": "/subscriptions/x",
            "subject": "/caller/a/recipient/b",
            "data": INCOMING_DATA,
            "eventType": "Microsoft.Communication.IncomingCall",
            "dataVersion": "1.0",
            "metadataVersion": "1",
            "eventTime": "2026-11-23T10:00:00Z",
        }
    ]
    (ev,) = parse_eventgrid(json.dumps(body).encode())
    assert isinstance(ev, IncomingCall)
    assert ev.caller.phone_number == "+14255550123"
    assert ev.callee.display == "+18005550100"
    assert ev.sip_headers == {"X-MS-Custom-ticket": "42"}
    assert ev.correlation_id.startswith("ebd8")


def test_incoming_call_as_single_cloud_event() -> None:
    body = {
        "id": "e2",
        "source": "/subscriptions/x",
        "type": "Microsoft.Communication.IncomingCall",
        "specversion": "1.0",
        "data": INCOMING_DATA,
    }
    (ev,) = parse_eventgrid(json.dumps(body).encode())
    assert isinstance(ev, IncomingCall) and ev.event_id == "e2"


def test_validation_and_other_events() -> None:
    body = [
        {
            "id": "v",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "data": {"validationCode": "512d38b6"},
        },
        {"id": "o", "eventType": "Microsoft.Communication.SMSReceived", "data": {}},
    ]
    assert parse_eventgrid(json.dumps(body).encode()) == [
        ValidationRequest("v", "512d38b6"),
        OtherEvent("o", "Microsoft.Communication.SMSReceived"),
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{nope", "not JSON"),
        (b"[]", "non-empty"),
        (b"[1]", "not a JSON object"),
        (b'[{"id":"x"}]', "no type"),
        (
            b'[{"id":"x","eventType":"Microsoft.Communication.IncomingCall","data":{}}]',
            "incomingCallContext",
        ),
    ],
)
def test_malformed_deliveries(body: bytes, reason: str) -> None:
    with pytest.raises(EventError, match=reason):
        parse_eventgrid(body)


def test_callback_events() -> None:
    body = [
        {
            "id": "46116fb7",
            "source": "calling/callConnections/401f",
            "type": "Microsoft.Communication.CallDisconnected",
            "specversion": "1.0",
            "data": {
                "callConnectionId": "401f",
                "correlationId": "c",
                "operationContext": "answer-op",
                "resultInformation": {"code": 200, "subCode": 7000, "message": "ended"},
            },
        }
    ]
    (ev,) = parse_callbacks(json.dumps(body).encode())
    assert (ev.name, ev.code, ev.sub_code, ev.operation_context) == (
        "CallDisconnected",
        200,
        7000,
        "answer-op",
    )
    with pytest.raises(EventError, match="no data"):
        parse_callbacks(b'[{"id":"1","type":"Microsoft.Communication.CallConnected"}]')


# --- hostile bodies: each must be an EventError (a 400), never another exception (a 500) ---
DEEP = b"[" * 100_000 + b"]" * 100_000
BIG_INT = (
    b'[{"id":"x","eventType":"Microsoft.Communication.IncomingCall","n":' + b"7" * 5000 + b"}]"
)


def _incoming_with(**data: object) -> bytes:
    body = [
        {
            "id": "e1",
            "eventType": "Microsoft.Communication.IncomingCall",
            "data": {**INCOMING_DATA, **data},
        }
    ]
    return json.dumps(body).encode()  # ensure_ascii: a lone surrogate goes out as "\ud800"


def _callback_with(**data: object) -> bytes:
    body = [
        {
            "id": "c1",
            "type": "Microsoft.Communication.CallConnected",
            "specversion": "1.0",
            "data": {"callConnectionId": "401f", **data},
        }
    ]
    return json.dumps(body).encode()


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("parse", [parse_eventgrid, parse_callbacks])
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (DEEP, "nested too deeply"),
        (BIG_INT, "not JSON: Exceeds the limit"),
        (_incoming_with(callerDisplayName="Ann \ud800"), "lone surrogate, U\\+D800"),
        (_callback_with(operationContext="\udfff"), "lone surrogate, U\\+DFFF"),
        (_callback_with(**{"\ud800key": 1}), "lone surrogate"),  # in a key
        (_callback_with(deep=_nested(40)), "nested deeper than 32 levels"),
    ],
    ids=["deep", "big-int", "surrogate-incoming", "surrogate-callback", "surrogate-key", "depth"],
)
def test_hostile_bodies_are_event_errors(parse: Any, body: bytes, reason: str) -> None:
    with pytest.raises(EventError, match=reason):
        parse(body)


def test_text_that_is_not_ascii_is_fine() -> None:
    (ev,) = parse_eventgrid(_incoming_with(callerDisplayName="Zoë 😀 \U0001f4de"))
    assert isinstance(ev, IncomingCall) and ev.caller_display_name == "Zoë 😀 \U0001f4de"
    # A surrogate pair escaped in JSON is one character, not a lone surrogate.
    (ev,) = parse_eventgrid(
        _incoming_with(callerDisplayName="x").replace(b'"x"', b'"\\ud83d\\ude00"')
    )
    assert isinstance(ev, IncomingCall) and ev.caller_display_name == "😀"
    (cb,) = parse_callbacks(_callback_with(deep=_nested(20)))
    assert cb.call_connection_id == "401f"


def test_a_phone_number_that_is_not_a_string_is_not_kept() -> None:
    frm = {"kind": "phoneNumber", "rawId": "8:acs:x", "phoneNumber": {"value": ["+1"]}}
    (ev,) = parse_eventgrid(_incoming_with(**{"from": frm}))
    assert isinstance(ev, IncomingCall)
    assert ev.caller.phone_number is None and ev.caller.display == "8:acs:x"
