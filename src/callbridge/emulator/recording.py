"""Call recording (``/calling/recordings``, RecordingStateChanged); public reference:
https://learn.microsoft.com/azure/communication-services/concepts/voice-video-calling/call-recording

No media is recorded: the emulator keeps the recording's state and the requests, and
sends ``RecordingStateChanged`` on every state change — to ``recordingStateCallbackUri``
when the start request gave one, else to the call's callback URI.
"""

from __future__ import annotations

import base64
import secrets
from typing import TYPE_CHECKING, Any

from .ids import iso_now_offset_7
from .report import RecordingRecord, RecordingStateRecord

if TYPE_CHECKING:
    from .call import EmulatedCall

EVENT_DELAY_S = 0.05  # let the REST response reach the service before the event
KIND = "azureCommunicationServices"
CONTENT_TYPES = ("audio", "audioVideo")
CHANNEL_TYPES = ("mixed", "unmixed")
FORMAT_TYPES = ("wav", "mp3", "mp4")


def validate_start(body: dict[str, Any]) -> None:
    """StartCallRecordingRequest enums; ValueError with the message for a 400."""
    content = body.get("recordingContentType")
    channel = body.get("recordingChannelType")
    fmt = body.get("recordingFormatType")
    for name, value, allowed in [
        ("recordingContentType", content, CONTENT_TYPES),
        ("recordingChannelType", channel, CHANNEL_TYPES),
        ("recordingFormatType", fmt, FORMAT_TYPES),
    ]:
        if value is not None and value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}.")
    # audioVideo+mixed -> mp4; audio+mixed -> mp3/wav; audio+unmixed -> wav.
    if content == "audioVideo" and (fmt in ("wav", "mp3") or channel == "unmixed"):
        raise ValueError("audioVideo recordings are mixed mp4.")
    if content == "audio" and fmt == "mp4":
        raise ValueError("audio recordings are wav or mp3, not mp4.")
    if channel == "unmixed" and fmt == "mp3":
        raise ValueError("unmixed recordings are wav.")


class CallRecording:
    def __init__(self, call: EmulatedCall, body: dict[str, Any]) -> None:
        self.call = call
        self.id = base64.urlsafe_b64encode(secrets.token_bytes(48)).decode("ascii")
        url = body.get("recordingStateCallbackUri")
        self.callback_url = str(url) if url else call.callback_uri
        self.state = "inactive" if body.get("pauseOnStart") else "active"
        self.start_date_time = iso_now_offset_7()
        self.record = RecordingRecord(self.id, dict(body), self.callback_url)
        call.report.recordings.append(self.record)
        call.recordings.append(self)
        self._changed(self.state, "start")

    @property
    def stopped(self) -> bool:
        return self.record.stopped

    def properties(self) -> dict[str, Any]:
        """RecordingStateResponse."""
        return {"recordingId": self.id, "recordingState": self.state, "recordingKind": KIND}

    def pause(self) -> None:
        if self.state != "inactive":
            self._changed("inactive", "pause")

    def resume(self) -> None:
        if self.state != "active":
            self._changed("active", "resume")

    def stop(self) -> None:
        self.record.stopped = True
        self._changed("inactive", "stop")

    def call_ended(self, notify: bool) -> None:
        """The call is over: an active recording ends (RecordingStateChanged inactive)."""
        if self.stopped:
            return
        self.record.stopped = True
        if self.state == "active":
            self._changed("inactive", "call ended", notify=notify, delay_s=0.0)

    def _changed(
        self, state: str, by: str, *, notify: bool = True, delay_s: float = EVENT_DELAY_S
    ) -> None:
        call = self.call
        self.state = state
        self.record.states.append(RecordingStateRecord(state, by, call.since_start()))
        if not notify:
            return
        # As in the SDK's test fixture: recordingId, state, startDateTime, recordingKind; no
        # operationContext; source calling/recordings/<serverCallId>/recordingId/<id>.
        call.send_event(
            "RecordingStateChanged",
            extra={
                "recordingId": self.id,
                "state": state,
                "startDateTime": self.start_date_time,
                "recordingKind": KIND,
            },
            url=self.callback_url,
            source=f"calling/recordings/{call.server_call_id}/recordingId/{self.id}",
            delay_s=delay_s,
        )
