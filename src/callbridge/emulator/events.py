"""Builders for the JSON the emulator sends: Event Grid events (§1) and callbacks (§3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .ids import iso_now_7, new_id

EVENT_PREFIX = "Microsoft.Communication."
ACS_TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/callbridge-emulator"
    "/providers/Microsoft.Communication/communicationServices/callbridge-emulator"
)


@dataclass(frozen=True)
class ResultInfo:
    """``resultInformation`` codes from §3.3/§3.4."""

    code: int
    sub_code: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "subCode": self.sub_code, "message": self.message}


OK = ResultInfo(200, 0, "Action completed successfully.")
CONNECTED = ResultInfo(200, 0, "")
# §3.4 200/7000: ended by Call Automation (the app hung up).
ENDED_BY_APP = ResultInfo(200, 7000, "The conversation has ended. DiagCode: 0#7000.")
# §3.4 200/5010: only one participant left — the caller hung up on the bot.
ENDED_BY_CALLER = ResultInfo(200, 5010, "The conversation has ended. DiagCode: 0#5010.")
# §3.4 200/7015: ended by the service after a successful transfer.
ENDED_BY_TRANSFER = ResultInfo(200, 7015, "The conversation has ended. DiagCode: 0#7015.")
# §3.3 / §4.2: media WebSocket could not be established.
MEDIA_FAILED = ResultInfo(500, 8603, "Action failed, not able to establish websocket connection.")


def callback_event(
    name: str,
    *,
    call_connection_id: str,
    server_call_id: str,
    correlation_id: str,
    api_version: str,
    operation_context: str | None = None,
    result: ResultInfo | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One CloudEvent 1.0 as in §3.1 (the caller wraps it in a one-element array)."""
    type_ = EVENT_PREFIX + name
    data: dict[str, Any] = {"version": api_version}
    if operation_context is not None:
        data["operationContext"] = operation_context
    if result is not None:
        data["resultInformation"] = result.to_dict()
    if extra:
        data.update(extra)
    data.update(
        {
            "callConnectionId": call_connection_id,
            "serverCallId": server_call_id,
            "correlationId": correlation_id,
            "publicEventType": type_,
        }
    )
    source = f"calling/callConnections/{call_connection_id}"
    return {
        "id": new_id(),
        "source": source,
        "type": type_,
        "data": data,
        "time": iso_now_7(),
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "subject": source,
    }


def media_streaming_update(status: str, details: str) -> dict[str, Any]:
    """§3.2/§3.3 ``mediaStreamingUpdate`` (contentType is "Audio" in the fixtures)."""
    return {
        "mediaStreamingUpdate": {
            "contentType": "Audio",
            "mediaStreamingStatus": status,
            "mediaStreamingStatusDetails": details,
        }
    }


def subscription_validation_event() -> tuple[dict[str, Any], str]:
    """§1.2 Event Grid validation event and its code."""
    code = new_id()
    event = {
        "id": new_id(),
        "topic": ACS_TOPIC,
        "subject": "",
        "data": {
            "validationCode": code,
            "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/"
            f"callbridge-emulator/validate?id={code}&t={iso_now_7()}"
            "&apiVersion=2018-05-01-preview&token=emulator",
        },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": iso_now_7(),
        "metadataVersion": "1",
        "dataVersion": "1",
    }
    return event, code


def incoming_call_event(data: dict[str, Any], *, schema: str, event_id: str) -> dict[str, Any]:
    """§1.3 IncomingCall envelope in the Event Grid or CloudEvents 1.0 schema."""
    subject = f"/caller/{data['from']['rawId']}/recipient/{data['to']['rawId']}"
    type_ = EVENT_PREFIX + "IncomingCall"
    if schema == "cloudevents":
        return {
            "id": event_id,
            "source": ACS_TOPIC,
            "subject": subject,
            "type": type_,
            "specversion": "1.0",
            "time": iso_now_7(),
            "data": data,
        }
    return {
        "id": event_id,
        "topic": ACS_TOPIC,
        "subject": subject,
        "data": data,
        "eventType": type_,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": iso_now_7(),
    }
