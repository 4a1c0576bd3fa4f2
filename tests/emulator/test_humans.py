"""Simulated humans behind transfers and add-participant, driven by the real async SDK."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import numpy as np
import pytest
from azure.communication.callautomation import PhoneNumberIdentifier
from azure.core.exceptions import ResourceNotFoundError

from callbridge.emulator import AcsEmulator, CallScript, Human, LiveCaller
from callbridge.emulator.humans import Humans, human_from_json, parse_human_spec

from .fake_service import FakeService, WsSession, tone

CALLER = "+14255550123"
ACS_NUMBER = PhoneNumberIdentifier("+18005550100")
DECLINER, BUSY, SILENT, AGENT = "+14255550101", "+14255550102", "+14255550103", "+14255550104"


async def quiet(session: WsSession, msg: dict[str, Any] | None) -> None:
    """A service that listens and says nothing."""


async def _live(emu: AcsEmulator, service: FakeService) -> tuple[LiveCaller, Any]:
    call = await emu.start_call(CallScript(from_number=CALLER, max_duration_s=20))
    await call.wait_media()
    assert service.client is not None and call.call_connection_id is not None
    return call, service.client.get_call_connection(call.call_connection_id)


def _result(event: dict[str, Any]) -> tuple[int, int, dict[str, Any] | None]:
    info = event["data"]["resultInformation"]
    return info["code"], info["subCode"], info.get("sipDetails")


async def test_transfer_to_declining_busy_silent_then_answering_human(
    emu: AcsEmulator, service: FakeService
) -> None:
    emu.humans.set(DECLINER, "decline")
    emu.humans.set(BUSY, "busy", ring_s=0.05)
    emu.humans.set(SILENT, "no_answer", no_answer_s=0.4)  # transfers: no invitation timeout
    call, conn = await _live(emu, service)
    sip = {"X-MS-Custom-Ticket": "T-42", "User-To-User": "616263;encoding=hex"}
    voip = {"customerTier": "gold"}

    for n, (target, ctx) in enumerate(
        [(DECLINER, "x-decline"), (BUSY, "x-busy"), (SILENT, "x-silent")], start=1
    ):
        started = time.monotonic()
        result = await conn.transfer_call_to_participant(
            PhoneNumberIdentifier(target),
            operation_context=ctx,
            sip_headers=sip,
            voip_headers=voip,
            source_caller_id_number=ACS_NUMBER,
        )
        assert result.operation_context == ctx
        failed = await service.wait_event("CallTransferFailed", n)
        waited = time.monotonic() - started
        assert failed["data"]["operationContext"] == ctx
        if target == SILENT:
            assert waited >= 0.38
    decline, busy, silent = (_result(e) for e in service.events("CallTransferFailed"))
    assert decline == (603, 560603, {"code": 603, "message": "Decline"})
    assert busy == (486, 560486, {"code": 486, "message": "Busy Here"})
    assert silent == (480, 560480, {"code": 480, "message": "Temporarily Unavailable"})
    assert service.events("CallTransferFailed")[1]["data"]["resultInformation"]["q850Details"] == {
        "code": 17,
        "message": "User busy",
    }
    assert call.is_active  # a failed transfer leaves the caller with the bot

    await conn.transfer_call_to_participant(PhoneNumberIdentifier(AGENT), operation_context="x-ok")
    report = await call.ended(timeout_s=5)
    assert report.ended_by == "transfer" and report.ended_with_human == AGENT
    assert report.transfer_target == f"4:{AGENT}"
    names = service.event_names()
    assert names[names.index("MediaStreamingStarted") + 1 :] == [
        "CallTransferFailed",
        "CallTransferFailed",
        "CallTransferFailed",
        "CallTransferAccepted",
        "MediaStreamingStopped",
        "CallDisconnected",
    ]
    accepted = service.events("CallTransferAccepted")[0]["data"]
    assert accepted["transferTarget"]["rawId"] == f"4:{AGENT}"
    assert _result(service.events("CallDisconnected")[0]) == (200, 7015, None)

    actions = [(a.action, a.target, a.outcome) for a in report.target_actions]
    assert actions == [
        ("transfer", f"4:{DECLINER}", "declined"),
        ("transfer", f"4:{BUSY}", "busy"),
        ("transfer", f"4:{SILENT}", "no_answer"),
        ("transfer", f"4:{AGENT}", "answered"),
    ]
    first = report.target_actions[0]
    assert first.custom_calling_context == {"sipHeaders": sip, "voipHeaders": voip}
    assert first.operation_context == "x-decline" and first.invitation_id is None
    assert first.result is not None and first.result["subCode"] == 560603
    assert report.target_actions[3].custom_calling_context is None  # no headers: none sent
    assert "transfer 4:+14255550101: declined" in report.summary()


async def test_add_participant_outcomes_cancel_and_remove(
    emu: AcsEmulator, service: FakeService
) -> None:
    emu.humans.set(DECLINER, "decline", ring_s=0.05)
    emu.humans.set(SILENT, Human("answer", ring_s=5.0))  # slower than the invitation timeout
    emu.humans.set(BUSY, "answer", ring_s=5.0)  # rings until cancelled
    call, conn = await _live(emu, service)

    declined = await conn.add_participant(
        PhoneNumberIdentifier(DECLINER),
        source_caller_id_number=ACS_NUMBER,
        operation_context="add-decline",
        sip_headers={"X-MS-Custom-Case": "C-7"},
    )
    failed = await service.wait_event("AddParticipantFailed")
    assert failed["data"]["participant"]["rawId"] == f"4:{DECLINER}"
    assert failed["data"]["operationContext"] == "add-decline"
    assert _result(failed)[:2] == (603, 560603)

    started = time.monotonic()
    await conn.add_participant(
        PhoneNumberIdentifier(SILENT), invitation_timeout=1, operation_context="add-slow"
    )
    failed = await service.wait_event("AddParticipantFailed", 2)
    assert time.monotonic() - started >= 0.95  # gave up at invitationTimeoutInSeconds
    assert _result(failed) == (480, 560480, {"code": 480, "message": "Temporarily Unavailable"})

    ringing = await conn.add_participant(
        PhoneNumberIdentifier(BUSY), operation_context="add-ringing"
    )
    assert ringing.invitation_id
    cancelled = await conn.cancel_add_participant_operation(
        ringing.invitation_id, operation_context="cancel-op"
    )
    assert cancelled.invitation_id == ringing.invitation_id
    ok = await service.wait_event("CancelAddParticipantSucceeded")
    assert ok["data"]["invitationId"] == ringing.invitation_id
    assert ok["data"]["operationContext"] == "cancel-op"
    assert _result(ok)[:2] == (200, 0)
    gone = await service.wait_event("AddParticipantFailed", 3)
    assert gone["data"]["operationContext"] == "add-ringing"
    assert _result(gone) == (487, 0, {"code": 487, "message": "Request Terminated"})
    await conn.cancel_add_participant_operation(ringing.invitation_id)  # not ringing any more
    late = await service.wait_event("CancelAddParticipantFailed")
    assert _result(late)[:2] == (400, 8585)
    with pytest.raises(ResourceNotFoundError):
        await conn.cancel_add_participant_operation("no-such-invitation")

    added = await conn.add_participant(PhoneNumberIdentifier(AGENT), operation_context="add-ok")
    succeeded = await service.wait_event("AddParticipantSucceeded")
    assert succeeded["data"]["participant"]["rawId"] == f"4:{AGENT}"
    updated = await service.wait_event("ParticipantsUpdated", 2)
    ids = [p["identifier"]["rawId"] for p in updated["data"]["participants"]]
    assert ids[:2] == [f"4:{CALLER}", f"4:{AGENT}"] and len(ids) == 3  # + the bot
    listed = [p.identifier.raw_id async for p in conn.list_participants()]
    assert f"4:{AGENT}" in listed

    await conn.remove_participant(PhoneNumberIdentifier(AGENT), operation_context="rm")
    removed = await service.wait_event("RemoveParticipantSucceeded")
    assert removed["data"]["participant"]["rawId"] == f"4:{AGENT}"
    updated = await service.wait_event("ParticipantsUpdated", 3)
    assert f"4:{AGENT}" not in [p["identifier"]["rawId"] for p in updated["data"]["participants"]]

    await conn.hang_up(is_for_everyone=True)
    report = await call.ended(timeout_s=5)
    assert report.ended_by == "service" and report.ended_with_human is None
    outcomes = [(a.target, a.outcome, a.invitation_id) for a in report.target_actions]
    assert outcomes[2:] == [
        (f"4:{BUSY}", "cancelled", ringing.invitation_id),
        (f"4:{AGENT}", "answered", added.invitation_id),
    ]
    assert outcomes[0] == (f"4:{DECLINER}", "declined", declined.invitation_id)
    assert outcomes[1][1] == "no_answer"
    assert report.target_actions[0].custom_calling_context == {
        "sipHeaders": {"X-MS-Custom-Case": "C-7"}
    }
    assert report.target_actions[1].invitation_timeout_s == 1.0
    assert report.target_actions[3].removed_s is not None
    assert report.participants_added == [f"4:{AGENT}"]


async def test_warm_transfer_bot_leaves_caller_stays_with_human(
    emu: AcsEmulator, service: FakeService
) -> None:
    service.on_media = quiet
    emu.humans.set(AGENT, "answer", says=tone(0.5, 16000, freq=600.0), says_after_s=0.6)
    call, conn = await _live(emu, service)
    await conn.add_participant(PhoneNumberIdentifier(AGENT), operation_context="warm")
    await service.wait_event("AddParticipantSucceeded")
    left_at = call.mark()
    await conn.hang_up(is_for_everyone=False)  # the agent (bot) leaves, not for everyone
    await service.wait_event("CallDisconnected")
    disconnected = service.events("CallDisconnected")[0]
    assert _result(disconnected)[:2] == (200, 7000)
    assert service.event_names()[-2:] == ["MediaStreamingStopped", "CallDisconnected"]
    with pytest.raises(ResourceNotFoundError):
        await conn.get_call_properties()

    # The caller is still on the line and now hears the human's line.
    heard_at = await call.wait_agent_speaking(since=left_at, timeout_s=5)
    assert call.is_active and heard_at >= left_at
    turn = await call.wait_agent_quiet(since=left_at, quiet_s=0.3)
    assert 0.45 <= turn.duration_s <= 0.55
    assert np.abs(np.frombuffer(turn.pcm, dtype="<i2")).max() > 4000
    assert call.report.media_closed_by == "emulator"

    report = await call.hang_up()
    assert report.ended_by == "caller" and report.ended_with_human == AGENT
    assert service.event_names().count("CallDisconnected") == 1
    (session,) = service.ws_sessions
    assert session.ws.closed
    assert "the caller ended up with +14255550104" in report.summary()


async def test_added_human_is_heard_by_caller_and_service(
    emu: AcsEmulator, service: FakeService
) -> None:
    service.on_media = quiet
    emu.humans.set(AGENT, "answer", says=tone(0.3, 16000, freq=600.0), says_after_s=0.0)
    call, conn = await _live(emu, service)
    since = call.mark()
    await conn.add_participant(PhoneNumberIdentifier(AGENT))
    turn = await call.wait_agent_quiet(since=since, quiet_s=0.2)
    assert 0.25 <= turn.duration_s <= 0.35
    (session,) = service.ws_sessions
    loud = [m for _, m in session.received if m.get("kind") == "AudioData"]
    assert sum(not m["audioData"]["silent"] for m in loud) >= 14  # the mixed audio
    await conn.hang_up(is_for_everyone=True)
    report = await call.ended(timeout_s=5)
    assert report.ended_by == "service" and report.ended_with_human is None


def test_human_configuration() -> None:
    humans = Humans({"+14255550100": "decline", "8:acs:abc": Human("busy", ring_s=1)})
    assert humans.get("4:+14255550100").behaviour == "decline"
    assert humans.get("+14255550100") == humans.get("4:+14255550100")
    assert humans.get("8:acs:abc").ring_s == 1
    assert humans.get("+19995550000").behaviour == "answer"  # default
    humans.set("*", "no_answer")
    assert humans.get("+19995550000").behaviour == "no_answer"
    with pytest.raises(ValueError, match="unknown human behaviour"):
        humans.set("+1", "maybe")
    target, human = parse_human_spec("+14255550100=answer,ring=1.5,timeout=9")
    assert (target, human.behaviour, human.ring_s, human.no_answer_s) == (
        "+14255550100",
        "answer",
        1.5,
        9.0,
    )
    for bad in ["+1425", "+1425=", "+1=answer,ring", "+1=answer,colour=red"]:
        with pytest.raises(ValueError):
            parse_human_spec(bad)
    assert human_from_json({"behaviour": "busy", "ring_s": 2}).ring_s == 2.0
    assert human_from_json("decline").behaviour == "decline"


async def test_humans_from_the_control_api(emu: AcsEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{emu.endpoint}/emulator/humans"
        async with http.put(url, json={"+14255550100": "busy", "*": "decline"}) as r:
            assert r.status == 200
            body = await r.json()
        assert body["targets"]["4:+14255550100"]["behaviour"] == "busy"
        assert body["default"]["behaviour"] == "decline"
        async with http.post(url, json={"8:acs:x": {"behaviour": "answer", "ring_s": 3}}) as r:
            assert (await r.json())["targets"]["8:acs:x"]["ring_s"] == 3
        async with http.post(url, json={"+1": "perhaps"}) as r:
            assert r.status == 400 and "unknown human behaviour" in (await r.json())["error"]
        async with http.delete(url) as r:
            assert (await r.json()) == {
                "default": Human().to_dict(),
                "no_answer_s": 5.0,
                "targets": {},
            }
    assert emu.humans.get("+14255550100").behaviour == "answer"


async def test_humans_on_the_constructor(service: FakeService, access_key: str) -> None:
    emu = AcsEmulator(service.webhook, access_key, humans={"+14255550100": "busy"})
    assert emu.humans.get("4:+14255550100").behaviour == "busy"
    assert emu.target_responder is emu.humans
