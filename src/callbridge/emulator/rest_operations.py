"""What each Call Automation operation does: answer / reject / redirect an incoming call,
the mid-call actions, the participant actions and call recording.

Each handler checks the request body, acts on the call synchronously (anything that
takes time is scheduled on the call) and returns ``(status, JSON body or None)``.
``rest.py`` routes requests here. The operations and their answers are listed in
docs/emulator.md; the REST API itself is the public Call Automation API.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from . import events as ev
from .call import AnswerError, EmulatedCall
from .ids import identifier_from_request
from .media_operations import MediaBusyError
from .recognize import parse_recognize
from .recording import CallRecording, validate_start
from .rest_validation import (
    AcsError,
    Json,
    bad_request,
    custom_context,
    identifier,
    media_config,
    not_found,
    opt_str,
    require,
)

Reply = tuple[int, Json | None]
Result = tuple[int, Json | None, EmulatedCall | None]  # the reply and the call it concerns


class CallTables:
    """The emulator's calls, indexed the ways REST requests address them."""

    def __init__(self) -> None:
        self.by_context: dict[str, EmulatedCall] = {}
        self.by_id: dict[str, EmulatedCall] = {}
        self.recordings: dict[str, CallRecording] = {}

    def active(self, call_id: str) -> EmulatedCall:
        call = self.by_id.get(call_id)
        if call is None or not call.active:
            raise not_found()
        return call


def participant(ident: Json) -> Json:
    return {"identifier": ident, "isMuted": False, "isOnHold": False}


# ------------------------------------------------------------------ incoming call


def incoming(tables: CallTables, action: str, body: Json, api_version: str) -> Result:
    """``callConnections:answer`` / ``:reject`` / ``:redirect``."""
    context = str(require(body, "incomingCallContext"))
    call = tables.by_context.get(context)
    if action == "answer":
        callback = str(require(body, "callbackUri"))
        parts = urlsplit(callback)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise bad_request("The field CallbackUri is invalid.")
        media = media_config(body.get("mediaStreamingOptions"))
    if call is None:
        raise bad_request("incomingCallContext is unknown: no such incoming call.")
    try:
        if action == "answer":
            call_id = call.answer(body, api_version, media)
            tables.by_id[call_id] = call
            return 200, call.properties(), call
        if action == "reject":
            reason = body.get("callRejectReason") or "none"
            if reason not in ("none", "busy", "forbidden"):
                raise bad_request(f"Invalid callRejectReason {reason!r}.")
            call.decline(f"rejected ({reason})")
        else:
            target = identifier(body, "target")
            call.decline(f"redirected to {target['rawId']}")
    except AnswerError as exc:
        err = bad_request(str(exc))
        err.call = call
        raise err from exc
    return 204, None, call


# ------------------------------------------------------------------ mid-call actions


def call_action(call: EmulatedCall, action: str, body: Json) -> Reply:
    """``callConnections/{id}:<action>``."""
    ctx = opt_str(body, "operationContext")
    url = opt_str(body, "operationCallbackUri")
    if action == "terminate":  # hang_up(True)
        call.service_hung_up(for_everyone=True)
        return 204, None
    if action == "transferToParticipant":
        target = identifier(body, "targetParticipant")
        extra: Json = {}
        if (transferee := identifier_from_request(body.get("transferee"))) is not None:
            extra["transferee"] = transferee
        custom = custom_context(body)
        if custom is not None:
            call.report.custom_context = custom
        call.participants.invite(
            "transfer", target, operation_context=ctx, url=url, custom_context=custom, extra=extra
        )
        return 202, {"operationContext": ctx}
    if action == "play":
        sources = require(body, "playSources")
        if not isinstance(sources, list):
            raise bad_request("The playSources field must be a list.")
        call.media_ops.play(ctx, url)
        return 202, None
    if action == "cancelAllMediaOperations":
        call.media_ops.cancel_all()
        return 202, None
    if action == "recognize":
        return _recognize(call, body, ctx, url)
    if action == "startContinuousDtmfRecognition":
        identifier(body, "targetParticipant")
        call.media_ops.start_continuous_dtmf(ctx)
        return 200, None
    if action == "stopContinuousDtmfRecognition":
        call.media_ops.stop_continuous_dtmf(ctx, url)
        return 200, None
    if action == "sendDtmfTones":
        tones = require(body, "tones")
        if not isinstance(tones, list) or len(tones) > 18:  # the API takes at most 18
            raise bad_request("tones must be a list of at most 18 tones.")
        identifier(body, "targetParticipant")
        call.send_event("SendDtmfTonesCompleted", operation_context=ctx, result=ev.OK, url=url)
        return 202, {"operationContext": ctx}
    if action in ("hold", "unhold"):
        identifier(body, "targetParticipant")
        return 200, None
    if action == "startMediaStreaming":
        if call.media is None:
            raise bad_request("Media streaming was not configured when the call was answered.")
        call.stream.start_later(ctx, url)
        return 202, None
    if action == "stopMediaStreaming":
        call.spawn(call.stream.stop(ctx, url))
        return 202, None
    raise bad_request(f"Operation :{action} is not supported by the ACS emulator.")


def _recognize(call: EmulatedCall, body: Json, ctx: str | None, url: str | None) -> Reply:
    try:
        settings = parse_recognize(body)
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
    try:
        call.media_ops.recognize(settings, body, ctx, url)
    except MediaBusyError:
        # 412 8583: an incompatible media operation is running.
        raise AcsError(
            412,
            "8583",
            "A recognize operation is already running; set "
            "interruptCallMediaOperation to replace it.",
        ) from None
    return 202, None


def participants_action(call: EmulatedCall, action: str, body: Json) -> Reply:
    """``callConnections/{id}/participants:<action>``."""
    ctx = opt_str(body, "operationContext")
    url = opt_str(body, "operationCallbackUri")
    if action == "add":
        target = identifier(body, "participantToAdd")
        timeout = body.get("invitationTimeoutInSeconds")
        if timeout is not None and (
            not isinstance(timeout, int | float)
            or isinstance(timeout, bool)
            or not 0 <= timeout <= 180
        ):
            raise bad_request("invitationTimeoutInSeconds must be 0-180.")
        custom = custom_context(body)
        if custom is not None:
            call.report.custom_context = custom
        inv = call.participants.invite(
            "add",
            target,
            operation_context=ctx,
            url=url,
            custom_context=custom,
            timeout_s=float(timeout) if timeout is not None else None,
        )
        return 202, {
            "participant": participant(target),
            "operationContext": ctx,
            "invitationId": inv.id,
        }
    if action == "remove":
        target = identifier(body, "participantToRemove")
        try:
            call.participants.remove(target, ctx, url)
        except LookupError:
            raise not_found("Participant") from None
        return 202, {"operationContext": ctx}
    if action == "mute":
        require(body, "targetParticipants")
        return 200, {"operationContext": ctx}
    if action == "cancelAddParticipant":
        invitation = str(require(body, "invitationId"))
        try:
            call.participants.cancel_invitation(invitation, ctx, url)
        except LookupError:
            raise not_found("Invitation") from None
        return 202, {"invitationId": invitation, "operationContext": ctx}
    raise bad_request(f"Operation participants:{action} is not supported by the ACS emulator.")


# ---------------------------------------------------------------------- recordings


def recordings(tables: CallTables, method: str, path: str, body: Json) -> Result:
    """``/calling/recordings`` (start) and ``/calling/recordings/{id}[:pause|:resume]``."""
    recs = tables.recordings
    if path == "/calling/recordings" and method == "POST":
        call = _recording_call(tables, body)
        try:
            validate_start(body)
        except ValueError as exc:
            err = bad_request(str(exc))
            err.call = call
            raise err from exc
        recording = CallRecording(call, body)
        recs[recording.id] = recording
        return 200, recording.properties(), call
    m = re.fullmatch(r"/calling/recordings/([^/:]+)(?::(pause|resume))?", path)
    rec = recs.get(m[1]) if m is not None else None
    # A stopped recording, or one whose call the service no longer controls, is gone.
    if m is None or rec is None or rec.stopped or not rec.call.active:
        raise not_found("Recording")
    if m[2] and method == "POST":
        if m[2] == "pause":
            rec.pause()
        else:
            rec.resume()
        return 202, None, rec.call
    if not m[2] and method == "GET":
        return 200, rec.properties(), rec.call
    if not m[2] and method == "DELETE":
        rec.stop()
        return 204, None, rec.call
    raise AcsError(404, "NotFound", f"No ACS emulator operation for {method} {path}")


def _recording_call(tables: CallTables, body: dict[str, Any]) -> EmulatedCall:
    """The call a start-recording request names (callConnectionId or serverCallId)."""
    call_id = body.get("callConnectionId")
    locator = body.get("callLocator") or {}
    if call_id:
        return tables.active(str(call_id))
    if isinstance(locator, dict) and locator.get("serverCallId"):
        found = [
            c
            for c in tables.by_id.values()
            if c.server_call_id == locator["serverCallId"] and c.active
        ]
        if not found:
            raise not_found()
        return found[0]
    if isinstance(locator, dict) and (locator.get("groupCallId") or locator.get("roomId")):
        raise bad_request("Group and room call locators are not supported by the emulator.")
    raise bad_request("Either callLocator or callConnectionId is required.")
