"""The Call Automation REST API driven by the real SDK (azure-communication-callautomation)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import aiohttp
import pytest
from azure.communication.callautomation import (
    DtmfTone,
    PhoneNumberIdentifier,
    RecognizeInputType,
    TextSource,
)
from azure.communication.callautomation.aio import CallConnectionClient
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from callbridge.emulator import AcsEmulator, CallReport, CallScript
from callbridge.emulator.hmac_auth import sign_headers

from .fake_service import FakeService, WsSession

CALLER = "+14255550123"


async def _ringing(
    emu: AcsEmulator, service: FakeService, **kw: object
) -> tuple[asyncio.Task[CallReport], str]:
    service.answer = False
    script = CallScript(tail_s=None, max_duration_s=10, from_number=CALLER, **kw)  # type: ignore[arg-type]
    task = asyncio.create_task(emu.place_call(script))
    ctx = await asyncio.wait_for(service.contexts.get(), 5)
    return task, ctx


async def _streaming(
    emu: AcsEmulator, service: FakeService
) -> tuple[asyncio.Task[CallReport], CallConnectionClient]:
    """A call answered with media, its socket open: the call's task and its connection."""
    service.media = True
    task, ctx = await _ringing(emu, service)
    props = await service._answer(ctx)
    assert service.client is not None
    conn = service.client.get_call_connection(props.call_connection_id)
    await _wait_for_event(service, "MediaStreamingStarted")
    return task, conn


async def _wait_for_event(service: FakeService, name: str) -> None:
    async with asyncio.timeout(3.0):
        while not service.events(name):  # noqa: ASYNC110 - polling a plain list is fine here
            await asyncio.sleep(0.01)


async def test_answer_operations_and_hang_up(emu: AcsEmulator, service: FakeService) -> None:
    service.media = False
    task, ctx = await _ringing(emu, service)
    props = await service._answer(ctx)
    assert props.call_connection_state == "connecting"
    assert props.callback_url.endswith("/acs/callbacks/c1?callerId=%2B1425")
    assert props.source.raw_id == f"4:{CALLER}"
    assert props.targets[0].raw_id == "4:+18005550100"
    assert uuid.UUID(props.correlation_id)

    with pytest.raises(HttpResponseError) as again:  # second answer must fail, not re-answer
        await service._answer(ctx)
    assert again.value.status_code == 400
    assert again.value.error is not None and again.value.error.code == "8523"

    assert service.client is not None
    conn = service.client.get_call_connection(props.call_connection_id)
    await _wait_for_event(service, "ParticipantsUpdated")
    got = await conn.get_call_properties()
    assert got.call_connection_state == "connected"
    assert got.server_call_id == props.server_call_id
    participants = [p async for p in conn.list_participants()]
    assert f"4:{CALLER}" in [p.identifier.raw_id for p in participants]

    caller = PhoneNumberIdentifier(CALLER)
    assert await conn.play_media(TextSource(text="hi"), operation_context="p1") is None
    await _wait_for_event(service, "PlayCompleted")
    await conn.cancel_all_media_operations()
    await conn.start_continuous_dtmf_recognition(caller, operation_context="cd")
    await conn.send_dtmf_tones([DtmfTone.ONE, DtmfTone.POUND], caller, operation_context="sd")
    await conn.start_recognizing_media(RecognizeInputType.DTMF, caller, dtmf_max_tones_to_collect=2)
    rec = await service.client.start_recording(server_call_id=props.server_call_id)
    assert rec.recording_id and rec.recording_state == "active"
    rec2 = await service.client.start_recording(call_connection_id=props.call_connection_id)
    await service.client.stop_recording(rec.recording_id)
    assert (await service.client.get_recording_properties(rec2.recording_id)).recording_id

    await conn.hang_up(is_for_everyone=False)
    report = await asyncio.wait_for(task, 5)
    assert report.ended_by == "service"
    assert report.answer_count == 1 and report.answer_attempts == 2
    names = service.event_names()
    assert names[:2] == ["CallConnected", "ParticipantsUpdated"]
    assert {"PlayCompleted", "SendDtmfTonesCompleted"} <= set(names)
    assert names[-1] == "CallDisconnected"
    disc = service.events("CallDisconnected")[0]["data"]
    assert disc["resultInformation"]["subCode"] == 7000
    assert disc["operationContext"] == "answer-op"
    with pytest.raises(ResourceNotFoundError) as gone:
        await conn.get_call_properties()
    assert gone.value.error is not None and gone.value.error.code == "8522"
    statuses = [(r.method, r.status) for r in report.rest_requests]
    assert ("DELETE", 204) in statuses and ("POST", 400) in statuses


async def test_transfer_ends_call_as_transferred(emu: AcsEmulator, service: FakeService) -> None:
    task, conn = await _streaming(emu, service)
    result = await conn.transfer_call_to_participant(
        PhoneNumberIdentifier("+14255550199"),
        operation_context="xfer",
        voip_headers={"ticket": "123"},
    )
    assert result.operation_context == "xfer"
    report = await asyncio.wait_for(task, 5)
    assert report.ended_by == "transfer"
    assert report.transfer_target == "4:+14255550199"
    assert report.custom_context == {"voipHeaders": {"ticket": "123"}}
    names = service.event_names()
    assert names[-3:] == ["CallTransferAccepted", "MediaStreamingStopped", "CallDisconnected"]
    accepted = service.events("CallTransferAccepted")[0]["data"]
    assert accepted["transferTarget"]["rawId"] == "4:+14255550199"
    assert accepted["operationContext"] == "xfer"
    assert service.events("CallDisconnected")[0]["data"]["resultInformation"]["subCode"] == 7015


async def test_a_restart_of_media_streaming_keeps_its_events_in_order(
    emu: AcsEmulator, service: FakeService
) -> None:
    # A replica that hands a call over stops its media and starts it again at once; the
    # stop is answered 202 before the old socket has closed. Before, the start opened the
    # new socket first and the old socket's MediaStreamingStopped came after the new
    # MediaStreamingStarted, which read as a media outage lasting until the next move.
    closing_slowly = asyncio.Event()

    async def slow_to_close(session: WsSession, msg: dict[str, object] | None) -> None:
        if closing_slowly.is_set() and session is service.ws_sessions[0]:
            await asyncio.sleep(0.5)  # the close frame waits in the socket meanwhile

    service.on_media = slow_to_close
    task, conn = await _streaming(emu, service)
    closing_slowly.set()
    await asyncio.sleep(0.05)  # a caller frame arrives and the handler stalls on it
    await conn.stop_media_streaming()
    await conn.start_media_streaming()
    await service.wait_event("MediaStreamingStarted", count=2)
    media = [n for n in service.event_names() if n.startswith("MediaStreaming")]
    assert media == ["MediaStreamingStarted", "MediaStreamingStopped", "MediaStreamingStarted"]
    assert len(service.ws_sessions) == 2
    await conn.hang_up(is_for_everyone=True)
    await asyncio.wait_for(task, 5)


async def test_add_participant_then_terminate(emu: AcsEmulator, service: FakeService) -> None:
    service.media = False
    task, ctx = await _ringing(emu, service)
    props = await service._answer(ctx)
    assert service.client is not None
    conn = service.client.get_call_connection(props.call_connection_id)
    added = await conn.add_participant(
        PhoneNumberIdentifier("+14255550777"),
        source_caller_id_number=PhoneNumberIdentifier("+18005550100"),
        operation_context="add-op",
        sip_headers={"X-MS-Custom-a": "1"},
    )
    assert added.invitation_id and added.operation_context == "add-op"
    assert added.participant.identifier.raw_id == "4:+14255550777"
    await _wait_for_event(service, "AddParticipantSucceeded")
    await asyncio.sleep(0.05)
    updates = service.events("ParticipantsUpdated")
    assert updates[-1]["data"]["sequenceNumber"] == 2
    assert "4:+14255550777" in [
        p["identifier"]["rawId"] for p in updates[-1]["data"]["participants"]
    ]
    removed = await conn.remove_participant(PhoneNumberIdentifier("+14255550777"))
    assert removed is not None
    await conn.hang_up(is_for_everyone=True)
    report = await asyncio.wait_for(task, 5)
    assert report.ended_by == "service" and report.participants_added == ["4:+14255550777"]
    assert report.custom_context == {"sipHeaders": {"X-MS-Custom-a": "1"}}


async def test_reject_and_redirect(emu: AcsEmulator, service: FakeService) -> None:
    assert service.client is not None
    task, ctx = await _ringing(emu, service)
    await service.client.reject_call(ctx, call_reject_reason="busy")
    report = await asyncio.wait_for(task, 5)
    assert not report.answered and report.ended_by == "not_answered"
    assert "rejected (busy)" in report.end_reason
    with pytest.raises(HttpResponseError) as late:
        await service._answer(ctx)
    assert late.value.status_code == 400 and "rejected" in str(late.value.message)

    task, ctx = await _ringing(emu, service)
    await service.client.redirect_call(ctx, PhoneNumberIdentifier("+14255550100"))
    report = await asyncio.wait_for(task, 5)
    assert "redirected to 4:+14255550100" in report.end_reason
    assert service.callbacks == []  # reject/redirect publish no events


async def _signed_post(
    emu: AcsEmulator,
    access_key: str,
    path: str,
    payload: dict,
    rid: str | None = None,  # type: ignore[type-arg]
) -> tuple[int, dict]:  # type: ignore[type-arg]
    body = json.dumps(payload).encode()
    headers = sign_headers(
        method="POST",
        path_and_query=path,
        host=emu.endpoint.removeprefix("http://"),
        body=body,
        access_key=base64.b64decode(access_key),
    )
    headers["Content-Type"] = "application/json"
    if rid:
        headers["Repeatability-Request-ID"] = rid
    async with aiohttp.ClientSession() as http:
        async with http.post(emu.endpoint + path, data=body, headers=headers) as r:
            return r.status, (await r.json() if r.content_length else {})


async def test_repeatability_and_validation(
    emu: AcsEmulator, service: FakeService, access_key: str
) -> None:
    task, ctx = await _ringing(emu, service)
    path = "/calling/callConnections:answer?api-version=2026-03-12"
    status, err = await _signed_post(emu, access_key, path, {"incomingCallContext": ctx})
    assert status == 400 and "callbackUri" in err["error"]["message"]
    bad_media = {
        "incomingCallContext": ctx,
        "callbackUri": f"{service.base}/acs/callbacks/x",
        "mediaStreamingOptions": {"transportUrl": "ws://127.0.0.1:1/ws", "audioFormat": "mp3"},
    }
    status, err = await _signed_post(emu, access_key, path, bad_media)
    assert status == 400 and "audioFormat" in err["error"]["message"]

    good = {"incomingCallContext": ctx, "callbackUri": f"{service.base}/acs/callbacks/x"}
    rid = str(uuid.uuid4())
    first = await _signed_post(emu, access_key, path, good, rid)
    second = await _signed_post(emu, access_key, path, good, rid)
    assert first[0] == 200 and first == second
    assert emu.rest_log[-1].replayed
    status, err = await _signed_post(emu, access_key, path, good)  # new RID: a real re-answer
    assert status == 400 and err["error"]["code"] == "8523"

    call_id = first[1]["callConnectionId"]
    status, _ = await _signed_post(
        emu, access_key, f"/calling/callConnections/{call_id}:terminate?api-version=x", {}
    )
    assert status == 204
    report = await asyncio.wait_for(task, 5)
    assert report.answer_count == 1

    status, err = await _signed_post(
        emu, access_key, "/calling/callConnections/nope:terminate?api-version=x", {}
    )
    assert (status, err) == (404, {"error": {"code": "8522", "message": "Call not found"}})
