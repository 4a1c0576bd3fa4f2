"""Event Grid delivery of IncomingCall and the validation handshakes."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from callbridge.emulator import AcsEmulator, CallScript, WebhookValidationError

from .fake_service import FakeService


def _b64url_json(part: str) -> dict:  # type: ignore[type-arg]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


async def test_eventgrid_validation_and_incoming_call_shape(
    emu: AcsEmulator, service: FakeService
) -> None:
    service.answer = False
    script = CallScript(
        answer_timeout_s=0.3,
        duplicate_delivery=True,
        caller_display_name="Ann",
        custom_context={"sipHeaders": {"X-MS-Custom-id": "42"}, "voipHeaders": {"k": "v"}},
    )
    report = await emu.place_call(script)
    assert [v[0] for v in service.validations] == ["POST"]
    assert service.validations[0][1]["aeg-event-type"] == "SubscriptionValidation"

    assert not report.answered and report.ended_by == "not_answered"
    assert "not answered within 0.3 s" in report.end_reason
    assert [(w.delivery_count, w.status) for w in report.webhook] == [(0, 200), (1, 200)]
    (h0, b0), (h1, b1) = service.incoming
    assert b0 == b1 and len(b0) == 1  # same envelope (same id) delivered twice
    assert (h0["aeg-delivery-count"], h1["aeg-delivery-count"]) == ("0", "1")
    for name, value in [
        ("aeg-event-type", "Notification"),
        ("aeg-subscription-name", "CALLBRIDGE-EMULATOR"),
        ("aeg-data-version", "1.0"),
        ("aeg-metadata-version", "1"),
    ]:
        assert h0[name] == value
    event = b0[0]
    assert event["eventType"] == "Microsoft.Communication.IncomingCall"
    assert event["id"] == report.incoming_event_id
    assert event["subject"] == "/caller/4:+14255550123/recipient/4:+18005550100"
    data = event["data"]
    assert data["from"] == {
        "kind": "phoneNumber",
        "rawId": "4:+14255550123",
        "phoneNumber": {"value": "+14255550123"},
    }
    assert data["to"]["rawId"] == "4:+18005550100"
    assert data["callerDisplayName"] == "Ann"
    assert uuid.UUID(data["correlationId"])
    server_call = base64.urlsafe_b64decode(data["serverCallId"] + "==").decode()
    assert server_call.startswith("https://api.flightproxy.skype.com/")
    header, payload, signature = data["incomingCallContext"].split(".")
    assert _b64url_json(header) == {"alg": "none", "typ": "JWT"}
    assert set(_b64url_json(payload)) == {"cc"} and signature == ""
    assert data["customContext"] == {
        "sipHeaders": {"X-MS-Custom-id": "42"},
        "voipHeaders": {"k": "v"},
    }

    # Validation happens once per webhook URL.
    await emu.place_call(CallScript(answer_timeout_s=0.05))
    assert len(service.validations) == 1


async def test_validation_failure_says_what_webhook_answered(
    emu: AcsEmulator, service: FakeService
) -> None:
    service.validation_ok = False
    with pytest.raises(WebhookValidationError, match=r"HTTP 500 .*validation broken"):
        await emu.place_call(CallScript())
    emu.webhook_url = "http://127.0.0.1:9/nothing"
    with pytest.raises(WebhookValidationError, match="failed: ClientConnectorError"):
        await emu.place_call(CallScript())
    assert emu.calls == []


async def test_cloudevents_schema(service: FakeService, access_key: str) -> None:
    emu = AcsEmulator(service.webhook, access_key, event_schema="cloudevents")
    await emu.start()
    service.connect_sdk(emu.endpoint)
    service.media = False
    try:
        report = await emu.place_call(CallScript(hangup_after_s=0.2))
        assert report.answered and report.ended_by == "caller"
        method, headers = service.validations[0]
        assert method == "OPTIONS" and headers["WebHook-Request-Origin"] == "eventgrid.azure.net"
        h, body = service.incoming[0]
        assert h["Content-Type"].startswith("application/cloudevents+json")
        assert body["specversion"] == "1.0"
        assert body["type"] == "Microsoft.Communication.IncomingCall"

        service.validation_ok = False
        emu.webhook_url = service.webhook + "&v=2"
        with pytest.raises(WebhookValidationError, match="OPTIONS with HTTP 403"):
            await emu.place_call(CallScript())
    finally:
        await emu.stop()
