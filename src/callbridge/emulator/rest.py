"""Call Automation REST API under /calling (§2), HMAC-protected like the real service.

Handlers are synchronous between reading the request and producing the response, so
the Repeatability-Request-ID check-and-execute is atomic on the event loop. Anything
that takes time (callbacks, socket work) is scheduled on the call.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from . import events as ev
from .call import AnswerError, EmulatedCall, MediaBusyError, MediaConfig
from .hmac_auth import HmacError, verify_request
from .ids import identifier_from_request
from .media import parse_audio_format
from .recognize import parse_recognize
from .recording import CallRecording, validate_start
from .report import RestRecord

log = logging.getLogger("callbridge.emulator")
Json = dict[str, Any]


@dataclass
class RestLogEntry:
    t: float  # time.time() when the response was produced
    method: str
    path: str  # path and query exactly as received
    status: int
    body: Any  # parsed JSON request body (None if empty / not JSON)
    call_connection_id: str | None = None
    error: str | None = None  # reason for a 4xx
    replayed: bool = False  # answered from the Repeatability-Request-ID cache
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # as received
    raw_body: bytes = field(default=b"", repr=False)

    def to_dict(self) -> Json:
        return {
            "t": self.t,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "body": self.body,
            "call_connection_id": self.call_connection_id,
            "error": self.error,
            "replayed": self.replayed,
        }


class AcsError(Exception):
    """A request the emulator refuses; rendered as an ACS error body (§2.1)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.call: EmulatedCall | None = None  # the call it concerns, for its report


def not_found(what: str = "Call") -> AcsError:
    return AcsError(404, "8522", f"{what} not found")  # §3.4 404/8522


def bad_request(message: str) -> AcsError:
    return AcsError(400, "8523", message)  # §3.4 400/8523 invalid argument


def error_body(code: str, message: str) -> Json:
    return {"error": {"code": code, "message": message}}


def _require(body: Json, name: str) -> Any:
    value = body.get(name)
    if value is None or value == "" or value == []:
        raise bad_request(f"The {name} field is required.")
    return value


def _identifier(body: Json, name: str) -> Json:
    ident = identifier_from_request(_require(body, name))
    if ident is None:
        raise bad_request(f"The {name} field is not a valid CommunicationIdentifier.")
    return ident


def _opt_str(body: Json, name: str) -> str | None:
    value = body.get(name)
    return str(value) if value is not None else None


# §1.3 custom context limits: ≤ 5 custom SIP headers (X-MS-Custom-*, or X-* since SDK
# 1.5.0) + the UUI header, ≤ 1000 VoIP headers; key ≤ 64, SIP value ≤ 256, VoIP ≤ 1024.
UUI_HEADERS = ("user-to-user", "usertouser")


def _custom_context(body: Json) -> Json | None:
    """``customCallingContext`` validated against the limits; kept exactly as received."""
    ctx = body.get("customCallingContext")
    if ctx is None:
        return None
    if not isinstance(ctx, dict):
        raise bad_request("customCallingContext must be an object.")
    sip = ctx.get("sipHeaders") or {}
    voip = ctx.get("voipHeaders") or {}
    for name, headers, value_max in [("sipHeaders", sip, 256), ("voipHeaders", voip, 1024)]:
        if not isinstance(headers, dict):
            raise bad_request(f"customCallingContext.{name} must be an object.")
        for key, value in headers.items():
            if not isinstance(value, str):
                raise bad_request(f"{name} header {key!r} must have a string value.")
            if not key or len(key) > 64:
                raise bad_request(f"{name} header name {key!r} must be 1-64 characters.")
            if len(value) > value_max:
                raise bad_request(f"{name} header {key!r}: value longer than {value_max}.")
    custom = [k for k in sip if k.lower() not in UUI_HEADERS]
    bad = [k for k in custom if not k.lower().startswith("x-")]
    if bad:
        raise bad_request(
            f"Custom SIP header {bad[0]!r} must start with X-MS-Custom- (or X-) or be User-To-User."
        )
    if len(custom) > 5:
        raise bad_request("At most 5 custom SIP headers (plus User-To-User) are allowed.")
    if len(voip) > 1000:
        raise bad_request("At most 1000 VoIP headers are allowed.")
    return ctx


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


Result = tuple[int, Json | None, EmulatedCall | None]


class RestApi:
    def __init__(self, tables: CallTables, access_key: Callable[[], bytes]) -> None:
        self.tables = tables
        self._access_key = access_key
        self.log: list[RestLogEntry] = []
        self._replay: dict[str, tuple[int, Json | None]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        path = request.raw_path  # still URL-encoded, with the query (§2.2)
        entry = RestLogEntry(time.time(), request.method, path, 0, None)
        entry.headers, entry.raw_body = dict(request.headers), raw
        self.log.append(entry)
        try:
            entry.body = json.loads(raw) if raw else None
        except ValueError:
            entry.body = raw.decode("utf-8", "replace")
        try:
            verify_request(
                method=request.method,
                path_and_query=path,
                headers=request.headers,
                body=raw,
                access_key=self._access_key(),
            )
        except HmacError as exc:
            return self._fail(entry, AcsError(401, "7509", f"Hmac Validation Error: {exc}"))
        rid = request.headers.get("Repeatability-Request-ID")
        if rid and rid in self._replay:
            entry.replayed = True
            status, payload = self._replay[rid]
            return self._respond(entry, status, payload)
        try:
            if raw and not isinstance(entry.body, dict):
                raise bad_request("The request body must be a JSON object.")
            body: Json = entry.body if isinstance(entry.body, dict) else {}
            status, payload, call = self._dispatch(
                request.method, request.path, body, request.query.get("api-version", "")
            )
        except AcsError as exc:
            if rid:
                self._replay[rid] = (exc.status, error_body(exc.code, exc.message))
            if exc.call is not None:
                exc.call.report.rest_requests.append(
                    RestRecord(entry.method, path, exc.status, exc.call.since_start())
                )
            return self._fail(entry, exc)
        if call is not None:
            entry.call_connection_id = call.call_connection_id
            call.report.rest_requests.append(
                RestRecord(entry.method, path, status, call.since_start())
            )
        if rid:
            self._replay[rid] = (status, payload)
        return self._respond(entry, status, payload)

    def _fail(self, entry: RestLogEntry, exc: AcsError) -> web.Response:
        entry.error = exc.message
        log.warning("rejected %s %s -> %d: %s", entry.method, entry.path, exc.status, exc.message)
        return self._respond(entry, exc.status, error_body(exc.code, exc.message))

    @staticmethod
    def _respond(entry: RestLogEntry, status: int, payload: Json | None) -> web.Response:
        entry.status = status
        if payload is None:
            return web.Response(status=status)
        return web.json_response(payload, status=status)

    # ------------------------------------------------------------------ routing

    def _dispatch(self, method: str, path: str, body: Json, api_version: str) -> Result:
        if m := re.fullmatch(r"/calling/callConnections:(\w+)", path):
            if method == "POST" and m[1] in ("answer", "reject", "redirect"):
                return self._incoming(m[1], body, api_version)
            if method == "POST" and m[1] == "connect":
                raise bad_request("connect is not supported by the ACS emulator.")
        elif re.fullmatch(r"/calling/callConnections", path) and method == "POST":
            raise bad_request("createCall is not supported by the ACS emulator.")
        elif m := re.fullmatch(r"/calling/callConnections/([^/:]+)", path):
            call = self.tables.active(m[1])
            if method == "GET":
                return 200, call.properties(), call
            if method == "DELETE":  # hang_up(False)
                call.service_hung_up(for_everyone=False)
                return 204, None, call
        elif m := re.fullmatch(r"/calling/callConnections/([^/:]+):(\w+)", path):
            if method == "POST":
                call = self.tables.active(m[1])
                return (*self._call_action(call, m[2], body), call)
        elif m := re.fullmatch(r"/calling/callConnections/([^/:]+)/participants", path):
            if method == "GET":
                call = self.tables.active(m[1])
                return 200, {"value": [_participant(p) for p in _everyone(call)]}, call
        elif m := re.fullmatch(r"/calling/callConnections/([^/:]+)/participants:(\w+)", path):
            if method == "POST":
                call = self.tables.active(m[1])
                return (*self._participants_action(call, m[2], body), call)
        elif m := re.fullmatch(r"/calling/callConnections/([^/:]+)/participants/(.+)", path):
            if method == "GET":
                call = self.tables.active(m[1])
                for p in _everyone(call):
                    if p["rawId"] == m[2]:
                        return 200, _participant(p), call
                raise not_found("Participant")
        elif path.startswith("/calling/recordings"):
            return self._recordings(method, path, body)
        raise AcsError(404, "NotFound", f"No ACS emulator operation for {method} {path}")

    # ------------------------------------------------------------- incoming call

    def _incoming(self, action: str, body: Json, api_version: str) -> Result:
        context = str(_require(body, "incomingCallContext"))
        call = self.tables.by_context.get(context)
        if action == "answer":
            callback = str(_require(body, "callbackUri"))
            parts = urlsplit(callback)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise bad_request("The field CallbackUri is invalid.")
            media = _media_config(body.get("mediaStreamingOptions"))
        if call is None:
            raise bad_request("incomingCallContext is unknown: no such incoming call.")
        try:
            if action == "answer":
                call_id = call.answer(body, api_version, media)
                self.tables.by_id[call_id] = call
                return 200, call.properties(), call
            if action == "reject":
                reason = body.get("callRejectReason") or "none"
                if reason not in ("none", "busy", "forbidden"):
                    raise bad_request(f"Invalid callRejectReason {reason!r}.")
                call.decline(f"rejected ({reason})")
            else:
                target = _identifier(body, "target")
                call.decline(f"redirected to {target['rawId']}")
        except AnswerError as exc:
            err = bad_request(str(exc))
            err.call = call
            raise err from exc
        return 204, None, call

    # ------------------------------------------------------------- mid-call actions

    def _call_action(self, call: EmulatedCall, action: str, body: Json) -> tuple[int, Json | None]:
        ctx = _opt_str(body, "operationContext")
        url = _opt_str(body, "operationCallbackUri")
        if action == "terminate":  # hang_up(True)
            call.service_hung_up(for_everyone=True)
            return 204, None
        if action == "transferToParticipant":
            target = _identifier(body, "targetParticipant")
            extra: Json = {}
            if (transferee := identifier_from_request(body.get("transferee"))) is not None:
                extra["transferee"] = transferee
            custom = _custom_context(body)
            if custom is not None:
                call.report.custom_context = custom
            call.start_target_action(
                "transfer",
                target,
                operation_context=ctx,
                url=url,
                custom_context=custom,
                extra=extra,
            )
            return 202, {"operationContext": ctx}
        if action == "play":
            sources = _require(body, "playSources")
            if not isinstance(sources, list):
                raise bad_request("The playSources field must be a list.")
            call.start_play(ctx, url)
            return 202, None
        if action == "cancelAllMediaOperations":
            call.cancel_media_operations()
            return 202, None
        if action == "recognize":
            try:
                settings = parse_recognize(body)
            except ValueError as exc:
                raise bad_request(str(exc)) from exc
            try:
                call.start_recognize(settings, body, ctx, url)
            except MediaBusyError:
                # §3.4 412/8583: incompatible media operation running.
                raise AcsError(
                    412,
                    "8583",
                    "A recognize operation is already running; set "
                    "interruptCallMediaOperation to replace it.",
                ) from None
            return 202, None
        if action == "startContinuousDtmfRecognition":
            _identifier(body, "targetParticipant")
            call.continuous_dtmf, call.continuous_dtmf_context = True, ctx
            return 200, None
        if action == "stopContinuousDtmfRecognition":
            call.continuous_dtmf = False
            call.send_event(
                "ContinuousDtmfRecognitionStopped", operation_context=ctx, result=ev.OK, url=url
            )
            return 200, None
        if action == "sendDtmfTones":
            tones = _require(body, "tones")
            if not isinstance(tones, list) or len(tones) > 18:  # §2.4: max 18 tones
                raise bad_request("tones must be a list of at most 18 tones.")
            _identifier(body, "targetParticipant")
            call.send_event("SendDtmfTonesCompleted", operation_context=ctx, result=ev.OK, url=url)
            return 202, {"operationContext": ctx}
        if action in ("hold", "unhold"):
            _identifier(body, "targetParticipant")
            return 200, None
        if action == "startMediaStreaming":
            if call.media is None:
                raise bad_request("Media streaming was not configured when the call was answered.")
            call.start_media_later(ctx, url)
            return 202, None
        if action == "stopMediaStreaming":
            call.spawn(call.stop_media(ctx, url))
            return 202, None
        raise bad_request(f"Operation :{action} is not supported by the ACS emulator.")

    def _participants_action(
        self, call: EmulatedCall, action: str, body: Json
    ) -> tuple[int, Json | None]:
        ctx = _opt_str(body, "operationContext")
        url = _opt_str(body, "operationCallbackUri")
        if action == "add":
            target = _identifier(body, "participantToAdd")
            timeout = body.get("invitationTimeoutInSeconds")
            if timeout is not None and (
                not isinstance(timeout, int | float)
                or isinstance(timeout, bool)
                or not 0 <= timeout <= 180
            ):
                raise bad_request("invitationTimeoutInSeconds must be 0-180.")
            custom = _custom_context(body)
            if custom is not None:
                call.report.custom_context = custom
            inv = call.start_target_action(
                "add",
                target,
                operation_context=ctx,
                url=url,
                custom_context=custom,
                timeout_s=float(timeout) if timeout is not None else None,
            )
            return 202, {
                "participant": _participant(target),
                "operationContext": ctx,
                "invitationId": inv.id,
            }
        if action == "remove":
            target = _identifier(body, "participantToRemove")
            try:
                call.remove_participant(target, ctx, url)
            except LookupError:
                raise not_found("Participant") from None
            return 202, {"operationContext": ctx}
        if action == "mute":
            _require(body, "targetParticipants")
            return 200, {"operationContext": ctx}
        if action == "cancelAddParticipant":
            invitation = str(_require(body, "invitationId"))
            try:
                call.cancel_invitation(invitation, ctx, url)
            except LookupError:
                raise not_found("Invitation") from None
            return 202, {"invitationId": invitation, "operationContext": ctx}
        raise bad_request(f"Operation participants:{action} is not supported by the ACS emulator.")

    # ---------------------------------------------------------------- recordings

    def _recordings(self, method: str, path: str, body: Json) -> Result:
        recs = self.tables.recordings
        if path == "/calling/recordings" and method == "POST":
            call_id = body.get("callConnectionId")
            locator = body.get("callLocator") or {}
            if call_id:
                call = self.tables.active(str(call_id))
            elif isinstance(locator, dict) and locator.get("serverCallId"):
                found = [
                    c
                    for c in self.tables.by_id.values()
                    if c.server_call_id == locator["serverCallId"] and c.active
                ]
                if not found:
                    raise not_found()
                call = found[0]
            elif isinstance(locator, dict) and (
                locator.get("groupCallId") or locator.get("roomId")
            ):
                raise bad_request("Group and room call locators are not supported by the emulator.")
            else:
                raise bad_request("Either callLocator or callConnectionId is required.")
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


def _media_config(options: Any) -> MediaConfig | None:
    """Validate ``mediaStreamingOptions`` (§4.1)."""
    if options is None:
        return None
    if not isinstance(options, dict):
        raise bad_request("mediaStreamingOptions must be an object.")
    url = str(_require(options, "transportUrl"))
    if urlsplit(url).scheme not in ("ws", "wss"):
        raise bad_request(f"Invalid Stream URL {url!r}: must be ws:// or wss://.")
    if str(options.get("transportType", "websocket")).lower() != "websocket":
        raise bad_request("mediaStreamingOptions.transportType must be websocket.")
    try:
        fmt, rate = parse_audio_format(options.get("audioFormat"))
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
    return MediaConfig(
        transport_url=url,
        audio_format=fmt,
        rate=rate,
        start=bool(options.get("startMediaStreaming")),
        bidirectional=bool(options.get("enableBidirectional")),
        dtmf=bool(options.get("enableDtmfTones")),
    )


def _participant(identifier: Json) -> Json:
    return {"identifier": identifier, "isMuted": False, "isOnHold": False}


def _everyone(call: EmulatedCall) -> list[Json]:
    return [*call.participants, call.bot]
