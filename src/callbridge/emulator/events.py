"""Builders for the JSON the emulator sends: Event Grid events and callbacks.

Result codes follow the public troubleshooting page
https://learn.microsoft.com/azure/communication-services/resources/troubleshooting/voice-video-calling/troubleshooting-codes
and docs/emulator.md lists which event carries which.
"""

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
    """``resultInformation`` of a callback event.

    ``sip`` / ``q850`` become ``sipDetails`` / ``q850Details`` (present only when
    the SBC/carrier supplied them, e.g. a PSTN target that declined or was busy).
    """

    code: int
    sub_code: int
    message: str
    sip: tuple[int, str] | None = None
    q850: tuple[int, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "subCode": self.sub_code, "message": self.message}
        if self.sip is not None:
            out["sipDetails"] = {"code": self.sip[0], "message": self.sip[1]}
        if self.q850 is not None:
            out["q850Details"] = {"code": self.q850[0], "message": self.q850[1]}
        return out


OK = ResultInfo(200, 0, "Action completed successfully.")
CONNECTED = ResultInfo(200, 0, "")
# 200/7000: ended by Call Automation (the app hung up).
ENDED_BY_APP = ResultInfo(200, 7000, "The conversation has ended. DiagCode: 0#7000.")
# 200/5010: only one participant left — the caller hung up on the bot.
ENDED_BY_CALLER = ResultInfo(200, 5010, "The conversation has ended. DiagCode: 0#5010.")
# 200/7015: ended by the service after a successful transfer.
ENDED_BY_TRANSFER = ResultInfo(200, 7015, "The conversation has ended. DiagCode: 0#7015.")
# 500/8603: the media WebSocket could not be established.
MEDIA_FAILED = ResultInfo(500, 8603, "Action failed, not able to establish websocket connection.")

# Transfer / add-participant targets that don't pick up (560xxx = the SBC's final
# SIP response on an outbound leg; sipDetails/q850Details as a carrier supplies them).
DECLINED = ResultInfo(
    603,
    560603,
    "Call declined by the remote participant. DiagCode: 560603#603.",
    sip=(603, "Decline"),
    q850=(21, "Call rejected"),
)
BUSY = ResultInfo(
    486,
    560486,
    "The remote participant is busy. DiagCode: 560486#486.",
    sip=(486, "Busy Here"),
    q850=(17, "User busy"),
)
NO_ANSWER = ResultInfo(
    480,
    560480,
    "The remote participant did not answer. DiagCode: 560480#480.",
    sip=(480, "Temporarily Unavailable"),
    q850=(19, "No answer from user (user alerted)"),
)
# The app cancelled a ringing invitation (participants:cancelAddParticipant): 487.
INVITATION_CANCELLED = ResultInfo(
    487, 0, "The invitation was cancelled by the application.", sip=(487, "Request Terminated")
)
# 400/8585: invalid in the current state (cancelling an invitation that has ended).
INVALID_STATE = ResultInfo(400, 8585, "Action is invalid in the current state.")

# Recognize.
RECOGNIZE_MAX_TONES = ResultInfo(200, 8531, "Action completed, max digits received.")
RECOGNIZE_STOP_TONE = ResultInfo(200, 8514, "Action completed as stop tone was detected.")
RECOGNIZE_INTER_TONE = ResultInfo(
    200, 8532, "Action completed, inter-digit silence timeout reached."
)
RECOGNIZE_TONE_MATCHED = ResultInfo(200, 8533, "Action completed, DTMF option matched.")
RECOGNIZE_SILENCE = ResultInfo(400, 8510, "Action failed, initial silence timeout reached.")
RECOGNIZE_WRONG_TONE = ResultInfo(400, 8534, "Action failed, incorrect tone entered.")

# Callback events name tones ("eight", "pound"); the media socket carries the digit.
DTMF_NAMES = {
    **{
        str(i): n for i, n in enumerate("zero one two three four five six seven eight nine".split())
    },
    "*": "asterisk",
    "#": "pound",
    "A": "a",
    "B": "b",
    "C": "c",
    "D": "d",
}
TONE_NAMES = frozenset(DTMF_NAMES.values())


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
    source: str | None = None,
) -> dict[str, Any]:
    """One CloudEvent 1.0 (the caller wraps it in a one-element array).

    ``source`` overrides ``calling/callConnections/<id>`` (recording events use
    ``calling/recordings/<serverCallId>/recordingId/<recordingId>``).
    """
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
    source = source or f"calling/callConnections/{call_connection_id}"
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
    """``mediaStreamingUpdate`` of the MediaStreaming* events (contentType "Audio")."""
    return {
        "mediaStreamingUpdate": {
            "contentType": "Audio",
            "mediaStreamingStatus": status,
            "mediaStreamingStatusDetails": details,
        }
    }


def subscription_validation_event() -> tuple[dict[str, Any], str]:
    """Event Grid subscription validation event and its code."""
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
    """IncomingCall envelope in the Event Grid or CloudEvents 1.0 schema."""
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
