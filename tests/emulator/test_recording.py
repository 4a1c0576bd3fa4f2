"""Call recording via the real async SDK: REST results and RecordingStateChanged callbacks."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from callbridge.emulator import AcsEmulator, CallScript

from .fake_service import FakeService


def _states(service: FakeService, recording_id: str) -> list[tuple[str, str]]:
    """(state, callback path) of each RecordingStateChanged for ``recording_id``."""
    return [
        (e["data"]["state"], path)
        for _, e, _, path in service.callbacks
        if e["type"].endswith("RecordingStateChanged") and e["data"]["recordingId"] == recording_id
    ]


async def test_recording_start_pause_resume_stop_with_state_callbacks(
    emu: AcsEmulator, service: FakeService
) -> None:
    call = await emu.start_call(CallScript(max_duration_s=20))
    await call.wait_media()
    assert service.client is not None and call.call_connection_id is not None
    client = service.client
    conn = client.get_call_connection(call.call_connection_id)
    props = await conn.get_call_properties()
    assert props.server_call_id is not None
    rec_url = f"{service.base}/acs/callbacks/rec?token=abc"

    rec = await client.start_recording(
        server_call_id=props.server_call_id,
        recording_state_callback_url=rec_url,
        recording_content_type="audio",
        recording_channel_type="mixed",
        recording_format_type="wav",
    )
    assert rec.recording_id is not None and rec.recording_state == "active"
    assert rec.recording_kind == "azureCommunicationServices"
    first = await service.wait_event("RecordingStateChanged")
    data: dict[str, Any] = first["data"]
    assert {k: data[k] for k in ("recordingId", "state", "recordingKind")} == {
        "recordingId": rec.recording_id,
        "state": "active",
        "recordingKind": "azureCommunicationServices",
    }
    assert data["startDateTime"].endswith("+00:00") and "operationContext" not in data
    assert data["callConnectionId"] == call.call_connection_id
    assert data["serverCallId"] == props.server_call_id
    source = f"calling/recordings/{props.server_call_id}/recordingId/{rec.recording_id}"
    assert first["source"] == first["subject"] == source

    await client.pause_recording(rec.recording_id)
    await service.wait_event("RecordingStateChanged", 2)
    assert (await client.get_recording_properties(rec.recording_id)).recording_state == "inactive"
    await client.pause_recording(rec.recording_id)  # already paused: no event
    await client.resume_recording(rec.recording_id)
    await service.wait_event("RecordingStateChanged", 3)
    got = await client.get_recording_properties(rec.recording_id)
    assert (got.recording_id, got.recording_state) == (rec.recording_id, "active")
    await client.stop_recording(rec.recording_id)
    await service.wait_event("RecordingStateChanged", 4)
    path = "/acs/callbacks/rec?token=abc"
    assert _states(service, rec.recording_id) == [
        ("active", path),
        ("inactive", path),
        ("active", path),
        ("inactive", path),
    ]
    with pytest.raises(ResourceNotFoundError):  # stopped: gone
        await client.get_recording_properties(rec.recording_id)
    with pytest.raises(ResourceNotFoundError):
        await client.pause_recording("no-such-recording")
    with pytest.raises(HttpResponseError) as bad:
        await client.start_recording(
            call_connection_id=call.call_connection_id,
            recording_content_type="audio",
            recording_format_type="mp4",
        )
    assert bad.value.status_code == 400

    # By callConnectionId and without a state callback URI: events go to the call's URI.
    rec2 = await client.start_recording(call_connection_id=call.call_connection_id)
    assert rec2.recording_id is not None
    await service.wait_event("RecordingStateChanged", 5)
    report = await call.hang_up()  # the call ends with the recording still active
    call_path = "/acs/callbacks/c1?callerId=%2B1425"
    assert _states(service, rec2.recording_id) == [("active", call_path), ("inactive", call_path)]
    assert service.event_names()[-3:] == [
        "RecordingStateChanged",
        "MediaStreamingStopped",
        "CallDisconnected",
    ]

    first_rec, second_rec = report.recordings
    assert first_rec.id == rec.recording_id and first_rec.stopped
    assert [(s.state, s.by) for s in first_rec.states] == [
        ("active", "start"),
        ("inactive", "pause"),
        ("active", "resume"),
        ("inactive", "stop"),
    ]
    assert first_rec.options["recordingFormatType"] == "wav"
    assert first_rec.options["callLocator"]["serverCallId"] == props.server_call_id
    assert first_rec.callback_url == rec_url
    assert [(s.state, s.by) for s in second_rec.states] == [
        ("active", "start"),
        ("inactive", "call ended"),
    ]
    # exactly as the SDK sent it
    assert second_rec.options == {
        "callConnectionId": call.call_connection_id,
        "channelAffinity": [],
    }
    assert "call recording" in report.summary()
