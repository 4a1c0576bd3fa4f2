import json

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
